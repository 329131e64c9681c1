"""What a simulated host runs: guests of virt-launcher pods, one copy per VMI during a
live migration, and what a power cycle leaves of the host's pods."""

from __future__ import annotations

from typing import Any

from devcluster.sim.guest_table import GuestTable, guest_of
from devcluster.sim.hosts import lost_pod_status

NOW = "2026-12-01T13:00:00Z"


def launcher(name: str, vmi_uid: str, uid: str, *, target: bool = False) -> dict[str, Any]:
    labels = {"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": vmi_uid}
    if target:
        labels["kubevirt.io/migrationJobUID"] = "job-1"
    return {"metadata": {"name": f"virt-launcher-{name}-abcde", "namespace": "default",
                         "uid": uid, "labels": labels,
                         "ownerReferences": [{"kind": "VirtualMachineInstance", "name": name,
                                              "uid": vmi_uid, "controller": True}]},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "compute"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "compute", "ready": True, "state": {
                           "running": {"startedAt": NOW}}}]}}


def test_only_launcher_pods_carry_guests() -> None:
    guest = guest_of(launcher("web", "vmi-1", "pod-1"), "host-1", NOW)
    assert guest is not None
    assert guest.as_item() == {"host": "host-1", "namespace": "default", "name": "web",
                               "vmiUID": "vmi-1", "since": NOW}
    assert guest_of({"metadata": {"name": "busybox", "labels": {}}}, "host-1", NOW) is None


def test_a_migration_target_shows_once_its_source_stopped() -> None:
    table = GuestTable()
    source = guest_of(launcher("web", "vmi-1", "pod-1"), "host-1", NOW)
    target = guest_of(launcher("web", "vmi-1", "pod-2", target=True), "host-2", NOW)
    assert source is not None and target is not None
    table.add(source)
    table.add(target)
    assert [g.host for g in table.running()] == ["host-1"]
    table.remove("host-1", "pod-1")
    assert [g.host for g in table.running()] == ["host-2"]


def test_two_vmis_of_one_vm_are_two_copies() -> None:
    table = GuestTable()
    for host, vmi, pod in (("host-1", "vmi-old", "pod-1"), ("host-2", "vmi-new", "pod-2")):
        guest = guest_of(launcher("web", vmi, pod), host, NOW)
        assert guest is not None
        table.add(guest)
    assert [(g.host, g.vmi_uid) for g in table.running()] == [
        ("host-1", "vmi-old"), ("host-2", "vmi-new")]
    table.clear("host-1")
    assert [g.host for g in table.running()] == ["host-2"]


def test_a_power_cycle_fails_pods_that_do_not_restart() -> None:
    status = lost_pod_status(launcher("web", "vmi-1", "pod-1"), NOW)
    assert status is not None
    assert status["phase"] == "Failed"
    assert status["conditions"] == [{"type": "Ready", "status": "False",
                                     "lastTransitionTime": NOW}]
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "ContainerStatusUnknown" and terminated["exitCode"] == 137
    restarting = launcher("web", "vmi-1", "pod-1")
    restarting["spec"]["restartPolicy"] = "Always"
    assert lost_pod_status(restarting, NOW) is None
