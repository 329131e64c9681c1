"""Pure builders of the ComputeCluster controller: VM placement from the host selector, and
the cluster's capacity/allocation summary from Nodes and Pods."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.computecluster.models import ComputeClusterSpec, LabelSelector
from kubekit.quantity import (
    QuantityError,
    format_bytes,
    format_millis,
    to_bytes,
    to_millis,
)

_FINAL_POD_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class ResolvedCluster:
    """A ComputeCluster as a VM's builder sees it."""

    name: str
    spec: ComputeClusterSpec


def placement_for(spec: ComputeClusterSpec) -> tuple[dict[str, str], dict[str, Any] | None]:
    """(nodeSelector, affinity) that keep a VM on the cluster's hosts.

    matchLabels become the nodeSelector; matchExpressions become one required node-affinity
    term (LabelSelector operators are a subset of NodeSelector operators, so they carry over).
    Both are live-updatable on a running KubeVirt VM.
    """
    selector = spec.host_selector
    node_selector = dict(sorted(selector.match_labels.items()))
    if not selector.match_expressions:
        return node_selector, None
    expressions = []
    for requirement in selector.match_expressions:
        expression: dict[str, Any] = {"key": requirement.key, "operator": requirement.operator}
        if requirement.values:
            expression["values"] = list(requirement.values)
        expressions.append(expression)
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]
            }
        }
    }
    return node_selector, affinity


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether a metav1.LabelSelector selects an object with these labels."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        if requirement.operator == "Exists" and not present:
            return False
        if requirement.operator == "DoesNotExist" and present:
            return False
        if requirement.operator == "In" and labels.get(requirement.key) not in requirement.values:
            return False
        if (
            requirement.operator == "NotIn"
            and present
            and (labels[requirement.key] in requirement.values)
        ):
            return False
    return True


