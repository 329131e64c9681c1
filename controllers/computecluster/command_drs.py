"""`vdcos drs`: apply a cluster's DRS recommendations, or ask for a pass now.

- `vdcos drs apply CLUSTER` creates the VirtualMachineMigration of every recommendation in
  status.drs (Manual and PartiallyAutomated clusters recommend and do not migrate), skipping
  a VM that is already moving, then asks for a pass so the status shows the new state.
- `vdcos drs run CLUSTER` asks for a pass now instead of at the next intervalSeconds (it
  sets the annotation `vdcos.io/drs-pass-requested`, which the pass removes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controllers.common.kube import KubeClient

_FINISHED = frozenset({"Succeeded", "Failed"})


def migrations_to_create(
    status: Mapping[str, Any], existing: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The manifests of the recommendations, and a line for each one skipped (its VM moves)."""
    moving = {
        (
            str((migration.get("metadata") or {}).get("namespace")),
            str((migration.get("spec") or {}).get("virtualMachineName")),
        )
        for migration in existing
        if (migration.get("status") or {}).get("phase") not in _FINISHED
    }
    manifests: list[dict[str, Any]] = []
    skipped: list[str] = []
    for recommendation in (status.get("drs") or {}).get("recommendations") or []:
        vm = recommendation["virtualMachine"]
        if (vm["namespace"], vm["name"]) in moving:
            skipped.append(f"{vm['namespace']}/{vm['name']}: already migrating")
            continue
        manifests.append(dict(recommendation["migration"]))
    return manifests, skipped


# The client and the kinds are imported when a drs command runs, not whenever `vdcos` starts.


async def _client(kubeconfig: Path | None) -> KubeClient:
    from controllers.common.kube import KubeClient
    from controllers.common.login import log_in

    return KubeClient(await log_in(kubeconfig), user_agent="vdcos-cli")


async def _request_pass(kube: KubeClient, cluster: str) -> str:
    """Sets the pass-requested annotation to a new token; the pass copies it into
    status.drs.lastRequest once it has run."""
    from controllers.computecluster.kind import COMPUTE_CLUSTER, DRS_PASS_REQUESTED_ANNOTATION

    token = str(int(datetime.now(UTC).timestamp() * 1000))
    patch = {"metadata": {"annotations": {DRS_PASS_REQUESTED_ANNOTATION: token}}}
    await kube.patch(COMPUTE_CLUSTER.resource, None, cluster, patch)
    return token


async def _apply(kubeconfig: Path | None, cluster: str) -> int:
    from controllers.computecluster.kind import COMPUTE_CLUSTER
    from controllers.virtualmachinemigration.kind import VIRTUAL_MACHINE_MIGRATION

    kube = await _client(kubeconfig)
    try:
        body = await kube.get(COMPUTE_CLUSTER.resource, None, cluster)
        if body is None:
            print(f'Error: computecluster "{cluster}" not found', file=sys.stderr)
            return 1
        existing = await kube.list(VIRTUAL_MACHINE_MIGRATION.resource)
        manifests, skipped = migrations_to_create(body.get("status") or {}, existing)
        for line in skipped:
            print(f"skipped {line}")
        for manifest in manifests:
            created = await kube.create(VIRTUAL_MACHINE_MIGRATION.resource, manifest)
            metadata, spec = created["metadata"], created["spec"]
            print(
                f"virtualmachinemigration.vdcos.io/{metadata['name']} created "
                f"({metadata['namespace']}/{spec['virtualMachineName']} -> {spec['targetHost']})"
            )
        if not manifests and not skipped:
            print(f"computecluster {cluster}: no recommendations")
        token = await _request_pass(kube, cluster)
        print(f"DRS pass requested (status.drs.lastRequest will be {token})")
        print(token)
        return 0
    finally:
        await kube.close()


async def _run(kubeconfig: Path | None, cluster: str) -> int:
    from controllers.common.kube import KubeError

    kube = await _client(kubeconfig)
    try:
        token = await _request_pass(kube, cluster)
    except KubeError as error:
        if error.status == 404:
            print(f'Error: computecluster "{cluster}" not found', file=sys.stderr)
            return 1
        raise
    finally:
        await kube.close()
    # The token alone on the last line: `kubectl wait --for=jsonpath=
    # '{.status.drs.lastRequest}'=TOKEN cc/CLUSTER` waits for the pass.
    print(f"computecluster.vdcos.io/{cluster}: DRS pass requested (status.drs.lastRequest "
          f"will be {token})")
    print(token)
    return 0


def command_drs(args: argparse.Namespace) -> int:
    from controllers.common.kube import KubeError
    from controllers.common.login import LoginError

    action = _apply if args.drs_command == "apply" else _run
    try:
        return asyncio.run(action(args.kubeconfig, args.cluster))
    except LoginError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except KubeError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1


def register(commands: Any) -> None:
    """Adds `drs apply CLUSTER` and `drs run CLUSTER` to the vdcos subcommands."""
    drs: argparse.ArgumentParser = commands.add_parser(
        "drs", help="DRS of a ComputeCluster: apply its recommendations, or run a pass now"
    )
    actions = drs.add_subparsers(dest="drs_command", required=True)
    for name, text in (
        ("apply", "create the VirtualMachineMigrations of the cluster's recommendations"),
        ("run", "ask for a DRS pass now (instead of at the next intervalSeconds)"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("cluster", metavar="CLUSTER", help="the ComputeCluster's name")
        action.add_argument(
            "--kubeconfig",
            type=Path,
            default=None,
            help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)",
        )
        action.set_defaults(handler=command_drs)
