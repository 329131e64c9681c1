"""Volume (storage live) migration of a running VM, as KubeVirt 1.9 reports it.

A VM with `spec.updateVolumesStrategy: Migration` whose template points a volume at
another claim (the target DataVolume/PVC made first) moves that volume live:
`pkg/virt-controller/watch/volume-migration/volume-migration.go` and `vm.go` patch the
VMI's volumes to the new claims, record the pairs in VMI `status.migratedVolumes[]` and VM
`status.volumeUpdateState.volumeMigrationState.migratedVolumes[]`, and set the VMI
condition `VolumesChange=True`; a live migration (labelled
`kubevirt.io/volume-update-in-progress`) copies the data, and on success the condition
goes away and `volumeStatus` names the new claims. The VMI keeps its uid.

The simulation copies in place, without a migration object or a new launcher pod: the
copy takes `migration_seconds` plus the source's size at `volume_migration_mbps` (MB/s).
Failure path: a target claim on a StorageClass annotated
`sim.vdcos.io/unreachable: "true"` (as a class the hosts cannot reach) fails the copy;
the VMI returns to its source claims and `VolumesChange` goes False with reason
`VolumeMigrationFailed` saying why, until the VM template is reverted (KubeVirt's "cancel
= revert the volumes") or pointed at another target.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from kubekit.informer import Key
from kubekit.quantity import to_bytes
from kubekit.resources import PVCS, STORAGE_CLASSES, VMIS, VMS
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .vmi_status import (
    condition,
    find_condition,
    remove_condition,
    set_condition,
    volume_statuses,
)
from .volume_hotplug import claim_of, is_hotpluggable

log = structlog.get_logger("devcluster.sim.volume-migration")

Obj = Mapping[str, Any]

STRATEGY_MIGRATION: Final = "Migration"
VOLUMES_CHANGE: Final = "VolumesChange"
REASON_FAILED: Final = "VolumeMigrationFailed"
UNREACHABLE_ANNOTATION: Final = "sim.vdcos.io/unreachable"


@dataclass(frozen=True)
class VolumeMove:
    volume: str
    source_claim: str
    target_claim: str


def migrates_volumes(vm: Obj) -> bool:
    return (vm.get("spec") or {}).get("updateVolumesStrategy") == STRATEGY_MIGRATION


def without_migrated_claims(spec: Obj) -> dict[str, Any]:
    """`spec` with every non-hot-plug volume's claim blanked: what a restart compares when
    the VM migrates volumes (pointing a volume at another claim is then live)."""
    result = copy.deepcopy(dict(spec))
    for volume in result.get("volumes") or []:
        for source in ("dataVolume", "persistentVolumeClaim"):
            if source in volume and not is_hotpluggable(volume):
                volume.pop(source)
    return result


def planned_moves(template_spec: Obj, vmi_spec: Obj) -> list[VolumeMove]:
    """The volumes whose claim the template changed, of those the VMI already has."""
    running = {str(v.get("name")): v for v in vmi_spec.get("volumes") or []}
    moves = []
    for volume in template_spec.get("volumes") or []:
        current = running.get(str(volume.get("name")))
        if current is None or is_hotpluggable(volume):
            continue
        source, target = claim_of(current), claim_of(volume)
        if source and target and source != target:
            moves.append(VolumeMove(str(volume.get("name")), source, target))
    return moves


def pvc_info(pvc: Obj | None, claim: str) -> dict[str, Any]:
    """A `PersistentVolumeClaimInfo` of the claim as KubeVirt records it."""
    spec, status = (pvc or {}).get("spec") or {}, (pvc or {}).get("status") or {}
    return {"claimName": claim,
            "accessModes": list(status.get("accessModes") or spec.get("accessModes") or []),
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "requests": dict((spec.get("resources") or {}).get("requests") or {}),
            "capacity": dict(status.get("capacity") or {}),
            "filesystemOverhead": "0.06"}


def migrated_volumes(moves: list[VolumeMove], pvcs: Mapping[str, Obj]) -> list[dict[str, Any]]:
    return [{"volumeName": m.volume,
             "sourcePVCInfo": pvc_info(pvcs.get(m.source_claim), m.source_claim),
             "destinationPVCInfo": pvc_info(pvcs.get(m.target_claim), m.target_claim)}
            for m in moves]


def copy_seconds(moves: list[VolumeMove], pvcs: Mapping[str, Obj], *, fixed_seconds: float,
                 megabytes_per_second: float) -> float:
    """The copy takes the fixed part plus every source's capacity at the rate."""
    total = 0
    for move in moves:
        pvc = pvcs.get(move.source_claim) or {}
        size = ((pvc.get("status") or {}).get("capacity") or {}).get("storage") or (
            ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
            "storage", "0")
        total += to_bytes(str(size))
    return fixed_seconds + total / (megabytes_per_second * 1_000_000)


