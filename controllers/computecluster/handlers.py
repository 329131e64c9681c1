"""kopf handlers of the ComputeCluster controller: status from the cluster's hosts and pods.

The hosts are the Nodes its hostSelector picks; capacity is their allocatable CPU and memory,
allocation what the pods bound to them request. Node and Pod changes come in bursts (every
heartbeat, every VM start), so they are gathered for a moment into one status write, and
nothing is written when the figures did not change. VM placement is read from the same
cluster spec by the VirtualMachine controller (`placement_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import kopf
import pydantic

from controllers.common.apply import patch_status
from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.common.kube import COMPUTE_CLUSTERS, KubeClient
from controllers.common.workqueue import WorkQueue
from controllers.computecluster.builders import cluster_nodes, cluster_status
from controllers.computecluster.models import ComputeClusterSpec

VDC = ("vdcos.io", "v1alpha1")
#: Host and pod changes are gathered for this long into one status write.
ALLOCATION_COALESCE_SECONDS: Final = 2.0


@kopf.index(*VDC, "computeclusters")
async def compute_cluster_bodies(name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    metadata = body.get("metadata", {})
    return {
        name: {
            "metadata": {"name": name, "generation": metadata.get("generation")},
            "spec": dict(body.get("spec") or {}),
            "status": dict(body.get("status") or {}),
        }
    }


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """What allocation needs of a pod: its node, phase and resource requests."""
    spec = body.get("spec") or {}

    def containers(entries: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "resources": {
                    "requests": dict((entry.get("resources") or {}).get("requests") or {})
                },
                **({"restartPolicy": entry["restartPolicy"]} if "restartPolicy" in entry else {}),
            }
            for entry in entries
        ]

    return {
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": containers(spec.get("containers") or []),
            "initContainers": containers(spec.get("initContainers") or []),
            "overhead": dict(spec.get("overhead") or {}),
        },
        "status": {"phase": (body.get("status") or {}).get("phase")},
    }


@kopf.index("", "v1", "pods")
async def pods_by_node(body: kopf.Body, **_: Any) -> dict[str, Any]:
    node = (body.get("spec") or {}).get("nodeName")
    if not node:
        return {}
    return {str(node): slim_pod(body)}


def cluster_status_with_conditions(
    spec: ComputeClusterSpec,
    nodes: list[Mapping[str, Any]],
    pods: list[Mapping[str, Any]],
    previous: list[Condition],
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    """The whole status: hosts, capacity, allocation, Ready and observedGeneration."""
    hosts = cluster_nodes(spec, nodes)
    status = cluster_status(hosts, pods)
    if not hosts:
        conditions = mark_false(
            previous,
            "Ready",
            "NoHosts",
            "spec.hostSelector selects no Node",
            observed_generation=generation,
            now=now,
        )
    elif status["readyHostCount"] == 0:
        conditions = mark_false(
            previous,
            "Ready",
            "NoReadyHosts",
            f"none of the {len(hosts)} hosts is Ready",
            observed_generation=generation,
            now=now,
        )
    else:
        conditions = mark_true(
            previous,
            "Ready",
            "HostsReady",
            f"{status['readyHostCount']} of {status['hostCount']} hosts Ready",
            observed_generation=generation,
            now=now,
        )
    return {**status, "conditions": conditions, "observedGeneration": generation}


@dataclass
class ComputeClusterController:
    kube: KubeClient
    indices: Mapping[str, Any]
    queue: WorkQueue[str] = field(init=False)

    def __post_init__(self) -> None:
        self.queue = WorkQueue("computeclusters", self.reconcile, workers=2)

    async def reconcile(self, name: str) -> None:
        store = self.indices["compute_cluster_bodies"].get(name)
        if not store:
            return
        cluster = next(iter(store))
        generation = int(cluster["metadata"].get("generation") or 1)
        previous: Mapping[str, Any] = cluster.get("status") or {}
        now = datetime.now(UTC)
        conditions: list[Condition] = list(previous.get("conditions") or [])
        try:
            spec = ComputeClusterSpec.model_validate(cluster["spec"])
        except pydantic.ValidationError as error:
            message = "; ".join(
                f"spec.{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
                for item in error.errors()
            )
            conditions = mark_false(
                conditions, "Ready", "InvalidSpec", message, observed_generation=generation, now=now
            )
            await patch_status(
                self.kube,
                COMPUTE_CLUSTERS,
                None,
                name,
                previous,
                {"conditions": conditions, "observedGeneration": generation},
            )
            return
        nodes = [next(iter(s)) for s in self.indices["node_index"].values() if s]
        host_names = {node["metadata"]["name"] for node in cluster_nodes(spec, nodes)}
        pods: list[Mapping[str, Any]] = []
        for host in host_names:
            pods.extend(self.indices["pods_by_node"].get(host, ()))
        status = cluster_status_with_conditions(spec, nodes, pods, conditions, generation, now)
        await patch_status(self.kube, COMPUTE_CLUSTERS, None, name, previous, status)


CONTROLLER: ComputeClusterController | None = None


def start_controller(kube: KubeClient, indices: Mapping[str, Any]) -> ComputeClusterController:
    global CONTROLLER
    CONTROLLER = ComputeClusterController(kube, indices)
    CONTROLLER.queue.start()
    return CONTROLLER


async def stop_controller() -> None:
    global CONTROLLER
    if CONTROLLER is not None:
        await CONTROLLER.queue.stop()
        CONTROLLER = None


def _enqueue_every_cluster(delay: float) -> None:
    if CONTROLLER is None:
        return
    for name in list(CONTROLLER.indices["compute_cluster_bodies"].keys()):
        CONTROLLER.queue.enqueue(name, delay)


@kopf.on.event(*VDC, "computeclusters")
async def compute_cluster_changed(name: str, **_: Any) -> None:
    if CONTROLLER is not None:
        CONTROLLER.queue.enqueue(name)


@kopf.on.event("", "v1", "nodes")
async def node_changed_for_clusters(**_: Any) -> None:
    _enqueue_every_cluster(ALLOCATION_COALESCE_SECONDS)


@kopf.on.event("", "v1", "pods")
async def pod_changed_for_clusters(**_: Any) -> None:
    _enqueue_every_cluster(ALLOCATION_COALESCE_SECONDS)
