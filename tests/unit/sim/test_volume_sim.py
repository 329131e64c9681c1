"""The simulation's volume planners (pure): declarative hot-plug, what a restart compares,
volume migration moves and copy time, and the resizer's steps."""

from __future__ import annotations

from typing import Any

from devcluster.sim.hotplug import needs_restart
from devcluster.sim.volume_expansion import (
    controller_resizing_status,
    expandable,
    expanded_status,
    mounted_by_running_pod,
    node_pending_status,
    wants_expansion,
)
from devcluster.sim.volume_hotplug import (
    attachment_pod,
    hotplug_volume_statuses,
    synced_vmi_volumes,
    vmi_volumes_patch,
)
from devcluster.sim.volume_migration import (
    VolumeMove,
    copy_seconds,
    planned_moves,
    with_claims,
)

ROOT = {"name": "root", "dataVolume": {"name": "vm-root"}}
DATA = {"name": "data", "dataVolume": {"name": "vm-data", "hotpluggable": True}}
ROOT_DISK = {"name": "root", "disk": {"bus": "virtio"}}
DATA_DISK = {"name": "data", "disk": {"bus": "scsi"}}


def template(*volumes: dict[str, Any], disks: list[dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    return {"domain": {"devices": {"disks": disks or []}}, "volumes": list(volumes)}


def vmi(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "vm", "namespace": "ns", "uid": "u"}, "spec": spec,
            "status": status or {"phase": "Running"}}


def test_a_hot_pluggable_template_volume_joins_the_vmi_and_leaves_it() -> None:
    running = vmi(template(ROOT, disks=[ROOT_DISK]))
    wanted = template(ROOT, DATA, disks=[ROOT_DISK, DATA_DISK])
    volumes, disks = synced_vmi_volumes(wanted, running["spec"])
    assert volumes == [ROOT, DATA] and disks == [ROOT_DISK, DATA_DISK]
    assert vmi_volumes_patch(wanted, running)[1] == {
        "op": "replace", "path": "/spec/volumes", "value": [ROOT, DATA]}

    plugged = vmi(wanted)
    assert vmi_volumes_patch(wanted, plugged) == []
    volumes, disks = synced_vmi_volumes(template(ROOT, disks=[ROOT_DISK]), plugged["spec"])
    assert volumes == [ROOT] and disks == [ROOT_DISK]


def test_a_vmi_without_volumes_gets_them_added() -> None:
    patch = vmi_volumes_patch(template(DATA, disks=[DATA_DISK]), vmi({"domain": {"devices": {}}}))
    assert [op["op"] for op in patch] == ["add", "add"]


def test_hot_plug_and_volume_moves_are_not_restarts() -> None:
    started = template(ROOT, disks=[ROOT_DISK])
    vm: dict[str, Any] = {
        "spec": {"template": {"spec": template(ROOT, DATA, disks=[ROOT_DISK, DATA_DISK])}}}
    assert not needs_restart(started, vm)
    moved = {"name": "root", "dataVolume": {"name": "vm-root-abc"}}
    vm = {"spec": {"template": {"spec": template(moved, disks=[ROOT_DISK])}}}
    assert needs_restart(started, vm)  # a claim change without the Migration strategy
    vm["spec"]["updateVolumesStrategy"] = "Migration"
    assert not needs_restart(started, vm)


def test_the_attachment_pod_runs_on_the_launcher_node_and_the_volume_becomes_ready() -> None:
    running = vmi(template(ROOT, DATA, disks=[ROOT_DISK, DATA_DISK]))
    launcher = {"metadata": {"name": "virt-launcher-vm-x", "uid": "p"},
                "spec": {"nodeName": "host-2"}}
    pod = attachment_pod(running, launcher, [("data", "vm-data")], "abcde")
    assert pod["metadata"]["name"] == "hp-volume-abcde"
    assert pod["spec"]["nodeName"] == "host-2"
    assert pod["metadata"]["ownerReferences"][0]["name"] == "virt-launcher-vm-x"
    pod = {**pod, "metadata": {**pod["metadata"], "uid": "a"}, "status": {"phase": "Running"}}
    first = hotplug_volume_statuses(running, {}, pod)
    entry = next(e for e in first if e["name"] == "data")
    assert (entry["phase"], entry["hotplugVolume"]["attachPodName"]) == (
        "MountedToPod", "hp-volume-abcde")
    second = hotplug_volume_statuses({**running, "status": {"volumeStatus": first}}, {}, pod)
    assert next(e for e in second if e["name"] == "data")["phase"] == "Ready"


def test_volume_moves_copy_time_and_claims() -> None:
    moved = {"name": "root", "dataVolume": {"name": "vm-root-abc"}}
    moves = planned_moves(template(moved), template(ROOT))
    assert moves == [VolumeMove("root", "vm-root", "vm-root-abc")]
    assert planned_moves(template(ROOT, DATA), template(ROOT)) == []
    pvcs = {"vm-root": {"status": {"capacity": {"storage": "2000000000"}}}}
    assert copy_seconds(moves, pvcs, fixed_seconds=1.0, megabytes_per_second=1000) == 3.0
    assert with_claims(template(ROOT), {"root": "vm-root-abc"})[0]["dataVolume"] == {
        "name": "vm-root-abc"}


def test_the_resizer_grows_a_mounted_claim_in_two_steps() -> None:
    claim = {"metadata": {"name": "c", "namespace": "ns"},
             "spec": {"resources": {"requests": {"storage": "2Gi"}}},
             "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}
    assert wants_expansion(claim)
    assert expandable({"provisioner": "sim.vdcos.io/shared", "allowVolumeExpansion": True})
    assert not expandable({"provisioner": "rancher.io/local-path",
                           "allowVolumeExpansion": False})
    assert controller_resizing_status(claim)["conditions"][0]["type"] == "Resizing"
    pending = node_pending_status(claim)
    assert pending["conditions"][0]["type"] == "FileSystemResizePending"
    assert pending["allocatedResourceStatuses"] == {"storage": "NodeResizePending"}
    assert expanded_status(claim)["capacity"] == {"storage": "2Gi"}
    pod = {"metadata": {"namespace": "ns"}, "status": {"phase": "Running"},
           "spec": {"volumes": [{"persistentVolumeClaim": {"claimName": "c"}}]}}
    assert mounted_by_running_pod(claim, [pod])
    assert not mounted_by_running_pod(claim, [{**pod, "status": {"phase": "Pending"}}])