def with_claims(vmi_spec: Obj, claims: Mapping[str, str],
                template_spec: Obj | None = None) -> list[dict[str, Any]]:
    """The VMI's volumes with the named ones pointing at `claims` (volume -> claim); the
    template's volume definition is taken when given (it may change dataVolume/PVC)."""
    template = {str(v.get("name")): v for v in (template_spec or {}).get("volumes") or []}
    volumes = []
    for volume in vmi_spec.get("volumes") or []:
        name = str(volume.get("name"))
        if name not in claims:
            volumes.append(copy.deepcopy(dict(volume)))
        elif name in template and claim_of(template[name]) == claims[name]:
            volumes.append(copy.deepcopy(dict(template[name])))
        else:
            changed = copy.deepcopy(dict(volume))
            source = "dataVolume" if "dataVolume" in changed else "persistentVolumeClaim"
            key = "name" if source == "dataVolume" else "claimName"
            changed[source] = {**changed.get(source, {}), key: claims[name]}
            volumes.append(changed)
    return volumes


def unreachable_class(pvc: Obj | None, classes: Mapping[str, Obj]) -> str | None:
    name = ((pvc or {}).get("spec") or {}).get("storageClassName")
    storage_class = classes.get(str(name)) if name else None
    annotations = ((storage_class or {}).get("metadata") or {}).get("annotations") or {}
    return str(name) if annotations.get(UNREACHABLE_ANNOTATION) == "true" else None


def _now() -> datetime:
    return datetime.now(UTC)


