"""One DRS pass over one ComputeCluster: read, plan, report, and (FullyAutomated) migrate.

The I/O around the pure parts: `pass_inputs` (objects to planner input), `drs.plan` (the
planner), `pass_report` (plan to status). A pass reads with plain lists, not caches: it runs
every `intervalSeconds` (15 s at the least), and what it reads (VMIs, virt-launcher pods,
PodMetrics, migrations) would otherwise be held in memory all the time for one read a
minute. PodMetrics are read as `kubectl top pods` reads them, through the metrics.k8s.io
aggregated API; when it does not answer, the pass balances requests and says so.

Manual and PartiallyAutomated: the moves are recommendations in status.drs. FullyAutomated:
each move is created as a VirtualMachineMigration labelled as DRS-made (its controller posts
"Migrated by DRS from host-1 to host-3: balance, imbalance 0.31 -> 0.12" on the VM), with
one log line. A rule that breaks is announced once with a Warning Event on the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from controllers.common.apply import post_event
from controllers.common.conditions import Condition
from controllers.common.kube import KubeClient, KubeError
from controllers.common.logging import get_logger
from controllers.computecluster.drs import DrsPlan, plan
from controllers.computecluster.models import ComputeClusterSpec
from controllers.computecluster.pass_inputs import LAUNCHER_SELECTOR, Observation, planner_inputs
from controllers.computecluster.pass_report import (
    balanced_conditions,
    drs_status,
    move_manifests,
    pass_message,
    rule_statuses,
)
from controllers.virtualmachine.builders import VM_LABEL
from controllers.virtualmachine.kind import VIRTUAL_MACHINE
from controllers.virtualmachinemigration.kind import (
    DRS_REASON_ANNOTATION,
    VIRTUAL_MACHINE_MIGRATION,
)
from kubekit.resources import KUBEVIRTS, PODS, VMIMS, VMIS, ResourceRef

log = get_logger("vdcos.drs")

POD_METRICS: Final = ResourceRef("metrics.k8s.io", "v1beta1", "pods")


@dataclass(frozen=True)
class PassResult:
    """What a pass contributes to the cluster's status."""

    drs: dict[str, Any]
    rules: list[dict[str, Any]]
    conditions: list[Condition]
    plan: DrsPlan


async def _list_or_empty(kube: KubeClient, resource: ResourceRef, **params: str) -> list[Any]:
    """A list; empty when the kind is not served (its CRD not installed)."""
    try:
        return await kube.list(resource, **params)
    except KubeError as error:
        if error.status in (403, 404):
            return []
        raise


async def _pod_metrics(kube: KubeClient) -> list[dict[str, Any]] | None:
    """The virt-launcher pods' metrics, or None when metrics.k8s.io does not answer."""
    try:
        return await kube.list(POD_METRICS, labelSelector=LAUNCHER_SELECTOR)
    except (KubeError, OSError) as error:
        log.info("metrics.k8s.io did not answer; balancing requests", error=str(error))
        return None


async def observe(
    kube: KubeClient, cluster: str, hosts: Sequence[Mapping[str, Any]], *, metrics: bool
) -> Observation:
    """Everything a pass of `cluster` reads (its hosts come from the node cache)."""
    vms = [
        vm
        for vm in await kube.list(VIRTUAL_MACHINE.resource)
        if (vm.get("spec") or {}).get("clusterName") == cluster
    ]
    vmis = {
        (str(vmi["metadata"].get("namespace")), str(vmi["metadata"]["name"])): vmi
        for vmi in await kube.list(VMIS, labelSelector=VM_LABEL)
    }
    kubevirts = await _list_or_empty(kube, KUBEVIRTS)
    return Observation(
        nodes=hosts,
        virtual_machines=vms,
        vmis=vmis,
        launcher_pods=await kube.list(PODS, labelSelector=LAUNCHER_SELECTOR),
        pod_metrics=await _pod_metrics(kube) if metrics else (),
        migrations=await _list_or_empty(kube, VIRTUAL_MACHINE_MIGRATION.resource),
        kubevirt_migrations=await _list_or_empty(kube, VMIMS),
        kubevirt=kubevirts[0] if kubevirts else None,
    )


async def run_pass(
    kube: KubeClient,
    cluster: Mapping[str, Any],
    spec: ComputeClusterSpec,
    hosts: Sequence[Mapping[str, Any]],
    conditions: Sequence[Condition],
    now: datetime,
) -> PassResult:
    """Plans the cluster, starts the moves when FullyAutomated, and returns its status."""
    name = str(cluster["metadata"]["name"])
    generation = int(cluster["metadata"].get("generation") or 1)
    previous: Mapping[str, Any] = cluster.get("status") or {}
    observation = await observe(kube, name, hosts, metrics=spec.drs.load_metric == "Usage")
    inputs = planner_inputs(spec.rules, spec.drs, observation, now.timestamp())
    decided = plan(inputs.state, inputs.settings)
    automated = spec.drs.automation_level == "FullyAutomated"
    started = await _start_moves(kube, name, decided) if automated else 0
    in_progress = len(inputs.state.in_flight) + started
    status = drs_status(
        name,
        decided,
        inputs,
        now,
        migrations_in_progress=in_progress,
        message=pass_message(decided, automated, inputs.notes),
    )
    rules = rule_statuses(decided.rules)
    await _announce_broken_rules(kube, cluster, previous.get("rules") or [], rules)
    required = {rule.name for rule in spec.rules if rule.enforcement == "Required"}
    return PassResult(
        status, rules, balanced_conditions(conditions, decided, required, generation, now), decided
    )


async def _start_moves(kube: KubeClient, cluster: str, decided: DrsPlan) -> int:
    """Creates the VirtualMachineMigration of each move; returns how many started."""
    started = 0
    for move, manifest in zip(
        decided.moves, move_manifests(cluster, decided.moves), strict=True
    ):
        try:
            await kube.create(VIRTUAL_MACHINE_MIGRATION.resource, manifest)
        except KubeError as error:
            log.warning("DRS could not start a migration", cluster=cluster, vm=move.vm,
                        error=str(error))
            continue
        started += 1
        log.info(
            "DRS migration",
            cluster=cluster,
            vm=move.vm,
            source=move.source,
            target=move.target,
            reason=manifest["metadata"]["annotations"][DRS_REASON_ANNOTATION],
        )
    return started


async def _announce_broken_rules(
    kube: KubeClient,
    cluster: Mapping[str, Any],
    previous: Sequence[Mapping[str, Any]],
    current: Sequence[Mapping[str, Any]],
) -> None:
    """A Warning Event on the cluster for each rule that turned unsatisfied this pass."""
    was_broken = {rule.get("name") for rule in previous if not rule.get("satisfied", True)}
    for rule in current:
        if rule["satisfied"] or rule.get("disabled") or rule["name"] in was_broken:
            continue
        await post_event(
            kube, cluster, "Warning", "RuleViolated", f"rule {rule['name']}: {rule['message']}"
        )

