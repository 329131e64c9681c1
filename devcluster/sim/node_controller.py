"""kube-controller-manager's node lifecycle, taint-eviction and PodGC controllers.

- Node lifecycle: every `node_monitor_seconds` each node's last heartbeat (its Lease being
  renewed, or its Ready condition's heartbeat) is checked; silent longer than
  `node_grace_seconds`, its conditions go Unknown, its pods Ready=False, and it gets the
  `node.kubernetes.io/unreachable` NoSchedule and NoExecute taints (not-ready for
  Ready=False); they are removed when the node reports Ready again.
- Taint eviction: pods on a node with a NoExecute taint they do not tolerate are deleted
  (gracefully) at once, or after their tolerationSeconds (300 s by default for
  unreachable/not-ready, added by the API server's DefaultTolerationSeconds admission).
- PodGC: every `pod_gc_seconds`, terminating pods on a not-Ready node tainted
  `node.kubernetes.io/out-of-service` are marked Failed and deleted with grace 0
  (non-graceful node shutdown); pods bound to a Node that no longer exists are deleted
  after a 40 s quarantine.

Decisions come from the pure planners in `node_lifecycle.py` and `scheduling.py`; timing
is measured on this process's clock from when a heartbeat was observed, as the real
controller does (no trust in the kubelet's clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.resources import LEASES, NODES, PODS
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from . import node_lifecycle
from .runtime import SIM_RETRY_DELAYS, SimRuntime, now_rfc3339
from .scheduling import is_terminal, tolerates

log = structlog.get_logger("devcluster.sim.node_controller")

Obj = Mapping[str, Any]

ORPHAN_QUARANTINE_SECONDS = 40.0  # PodGC quarantine before deleting pods of a deleted node
LEASE_NAMESPACE = "kube-node-lease"


def no_execute_taints(node: Obj | None) -> list[Obj]:
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or []
            if t.get("effect") == "NoExecute"]


def _parse_time(text: str | None, fallback: datetime) -> datetime:
    if not text:
        return fallback
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return fallback


def seconds_until_eviction(pod: Obj, taints: Sequence[Obj], now: datetime) -> float | None:
    """When the taint manager deletes `pod` for these NoExecute taints: 0 for at once,
    a delay while a toleration's tolerationSeconds runs, None when tolerated forever."""
    if not taints:
        return None
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or []
                   if t.get("effect") in (None, "", "NoExecute")]
    shortest: float | None = None
    for taint in taints:
        if not tolerates(tolerations, taint):
            return 0.0
        matching = [t for t in tolerations if tolerates([t], taint)]
        bounded = [float(t["tolerationSeconds"]) for t in matching
                   if t.get("tolerationSeconds") is not None]
        if len(bounded) < len(matching):
            continue  # some toleration of this taint has no limit
        added = _parse_time(taint.get("timeAdded"), now)
        remaining = (added + timedelta(seconds=max(0.0, min(bounded))) - now).total_seconds()
        shortest = remaining if shortest is None else min(shortest, remaining)
    if shortest is None:
        return None
    return max(0.0, shortest)


def _taint_identity(taints: Sequence[Obj]) -> list[tuple[str, str, str]]:
    return sorted((str(t.get("key")), str(t.get("value", "")), str(t.get("effect")))
                  for t in taints)


def _with_condition(conditions: Sequence[Obj], new: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(dict(c) for c in conditions if c.get("type") != new["type"]), new]


