"""The disks of a VM over its life (pure): hot-add, hot-remove, growth and Storage vMotion.

`plan_disks` looks at the spec, the KubeVirt VM we applied last (`live`: its template
volumes and `dataVolumeTemplates`), the running instance and the status we wrote last,
and says for each disk which DataVolume it uses, how the KubeVirt VM must carry it, and
what the reconciler must do beside the apply (grow a claim, delete an old volume).

How each change is carried, as KubeVirt 1.9 does it (../shared/notes/kubevirt-behaviour.md
and vnetwork-vstorage.md):

- Hot-add / hot-remove: a disk added while the VM runs is a hot-pluggable volume
  (`dataVolume.hotpluggable: true`) on the SCSI bus in the VM template; KubeVirt's
  declarative volume hot-plug (VEP 31, DeclarativeHotplugVolumes) plugs it into the running
  instance, and unplugs it when it leaves the template. A disk the VM booted with is not
  hot-pluggable: removing it waits for a restart.
- Growth: a larger size grows the claim (`spec.resources.requests.storage`) where the
  StorageClass allows expansion; the CSI resizer and kubelet grow it online. A class that
  does not allow it cannot grow the disk: RestartRequired says why. Shrinking is refused.
- Storage vMotion: a disk whose policy names another StorageClass moves to a new
  DataVolume `<vm>-<disk>-<hash of the class>` on it. While the VM runs: the template
  volume points at the new DataVolume and `updateVolumesStrategy: Migration` has KubeVirt
  migrate the volume live (same VMI); once the instance runs on it, the old DataVolume is
  deleted (kept, released from the VM, when its policy's reclaimPolicy is Retain). A
  failed migration (VMI condition VolumesChange=False) reverts the template to the old
  volume and is not retried until the policy changes again. A VM that is powered off, or
  a hot-plugged disk (KubeVirt migrates only the volumes the VM booted with), moves offline
  at the next start: the new DataVolume is a CDI clone of the old one, made before the VM
  starts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from controllers.storagepolicy.builders import ResolvedStoragePolicy
from controllers.virtualmachine.kubevirt_reading import nested, vmi_condition, vmi_running
from controllers.virtualmachine.models import Disk, VirtualMachineSpec
from kubekit.quantity import format_bytes, to_bytes

#: The labels naming a DataVolume's disk and StoragePolicy (builders sets them).
DISK_LABEL: Final = "vdcos.io/disk"
STORAGE_POLICY_LABEL: Final = "vdcos.io/storage-policy"
#: CDI's default filesystem overhead: a Filesystem claim is this much larger than the disk.
FILESYSTEM_OVERHEAD: Final = 0.06
#: The VMI condition of a volume migration (pkg/virt-controller/watch/volume-migration).
VOLUMES_CHANGE: Final = "VolumesChange"
#: The strategy that has KubeVirt migrate a volume whose claim changed in the template.
MIGRATION_STRATEGY: Final = "Migration"

Phase = Literal["Migrating", "CopyingOffline", "PendingOfflineMove", "Failed"]


@dataclass(frozen=True)
class DiskMove:
    """A Storage vMotion of one disk that is under way, waiting, or failed."""

    phase: Phase
    mode: Literal["Live", "Offline"]
    source_data_volume: str
    target_data_volume: str
    target_storage_class: str
    message: str
    source_storage_class: str = ""


@dataclass(frozen=True)
class DiskPlacement:
    """Where one disk is and how the KubeVirt VM carries it."""

    name: str
    data_volume: str
    storage_class: str
    hotpluggable: bool
    #: The DataVolume templates of this disk the VM must carry (the one in use first).
    data_volumes: tuple[str, ...]
    #: The DataVolume a template must be cloned from (an offline move), by target name.
    clone_from: Mapping[str, str] = field(default_factory=dict)
    move: DiskMove | None = None


@dataclass(frozen=True)
class DiskPlan:
    placements: tuple[DiskPlacement, ...]
    live_migration: bool
    live_updates: tuple[str, ...] = ()
    restart_reasons: tuple[str, ...] = ()
    #: (claim, new storage request) to patch before the apply.
    claim_resizes: tuple[tuple[str, str], ...] = ()
    #: (DataVolume, retain) to delete, or to release from the VM when retained.
    data_volume_removals: tuple[tuple[str, bool], ...] = ()
    #: DataVolume templates of removed disks the running guest still has (kept as they are
    #: until the restart that removes the disk).
    kept_data_volumes: tuple[str, ...] = ()

    def placement(self, disk: str) -> DiskPlacement | None:
        return next((p for p in self.placements if p.name == disk), None)


def required_space(size: str, volume_mode: str) -> str:
    """The claim size CDI asks for a disk (`GetRequiredSpace`): 1MiB-aligned, plus the
    filesystem overhead for Filesystem volumes."""
    mib = 1024 * 1024
    aligned = math.ceil(to_bytes(size) / mib) * mib
    if volume_mode == "Block":
        return format_bytes(aligned)
    return str(math.ceil(aligned / (1 - FILESYSTEM_OVERHEAD)))


def default_data_volume_name(vm_name: str, disk_name: str) -> str:
    return f"{vm_name}-{disk_name}"


def moved_data_volume_name(vm_name: str, disk_name: str, storage_class: str) -> str:
    """The DataVolume a disk moves to on `storage_class`: `<vm>-<disk>-<hash>`."""
    digest = hashlib.sha256(storage_class.encode()).hexdigest()[:6]
    return f"{vm_name}-{disk_name}-{digest}"


def _live_templates(live: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {
        str(nested(t, "metadata", "name")): t
        for t in nested(live, "spec", "dataVolumeTemplates") or []
    }


def _template_class(template: Mapping[str, Any] | None) -> str | None:
    value = nested(template, "spec", "storage", "storageClassName")
    return str(value) if value else None


def _template_size(template: Mapping[str, Any] | None) -> str | None:
    value = nested(template, "spec", "storage", "resources", "requests", "storage")
    return str(value) if value else None


def _live_volume(live: Mapping[str, Any] | None, disk: str) -> Mapping[str, Any] | None:
    for volume in nested(live, "spec", "template", "spec", "volumes") or []:
        if volume.get("name") == disk:
            found: Mapping[str, Any] = volume
            return found
    return None


def _vmi_volume_claims(vmi: Mapping[str, Any] | None) -> dict[str, str]:
    """Volume name -> the claim the running instance uses, from its volumeStatus."""
    claims: dict[str, str] = {}
    for entry in nested(vmi, "status", "volumeStatus") or []:
        claim = nested(entry, "persistentVolumeClaimInfo", "claimName")
        if claim:
            claims[str(entry.get("name"))] = str(claim)
    return claims


def _vmi_volumes(vmi: Mapping[str, Any] | None) -> set[str]:
    return {str(v.get("name")) for v in nested(vmi, "spec", "volumes") or []}


def _previous_move(previous_status: Mapping[str, Any] | None, disk: str) -> Mapping[str, Any]:
    for entry in (previous_status or {}).get("disks") or []:
        if entry.get("name") == disk:
            return entry.get("migration") or {}
    return {}


def _disk_templates(live_templates: Mapping[str, Mapping[str, Any]], disk: str) -> list[str]:
    return [
        name
        for name, template in live_templates.items()
        if nested(template, "metadata", "labels", DISK_LABEL) == disk
    ]


def failed_moves(plan: DiskPlan) -> dict[str, Mapping[str, Any]]:
    """The failed moves of a plan, as status.disks[].migration entries by disk: what the
    next pass needs so that it does not try the same move again."""
    return {
        p.name: {
            "phase": "Failed",
            "mode": p.move.mode,
            "targetDataVolume": p.move.target_data_volume,
            "message": p.move.message,
        }
        for p in plan.placements
        if p.move is not None and p.move.phase == "Failed"
    }


def shrink_refusal(spec: VirtualMachineSpec, live: Mapping[str, Any] | None) -> str | None:
    """The message refusing a disk smaller than it is, naming the field; None when none is."""
    templates = _live_templates(live)
    for index, disk in enumerate(spec.disks):
        volume = _live_volume(live, disk.name)
        data_volume = str(nested(volume, "dataVolume", "name") or "")
        current = _template_size(templates.get(data_volume))
        if current is not None and to_bytes(disk.size) < to_bytes(current):
            return (
                f"spec.disks[{index}].size: disk {disk.name} cannot shrink from {current} to "
                f"{disk.size} (a disk only grows)"
            )
    return None


def plan_disks(
    spec: VirtualMachineSpec,
    vm_name: str,
    policies: list[ResolvedStoragePolicy],
    live: Mapping[str, Any] | None,
    vmi: Mapping[str, Any] | None,
    *,
    expandable_classes: frozenset[str],
    previous_status: Mapping[str, Any] | None = None,
    all_policies: Mapping[str, ResolvedStoragePolicy] | None = None,
) -> DiskPlan:
    """Each disk's placement and what to do about it (see the module docstring)."""
    running = vmi_running(vmi)
    powering_on = spec.power_state != "PoweredOff"
    templates = _live_templates(live)
    vmi_claims = _vmi_volume_claims(vmi)
    vmi_volumes = _vmi_volumes(vmi)
    failed_migration = vmi_condition(vmi, VOLUMES_CHANGE)
    failed = (
        failed_migration is not None
        and failed_migration.get("status") == "False"
        and failed_migration.get("reason") == "VolumeMigrationFailed"
    )
    placements: list[DiskPlacement] = []
    live_updates: list[str] = []
    restart: list[str] = []
    resizes: list[tuple[str, str]] = []
    removals: list[tuple[str, bool]] = []
    live_migration = False
    for disk, policy in zip(spec.disks, policies, strict=True):
        volume = _live_volume(live, disk.name)
        current = str(
            nested(volume, "dataVolume", "name") or default_data_volume_name(vm_name, disk.name)
        )
        current_class = _template_class(templates.get(current))
        hot_added = running and live is not None and volume is None
        hotpluggable = bool(nested(volume, "dataVolume", "hotpluggable")) or hot_added
        if hot_added:
            live_updates.append(f"disk {disk.name} hot-added")
        others = [n for n in _disk_templates(templates, disk.name) if n != current]
        placement, extra_updates, reasons, removed = _place(
            disk,
            vm_name,
            policy,
            current,
            current_class,
            others,
            hotpluggable=hotpluggable,
            running=running,
            powering_on=powering_on,
            vmi_claim=vmi_claims.get(disk.name),
            migration_failed=(failed_migration or {}) if failed else None,
            previous_move=_previous_move(previous_status, disk.name),
            templates=templates,
            all_policies=all_policies or {},
        )
        placements.append(placement)
        live_updates.extend(extra_updates)
        restart.extend(reasons)
        removals.extend(removed)
        if removed and running:
            live_updates.append(f"disk {disk.name} released its old volume")
        if placement.move is not None and placement.move.mode == "Live" and (
            placement.move.phase == "Migrating"
        ):
            live_migration = True
        growth = _growth(disk, templates.get(placement.data_volume), policy, expandable_classes,
                         placement.storage_class)
        if growth is not None:
            kind, value = growth
            if kind == "resize":
                resizes.append((placement.data_volume, value))
                if running:
                    live_updates.append(f"disk {disk.name} grows to {disk.size}")
            elif running:
                restart.append(value)
    wanted = {disk.name for disk in spec.disks}
    kept: list[str] = []
    for name, template in templates.items():
        disk_name = str(nested(template, "metadata", "labels", DISK_LABEL) or "")
        if disk_name in wanted or not disk_name:
            continue
        volume = _live_volume(live, disk_name)
        if running and disk_name in vmi_volumes:
            if nested(volume, "dataVolume", "hotpluggable") or volume is None:
                # Unplugged now; the claim stays (PVC protection) until the attachment
                # pod lets it go.
                if volume is not None:
                    live_updates.append(f"disk {disk_name} hot-removed")
            else:
                restart.append(f"disk {disk_name} removed")
                kept.append(name)  # the guest runs on it until the restart
                continue
        removals.append((name, _retained(template, all_policies or {})))
    return DiskPlan(
        placements=tuple(placements),
        live_migration=live_migration,
        live_updates=tuple(dict.fromkeys(live_updates)),
        restart_reasons=tuple(dict.fromkeys(restart)),
        claim_resizes=tuple(resizes),
        data_volume_removals=tuple(dict.fromkeys(removals)),
        kept_data_volumes=tuple(kept),
    )


