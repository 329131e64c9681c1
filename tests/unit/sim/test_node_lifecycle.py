"""Node failure: node controller conditions/taints, PodGC and KubeVirt's node controller."""

from datetime import UTC, datetime, timedelta
from typing import Any

from devcluster.sim.node_lifecycle import (
    failed_vmi_status_patch,
    heartbeat_patch,
    is_kubevirt_node_unresponsive,
    node_conditions_after,
    node_taints_for,
    pods_to_force_delete,
    unresponsive_node_actions,
    vmi_unresponsive_event,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def node(
    *,
    ready: str = "True",
    taints: list[dict[str, Any]] | None = None,
    heartbeat: datetime | None = None,
) -> dict[str, Any]:
    annotations = (
        {"kubevirt.io/heartbeat": heartbeat.strftime("%Y-%m-%dT%H:%M:%SZ")} if heartbeat else {}
    )
    return {
        "metadata": {
            "name": "node-1",
            "labels": {"kubevirt.io/schedulable": "true"},
            "annotations": annotations,
        },
        "spec": {"taints": taints or []},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "KubeletReady",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                },
                {
                    "type": "MemoryPressure",
                    "status": "False",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                },
                {"type": "NetworkUnavailable", "status": "False"},
            ]
        },
    }


def test_conditions_unchanged_within_grace_period() -> None:
    assert (
        node_conditions_after(node(), NOW - timedelta(seconds=49), NOW)
        == node()["status"]["conditions"]
    )


def test_conditions_unknown_after_grace_period() -> None:
    result = {c["type"]: c for c in node_conditions_after(node(), NOW - timedelta(seconds=51), NOW)}
    assert result["Ready"]["status"] == "Unknown"
    assert result["Ready"]["reason"] == "NodeStatusUnknown"
    assert result["Ready"]["message"] == "Kubelet stopped posting node status."
    assert result["Ready"]["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert result["MemoryPressure"]["status"] == "Unknown"
    assert result["DiskPressure"]["status"] == "Unknown"
    assert result["NetworkUnavailable"]["status"] == "False"


def test_unreachable_taints_for_unknown_node() -> None:
    taints = node_taints_for(node(), "Unknown", NOW)
    assert taints == [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {
            "key": "node.kubernetes.io/unreachable",
            "effect": "NoExecute",
            "timeAdded": "2025-01-02T03:04:05Z",
        },
    ]


def test_not_ready_taints_replace_unreachable_and_clear_when_ready() -> None:
    tainted = node(
        taints=[*node_taints_for(node(), "Unknown", NOW), {"key": "own", "effect": "NoSchedule"}]
    )
    assert {t["key"] for t in node_taints_for(tainted, "False", NOW)} == {
        "own",
        "node.kubernetes.io/not-ready",
    }
    assert node_taints_for(tainted, "True", NOW) == [{"key": "own", "effect": "NoSchedule"}]


def terminating_pod(
    name: str = "virt-launcher-web1-abcde", node_name: str = "node-1"
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "deletionTimestamp": "2025-01-02T03:00:00Z",
            "ownerReferences": [{"controller": True, "uid": "vmi-uid"}],
        },
        "spec": {"nodeName": node_name},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "compute", "state": {"running": {}}}],
        },
    }


def test_out_of_service_taint_releases_terminating_pods() -> None:
    out_of_service = [
        {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}
    ]
    pods = [terminating_pod(), terminating_pod("other", "node-2")]
    assert [
        p["metadata"]["name"]
        for p in pods_to_force_delete(node(ready="Unknown", taints=out_of_service), pods)
    ] == ["virt-launcher-web1-abcde"]
    assert pods_to_force_delete(node(ready="Unknown"), pods) == []
    assert pods_to_force_delete(node(ready="True", taints=out_of_service), pods) == []


def test_heartbeat_timeout() -> None:
    assert not is_kubevirt_node_unresponsive(node(heartbeat=NOW - timedelta(minutes=4)), NOW)
    assert is_kubevirt_node_unresponsive(node(heartbeat=NOW - timedelta(minutes=6)), NOW)
    assert not is_kubevirt_node_unresponsive(node(), NOW)
    assert is_kubevirt_node_unresponsive(None, NOW)
    assert not is_kubevirt_node_unresponsive(
        node(heartbeat=NOW - timedelta(minutes=6)), NOW, timeout=timedelta(minutes=10)
    )


def vmi(phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web1",
            "uid": "vmi-uid",
            "labels": {"kubevirt.io/nodeName": "node-1"},
        },
        "status": {"phase": phase},
    }


def test_vmi_with_terminating_pod_is_not_failed() -> None:
    stale = node(heartbeat=NOW - timedelta(minutes=6))
    actions = unresponsive_node_actions(stale, "node-1", [vmi()], [terminating_pod()], NOW)
    assert actions.mark_unschedulable
    assert actions.node_event == (
        "Normal",
        "NodeUnresponsive",
        "virt-handler is not responsive, marking node as unresponsive",
    )
    assert actions.vmis_to_fail == []


def test_vmi_without_alive_pod_is_failed() -> None:
    stale = node(heartbeat=NOW - timedelta(minutes=6))
    dead = terminating_pod()
    dead["status"]["phase"] = "Failed"
    actions = unresponsive_node_actions(stale, "node-1", [vmi(), vmi("Succeeded")], [dead], NOW)
    assert [v["metadata"]["name"] for v in actions.vmis_to_fail] == ["web1"]
    assert failed_vmi_status_patch() == [
        {"op": "replace", "path": "/status/phase", "value": "Failed"},
        {"op": "add", "path": "/status/reason", "value": "NodeUnresponsive"},
    ]
    assert (
        vmi_unresponsive_event("node-1")[2]
        == "virt-handler on node node-1 is not responsive, marking VMI as failed"
    )


def test_responsive_node_changes_nothing() -> None:
    fresh = node(heartbeat=NOW - timedelta(seconds=30))
    actions = unresponsive_node_actions(fresh, "node-1", [vmi()], [], NOW)
    assert (actions.mark_unschedulable, actions.vmis_to_fail) == (False, [])


def test_heartbeat_patch() -> None:
    assert heartbeat_patch(NOW) == {
        "metadata": {
            "labels": {"kubevirt.io/schedulable": "true"},
            "annotations": {"kubevirt.io/heartbeat": "2025-01-02T03:04:05Z"},
        }
    }