class VolumeMigrationController:
    """virt-controller's volume-migration part and the copy the migration does."""

    name = "volume-migration"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.settings = runtime.settings
        self.vms = runtime.informer(VMS)
        self.vmis = runtime.informer(VMIS)
        self.pvcs = runtime.informer(PVCS)
        self.classes = runtime.informer(STORAGE_CLASSES)
        self._started: dict[Key, datetime] = {}
        self.queue = WorkQueue("volume-migration", self._sync, workers=2,
                               retry_delays=SIM_RETRY_DELAYS)

    async def start(self) -> None:
        self.vms.add_listener(lambda kind, obj: self._enqueue(obj))
        self.vmis.add_listener(lambda kind, obj: self._enqueue(obj))
        self.pvcs.add_listener(lambda kind, obj: self._enqueue_namespace(obj))
        self.queue.start()
        await self.runtime.wait_synced(VMS, VMIS, PVCS, STORAGE_CLASSES)
        for vm in self.vms.values():
            self._enqueue(vm)

    async def stop(self) -> None:
        await self.queue.stop()

    def _enqueue(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self.queue.enqueue((str(meta.get("namespace", "")), str(meta.get("name", ""))))

    def _enqueue_namespace(self, pvc: Obj) -> None:
        namespace = (pvc.get("metadata") or {}).get("namespace")
        for vm in self.vms.values():
            if (vm.get("metadata") or {}).get("namespace") == namespace and migrates_volumes(vm):
                self._enqueue(vm)

    def _claims(self, namespace: str) -> dict[str, Obj]:
        return {str(p["metadata"]["name"]): p for p in self.pvcs.values()
                if p["metadata"].get("namespace") == namespace}

    async def _sync(self, key: Key) -> float | None:
        vm, vmi = self.vms.get(*key), self.vmis.get(*key)
        if vm is None or vmi is None or not migrates_volumes(vm) or (
                vmi.get("status") or {}).get("phase") != "Running":
            return None
        template = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
        vmi_spec = vmi.get("spec") or {}
        state = find_condition(vmi, VOLUMES_CHANGE)
        pvcs = self._claims(key[0])
        if state is not None and state.get("status") == "True":
            return await self._copy(key, vm, vmi, pvcs)
        moves = planned_moves(template, vmi_spec)
        if state is not None and state.get("status") == "False":
            failed_targets = {str((m.get("destinationPVCInfo") or {}).get("claimName"))
                              for m in (vmi.get("status") or {}).get("migratedVolumes") or []}
            if moves and {m.target_claim for m in moves} <= failed_targets:
                return None  # failed: waits for the template to be reverted or retargeted
            await self._patch_vmi(key, {"status": {"conditions": remove_condition(
                (vmi.get("status") or {}).get("conditions") or [], VOLUMES_CHANGE)}})
            return 0.1 if moves else None
        if not moves:
            return None
        for move in moves:
            target = pvcs.get(move.target_claim)
            if target is None or (target.get("status") or {}).get("phase") != "Bound":
                return 1.0  # the target volume must be provisioned first
        records = migrated_volumes(moves, pvcs)
        now = _now()
        self._started[key] = now
        volumes = with_claims(vmi_spec, {m.volume: m.target_claim for m in moves}, template)
        conditions = set_condition((vmi.get("status") or {}).get("conditions") or [],
                                   condition(VOLUMES_CHANGE, "True", now))
        await self._patch_vmi(key, {"spec": {"volumes": volumes},
                                    "status": {"migratedVolumes": records,
                                               "conditions": conditions}})
        await self._patch_vm_status(key, {"volumeUpdateState": {
            "volumeMigrationState": {"migratedVolumes": records}}})
        log.info("Volume migration started", vm=f"{key[0]}/{key[1]}",
                 volumes=[m.volume for m in moves])
        return 0.1

    async def _copy(self, key: Key, vm: Obj, vmi: Obj, pvcs: Mapping[str, Obj]) -> float | None:
        status = vmi.get("status") or {}
        records = list(status.get("migratedVolumes") or [])
        moves = [VolumeMove(str(r.get("volumeName")),
                            str((r.get("sourcePVCInfo") or {}).get("claimName")),
                            str((r.get("destinationPVCInfo") or {}).get("claimName")))
                 for r in records]
        started = self._started.get(key)
        if started is None:
            since = str((find_condition(vmi, VOLUMES_CHANGE) or {}).get("lastTransitionTime"))
            started = datetime.fromisoformat(since.replace("Z", "+00:00"))
            self._started[key] = started
        elapsed = (_now() - started).total_seconds()
        classes = {str(c["metadata"]["name"]): c for c in self.classes.values()}
        unreachable = next(((m, c) for m in moves
                            if (c := unreachable_class(pvcs.get(m.target_claim), classes))), None)
        if unreachable is not None:
            if elapsed < self.settings.migration_seconds:
                return self.settings.migration_seconds - elapsed
            move, class_name = unreachable
            node = status.get("nodeName", "")
            message = (f"volume migration of {move.volume} failed: storage class "
                       f"{class_name} of claim {move.target_claim} is not reachable from "
                       f"node {node}")
            volumes = with_claims(vmi.get("spec") or {}, {m.volume: m.source_claim
                                                          for m in moves})
            conditions = set_condition(status.get("conditions") or [], condition(
                VOLUMES_CHANGE, "False", _now(), reason=REASON_FAILED, message=message))
            await self._patch_vmi(key, {"spec": {"volumes": volumes},
                                        "status": {"conditions": conditions}})
            await self._patch_vm_status(key, {"volumeUpdateState": None})
            self._started.pop(key, None)
            await self.runtime.event(dict(vm), REASON_FAILED, message, kind="Warning",
                                     component="virt-controller")
            log.info("Volume migration failed", vm=f"{key[0]}/{key[1]}", reason=message)
            return None
        duration = copy_seconds(moves, pvcs, fixed_seconds=self.settings.migration_seconds,
                                megabytes_per_second=self.settings.volume_migration_mbps)
        if elapsed < duration:
            return duration - elapsed
        existing = {str(e.get("name")): e for e in status.get("volumeStatus") or []}
        moved = {m.volume for m in moves}
        fresh = volume_statuses(vmi, pvcs)
        volume_status = [e if str(e.get("name")) in moved else dict(
            existing.get(str(e.get("name"))) or e) for e in fresh]
        conditions = remove_condition(status.get("conditions") or [], VOLUMES_CHANGE)
        await self._patch_vmi(key, {"status": {"conditions": conditions,
                                               "volumeStatus": volume_status}})
        await self._patch_vm_status(key, {"volumeUpdateState": None})
        self._started.pop(key, None)
        log.info("Volume migration completed", vm=f"{key[0]}/{key[1]}",
                 seconds=round(elapsed, 2))
        return None

    async def _patch_vmi(self, key: Key, patch: dict[str, Any]) -> None:
        try:
            await self.kube.patch(VMIS, key[0], key[1], patch)
        except KubeError as error:
            if error.status != 404:
                raise

    async def _patch_vm_status(self, key: Key, status: dict[str, Any]) -> None:
        try:
            await self.kube.patch(VMS, key[0], key[1], {"status": status},
                                  subresource="status")
        except KubeError as error:
            if error.status != 404:
                raise
