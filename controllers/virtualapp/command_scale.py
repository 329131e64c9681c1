"""`vdcos vapp scale APP MEMBER N`: set a member's replicas, within its min and max.

The spec is patched (a JSON patch that first tests the member's name at its index, so a
concurrent edit of the member list is refused rather than scaling the wrong member); the
controller then creates or removes VMs. A count outside minReplicas..maxReplicas is refused
here, naming the field, before anything is written (the API server refuses it too).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def scale_patch(app: Mapping[str, Any], member: str, replicas: int) -> list[dict[str, Any]]:
    """The JSON patch that sets `member`'s replicas; ValueError naming the field when the
    member does not exist or the count is out of its bounds."""
    name = (app.get("metadata") or {}).get("name")
    members = (app.get("spec") or {}).get("members") or []
    for index, entry in enumerate(members):
        if entry.get("name") != member:
            continue
        low, high = int(entry.get("minReplicas", 1)), int(entry.get("maxReplicas", 1))
        if not low <= replicas <= high:
            raise ValueError(
                f"spec.members[{index}].replicas: {replicas} is outside {member}'s "
                f"minReplicas..maxReplicas ({low}..{high})"
            )
        path = f"/spec/members/{index}"
        return [{"op": "test", "path": f"{path}/name", "value": member},
                {"op": "add", "path": f"{path}/replicas", "value": replicas}]
    known = ", ".join(str(entry.get("name")) for entry in members)
    raise ValueError(f"virtualapp {name} has no member {member!r} (members: {known})")


async def _scale(kubeconfig: Path | None, namespace: str, app: str, member: str,
                 replicas: int) -> int:
    from controllers.common.kube import JSON_PATCH, KubeClient
    from controllers.common.login import log_in
    from controllers.virtualapp.kind import VIRTUAL_APP

    kube = KubeClient(await log_in(kubeconfig), user_agent="vdcos-cli")
    try:
        body = await kube.get(VIRTUAL_APP.resource, namespace, app)
        if body is None:
            print(f'Error: virtualapp "{app}" not found in namespace {namespace}',
                  file=sys.stderr)
            return 1
        try:
            patch = scale_patch(body, member, replicas)
        except ValueError as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1
        await kube.patch(VIRTUAL_APP.resource, namespace, app, patch, content_type=JSON_PATCH)
        print(f"virtualapp.vdcos.io/{app} scaled: {member} replicas {replicas}")
        return 0
    finally:
        await kube.close()


def command_vapp(args: argparse.Namespace) -> int:
    from controllers.common.kube import KubeError
    from controllers.common.login import LoginError

    try:
        return asyncio.run(_scale(args.kubeconfig, args.namespace, args.app, args.member,
                                  args.replicas))
    except (LoginError, KubeError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1


def register(commands: Any) -> None:
    """Adds `vapp scale APP MEMBER N` to the vdcos subcommands."""
    vapp: argparse.ArgumentParser = commands.add_parser(
        "vapp", help="VirtualApps: scale a member out or in"
    )
    actions = vapp.add_subparsers(dest="vapp_command", required=True)
    text = "set a member's replicas (within its minReplicas and maxReplicas)"
    scale = actions.add_parser("scale", help=text, description=text)
    scale.add_argument("app", metavar="APP", help="the VirtualApp's name")
    scale.add_argument("member", metavar="MEMBER", help="the member's name")
    scale.add_argument("replicas", metavar="N", type=int, help="the member's new replicas")
    scale.add_argument("-n", "--namespace", default="default",
                       help="the app's namespace (default: default)")
    scale.add_argument("--kubeconfig", type=Path, default=None,
                       help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    scale.set_defaults(handler=command_vapp)
