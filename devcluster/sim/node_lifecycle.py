"""Node failure handling: kube-controller-manager's node lifecycle controller, PodGC's
out-of-service cleanup, and KubeVirt virt-controller's node controller.

Kubernetes side (`pkg/controller/nodelifecycle/node_lifecycle_controller.go`,
`pkg/controller/podgc/gc_controller.go`): a node silent for longer than the monitor
grace period (50 s since v1.32) gets Ready/MemoryPressure/DiskPressure/PIDPressure
`Unknown` with reason NodeStatusUnknown and the unreachable taints (not-ready when Ready
is False). KubeVirt side (`pkg/virt-controller/watch/node/node.go`): a node whose
virt-handler heartbeat is older than 5 minutes is unresponsive; its Running/Scheduled
VMIs without an alive launcher pod are marked Failed with reason NodeUnresponsive.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devcluster.sim.vmi_status import rfc3339

Obj = Mapping[str, Any]

NODE_MONITOR_GRACE_SECONDS = 50
KUBEVIRT_HEARTBEAT_TIMEOUT = timedelta(minutes=5)
HEARTBEAT_ANNOTATION = "kubevirt.io/heartbeat"
SCHEDULABLE_LABEL = "kubevirt.io/schedulable"
NODE_NAME_LABEL = "kubevirt.io/nodeName"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
REASON_NODE_STATUS_UNKNOWN = "NodeStatusUnknown"
MESSAGE_NODE_STATUS_UNKNOWN = "Kubelet stopped posting node status."
REASON_NODE_UNRESPONSIVE = "NodeUnresponsive"
_MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ready_status(node: Obj) -> str:
    for item in (node.get("status") or {}).get("conditions") or []:
        if item.get("type") == "Ready":
            return str(item.get("status", "Unknown"))
    return "Unknown"


def node_conditions_after(
    node: Obj,
    last_heartbeat: datetime,
    now: datetime,
    grace_seconds: int = NODE_MONITOR_GRACE_SECONDS,
) -> list[dict[str, Any]]:
    """Node conditions once the node controller looks: unchanged while the kubelet posts
    within the grace period, else the monitored ones Unknown/NodeStatusUnknown."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    if now - last_heartbeat <= timedelta(seconds=grace_seconds):
        return conditions
    stamp = rfc3339(now)
    by_type = {c.get("type"): c for c in conditions}
    result: list[dict[str, Any]] = []
    for condition in conditions:
        if condition.get("type") not in _MONITORED_CONDITIONS:
            result.append(condition)
            continue
        updated = dict(condition)
        if condition.get("status") != "Unknown":
            updated["lastTransitionTime"] = stamp
        updated.update(
            {
                "status": "Unknown",
                "reason": REASON_NODE_STATUS_UNKNOWN,
                "message": MESSAGE_NODE_STATUS_UNKNOWN,
            }
        )
        result.append(updated)
    for missing in _MONITORED_CONDITIONS:
        if missing not in by_type:
            result.append(
                {
                    "type": missing,
                    "status": "Unknown",
                    "reason": REASON_NODE_STATUS_UNKNOWN,
                    "message": MESSAGE_NODE_STATUS_UNKNOWN,
                    "lastHeartbeatTime": rfc3339(last_heartbeat),
                    "lastTransitionTime": stamp,
                }
            )
    return result


def node_taints_for(node: Obj, ready_status: str, now: datetime) -> list[dict[str, Any]]:
    """The node's taints with the lifecycle taints matching `ready_status` (True/False/
    Unknown): unreachable or not-ready, each NoSchedule and NoExecute; removed when Ready."""
    keep = [
        dict(t)
        for t in (node.get("spec") or {}).get("taints") or []
        if t.get("key") not in (TAINT_UNREACHABLE, TAINT_NOT_READY)
    ]
    wanted = {"Unknown": TAINT_UNREACHABLE, "False": TAINT_NOT_READY}.get(ready_status)
    if wanted is None:
        return keep
    existing = {
        (t.get("key"), t.get("effect")): t for t in (node.get("spec") or {}).get("taints") or []
    }
    for effect in ("NoSchedule", "NoExecute"):
        previous = existing.get((wanted, effect))
        taint: dict[str, Any] = {"key": wanted, "effect": effect}
        if effect == "NoExecute":
            taint["timeAdded"] = str((previous or {}).get("timeAdded") or rfc3339(now))
        keep.append(taint)
    return keep


def _has_out_of_service_taint(node: Obj) -> bool:
    return any(
        t.get("key") == TAINT_OUT_OF_SERVICE and t.get("effect") in ("NoExecute", "NoSchedule")
        for t in (node.get("spec") or {}).get("taints") or []
    )