class NodeLifecycleController:
    name = "node-lifecycle"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.settings = runtime.settings
        # node -> (heartbeat marker last seen, loop time it was seen)
        self._heartbeats: dict[str, tuple[tuple[str, str], float]] = {}
        self._no_execute_seen: dict[str, list[tuple[str, str, str]]] = {}
        self._orphans_seen: dict[Key, float] = {}
        self._evicted: set[str] = set()  # pod uids deleted already (the watch may lag)
        self._nodes_queue = WorkQueue("node-lifecycle", self._reconcile_node, workers=2,
                                      retry_delays=SIM_RETRY_DELAYS)
        self._eviction_queue = WorkQueue("taint-eviction", self._reconcile_eviction, workers=4,
                                         retry_delays=SIM_RETRY_DELAYS)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        nodes = self.runtime.informer(NODES)
        pods = self.runtime.informer(PODS)
        leases = self.runtime.informer(LEASES)
        await self.runtime.wait_synced(NODES, PODS, LEASES)
        nodes.add_listener(self._on_node)
        pods.add_listener(self._on_pod)
        leases.add_listener(self._on_lease)
        self._nodes_queue.start()
        self._eviction_queue.start()
        for node in nodes.values():
            self._on_node("ADDED", node)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every(self.settings.node_monitor_seconds,
                                                    self._monitor)),
                       loop.create_task(self._every(self.settings.pod_gc_seconds,
                                                    self._collect_garbage))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._nodes_queue.stop()
        await self._eviction_queue.stop()

    async def _every(self, seconds: float, action: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await action()
            except (KubeError, OSError) as error:
                log.warning("Periodic controller pass failed", error=str(error))

    # --- observation ------------------------------------------------------------------

    def _heartbeat_marker(self, name: str) -> tuple[str, str]:
        node = self.runtime.informer(NODES).get("", name) or {}
        lease = self.runtime.informer(LEASES).get(LEASE_NAMESPACE, name) or {}
        conditions = (node.get("status") or {}).get("conditions") or []
        ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        return (str((lease.get("spec") or {}).get("renewTime", "")),
                str(ready.get("lastHeartbeatTime", "")))

    def _saw(self, name: str) -> None:
        marker = self._heartbeat_marker(name)
        previous = self._heartbeats.get(name)
        if previous is None or previous[0] != marker:
            self._heartbeats[name] = (marker, asyncio.get_running_loop().time())

    def _on_lease(self, kind: str, lease: dict[str, Any]) -> None:
        if lease["metadata"].get("namespace") == LEASE_NAMESPACE and kind != "DELETED":
            self._saw(lease["metadata"]["name"])

    def _on_node(self, kind: str, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        if kind == "DELETED":
            self._heartbeats.pop(name, None)
            self._no_execute_seen.pop(name, None)
            return
        self._saw(name)
        self._nodes_queue.enqueue(("", name))
        taints = _taint_identity(no_execute_taints(node))
        if self._no_execute_seen.get(name) != taints:
            self._no_execute_seen[name] = taints
            if taints:
                for pod in self.runtime.informer(PODS).values():
                    if (pod.get("spec") or {}).get("nodeName") == name:
                        self._eviction_queue.enqueue(key_of(pod))

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        if kind == "DELETED":
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name and self._no_execute_seen.get(node_name):
            self._eviction_queue.enqueue(key_of(pod))

    # --- node lifecycle ---------------------------------------------------------------

    def _last_heartbeat(self, name: str, now: datetime) -> datetime:
        seen = self._heartbeats.get(name)
        if seen is None:
            return now
        elapsed = asyncio.get_running_loop().time() - seen[1]
        return now - timedelta(seconds=elapsed)

    async def _monitor(self) -> None:
        """The monitor period: nodes whose heartbeat is overdue get looked at."""
        for node in self.runtime.informer(NODES).values():
            self._nodes_queue.enqueue(("", node["metadata"]["name"]))

    async def _reconcile_node(self, key: Key) -> float | None:
        node = self.runtime.informer(NODES).get("", key[1])
        if node is None:
            return None
        name = key[1]
        now = datetime.now(UTC)
        grace = math.ceil(self.settings.node_grace_seconds)
        conditions = node_lifecycle.node_conditions_after(
            node, self._last_heartbeat(name, now), now, grace_seconds=grace)
        current = (node.get("status") or {}).get("conditions") or []
        statuses = {c.get("type"): c.get("status") for c in conditions}
        if statuses != {c.get("type"): c.get("status") for c in current}:
            await self.kube.patch(NODES, None, name, {
                "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
                "status": {"conditions": conditions}}, subresource="status")
            log.info("Node stopped posting status", node=name)
            await self.runtime.event(node, "NodeNotReady",
                                     f"Node {name} status is now: NodeNotReady",
                                     component="node-controller")
            await self._mark_pods_not_ready(name, now)
            return None  # the taints follow on the next event of this node
        ready = statuses.get("Ready", "Unknown")
        taints = node_lifecycle.node_taints_for(node, str(ready), now)
        old_taints = (node.get("spec") or {}).get("taints") or []
        if _taint_identity(taints) != _taint_identity(old_taints):
            await self.kube.patch(NODES, None, name, {
                "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
                "spec": {"taints": taints or None}})
        return None

    async def _mark_pods_not_ready(self, node_name: str, now: datetime) -> None:
        for pod in self.runtime.informer(PODS).values():
            if (pod.get("spec") or {}).get("nodeName") != node_name or is_terminal(pod):
                continue
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in conditions):
                continue
            meta = pod["metadata"]
            with contextlib.suppress(KubeError):
                await self.kube.patch(PODS, meta["namespace"], meta["name"], {"status": {
                    "conditions": node_lifecycle.pod_not_ready_conditions(pod, now)}},
                    subresource="status")

    # --- taint eviction ---------------------------------------------------------------

    async def _reconcile_eviction(self, key: Key) -> float | None:
        pod = self.runtime.informer(PODS).get(*key)
        if pod is None or pod["metadata"].get("deletionTimestamp") or is_terminal(pod):
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                self._evicted.discard((pod or {}).get("metadata", {}).get("uid", ""))
            return None
        if pod["metadata"].get("uid") in self._evicted:
            return None
        node = self.runtime.informer(NODES).get("", (pod.get("spec") or {}).get("nodeName", ""))
        delay = seconds_until_eviction(pod, no_execute_taints(node), datetime.now(UTC))
        if delay is None:
            return None
        if delay > 0:
            return delay
        meta = pod["metadata"]
        self._evicted.add(meta.get("uid", ""))
        now = now_rfc3339()
        conditions = _with_condition((pod.get("status") or {}).get("conditions") or [], {
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastProbeTime": None, "lastTransitionTime": now})
        await self.kube.patch(PODS, key[0], key[1], {"status": {"conditions": conditions}},
                              subresource="status")
        await self.runtime.event(pod, "TaintManagerEviction",
                                 f"Marking for deletion Pod {key[0]}/{key[1]}",
                                 component="taint-eviction-controller")
        await self.kube.delete(PODS, key[0], key[1], uid=meta.get("uid", ""))
        log.info("Evicted pod from tainted node", pod=f"{key[0]}/{key[1]}",
                 node=(pod.get("spec") or {}).get("nodeName"))
        return None

    # --- PodGC ------------------------------------------------------------------------

    async def _collect_garbage(self) -> None:
        nodes = {n["metadata"]["name"]: n for n in self.runtime.informer(NODES).values()}
        pods_by_node: dict[str, list[dict[str, Any]]] = {}
        for pod in self.runtime.informer(PODS).values():
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                pods_by_node.setdefault(node_name, []).append(pod)
        loop_now = asyncio.get_running_loop().time()
        seen_orphans: set[Key] = set()
        for node_name, pods in pods_by_node.items():
            node = nodes.get(node_name)
            if node is not None:
                for doomed in node_lifecycle.pods_to_force_delete(node, pods):
                    await self._force_delete(dict(doomed), None)
                continue
            for pod in pods:
                key = key_of(pod)
                seen_orphans.add(key)
                first = self._orphans_seen.setdefault(key, loop_now)
                if loop_now - first >= ORPHAN_QUARANTINE_SECONDS:
                    await self._force_delete(pod, {
                        "type": "DisruptionTarget", "status": "True",
                        "reason": "DeletionByPodGC",
                        "message": "PodGC: node no longer exists",
                        "lastProbeTime": None, "lastTransitionTime": now_rfc3339()})
        self._orphans_seen = {k: v for k, v in self._orphans_seen.items() if k in seen_orphans}

    async def _force_delete(self, pod: dict[str, Any], condition: dict[str, Any] | None) -> None:
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        status: dict[str, Any] = {}
        if not is_terminal(pod):
            status["phase"] = "Failed"
        if condition is not None:
            status["conditions"] = _with_condition(
                (pod.get("status") or {}).get("conditions") or [], condition)
        try:
            if status:
                await self.kube.patch(PODS, namespace, name, {"status": status},
                                      subresource="status")
            await self.kube.delete(PODS, namespace, name, grace_seconds=0,
                                   uid=meta.get("uid", ""))
            log.info("PodGC force-deleted pod", pod=f"{namespace}/{name}",
                     node=(pod.get("spec") or {}).get("nodeName"))
        except KubeError as error:
            if error.status != 404:
                raise