def cluster_nodes(
    spec: ComputeClusterSpec, nodes: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The Nodes the cluster's hostSelector picks, sorted by name."""
    picked = [
        node
        for node in nodes
        if selector_matches(spec.host_selector, node.get("metadata", {}).get("labels") or {})
    ]
    return sorted(picked, key=lambda node: str(node["metadata"]["name"]))


def node_ready(node: Mapping[str, Any]) -> bool:
    for condition in node.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def quantity_or_zero(value: Any, convert: Any) -> int:
    """A Kubernetes quantity converted (to_millis, to_bytes), 0 when absent or malformed: a
    status field the planner cannot read counts as nothing rather than failing the pass."""
    if value is None:
        return 0
    try:
        result: int = convert(str(value))
    except (QuantityError, ValueError):
        return 0
    return result


def pod_requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(CPU millis, memory bytes) the scheduler reserves for a pod.

    As kube-scheduler computes it: the larger of the containers plus sidecars and the peak of
    the init sequence, plus the pod overhead.
    """
    spec = pod.get("spec", {})

    def total(containers: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        cpu = memory = 0
        for container in containers:
            requests = (container.get("resources") or {}).get("requests") or {}
            cpu += quantity_or_zero(requests.get("cpu"), to_millis)
            memory += quantity_or_zero(requests.get("memory"), to_bytes)
        return cpu, memory

    cpu, memory = total(spec.get("containers") or [])
    # Sidecars (init containers with restartPolicy Always) run alongside the containers and
    # alongside every init container started after them.
    sidecar_cpu = sidecar_memory = 0
    init_peak_cpu = init_peak_memory = 0
    for init_container in spec.get("initContainers") or []:
        init_cpu, init_memory = total([init_container])
        if init_container.get("restartPolicy") == "Always":
            sidecar_cpu += init_cpu
            sidecar_memory += init_memory
            init_cpu, init_memory = 0, 0
        init_peak_cpu = max(init_peak_cpu, init_cpu + sidecar_cpu)
        init_peak_memory = max(init_peak_memory, init_memory + sidecar_memory)
    cpu = max(cpu + sidecar_cpu, init_peak_cpu)
    memory = max(memory + sidecar_memory, init_peak_memory)
    overhead = spec.get("overhead") or {}
    cpu += quantity_or_zero(overhead.get("cpu"), to_millis)
    memory += quantity_or_zero(overhead.get("memory"), to_bytes)
    return cpu, memory


def _percent(part: int, whole: int) -> int:
    return (part * 100) // whole if whole else 0


def cluster_status(
    nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Capacity and allocation of a cluster's hosts (camelCase status fields, no conditions).

    `nodes` are the cluster's Nodes (see `cluster_nodes`); `pods` may be all pods: only those
    bound to one of the nodes and not finished count. Capacity is the nodes' allocatable.
    """
    node_list = sorted(nodes, key=lambda node: str(node["metadata"]["name"]))
    allocated: dict[str, list[int]] = {node["metadata"]["name"]: [0, 0] for node in node_list}
    for pod in pods:
        node_name = pod.get("spec", {}).get("nodeName")
        if node_name not in allocated or pod.get("status", {}).get("phase") in _FINAL_POD_PHASES:
            continue
        cpu, memory = pod_requests(pod)
        allocated[node_name][0] += cpu
        allocated[node_name][1] += memory

    hosts = []
    capacity_cpu = capacity_memory = allocated_cpu = allocated_memory = 0
    ready_hosts = 0
    for node in node_list:
        name = node["metadata"]["name"]
        allocatable = node.get("status", {}).get("allocatable") or {}
        node_cpu = quantity_or_zero(allocatable.get("cpu"), to_millis)
        node_memory = quantity_or_zero(allocatable.get("memory"), to_bytes)
        ready = node_ready(node)
        ready_hosts += ready
        capacity_cpu += node_cpu
        capacity_memory += node_memory
        allocated_cpu += allocated[name][0]
        allocated_memory += allocated[name][1]
        hosts.append(
            {
                "name": name,
                "ready": ready,
                "schedulable": not node.get("spec", {}).get("unschedulable", False),
                "capacity": {"cpu": format_millis(node_cpu), "memory": format_bytes(node_memory)},
                "allocated": {
                    "cpu": format_millis(allocated[name][0]),
                    "memory": format_bytes(allocated[name][1]),
                },
            }
        )
    return {
        "hosts": hosts,
        "hostCount": len(hosts),
        "readyHostCount": ready_hosts,
        "capacity": {"cpu": format_millis(capacity_cpu), "memory": format_bytes(capacity_memory)},
        "allocated": {
            "cpu": format_millis(allocated_cpu),
            "memory": format_bytes(allocated_memory),
        },
        "allocatedPercent": {
            "cpu": _percent(allocated_cpu, capacity_cpu),
            "memory": _percent(allocated_memory, capacity_memory),
        },
    }


def cluster_status_with_conditions(
    spec: ComputeClusterSpec,
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
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


_LABEL_NAME_MAX = 63


def cluster_host_label(cluster_name: str) -> str:
    """The label `vdcos.io/cluster.<name>: ""` every host of the cluster carries.

    nmstate's nodeSelector matches labels by equality only, so a cluster's hostSelector
    (which may use expressions) is turned into this one label. A label's name part is at
    most 63 characters: a long cluster name is cut and made unique with a hash.
    """
    name = f"cluster.{cluster_name}"
    if len(name) > _LABEL_NAME_MAX:
        digest = hashlib.sha256(cluster_name.encode()).hexdigest()[:8]
        name = f"{name[: _LABEL_NAME_MAX - 9].rstrip('-.')}-{digest}"
    return f"vdcos.io/{name}"


def host_label_changes(
    cluster_name: str, hosts: Iterable[str], nodes: Iterable[Mapping[str, Any]]
) -> dict[str, bool]:
    """{node: True (add the cluster label) | False (remove it)} for nodes that differ."""
    label = cluster_host_label(cluster_name)
    members = set(hosts)
    changes: dict[str, bool] = {}
    for node in nodes:
        name = str(node["metadata"]["name"])
        labelled = label in (node["metadata"].get("labels") or {})
        if (name in members) != labelled:
            changes[name] = name in members
    return changes