def pods_to_force_delete(node: Obj, pods: Sequence[Obj]) -> list[Obj]:
    """PodGC `gcTerminating`: terminating pods on a not-Ready node with the out-of-service
    taint; each is patched to phase Failed and deleted with grace period 0."""
    if _ready_status(node) == "True" or not _has_out_of_service_taint(node):
        return []
    name = (node.get("metadata") or {}).get("name")
    return [
        pod
        for pod in pods
        if (pod.get("spec") or {}).get("nodeName") == name
        and (pod.get("metadata") or {}).get("deletionTimestamp")
    ]


def pod_not_ready_conditions(pod: Obj, now: datetime) -> list[dict[str, Any]]:
    """`MarkPodsNotReady`: a pod on an unresponsive node gets Ready=False."""
    result: list[dict[str, Any]] = []
    for condition in (pod.get("status") or {}).get("conditions") or []:
        updated = dict(condition)
        if condition.get("type") == "Ready" and condition.get("status") != "False":
            updated["status"] = "False"
            updated["lastTransitionTime"] = rfc3339(now)
        result.append(updated)
    return result


# --- virt-controller's node controller --------------------------------------------------


def is_kubevirt_node_unresponsive(
    node: Obj | None, now: datetime, timeout: timedelta = KUBEVIRT_HEARTBEAT_TIMEOUT
) -> bool:
    """Deleted node: unresponsive; no heartbeat annotation: responsive; else age > timeout."""
    if node is None:
        return True
    heartbeat = ((node.get("metadata") or {}).get("annotations") or {}).get(HEARTBEAT_ANNOTATION)
    if not heartbeat:
        return False
    return now - _parse_time(str(heartbeat)) > timeout


def _pod_alive(pod: Obj) -> bool:
    """Alive: phase not Succeeded/Failed and not every container terminated (a pod that is
    merely Terminating still counts)."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    statuses = status.get("containerStatuses") or []
    return not statuses or not all("terminated" in (c.get("state") or {}) for c in statuses)


def _controlled_by(pod: Obj, vmi: Obj) -> bool:
    uid = (vmi.get("metadata") or {}).get("uid")
    return any(
        ref.get("controller") and ref.get("uid") == uid
        for ref in (pod.get("metadata") or {}).get("ownerReferences") or []
    )


@dataclass(frozen=True)
class NodeUnresponsiveActions:
    """What virt-controller does for an unresponsive node."""

    mark_unschedulable: bool
    vmis_to_fail: list[Obj]
    node_event: tuple[str, str, str] | None


def unresponsive_node_actions(
    node: Obj | None,
    node_name: str,
    vmis: Sequence[Obj],
    pods: Sequence[Obj],
    now: datetime,
    *,
    timeout: timedelta = KUBEVIRT_HEARTBEAT_TIMEOUT,
) -> NodeUnresponsiveActions:
    """virt-controller's decision for one node: relabel it, and which VMIs to fail."""
    if not is_kubevirt_node_unresponsive(node, now, timeout):
        return NodeUnresponsiveActions(False, [], None)
    labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    mark = node is not None and labels.get(SCHEDULABLE_LABEL) == "true"
    event = (
        (
            "Normal",
            REASON_NODE_UNRESPONSIVE,
            "virt-handler is not responsive, marking node as unresponsive",
        )
        if mark
        else None
    )
    candidates = [
        vmi
        for vmi in vmis
        if ((vmi.get("metadata") or {}).get("labels") or {}).get(NODE_NAME_LABEL) == node_name
        and (vmi.get("status") or {}).get("phase") in ("Running", "Scheduled")
    ]
    failing = [
        vmi
        for vmi in candidates
        if not any(
            _controlled_by(pod, vmi)
            and (pod.get("spec") or {}).get("nodeName") == node_name
            and _pod_alive(pod)
            for pod in pods
        )
    ]
    return NodeUnresponsiveActions(mark, failing, event)


def failed_vmi_status_patch() -> list[dict[str, Any]]:
    """The JSON patch virt-controller applies to each such VMI's status."""
    return [
        {"op": "replace", "path": "/status/phase", "value": "Failed"},
        {"op": "add", "path": "/status/reason", "value": REASON_NODE_UNRESPONSIVE},
    ]


def vmi_unresponsive_event(node_name: str) -> tuple[str, str, str]:
    return (
        "Normal",
        REASON_NODE_UNRESPONSIVE,
        f"virt-handler on node {node_name} is not responsive, marking VMI as failed",
    )


def heartbeat_patch(now: datetime, *, schedulable: bool = True) -> dict[str, Any]:
    """virt-handler's periodic strategic-merge patch of its Node."""
    return {
        "metadata": {
            "labels": {SCHEDULABLE_LABEL: "true" if schedulable else "false"},
            "annotations": {HEARTBEAT_ANNOTATION: rfc3339(now)},
        }
    }


def with_taints(node: Obj, taints: list[dict[str, Any]]) -> dict[str, Any]:
    result = copy.deepcopy(dict(node))
    result.setdefault("spec", {})["taints"] = taints
    return result
