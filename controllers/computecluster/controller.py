"""The ComputeCluster controller: status from the cluster's hosts and pods, and the cluster's
label on its hosts, and DRS.

The hosts are the Nodes its hostSelector picks; capacity is their allocatable CPU and memory,
allocation what the pods bound to them request. Node and Pod changes come in bursts (every
heartbeat, every VM start), so they are gathered for a moment into one status write, and
nothing is written when the figures did not change. VM placement is read from the same
cluster spec by the VirtualMachine controller.

Every host the hostSelector picks carries the label `vdcos.io/cluster.<name>: ""`, and a
host that stops matching (or whose cluster is deleted) loses it: nmstate policies select
nodes by label equality only, so a DistributedSwitch follows the cluster's hosts through it.

With spec.drs.enabled, a DRS pass (drs_pass.py) runs within the same reconcile when one is
due: every intervalSeconds (the key is queued again for then), or at once when the
annotation `vdcos.io/drs-pass-requested` is set. Between passes the last pass's status.drs,
status.rules and Balanced condition are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from controllers.common.apply import patch_status
from controllers.common.caches import NODE_CACHE, PODS_BY_NODE
from controllers.common.conditions import Condition, mark_false, remove_condition
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.computecluster.builders import (
    cluster_host_label,
    cluster_nodes,
    cluster_status_with_conditions,
    host_label_changes,
)
from controllers.computecluster.drs_pass import run_pass
from controllers.computecluster.kind import (
    COMPUTE_CLUSTER,
    COMPUTE_CLUSTER_CACHE,
    DRS_PASS_REQUESTED_ANNOTATION,
)
from controllers.computecluster.models import ComputeClusterSpec
from controllers.computecluster.pass_report import BALANCED, seconds_until_pass
from kubekit.resources import NODES, PODS

log = get_logger("vdcos.computecluster")

#: Host and pod changes are gathered for this long into one status write.
ALLOCATION_COALESCE_SECONDS: Final = 2.0


class ComputeClusterController(Controller[str]):
    name = "computeclusters"
    kind = COMPUTE_CLUSTER
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        COMPUTE_CLUSTER_CACHE,
        NODE_CACHE,
        PODS_BY_NODE,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.clusters = context.cache(COMPUTE_CLUSTER_CACHE)
        self.nodes = context.cache(NODE_CACHE)
        self.pods_by_node = context.cache(PODS_BY_NODE)
        super().__init__(context)

    async def reconcile(self, name: str) -> None:
        entry = self.clusters.get(name)
        if entry is None:
            # Deleted: its hosts are no longer its hosts.
            await self._label_hosts(name, [])
            return
        cluster = entry.body
        generation = int(cluster["metadata"].get("generation") or 1)
        previous: Mapping[str, Any] = cluster.get("status") or {}
        now = datetime.now(UTC)
        conditions: list[Condition] = list(previous.get("conditions") or [])
        answered_request = False
        if entry.spec is None:
            status: dict[str, Any] = {
                "conditions": mark_false(
                    conditions,
                    "Ready",
                    "InvalidSpec",
                    entry.invalid or "spec is invalid",
                    observed_generation=generation,
                    now=now,
                ),
                "observedGeneration": generation,
            }
        else:
            nodes = list(self.nodes.values())
            hosts = cluster_nodes(entry.spec, nodes)
            await self._label_hosts(name, [str(host["metadata"]["name"]) for host in hosts])
            pods: list[Mapping[str, Any]] = []
            for host in hosts:
                pods.extend(self.pods_by_node.values_of(host["metadata"]["name"]))
            status = cluster_status_with_conditions(
                entry.spec, nodes, pods, conditions, generation, now
            )
            answered_request = await self._drs(cluster, entry.spec, hosts, status, now)
        # status.ha is the HA controller's (controllers/hostfailure): left out of this patch.
        theirs = {key: value for key, value in previous.items() if key != "ha"}
        await patch_status(self.kube, COMPUTE_CLUSTER.resource, None, name, theirs, status)
        if answered_request:
            # Only once the status says so: a pass that fails before is asked for again.
            patch = {"metadata": {"annotations": {DRS_PASS_REQUESTED_ANNOTATION: None}}}
            await self.kube.patch(COMPUTE_CLUSTER.resource, None, name, patch)

    async def _drs(
        self,
        cluster: Mapping[str, Any],
        spec: ComputeClusterSpec,
        hosts: list[Mapping[str, Any]],
        status: dict[str, Any],
        now: datetime,
    ) -> bool:
        """Adds status.drs, status.rules and Balanced: a new pass when one is due, else the
        last pass's (status is written whole). True when a request, answered now or before,
        is to be removed."""
        name = str(cluster["metadata"]["name"])
        previous: Mapping[str, Any] = cluster.get("status") or {}
        if not spec.drs.enabled:
            status["conditions"] = remove_condition(status["conditions"], BALANCED)
            return False
        request = (cluster["metadata"].get("annotations") or {}).get(
            DRS_PASS_REQUESTED_ANNOTATION
        )
        # A request the last pass answered may still show in the cache for a moment after
        # the status says so (the annotation is removed after the status is written).
        requested = request is not None and request != (previous.get("drs") or {}).get(
            "lastRequest"
        )
        wait = seconds_until_pass(
            previous.get("drs"), spec.drs.interval_seconds, now, requested=requested
        )
        if wait > 0:
            for key in ("drs", "rules"):
                if key in previous:
                    status[key] = previous[key]
            self.queue.enqueue(name, wait)
            return request is not None  # answered already: its removal may have failed
        result = await run_pass(self.kube, cluster, spec, hosts, status["conditions"], now)
        status["drs"] = result.drs
        last_request = request if requested else (previous.get("drs") or {}).get("lastRequest")
        if last_request is not None:
            status["drs"]["lastRequest"] = last_request
        status["rules"] = result.rules
        status["conditions"] = result.conditions
        self.queue.enqueue(name, spec.drs.interval_seconds)
        return request is not None

    async def _label_hosts(self, name: str, hosts: list[str]) -> None:
        """Puts the cluster's label on exactly these hosts (one patch per host that differs)."""
        label = cluster_host_label(name)
        for node, member in host_label_changes(name, hosts, self.nodes.values()).items():
            patch = {"metadata": {"labels": {label: "" if member else None}}}
            try:
                await self.kube.patch(NODES, None, node, patch)
            except KubeError as error:
                if error.status == 404:
                    continue  # the host went; the node watch asks again
                raise
            log.info("Labelled host" if member else "Unlabelled host", host=node, label=label)

    def cluster_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue(event.name)

    def host_or_pod_changed(self, event: WatchEvent) -> None:
        self.enqueue_all(self.clusters.keys(), ALLOCATION_COALESCE_SECONDS)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(COMPUTE_CLUSTER.resource, cls.cluster_changed),
            Watch(NODES, cls.host_or_pod_changed),
            Watch(PODS, cls.host_or_pod_changed),
        )
