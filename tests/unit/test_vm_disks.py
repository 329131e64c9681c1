"""The disk planner and builders (pure): hot-add, hot-remove, growth, shrink, Storage
vMotion live and offline, a failed move, and StoragePolicy default class and compliance."""

from __future__ import annotations

from typing import Any

from controllers.storagepolicy.builders import (
    ResolvedStoragePolicy,
    default_class_readiness,
    disk_compliance,
    resolve_policy,
    the_default_class,
)
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.builders import build_kubevirt_vm
from controllers.virtualmachine.changes import plan_changes
from controllers.virtualmachine.disks import (
    DiskPlan,
    disk_statuses,
    moved_data_volume_name,
    plan_disks,
    required_space,
    shrink_refusal,
)
from controllers.virtualmachine.models import VirtualMachineSpec
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

SHARED = ResolvedStoragePolicy("shared", "shared", "Thin", "ReadWriteMany", "Filesystem")
FAST = ResolvedStoragePolicy("fast", "fast", "Thin", "ReadWriteMany", "Filesystem")
KEEP = ResolvedStoragePolicy("keep", "keep", "Thin", "ReadWriteMany", "Filesystem",
                             reclaim_policy="Retain")
LOCAL = ResolvedStoragePolicy("local", "standard", "Thin", "ReadWriteOnce", "Filesystem")
POLICIES = {p.name: p for p in (SHARED, FAST, KEEP, LOCAL)}
EXPANDABLE = frozenset({"shared", "fast", "keep"})


def spec(*disks: dict[str, Any], power: str = "PoweredOn") -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate({
        "cpu": {"count": 1}, "memory": {"size": "1Gi"}, "powerState": power,
        "disks": list(disks)})


def disk(name: str, policy: str, size: str = "1Gi") -> dict[str, Any]:
    return {"name": name, "size": size, "storagePolicyName": policy}


def build(vm_spec: VirtualMachineSpec, live: dict[str, Any] | None = None,
          vmi: dict[str, Any] | None = None,
          previous: dict[str, Any] | None = None) -> tuple[dict[str, Any], DiskPlan]:
    policies = [POLICIES[d.storage_policy_name or ""] for d in vm_spec.disks]
    plan = plan_disks(vm_spec, "vm", policies, live, vmi, expandable_classes=EXPANDABLE,
                      previous_status=previous, all_policies=POLICIES)
    built = build_kubevirt_vm(vm_spec, "vm", "ns", storage_policies=POLICIES, cluster=None,
                              live=live, vmi=vmi, disk_plan=plan)
    return built, plan


