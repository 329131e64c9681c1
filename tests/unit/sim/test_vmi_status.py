"""VMI status transitions, conditions and shapes (validated against KubeVirt's schema)."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from devcluster.sim.vmi_status import (
    FAILED_CREATE,
    allocate_mac,
    allocate_pod_ip,
    controller_status,
    final_status,
    find_condition,
    live_migratable_condition,
    missing_nad_message,
    paused_condition,
    pending_status,
    ready_condition,
    running_status,
    set_condition,
)
from tests import upstream

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SWAGGER = upstream.path("schemas/kubevirt/swagger.json")


def assert_valid(status: dict[str, Any], definition: str) -> None:
    definitions = json.loads(upstream.require(SWAGGER).read_text())["definitions"]
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    jsonschema.Draft4Validator(schema).validate(status)


def vmi(phase: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "web1", "namespace": "vms", "uid": "u1", "annotations": {}},
        "spec": {
            "domain": {
                "cpu": {"sockets": 2, "cores": 1, "threads": 1},
                "memory": {"guest": "2Gi"},
                "devices": {
                    "interfaces": [
                        {"name": "default", "masquerade": {}},
                        {"name": "vlan10", "bridge": {}},
                    ],
                    "disks": [{"name": "root", "disk": {"bus": "virtio"}}],
                },
            },
            "networks": [
                {"name": "default", "pod": {}},
                {"name": "vlan10", "multus": {"networkName": "vlan-10"}},
            ],
            "volumes": [{"name": "root", "dataVolume": {"name": "web1-root"}}],
            **spec,
        },
    }
    if phase:
        body["status"] = pending_status(body, NOW - timedelta(minutes=1))
        body["status"]["phase"] = phase
    return body


def launcher_pod(
    *, phase: str = "Running", ready: str = "True", scheduled: dict[str, Any] | None = None
) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = [
        {
            "type": "Ready",
            "status": ready,
            "lastProbeTime": None,
            "lastTransitionTime": "2025-01-02T03:00:00Z",
        }
    ]
    if scheduled:
        conditions.append(scheduled)
    return {
        "metadata": {"name": "virt-launcher-web1-abcde", "uid": "pod-uid"},
        "spec": {"nodeName": "node-1"},
        "status": {
            "phase": phase,
            "qosClass": "Burstable",
            "conditions": conditions,
            "containerStatuses": [{"name": "compute", "ready": True, "state": {"running": {}}}],
        },
    }


RWX_PVC = {
    "metadata": {"name": "web1-root"},
    "spec": {"accessModes": ["ReadWriteMany"]},
    "status": {"accessModes": ["ReadWriteMany"], "phase": "Bound", "capacity": {"storage": "10Gi"}},
}
RWO_PVC = {
    "metadata": {"name": "web1-root"},
    "spec": {"accessModes": ["ReadWriteOnce"]},
    "status": {"accessModes": ["ReadWriteOnce"], "phase": "Bound"},
}


def test_pending_status_has_topology_memory_and_timestamp() -> None:
    status = pending_status(vmi(), NOW)
    assert status["phase"] == "Pending"
    assert status["phaseTransitionTimestamps"] == [
        {"phase": "Pending", "phaseTransitionTimestamp": "2025-01-02T03:04:05Z"}
    ]
    assert status["currentCPUTopology"] == {"cores": 1, "sockets": 2, "threads": 1}
    assert status["memory"] == {
        "guestAtBoot": "2Gi",
        "guestCurrent": "2Gi",
        "guestRequested": "2Gi",
    }
    assert_valid(status, "v1.VirtualMachineInstanceStatus")


def test_pending_without_pod_reports_pod_not_exists() -> None:
    status = controller_status(vmi("Pending"), None, NOW)
    ready = find_condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "PodNotExists",
        "virt-launcher pod has not yet been scheduled",
    )


def test_missing_nad_sets_synchronized_false() -> None:
    message = missing_nad_message("vms", "vlan-10")
    assert message == (
        "failed to render launch manifest: "
        "failed to locate network attachment definition vms/vlan-10"
    )
    assert missing_nad_message("vms", "net/vlan-10").endswith("definition net/vlan-10")
    status = controller_status(vmi("Pending"), None, NOW, render_error=(FAILED_CREATE, message))
    synchronized = find_condition(status, "Synchronized")
    assert synchronized is not None
    assert (synchronized["status"], synchronized["reason"], synchronized["message"]) == (
        "False",
        "FailedCreate",
        message,
    )
    assert status["phase"] == "Pending"
    assert_valid(status, "v1.VirtualMachineInstanceStatus")


def test_pod_created_moves_to_scheduling_and_copies_unschedulable() -> None:
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory.",
        "lastProbeTime": None,
        "lastTransitionTime": "2025-01-02T03:04:00Z",
    }
    pod = launcher_pod(phase="Pending", ready="False", scheduled=unschedulable)
    status = controller_status(vmi("Pending"), pod, NOW)
    assert status["phase"] == "Scheduling"
    assert find_condition(status, "PodScheduled") == unschedulable
    assert_valid(status, "v1.VirtualMachineInstanceStatus")


def test_ready_pod_hands_off_to_scheduled() -> None:
    status = controller_status(vmi("Scheduling"), launcher_pod(), NOW)
    assert status["phase"] == "Scheduled"
    assert status["nodeName"] == "node-1"
    assert status["qosClass"] == "Burstable"
    assert status["activePods"] == {"pod-uid": "node-1"}
    ready = find_condition(status, "Ready")
    assert ready is not None and ready["reason"] == "GuestNotRunning"


def test_running_vmi_without_pod_fails() -> None:
    assert controller_status(vmi("Running"), None, NOW)["phase"] == "Failed"


def test_running_vmi_copies_pod_ready() -> None:
    status = controller_status(vmi("Running"), launcher_pod(ready="False"), NOW)
    ready = find_condition(status, "Ready")
    assert ready is not None
    assert (ready["status"], ready["lastTransitionTime"]) == ("False", "2025-01-02T03:00:00Z")


def test_terminating_pod_gives_pod_terminating() -> None:
    pod = launcher_pod()
    pod["metadata"]["deletionTimestamp"] = "2025-01-02T03:04:00Z"
    ready = ready_condition("Running", pod, NOW)
    assert (ready["status"], ready["reason"]) == ("False", "PodTerminating")


def test_running_status_reports_guest_details() -> None:
    source = vmi("Scheduled")
    status = running_status(
        source,
        NOW,
        pool_index=5,
        pvcs={"web1-root": RWX_PVC},
        secondary_ips={"vlan10": ["192.168.10.5"]},
    )
    assert status["phase"] == "Running"
    primary, secondary = status["interfaces"]
    assert primary == {
        "name": "default",
        "interfaceName": "eth0",
        "mac": allocate_mac(5, 0),
        "queueCount": 1,
        "linkState": "up",
        "ipAddress": "10.244.0.7",
        "ipAddresses": ["10.244.0.7"],
        "podInterfaceName": "eth0",
        "infoSource": "domain, guest-agent",
    }
    assert secondary["infoSource"] == "domain, guest-agent, multus-status"
    assert secondary["ipAddress"] == "192.168.10.5"
    assert status["guestOSInfo"]["id"] == "fedora"
    assert status["currentCPUTopology"] == {"cores": 1, "sockets": 2, "threads": 1}
    assert status["migrationMethod"] == "LiveMigration"
    assert status["volumeStatus"][0]["persistentVolumeClaimInfo"]["accessModes"] == [
        "ReadWriteMany"
    ]
    assert [t["phase"] for t in status["phaseTransitionTimestamps"]] == ["Pending", "Running"]
    assert find_condition(status, "AgentConnected") is not None
    assert_valid(status, "v1.VirtualMachineInstanceStatus")


def test_running_without_agent_has_no_guest_info() -> None:
    status = running_status(vmi("Scheduled"), NOW, pool_index=0, agent_connected=False)
    assert status["guestOSInfo"] == {}
    assert status["interfaces"][0]["infoSource"] == "domain"
    assert find_condition(status, "AgentConnected") is None


@pytest.mark.parametrize(
    ("interface", "annotations", "pvc", "expected"),
    [
        ({"name": "default", "masquerade": {}}, {}, RWX_PVC, ("True", None)),
        ({"name": "default", "bridge": {}}, {}, RWX_PVC, ("False", "InterfaceNotLiveMigratable")),
        (
            {"name": "default", "bridge": {}},
            {"kubevirt.io/allow-pod-bridge-network-live-migration": ""},
            RWX_PVC,
            ("True", None),
        ),
        ({"name": "default", "binding": {"name": "passt"}}, {}, RWX_PVC, ("True", None)),
        ({"name": "default", "masquerade": {}}, {}, RWO_PVC, ("False", "DisksNotLiveMigratable")),
    ],
)
def test_live_migratable_rules(
    interface: dict[str, Any],
    annotations: dict[str, str],
    pvc: dict[str, Any],
    expected: tuple[str, str | None],
) -> None:
    source = vmi()
    source["metadata"]["annotations"] = annotations
    source["spec"]["domain"]["devices"]["interfaces"][0] = interface
    result = live_migratable_condition(source, {"web1-root": pvc}, NOW)
    assert (result["status"], result.get("reason")) == expected


def test_live_migratable_messages_are_kubevirts() -> None:
    source = vmi()
    source["spec"]["domain"]["devices"]["interfaces"][0] = {"name": "default", "bridge": {}}
    assert live_migratable_condition(source, {}, NOW)["message"] == (
        "cannot migrate VMI which does not use masquerade or a migratable plugin to connect "
        "to the pod network"
    )
    disks = live_migratable_condition(vmi(), {"web1-root": RWO_PVC}, NOW)
    assert disks["message"] == (
        "cannot migrate VMI: PVC web1-root is not shared, live migration requires that all PVCs "
        "must be shared (using ReadWriteMany access mode)"
    )


def test_paused_condition() -> None:
    paused = paused_condition(NOW)
    assert (paused["reason"], paused["message"]) == ("PausedByUser", "VMI was paused by user")


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    old = {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}
    new = {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "reason": "x",
    }
    assert set_condition([old], new)[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    flipped = {**new, "status": "False"}
    assert set_condition([old], flipped)[0]["lastTransitionTime"] == "2025-01-01T00:00:00Z"


def test_final_status_records_reason() -> None:
    status = final_status(vmi("Running"), "Failed", NOW, reason="NodeUnresponsive")
    assert (status["phase"], status["reason"]) == ("Failed", "NodeUnresponsive")
    assert_valid(status, "v1.VirtualMachineInstanceStatus")


def test_ip_allocation_is_deterministic() -> None:
    assert allocate_pod_ip(0) == "10.244.0.2"
    assert allocate_pod_ip(300) == "10.244.1.46"
    assert allocate_mac(1, 0) == "02:00:00:00:00:01"


def test_builders_do_not_mutate_inputs() -> None:
    source = vmi("Scheduled")
    before = json.dumps(source, sort_keys=True)
    running_status(source, NOW, pool_index=1)
    controller_status(source, launcher_pod(), NOW)
    assert json.dumps(source, sort_keys=True) == before
