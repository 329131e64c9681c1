"""The I/O loop of kube-scheduler: pending pods in, `pods/<name>/binding` out.

Decisions come from `scheduling.schedule` (the default profile's filters and scores). This
module feeds it: one pod at a time (decisions are sequential, as in kube-scheduler's
scheduling cycle), with the pods already placed - including those whose binding is still
in flight ("assumed") - and binds asynchronously. An unschedulable pod gets
PodScheduled=False/Unschedulable with the FitError message and a FailedScheduling Event,
and is retried when nodes, pods or claims change.

To keep a decision cheap with thousands of pods, the pods placed on a node are summarised
as one pod carrying their summed requests (the node's pod count is adjusted to match);
pods only appear individually where inter-pod (anti-)affinity needs their labels.

Volumes (the VolumeBinding plugin, simplified): a claim that does not exist makes the pod
unschedulable; a bound claim's PersistentVolume node affinity restricts the nodes; an
unbound WaitForFirstConsumer claim gets `volume.kubernetes.io/selected-node` once the node
is chosen, so the provisioner can create its volume there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.quantity import QuantityError, to_bytes, to_millis
from kubekit.resources import NAMESPACES, NODES, PODS, PVCS, PVS, STORAGE_CLASSES
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from .runtime import SIM_RETRY_DELAYS, SimRuntime, now_rfc3339
from .scheduling import is_terminal, pod_requests, schedule

log = structlog.get_logger("devcluster.sim.scheduler")

Obj = Mapping[str, Any]

SCHEDULER_NAME = "default-scheduler"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BINDINGS_IN_FLIGHT = 16
_AGGREGATE_NAMESPACE = "\x00placed-pods"  # a namespace no affinity term can name


@dataclass
class Placed:
    """A pod the scheduler counts on a node: bound, or assumed while its binding runs."""

    node: str
    requests: dict[str, int]
    pod: dict[str, Any]
    has_affinity: bool


def has_pod_affinity(pod: Obj) -> bool:
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    return bool(affinity.get("podAffinity") or affinity.get("podAntiAffinity"))


def wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and not pod["metadata"].get("deletionTimestamp")
            and not is_terminal(pod) and not spec.get("schedulingGates")
            and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME)


def _format_request(resource: str, amount: int) -> int | str:
    """A quantity `schedule` parses cheaply: a plain integer wherever that is exact."""
    if resource != "cpu":
        return amount
    return amount // 1000 if amount % 1000 == 0 else f"{amount}m"


_ALLOCATABLE_CACHE: dict[tuple[str, str], dict[str, int | str]] = {}


def numeric_allocatable(node: Obj) -> dict[str, int | str]:
    """The node's allocatable with quantities as integers where exact (cached per node
    version): `schedule` parses these on every decision, and integers parse fastest."""
    meta = node.get("metadata") or {}
    cache_key = (str(meta.get("name", "")), str(meta.get("resourceVersion", "")))
    cached = _ALLOCATABLE_CACHE.get(cache_key)
    if cached is not None:
        return cached
    result: dict[str, int | str] = {}
    for resource, quantity in ((node.get("status") or {}).get("allocatable") or {}).items():
        try:
            if resource == "cpu":
                result[resource] = _format_request("cpu", to_millis(quantity))
            else:
                result[resource] = to_bytes(quantity)
        except QuantityError:
            result[resource] = quantity
    if len(_ALLOCATABLE_CACHE) > 4096:
        _ALLOCATABLE_CACHE.clear()
    _ALLOCATABLE_CACHE[cache_key] = result
    return result


class Placements:
    """The pods counted on each node, with running per-node totals of their requests."""

    def __init__(self) -> None:
        self.entries: dict[Key, Placed] = {}
        self.totals: dict[str, dict[str, int]] = {}
        self.counts: dict[str, int] = {}
        self.with_affinity: set[Key] = set()

    def __contains__(self, key: Key) -> bool:
        return key in self.entries

    def get(self, key: Key) -> Placed | None:
        return self.entries.get(key)

    def put(self, key: Key, entry: Placed) -> None:
        self.drop(key)
        self.entries[key] = entry
        total = self.totals.setdefault(entry.node, {})
        for resource, amount in entry.requests.items():
            total[resource] = total.get(resource, 0) + amount
        self.counts[entry.node] = self.counts.get(entry.node, 0) + 1
        if entry.has_affinity:
            self.with_affinity.add(key)

    def drop(self, key: Key) -> Placed | None:
        entry = self.entries.pop(key, None)
        if entry is None:
            return None
        total = self.totals.get(entry.node, {})
        for resource, amount in entry.requests.items():
            total[resource] = total.get(resource, 0) - amount
        self.counts[entry.node] = self.counts.get(entry.node, 0) - 1
        self.with_affinity.discard(key)
        return entry


def _label_stub(entry: Placed) -> Obj:
    """A placed pod reduced to what affinity looks at (its requests are in the summary)."""
    spec = {k: v for k, v in (entry.pod.get("spec") or {}).items()
            if k not in ("containers", "initContainers", "overhead")}
    spec["nodeName"] = entry.node
    return {"metadata": entry.pod.get("metadata") or {}, "spec": spec}


def summarised_inputs(
    pod: Obj, nodes: Sequence[Obj], placements: Placements
) -> tuple[list[Obj], list[Obj]]:
    """The nodes and placed pods to give `schedule`: per node one summary pod with the
    summed requests, and individual pods only where inter-pod affinity needs their labels.
    Node pod capacity is adjusted so that the pod count comes out as the real one, and
    allocatable lists only the resources the decision looks at (parsing is not free)."""
    include_all = has_pod_affinity(pod)
    individual_keys = placements.entries.keys() if include_all else placements.with_affinity
    pods: list[Obj] = [_label_stub(placements.entries[k]) for k in individual_keys]
    individual_counts: dict[str, int] = {}
    for key in individual_keys:
        node_name = placements.entries[key].node
        individual_counts[node_name] = individual_counts.get(node_name, 0) + 1
    relevant = {"cpu", "memory", "pods", *pod_requests(pod)}
    adjusted_nodes: list[Obj] = []
    for node in nodes:
        name = node["metadata"]["name"]
        status = dict(node.get("status") or {})
        allocatable: dict[str, int | str] = {
            r: q for r, q in numeric_allocatable(node).items() if r in relevant}
        summed = {r: a for r, a in placements.totals.get(name, {}).items() if a and r in relevant}
        if summed:
            pods.append({
                "metadata": {"name": f"placed-on-{name}", "namespace": _AGGREGATE_NAMESPACE,
                             "uid": f"\x00placed-on-{name}"},
                "spec": {"nodeName": name, "containers": [{"name": "placed", "resources": {
                    "requests": {r: _format_request(r, a) for r, a in summed.items()}}}]},
            })
        # `schedule` counts the summary (if any) and the individual pods on the node.
        counted = individual_counts.get(name, 0) + (1 if summed else 0)
        real = placements.counts.get(name, 0)
        pods_capacity = int(str(allocatable.get("pods", "110")))
        allocatable["pods"] = str(pods_capacity - real + counted)
        status["allocatable"] = allocatable
        adjusted_nodes.append({**node, "status": status})
    return adjusted_nodes, pods


def with_volume_node_affinity(pod: Obj, volumes: Sequence[Obj]) -> Obj:
    """The pod as if its required node affinity also demanded its volumes' node affinity."""
    volume_terms = [list(((pv.get("spec") or {}).get("nodeAffinity") or {}).get(
        "required", {}).get("nodeSelectorTerms") or []) for pv in volumes]
    volume_terms = [terms for terms in volume_terms if terms]
    if not volume_terms:
        return pod
    spec = dict(pod.get("spec") or {})
    affinity = dict(spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms: list[dict[str, Any]] = [dict(t) for t in required.get("nodeSelectorTerms") or []]
    if not terms:
        terms = [{}]
    for alternatives in volume_terms:
        terms = [{"matchExpressions": [*(t.get("matchExpressions") or []),
                                       *(v.get("matchExpressions") or [])],
                  "matchFields": [*(t.get("matchFields") or []),
                                  *(v.get("matchFields") or [])]}
                 for t in terms for v in alternatives]
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
    affinity["nodeAffinity"] = node_affinity
    spec["affinity"] = affinity
    return {**pod, "spec": spec}


def prefilter_message(node_count: int, reason: str) -> str:
    """A FitError raised by a PreFilter plugin (e.g. VolumeBinding for a missing claim)."""
    return (f"0/{node_count} nodes are available: {reason}. preemption: 0/{node_count} nodes "
            f"are available: {node_count} Preemption is not helpful for scheduling.")


class Scheduler:
    name = "scheduler"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self._placed = Placements()
        self._unschedulable: set[Key] = set()
        self._queue = WorkQueue("scheduler", self._schedule_one, workers=1,
                                retry_delays=SIM_RETRY_DELAYS)
        self._bindings = asyncio.Semaphore(BINDINGS_IN_FLIGHT)
        self._binding_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for resource in (NODES, PODS, PVCS, PVS, STORAGE_CLASSES, NAMESPACES):
            self.runtime.informer(resource)
        await self.runtime.wait_synced(NODES, PODS, PVCS, PVS, STORAGE_CLASSES, NAMESPACES)
        for pod in self.runtime.informer(PODS).values():
            self._on_pod("ADDED", pod)
        self.runtime.informer(PODS).add_listener(self._on_pod)
        self.runtime.informer(NODES).add_listener(self._on_cluster_change)
        self.runtime.informer(PVCS).add_listener(self._on_cluster_change)
        self.runtime.informer(PVS).add_listener(self._on_cluster_change)
        self._queue.start()

    async def stop(self) -> None:
        await self._queue.stop()
        for task in list(self._binding_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- observation ------------------------------------------------------------------

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        key = key_of(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if kind == "DELETED" or (node and is_terminal(pod)):
            freed = self._placed.drop(key)
            self._unschedulable.discard(key)
            if freed is not None:
                self._retry_unschedulable()
            return
        if node:
            entry = self._placed.get(key)
            if entry is None or entry.node != node or entry.pod.get("metadata", {}).get(
                    "uid") != pod["metadata"].get("uid"):
                self._placed.put(key, Placed(node, pod_requests(pod), pod,
                                             has_pod_affinity(pod)))
            else:
                entry.pod = pod
            self._unschedulable.discard(key)
            return
        if wants_scheduling(pod) and key not in self._unschedulable:
            self._queue.enqueue(key)

    def _on_cluster_change(self, kind: str, obj: dict[str, Any]) -> None:
        self._retry_unschedulable()

    def _retry_unschedulable(self) -> None:
        for key in self._unschedulable:
            self._queue.enqueue(key)
        self._unschedulable.clear()

    # --- the scheduling cycle ---------------------------------------------------------

    async def _schedule_one(self, key: Key) -> float | None:
        pod = self.runtime.informer(PODS).get(*key)
        if pod is None or not wants_scheduling(pod) or key in self._placed:
            return None
        nodes = self.runtime.informer(NODES).values()
        claims, failure = self._claims_of(pod)
        if failure:
            await self._report_unschedulable(key, pod, prefilter_message(len(nodes), failure))
            return None
        candidate = with_volume_node_affinity(pod, [pv for _, pv in claims if pv is not None])
        node_inputs, placed_pods = summarised_inputs(candidate, nodes, self._placed)
        namespace_labels = {
            ns["metadata"]["name"]: ns["metadata"].get("labels") or {}
            for ns in self.runtime.informer(NAMESPACES).values()
        } if has_pod_affinity(pod) else None
        result = schedule(candidate, node_inputs, placed_pods, namespace_labels=namespace_labels)
        if result.node_name is None:
            await self._report_unschedulable(key, pod, result.message)
            return None
        self._placed.put(key, Placed(result.node_name, pod_requests(pod), pod,
                                     has_pod_affinity(pod)))
        await self._bindings.acquire()
        task = asyncio.get_running_loop().create_task(
            self._bind(key, pod, result.node_name, [c for c, pv in claims if pv is None]))
        self._binding_tasks.add(task)
        task.add_done_callback(self._binding_tasks.discard)
        return None

    def _claims_of(self, pod: Obj) -> tuple[list[tuple[Obj, Obj | None]], str]:
        """The pod's claims with their bound volume (None when not bound yet), or why the
        pod cannot be scheduled yet."""
        namespace = pod["metadata"].get("namespace", "default")
        result: list[tuple[Obj, Obj | None]] = []
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim_name:
                continue
            claim = self.runtime.informer(PVCS).get(namespace, claim_name)
            if claim is None:
                return [], f'persistentvolumeclaim "{claim_name}" not found'
            if claim["metadata"].get("deletionTimestamp"):
                return [], f'persistentvolumeclaim "{claim_name}" is being deleted'
            volume_name = (claim.get("spec") or {}).get("volumeName")
            if volume_name:
                result.append((claim, self.runtime.informer(PVS).get("", volume_name)))
                continue
            if self._binding_mode(claim) != "WaitForFirstConsumer":
                return [], "pod has unbound immediate PersistentVolumeClaims"
            result.append((claim, None))
        return result, ""

    def _binding_mode(self, claim: Obj) -> str:
        classes = self.runtime.informer(STORAGE_CLASSES)
        name = (claim.get("spec") or {}).get("storageClassName")
        storage_class = classes.get("", name) if name else next(
            (c for c in classes.values()
             if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"),
            None)
        return str((storage_class or {}).get("volumeBindingMode", "Immediate"))

    async def _bind(self, key: Key, pod: dict[str, Any], node: str,
                    unbound_claims: list[Obj]) -> None:
        try:
            for claim in unbound_claims:
                annotations = claim["metadata"].get("annotations") or {}
                if annotations.get(SELECTED_NODE_ANNOTATION) != node:
                    await self.kube.patch(PVCS, key[0], claim["metadata"]["name"], {
                        "metadata": {"annotations": {SELECTED_NODE_ANNOTATION: node}}})
            await self.kube.create(PODS, {
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": key[1], "namespace": key[0],
                             "uid": pod["metadata"].get("uid")},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }, namespace=key[0], subresource="binding", name=key[1])
            await self.runtime.event(
                pod, "Scheduled", f"Successfully assigned {key[0]}/{key[1]} to {node}",
                component=SCHEDULER_NAME)
        except (KubeError, OSError) as error:
            entry = self._placed.get(key)
            if entry is not None and entry.pod is pod:
                self._placed.drop(key)  # forget the assumption; the watch says what happened
            if not (isinstance(error, KubeError) and error.status in (404, 409)):
                log.warning("Binding failed, retrying", pod=f"{key[0]}/{key[1]}",
                            error=str(error))
                self._queue.enqueue(key, 1.0)
            else:
                self._queue.enqueue(key)
        finally:
            self._bindings.release()

    async def _report_unschedulable(self, key: Key, pod: dict[str, Any], message: str) -> None:
        self._unschedulable.add(key)
        conditions = (pod.get("status") or {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if current is not None and current.get("status") == "False" and current.get(
                "message") == message:
            return  # said already
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": message, "lastProbeTime": None,
                     "lastTransitionTime": now_rfc3339()}
        try:
            await self.kube.patch(PODS, key[0], key[1], {"status": {"conditions": [
                *(c for c in conditions if c.get("type") != "PodScheduled"), condition]}},
                subresource="status")
        except KubeError as error:
            if error.status != 404:
                raise
            return
        await self.runtime.event(pod, "FailedScheduling", message, kind="Warning",
                                 component=SCHEDULER_NAME)
        log.info("Pod unschedulable", pod=f"{key[0]}/{key[1]}", reason=message)