def running_vmi(*claims: tuple[str, str], conditions: list[dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """A running VMI whose volumes (volume, claim) run on those claims."""
    return {
        "metadata": {"uid": "u1"},
        "spec": {"volumes": [{"name": volume} for volume, _ in claims]},
        "status": {"phase": "Running", "conditions": conditions or [],
                   "volumeStatus": [{"name": volume,
                                     "persistentVolumeClaimInfo": {"claimName": claim}}
                                    for volume, claim in claims]},
    }


def volumes(built: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in built["spec"]["template"]["spec"]["volumes"]}


def templates(built: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["metadata"]["name"]: t for t in built["spec"]["dataVolumeTemplates"]}


def test_a_disk_added_to_a_running_vm_is_hot_plugged_on_scsi() -> None:
    live, _ = build(spec(disk("root", "shared")))
    vmi = running_vmi(("root", "vm-root"))
    built, plan = build(spec(disk("root", "shared"), disk("data", "shared")), live, vmi)
    assert volumes(built)["data"]["dataVolume"] == {"name": "vm-data", "hotpluggable": True}
    devices = {d["name"]: d for d in built["spec"]["template"]["spec"]["domain"]["devices"][
        "disks"]}
    assert devices["data"] == {"name": "data", "disk": {"bus": "scsi"}}
    assert "vm-data" in templates(built)
    assert plan.live_updates == ("disk data hot-added",)
    changes = plan_changes(built, live, vmi, disk_updates=plan.live_updates,
                           disk_restart_reasons=plan.restart_reasons)
    assert changes.changed and not changes.restart_required
    validate_against_swagger(built, KUBEVIRT_SWAGGER, "v1.VirtualMachine")


def test_a_hot_plugged_disk_removed_is_unplugged_and_its_volume_deleted() -> None:
    base, _ = build(spec(disk("root", "shared")))
    vmi = running_vmi(("root", "vm-root"))
    live, _ = build(spec(disk("root", "shared"), disk("data", "shared")), base, vmi)
    vmi = running_vmi(("root", "vm-root"), ("data", "vm-data"))
    built, plan = build(spec(disk("root", "shared")), live, vmi)
    assert "data" not in volumes(built)
    assert plan.live_updates == ("disk data hot-removed",)
    assert plan.data_volume_removals == (("vm-data", False),)


def test_a_disk_the_vm_booted_with_waits_for_a_restart_to_go() -> None:
    live, _ = build(spec(disk("root", "shared"), disk("data", "shared")))
    vmi = running_vmi(("root", "vm-root"), ("data", "vm-data"))
    built, plan = build(spec(disk("root", "shared")), live, vmi)
    assert plan.restart_reasons == ("disk data removed",)
    assert "vm-data" in templates(built)  # kept until the restart
    assert not plan.data_volume_removals


def test_growth_resizes_the_claim_where_the_class_expands_else_says_why() -> None:
    live, _ = build(spec(disk("root", "shared"), disk("slow", "local")))
    vmi = running_vmi(("root", "vm-root"), ("slow", "vm-slow"))
    _, plan = build(spec(disk("root", "shared", "3Gi"), disk("slow", "local", "2Gi")), live,
                    vmi)
    assert plan.claim_resizes == (("vm-root", required_space("3Gi", "Filesystem")),)
    assert "disk root grows to 3Gi" in plan.live_updates
    (reason,) = plan.restart_reasons
    assert "StorageClass standard" in reason and "allowVolumeExpansion" in reason


def test_required_space_follows_cdi_filesystem_overhead() -> None:
    assert required_space("1Gi", "Filesystem") == "1142278537"
    assert required_space("1Gi", "Block") == "1Gi"


def test_shrinking_is_refused_naming_the_field() -> None:
    live, _ = build(spec(disk("root", "shared", "2Gi")))
    refusal = shrink_refusal(spec(disk("root", "shared", "1Gi")), live)
    assert refusal is not None and refusal.startswith("spec.disks[0].size:")
    assert shrink_refusal(spec(disk("root", "shared", "2Gi")), live) is None


def test_a_policy_change_on_a_running_vm_moves_the_disk_live() -> None:
    live, _ = build(spec(disk("root", "shared")))
    vmi = running_vmi(("root", "vm-root"))
    target = moved_data_volume_name("vm", "root", "fast")
    built, plan = build(spec(disk("root", "fast")), live, vmi)
    assert built["spec"]["updateVolumesStrategy"] == "Migration"
    assert volumes(built)["root"]["dataVolume"] == {"name": target}
    assert templates(built)[target]["spec"]["storage"]["storageClassName"] == "fast"
    assert templates(built)["vm-root"]["spec"]["storage"]["storageClassName"] == "shared"
    (status,) = disk_statuses(plan, spec(disk("root", "fast")), [FAST])
    assert status["storageClassName"] == "shared"
    assert status["migration"]["phase"] == "Migrating"
    assert status["migration"]["targetDataVolume"] == target
    validate_against_swagger(built, KUBEVIRT_SWAGGER, "v1.VirtualMachine")

    # Still copying: both volumes stay. Done (the guest runs on the target): the source goes.
    moving = running_vmi(("root", "vm-root"),
                         conditions=[{"type": "VolumesChange", "status": "True"}])
    _, plan = build(spec(disk("root", "fast")), built, moving)
    assert not plan.data_volume_removals
    _, plan = build(spec(disk("root", "fast")), built, running_vmi(("root", target)))
    assert plan.data_volume_removals == (("vm-root", False),)
    assert disk_statuses(plan, spec(disk("root", "fast")), [FAST])[0] == {
        "name": "root", "storagePolicyName": "fast", "dataVolumeName": target,
        "hotPlugged": False, "storageClassName": "fast"}


def test_a_retained_source_is_released_not_deleted() -> None:
    live, _ = build(spec(disk("root", "keep")))
    vmi = running_vmi(("root", "vm-root"))
    moving, _ = build(spec(disk("root", "fast")), live, vmi)
    target = moved_data_volume_name("vm", "root", "fast")
    _, plan = build(spec(disk("root", "fast")), moving, running_vmi(("root", target)))
    assert plan.data_volume_removals == (("vm-root", True),)


def test_a_failed_move_reverts_and_is_not_retried() -> None:
    live, _ = build(spec(disk("root", "shared")))
    moving, _ = build(spec(disk("root", "fast")), live, running_vmi(("root", "vm-root")))
    failed_vmi = running_vmi(("root", "vm-root"), conditions=[{
        "type": "VolumesChange", "status": "False", "reason": "VolumeMigrationFailed",
        "message": "storage class fast is not reachable"}])
    reverted, plan = build(spec(disk("root", "fast")), moving, failed_vmi)
    target = moved_data_volume_name("vm", "root", "fast")
    assert volumes(reverted)["root"]["dataVolume"] == {"name": "vm-root"}
    assert plan.data_volume_removals == ((target, False),)
    statuses = disk_statuses(plan, spec(disk("root", "fast")), [FAST])
    assert statuses[0]["migration"]["phase"] == "Failed"
    assert "not reachable" in statuses[0]["migration"]["message"]

    again, plan = build(spec(disk("root", "fast")), reverted, running_vmi(("root", "vm-root")),
                        previous={"disks": statuses})
    assert volumes(again)["root"]["dataVolume"] == {"name": "vm-root"}
    assert disk_statuses(plan, spec(disk("root", "fast")), [FAST])[0]["migration"][
        "phase"] == "Failed"


def test_a_powered_off_vm_moves_offline_at_the_next_start() -> None:
    live, _ = build(spec(disk("root", "shared"), power="PoweredOff"))
    built, plan = build(spec(disk("root", "fast"), power="PoweredOff"), live, None)
    assert volumes(built)["root"]["dataVolume"] == {"name": "vm-root"}
    (status,) = disk_statuses(plan, spec(disk("root", "fast")), [FAST])
    assert status["migration"]["phase"] == "PendingOfflineMove"
    assert "powered off" in status["migration"]["message"]

    started, plan = build(spec(disk("root", "fast")), built, None)
    target = moved_data_volume_name("vm", "root", "fast")
    assert volumes(started)["root"]["dataVolume"] == {"name": target}
    assert templates(started)[target]["spec"]["source"] == {
        "pvc": {"namespace": "ns", "name": "vm-root"}}
    assert disk_statuses(plan, spec(disk("root", "fast")), [FAST])[0]["migration"][
        "phase"] == "CopyingOffline"
    # Started but not yet running on the copy: CDI still clones from the source, which stays.
    again, plan = build(spec(disk("root", "fast")), started, None)
    assert plan.data_volume_removals == ()
    assert "vm-root" in templates(again)
    _, plan = build(spec(disk("root", "fast")), again, running_vmi(("root", target)))
    assert plan.data_volume_removals == (("vm-root", False),)


def test_a_policy_naming_no_class_uses_the_one_default_class() -> None:
    plain = StoragePolicySpec.model_validate({})
    default = {"metadata": {"annotations": {
        "storageclass.kubernetes.io/is-default-class": "true"}}}
    classes: dict[str, Any] = {"standard": default, "shared": {"metadata": {}}}
    assert the_default_class(classes) == "standard"
    assert resolve_policy("plain", plain, "standard").storage_class_name == "standard"
    assert default_class_readiness(classes)[0] is True
    ready, reason, message = default_class_readiness({**classes, "shared": default})
    assert (ready, reason) == (False, "SeveralDefaultStorageClasses")
    assert "shared" in message and "standard" in message
    assert default_class_readiness({"shared": {"metadata": {}}})[1] == "NoDefaultStorageClass"
    assert the_default_class({**classes, "shared": default}) is None


def test_compliance_lists_the_disks_off_the_policy_class_and_why() -> None:
    vms = [
        {"metadata": {"namespace": "a", "name": "moving"},
         "spec": {"disks": [{"name": "root", "storagePolicyName": "fast"}]},
         "status": {"disks": [{"name": "root", "storageClassName": "shared",
                               "migration": {"phase": "Migrating", "message": "m"}}]}},
        {"metadata": {"namespace": "a", "name": "cold"},
         "spec": {"disks": [{"name": "root"}]},
         "status": {"disks": [{"name": "root", "storageClassName": "shared",
                               "migration": {"phase": "PendingOfflineMove"}}]}},
        {"metadata": {"namespace": "a", "name": "fine"},
         "spec": {"disks": [{"name": "root", "storagePolicyName": "fast"}]},
         "status": {"disks": [{"name": "root", "storageClassName": "fast"}]}},
    ]
    found = disk_compliance("fast", "fast", vms, default="fast")
    assert [(f["virtualMachine"], f["reason"]) for f in found] == [
        ("a/cold", "PendingOfflineMove"), ("a/moving", "Migrating")]