def _retained(template: Mapping[str, Any], policies: Mapping[str, ResolvedStoragePolicy]) -> bool:
    """Whether the old volume's policy keeps it (reclaimPolicy Retain)."""
    policy_name = nested(template, "metadata", "labels", STORAGE_POLICY_LABEL)
    policy = policies.get(str(policy_name)) if policy_name else None
    return policy is not None and policy.reclaim_policy == "Retain"


def _growth(
    disk: Disk,
    template: Mapping[str, Any] | None,
    policy: ResolvedStoragePolicy,
    expandable_classes: frozenset[str],
    storage_class: str,
) -> tuple[str, str] | None:
    """("resize", claim size) for a disk larger than its volume, or ("restart", why) when
    its class cannot grow it; None when the size did not grow."""
    current = _template_size(template)
    if current is None or to_bytes(disk.size) <= to_bytes(current):
        return None
    if storage_class in expandable_classes:
        return "resize", required_space(disk.size, policy.volume_mode)
    return "restart", (
        f"disk {disk.name} cannot grow to {disk.size}: StorageClass {storage_class} does not "
        "allow volume expansion (allowVolumeExpansion is not true); move the disk to a "
        "policy whose class does"
    )


def _place(
    disk: Disk,
    vm_name: str,
    policy: ResolvedStoragePolicy,
    current: str,
    current_class: str | None,
    others: list[str],
    *,
    hotpluggable: bool,
    running: bool,
    powering_on: bool,
    vmi_claim: str | None,
    migration_failed: Mapping[str, Any] | None,
    previous_move: Mapping[str, Any],
    templates: Mapping[str, Mapping[str, Any]],
    all_policies: Mapping[str, ResolvedStoragePolicy],
) -> tuple[DiskPlacement, list[str], list[str], list[tuple[str, bool]]]:
    """One disk: (placement, live updates, restart reasons, volumes to remove)."""
    wanted_class = policy.storage_class_name
    updates: list[str] = []
    removals: list[tuple[str, bool]] = []
    if current_class is None or current_class == wanted_class:
        # On its class (or new). A move that brought it here ends once the guest runs on
        # it (or, powered off, at once: nothing holds the old volume), except an offline copy:
        # CDI clones the target from the source, which must stay until the guest runs on the
        # copy.
        if others:
            copying = nested(templates.get(current), "spec", "source", "pvc") is not None
            arrived = vmi_claim == current if copying else (not running or vmi_claim == current)
            if migration_failed is not None and running:
                arrived = False
            if arrived:
                removals = [(name, _retained(templates[name], all_policies)) for name in others]
                others = []
        moving = bool(others)
        move = None
        if moving:
            target_class = wanted_class
            offline = nested(templates.get(current), "spec", "source", "pvc") is not None
            if migration_failed is not None and running and not offline:
                # KubeVirt could not move it: back to the old volume, the new one goes.
                source = others[0]
                message = str(migration_failed.get("message") or "volume migration failed")
                move = DiskMove("Failed", "Live", source, current, target_class,
                                f"reverted to {source}: {message}")
                return (
                    DiskPlacement(disk.name, source, _template_class(templates.get(source))
                                  or "", hotpluggable, (source,), move=move),
                    [f"disk {disk.name} move reverted"], [], [(current, False)],
                )
            move = DiskMove(
                "CopyingOffline" if offline else "Migrating",
                "Offline" if offline else "Live",
                others[0], current, target_class,
                f"moving from {others[0]} to {current} on StorageClass {target_class}",
                source_storage_class=_template_class(templates.get(others[0])) or "",
            )
        clone_from = {}
        source_pvc = nested(templates.get(current), "spec", "source", "pvc", "name")
        if moving and source_pvc:
            clone_from[current] = str(source_pvc)
        return (
            DiskPlacement(disk.name, current, wanted_class, hotpluggable,
                          (current, *others), clone_from=clone_from, move=move),
            updates, [], removals,
        )
    target = moved_data_volume_name(vm_name, disk.name, wanted_class)
    if previous_move.get("phase") == "Failed" and previous_move.get(
        "targetDataVolume"
    ) == target:
        # It failed there: stay until the policy changes again.
        mode: Literal["Live", "Offline"] = (
            "Offline" if previous_move.get("mode") == "Offline" else "Live"
        )
        move = DiskMove("Failed", mode, current, target, wanted_class,
                        str(previous_move.get("message") or ""))
        return (DiskPlacement(disk.name, current, current_class, hotpluggable, (current,),
                              move=move), updates, [], removals)
    if running and not hotpluggable:
        updates.append(f"disk {disk.name} moving live to StorageClass {wanted_class}")
        move = DiskMove("Migrating", "Live", current, target, wanted_class,
                        f"moving live from {current} ({current_class}) to {target} "
                        f"({wanted_class})", source_storage_class=current_class)
        return (DiskPlacement(disk.name, target, wanted_class, hotpluggable, (target, current),
                              move=move), updates, [], removals)
    if powering_on and not running:
        move = DiskMove("CopyingOffline", "Offline", current, target, wanted_class,
                        f"copying {current} ({current_class}) to {target} ({wanted_class}) "
                        "before the VM starts", source_storage_class=current_class)
        return (DiskPlacement(disk.name, target, wanted_class, hotpluggable, (target, current),
                              clone_from={target: current}, move=move), updates, [], removals)
    why = "the VM is powered off" if not running else "a hot-plugged disk cannot move live"
    move = DiskMove("PendingOfflineMove", "Offline", current, target, wanted_class,
                    f"{why}: moves to StorageClass {wanted_class} at the next start")
    reasons = [f"disk {disk.name} moves to StorageClass {wanted_class} offline"] if running else []
    return (DiskPlacement(disk.name, current, current_class, hotpluggable, (current,),
                          move=move), updates, reasons, removals)


def disk_statuses(plan: DiskPlan, spec: VirtualMachineSpec,
                  policies: list[ResolvedStoragePolicy]) -> list[dict[str, Any]]:
    """status.disks: where each disk is, and its move when one is under way or failed."""
    result: list[dict[str, Any]] = []
    for disk, policy in zip(spec.disks, policies, strict=True):
        placement = plan.placement(disk.name)
        if placement is None:
            continue
        entry: dict[str, Any] = {
            "name": disk.name,
            "storagePolicyName": policy.name,
            "dataVolumeName": placement.data_volume,
            "hotPlugged": placement.hotpluggable,
        }
        on_class = placement.storage_class
        if placement.move is not None and placement.move.phase in ("Migrating", "CopyingOffline"):
            on_class = placement.move.source_storage_class
        if on_class:
            entry["storageClassName"] = on_class
        move = placement.move
        if move is not None:
            migration: dict[str, Any] = {
                "phase": move.phase,
                "mode": move.mode,
                "sourceDataVolume": move.source_data_volume,
                "targetDataVolume": move.target_data_volume,
                "targetStorageClass": move.target_storage_class,
                "message": move.message,
            }
            entry["migration"] = migration
        result.append(entry)
    return result

