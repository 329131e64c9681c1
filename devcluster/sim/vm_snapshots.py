"""KubeVirt's snapshot controller (virt-controller's VMSnapshotController), emulated.

A VirtualMachineSnapshot of a VM locks the VM (`status.snapshotInProgress`, finalizer
`snapshot.kubevirt.io/snapshot-source-protection`), writes a VirtualMachineSnapshotContent
`vmsnapshot-content-<uid>` holding the VM spec and one VolumeBackup per snapshottable claim
(PVC and DataVolume volumes whose StorageClass's driver has a VolumeSnapshotClass), freezes
the guest's filesystems when the guest agent is connected (VMI `status.fsFreezeStatus:
frozen`), creates the VolumeSnapshots `vmsnapshot-<uid>-volume-<volume>`, thaws once they are
cut, and reports: phase InProgress -> Succeeded (or Failed past `failureDeadline`),
readyToUse, indications (Online, GuestAgent / NoGuestAgent / Paused, PartialSnapshot),
conditions Progressing and Ready, sourceUID, snapshotVolumes, error. The VM's
`status.volumeSnapshotStatuses` says which volumes can be snapshotted and why not. Decisions
are the pure functions of `vm_snapshot_state.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from kubekit.informer import Informer, Key, key_of
from kubekit.resources import DATAVOLUMES, PVCS, STORAGE_CLASSES, VMIS, VMS, ResourceRef
from kubekit.restclient import KubeError, wait_for_resource
from kubekit.workqueue import WorkQueue

from .cdi import STORAGE_PROFILES
from .ignoring_gone import ignoring_gone
from .object_parts import metadata_of as _meta
from .object_parts import spec_of as _spec
from .object_parts import status_of as _status
from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .snapshot_crds import VOLUME_SNAPSHOT_CLASSES, VOLUME_SNAPSHOTS
from .vm_snapshot_state import (
    SOURCE_FINALIZER,
    VM_SNAPSHOT_CONTENT_FINALIZER,
    VM_SNAPSHOT_FINALIZER,
    SourceState,
    can_unlock_source,
    content_for,
    content_name,
    content_status,
    is_deleting,
    is_progressing,
    is_terminating,
    lock_blocker,
    seconds_until_deadline,
    should_delete_content,
    snapshot_class_name,
    snapshot_status,
    source_state,
    vm_claims,
    volume_backups,
    volume_problem,
    volume_snapshot_for,
    volume_snapshot_status,
)
from .written import WrittenCache

log = structlog.get_logger("devcluster.sim.vm_snapshots")

Obj = Mapping[str, Any]

SNAPSHOT_GROUP = "snapshot.kubevirt.io"
VM_SNAPSHOTS = ResourceRef(SNAPSHOT_GROUP, "v1beta1", "virtualmachinesnapshots")
VM_SNAPSHOT_CONTENTS = ResourceRef(SNAPSHOT_GROUP, "v1beta1", "virtualmachinesnapshotcontents")
VM_RESTORES = ResourceRef(SNAPSHOT_GROUP, "v1beta1", "virtualmachinerestores")
#: `snapshotRetryInterval` is 5 s upstream; the lock is retried sooner here.
LOCK_RETRY_SECONDS = 1.0


def finalizers_patch(obj: Obj, finalizers: list[str]) -> list[dict[str, Any]]:
    """`generateFinalizerPatch`: test the list we read, then replace it (a JSON patch that
    fails with 422 when someone else changed the finalizers meanwhile)."""
    current = _meta(obj).get("finalizers")
    if current is None:
        return [{"op": "add", "path": "/metadata/finalizers", "value": finalizers}]
    return [{"op": "test", "path": "/metadata/finalizers", "value": list(current)},
            {"op": "replace", "path": "/metadata/finalizers", "value": finalizers}]


class SnapshotStores:
    """The informers the snapshot and restore controllers read."""

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime

    def get(self, resource: ResourceRef) -> Informer:
        return self.runtime.informer(resource)

    def claim_populated(self, pvc: Obj) -> bool:
        """`cdiv1.IsPopulated`: a claim of a DataVolume is populated once the DV succeeded."""
        for ref in _meta(pvc).get("ownerReferences") or []:
            if ref.get("kind") == "DataVolume" and ref.get("controller"):
                dv = self.get(DATAVOLUMES).get(str(_meta(pvc).get("namespace", "")),
                                               str(ref.get("name")))
                return dv is not None and _status(dv).get("phase") == "Succeeded"
        return True

    def snapshot_class_for(self, storage_class_name: str) -> str:
        profile = self.get(STORAGE_PROFILES).get("", storage_class_name)
        return snapshot_class_name(
            storage_class_name, lambda name: self.get(STORAGE_CLASSES).get("", name),
            self.get(VOLUME_SNAPSHOT_CLASSES).values(),
            _status(profile).get("snapshotClass"))

    def class_for_claim(self, pvc: Obj) -> str:
        name = _spec(pvc).get("storageClassName")
        try:
            return self.snapshot_class_for(str(name)) if name else ""
        except ValueError:
            return ""


class VmSnapshotController:
    """virt-controller's snapshot part: VirtualMachineSnapshots and their contents."""

    name = "vm-snapshots"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.stores = SnapshotStores(runtime)
        self._snapshots = WorkQueue(
            "vm-snapshots", ignoring_gone(self._reconcile_snapshot), workers=2,
            retry_delays=SIM_RETRY_DELAYS)
        self._contents = WorkQueue(
            "vm-snapshot-contents", ignoring_gone(self._reconcile_content), workers=2,
            retry_delays=SIM_RETRY_DELAYS)
        self._vms = WorkQueue(
            "vm-volume-snapshot-statuses", ignoring_gone(self._reconcile_vm), workers=1,
            retry_delays=SIM_RETRY_DELAYS)
        self.written = WrittenCache()
        self._vms_by_claim: dict[Key, set[Key]] = {}  # claim -> the VMs naming it
        self._claims_of_vm: dict[Key, set[Key]] = {}
        self._snapshots_by_vm: dict[Key, set[str]] = {}  # VM -> names of its snapshots

    async def start(self) -> None:
        for resource in (VM_SNAPSHOTS, VM_SNAPSHOT_CONTENTS, VM_RESTORES):
            await wait_for_resource(self.kube, resource)
        resources = (VM_SNAPSHOTS, VM_SNAPSHOT_CONTENTS, VMS, VMIS, PVCS, DATAVOLUMES,
                     STORAGE_CLASSES, STORAGE_PROFILES, VOLUME_SNAPSHOTS,
                     VOLUME_SNAPSHOT_CLASSES)
        for resource in resources:
            self.stores.get(resource)
        await self.runtime.wait_synced(*resources)
        self.stores.get(VM_SNAPSHOTS).add_listener(self._on_snapshot)
        self.stores.get(VM_SNAPSHOT_CONTENTS).add_listener(self._on_content)
        self.stores.get(VMS).add_listener(self._on_vm)
        self.stores.get(VMIS).add_listener(self._on_vmi)
        self.stores.get(PVCS).add_listener(self._on_claim)
        self.stores.get(DATAVOLUMES).add_listener(self._on_claim)
        self.stores.get(VOLUME_SNAPSHOTS).add_listener(self._on_volume_snapshot)
        self.stores.get(VOLUME_SNAPSHOT_CLASSES).add_listener(self._on_class)
        for queue in (self._snapshots, self._contents, self._vms):
            queue.start()
        for vm in self.stores.get(VMS).values():
            self._on_vm("ADDED", vm)
        for snapshot in self.stores.get(VM_SNAPSHOTS).values():
            self._on_snapshot("ADDED", snapshot)
        for content in self.stores.get(VM_SNAPSHOT_CONTENTS).values():
            self._contents.enqueue(key_of(content))

    async def stop(self) -> None:
        for queue in (self._snapshots, self._contents, self._vms):
            await queue.stop()

    # --- events -------------------------------------------------------------------------

    def _snapshots_of_vm(self, namespace: str, name: str) -> None:
        for snapshot_name in self._snapshots_by_vm.get((namespace, name), set()):
            self._snapshots.enqueue((namespace, snapshot_name))

    def _on_snapshot(self, kind: str, snapshot: dict[str, Any]) -> None:
        namespace, name = key_of(snapshot)
        vm_key = (namespace, str((_spec(snapshot).get("source") or {}).get("name", "")))
        if kind == "DELETED":
            self._snapshots_by_vm.get(vm_key, set()).discard(name)
        else:
            self._snapshots_by_vm.setdefault(vm_key, set()).add(name)
        self._snapshots.enqueue((namespace, name))
        self._contents.enqueue((namespace, content_name(snapshot)))

    def _on_content(self, kind: str, content: dict[str, Any]) -> None:
        self._contents.enqueue(key_of(content))
        owner = _spec(content).get("virtualMachineSnapshotName")
        if owner:
            self._snapshots.enqueue((key_of(content)[0], str(owner)))

    def _on_vm(self, kind: str, vm: dict[str, Any]) -> None:
        key = key_of(vm)
        claims = set() if kind == "DELETED" else {(key[0], c) for c in vm_claims(vm).values()}
        previous = self._claims_of_vm.get(key, set())
        for claim in previous - claims:
            vms = self._vms_by_claim.get(claim, set())
            vms.discard(key)
            if not vms:
                self._vms_by_claim.pop(claim, None)
        for claim in claims - previous:
            self._vms_by_claim.setdefault(claim, set()).add(key)
        if kind == "DELETED":
            self._claims_of_vm.pop(key, None)
            self.written.forget(VMS, key)
            return
        self._claims_of_vm[key] = claims
        self._vms.enqueue(key)
        self._snapshots_of_vm(*key)

    def _on_vmi(self, kind: str, vmi: dict[str, Any]) -> None:
        self._snapshots_of_vm(*key_of(vmi))

    def _on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        for vm_key in self._vms_by_claim.get(key_of(claim), set()):
            self._vms.enqueue(vm_key)
            self._snapshots_of_vm(*vm_key)

    def _on_volume_snapshot(self, kind: str, volume_snapshot: dict[str, Any]) -> None:
        for ref in _meta(volume_snapshot).get("ownerReferences") or []:
            if ref.get("kind") == "VirtualMachineSnapshotContent":
                self._contents.enqueue((key_of(volume_snapshot)[0], str(ref.get("name"))))

    def _on_class(self, kind: str, snapshot_class: dict[str, Any]) -> None:
        for vm in self.stores.get(VMS).values():
            self._vms.enqueue(key_of(vm))

    # --- the VM's volumeSnapshotStatuses ------------------------------------------------

    def _storage_class_of(self, namespace: str, volume: Obj) -> str:
        """`getVolumeStorageClass`; raises ValueError with KubeVirt's message."""
        def of_claim(name: str) -> str:
            pvc = self.stores.get(PVCS).get(namespace, name)
            if pvc is None:
                raise ValueError("PVC not found")
            return str(_spec(pvc).get("storageClassName") or "")

        for key in ("persistentVolumeClaim", "memoryDump"):
            if volume.get(key):
                return of_claim(str(volume[key].get("claimName", "")))
        if volume.get("dataVolume"):
            name = str(volume["dataVolume"].get("name", ""))
            dv = self.stores.get(DATAVOLUMES).get(namespace, name)
            named = ((_spec(dv).get("pvc") or {}).get("storageClassName")) if dv else None
            return str(named) if named else of_claim(name)
        raise ValueError("volume type has no StorageClass defined")

    async def _reconcile_vm(self, key: Key) -> float | None:
        vm = self._vm(*key)
        if vm is None or is_deleting(vm):
            return None
        statuses = []
        for volume in ((_spec(vm).get("template") or {}).get("spec") or {}).get(
                "volumes") or []:
            storage_class: str | None = None
            error: str | None = None
            snapshot_class = ""
            try:
                storage_class = self._storage_class_of(key[0], volume)
                snapshot_class = self.stores.snapshot_class_for(storage_class)
            except ValueError as problem:
                error = str(problem)
            statuses.append(volume_snapshot_status(volume, storage_class, error,
                                                   snapshot_class))
        if statuses == list(_status(vm).get("volumeSnapshotStatuses") or []):
            return None
        try:
            self.written.remember(VMS, await self.kube.patch(VMS, key[0], key[1], {"status": {
                "volumeSnapshotStatuses": statuses or None}}, subresource="status"))
        except KubeError as error:
            if error.status != 404:
                raise
        return None

    # --- VirtualMachineSnapshot ---------------------------------------------------------

    async def _set_finalizers(self, resource: ResourceRef, obj: Obj,
                              finalizers: list[str]) -> dict[str, Any]:
        namespace, name = key_of(dict(obj))
        written: dict[str, Any] = await self.kube.patch(
            resource, namespace, name, finalizers_patch(obj, finalizers), kind="json")
        return written

    def _vm(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The VM as we last wrote it, or the informer's when newer (the lock is two writes:
        the first one's watch event must not lock again)."""
        return self.written.latest(VMS, self.stores.get(VMS), (namespace, name))

    async def _lock(self, vm: Obj, snapshot: Obj) -> None:
        """`Lock`: the VM's snapshotInProgress, then the source finalizer."""
        namespace, name = key_of(dict(vm))
        if not _status(vm).get("snapshotInProgress"):
            vm = await self.kube.patch(VMS, namespace, name, {"status": {
                "snapshotInProgress": _meta(snapshot)["name"]}}, subresource="status")
            self.written.remember(VMS, dict(vm))
        finalizers = list(_meta(vm).get("finalizers") or [])
        if SOURCE_FINALIZER not in finalizers:
            self.written.remember(VMS, await self._set_finalizers(
                VMS, vm, [*finalizers, SOURCE_FINALIZER]))
        log.info("Snapshot source locked", vm=f"{namespace}/{name}",
                 snapshot=_meta(snapshot)["name"])

    async def _unlock(self, vm: Obj, snapshot: Obj) -> bool:
        """`Unlock`: the finalizer off, then snapshotInProgress cleared."""
        if _status(vm).get("snapshotInProgress") != _meta(snapshot)["name"]:
            return False
        namespace, name = key_of(dict(vm))
        finalizers = list(_meta(vm).get("finalizers") or [])
        if SOURCE_FINALIZER in finalizers:
            vm = await self._set_finalizers(VMS, vm, [f for f in finalizers
                                                      if f != SOURCE_FINALIZER])
            self.written.remember(VMS, dict(vm))
        self.written.remember(VMS, await self.kube.patch(
            VMS, namespace, name, {"status": {"snapshotInProgress": None}},
            subresource="status"))
        return True

    async def _reconcile_snapshot(self, key: Key) -> float | None:
        snapshot = self.stores.get(VM_SNAPSHOTS).get(*key)
        if snapshot is None:
            return None
        now = datetime.now(UTC)
        source_ref = _spec(snapshot).get("source") or {}
        vm = self._vm(key[0], str(source_ref.get("name", ""))) \
            if source_ref.get("kind") == "VirtualMachine" else None
        vmi = self.stores.get(VMIS).get(*key_of(vm)) if vm is not None else None
        content = self.stores.get(VM_SNAPSHOT_CONTENTS).get(key[0], content_name(snapshot))
        terminating = is_terminating(snapshot, now)
        finalizers = list(_meta(snapshot).get("finalizers") or [])
        if not terminating and VM_SNAPSHOT_FINALIZER not in finalizers:
            await self._set_finalizers(VM_SNAPSHOTS, snapshot,
                                       [*finalizers, VM_SNAPSHOT_FINALIZER])
            return None  # the watch brings the snapshot back with its finalizer
        retry: float | None = None
        source: SourceState | None = None
        can_remove_finalizer = True
        if vm is not None:
            source = source_state(vm, vmi, snapshot)
        if _status(snapshot) and vm is not None and source is not None:
            if is_progressing(snapshot) and not terminating:
                if not source.locked:
                    blocker = lock_blocker(vm, snapshot, volume_problem(
                        key[0], str(_meta(vm)["name"]), list(vm_claims(vm).values()),
                        lambda name: self.stores.get(PVCS).get(key[0], name),
                        self.stores.claim_populated))
                    if blocker is None:
                        await self._lock(vm, snapshot)
                    else:
                        source = replace(source, lock_message=source.lock_message + blocker)
                    retry = LOCK_RETRY_SECONDS
                elif content is None:
                    await self._create_content(snapshot, vm)
                can_remove_finalizer = False
            else:
                if can_unlock_source(snapshot, content, now):
                    await self._unlock(vm, snapshot)
                    source = replace(source, locked=False)
                can_remove_finalizer = not source.locked
        if terminating and content is not None and should_delete_content(snapshot, content):
            await self.kube.delete(VM_SNAPSHOT_CONTENTS, key[0], _meta(content)["name"])
        status = snapshot_status(snapshot, source, str(_meta(vm)["uid"]) if vm else None,
                                 content, now)
        if status != dict(_status(snapshot)):
            snapshot = await self.kube.request(
                "PUT", VM_SNAPSHOTS.path(key[0], key[1], "status"),
                body={**snapshot, "status": status})
        if is_deleting(snapshot) and can_remove_finalizer and \
                VM_SNAPSHOT_FINALIZER in (_meta(snapshot).get("finalizers") or []):
            await self._set_finalizers(VM_SNAPSHOTS, snapshot, [
                f for f in _meta(snapshot).get("finalizers") or []
                if f != VM_SNAPSHOT_FINALIZER])
        if retry is not None:
            return retry
        left = seconds_until_deadline(snapshot, now)
        return max(left, 0.1) if left is not None and is_progressing(
            {**snapshot, "status": status}) else None

    async def _create_content(self, snapshot: Obj, vm: Obj) -> None:
        namespace = str(_meta(snapshot).get("namespace", ""))
        backups = volume_backups(snapshot, vm,
                                 lambda name: self.stores.get(PVCS).get(namespace, name),
                                 self.stores.class_for_claim)
        content = content_for(snapshot, vm, backups)
        try:
            await self.kube.create(VM_SNAPSHOT_CONTENTS, content)
        except KubeError as error:
            if error.status != 409:
                raise
        await self.runtime.event(
            dict(snapshot), "SuccessfulVirtualMachineSnapshotContentCreate",
            f"Successfully created VirtualMachineSnapshotContent "
            f"{content['metadata']['name']}")

    # --- VirtualMachineSnapshotContent --------------------------------------------------

    async def _freeze(self, vmi: Obj | None, source: SourceState, *, frozen: bool) -> None:
        """virt-handler's freeze/unfreeze through the guest agent (only when connected and
        the VM is neither paused nor, for a freeze, already frozen)."""
        if vmi is None or not source.locked or not source.guest_agent or source.paused:
            return
        if frozen == source.frozen:
            return
        namespace, name = key_of(dict(vmi))
        await self.kube.patch(VMIS, namespace, name, {"status": {
            "fsFreezeStatus": "frozen" if frozen else None}})
        log.info("Guest filesystems " + ("frozen" if frozen else "thawed"),
                 vmi=f"{namespace}/{name}")

    def _source_of(self, snapshot: Obj | None) -> tuple[Obj | None, SourceState | None]:
        if snapshot is None:
            return None, None
        namespace = str(_meta(snapshot).get("namespace", ""))
        vm = self._vm(namespace, str((_spec(snapshot).get("source") or {}).get("name", "")))
        if vm is None:
            return None, None
        vmi = self.stores.get(VMIS).get(*key_of(vm))
        return vmi, source_state(vm, vmi, snapshot)

    async def _reconcile_content(self, key: Key) -> float | None:
        content = self.stores.get(VM_SNAPSHOT_CONTENTS).get(*key)
        if content is None:
            return None
        now = datetime.now(UTC)
        snapshot = self.stores.get(VM_SNAPSHOTS).get(
            key[0], str(_spec(content).get("virtualMachineSnapshotName", "")))
        vmi, source = self._source_of(snapshot)
        if snapshot is None or is_terminating(snapshot, now):
            if source is not None:
                await self._freeze(vmi, source, frozen=False)
            finalizers = list(_meta(content).get("finalizers") or [])
            if VM_SNAPSHOT_CONTENT_FINALIZER in finalizers:
                await self._set_finalizers(VM_SNAPSHOT_CONTENTS, content, [
                    f for f in finalizers if f != VM_SNAPSHOT_CONTENT_FINALIZER])
                return None
            if snapshot is not None and should_delete_content(snapshot, content):
                return None
        if is_deleting(content):
            return None
        created_before = bool(_status(content).get("creationTime"))
        found: dict[str, Obj | None] = {}
        froze = False
        for backup in _spec(content).get("volumeBackups") or []:
            name = str(backup.get("volumeSnapshotName") or "")
            if not name:
                continue
            volume_snapshot: Obj | None = self.stores.get(VOLUME_SNAPSHOTS).get(key[0], name)
            if volume_snapshot is None and not created_before and snapshot is not None \
                    and not is_deleting(snapshot):
                if not froze and source is not None:
                    await self._freeze(vmi, source, frozen=True)
                    froze = True
                volume_snapshot = await self._create_volume_snapshot(content, backup)
            elif volume_snapshot is None and created_before:
                await self.runtime.event(dict(content), "VolumeSnapshotMissing",
                                         f"VolumeSnapshot {name} no longer exists",
                                         kind="Warning")
            if volume_snapshot is not None:
                found[name] = volume_snapshot
        status = content_status(content, found, content_created_before=created_before,
                                now=now)
        if status.get("creationTime") and not created_before and source is not None:
            await self._freeze(vmi, replace(source, frozen=source.frozen or froze),
                               frozen=False)
        if status != dict(_status(content)):
            await self.kube.request("PUT", VM_SNAPSHOT_CONTENTS.path(key[0], key[1], "status"),
                                    body={**content, "status": status})
        return None

    async def _create_volume_snapshot(self, content: Obj, backup: Obj) -> Obj | None:
        claim = backup.get("persistentVolumeClaim") or {}
        storage_class = _spec(claim).get("storageClassName")
        if not storage_class:
            raise ValueError(f"{_meta(content).get('namespace')}/{_meta(claim).get('name')} "
                             "VolumeSnapshot requested but no storage class")
        snapshot_class = self.stores.snapshot_class_for(str(storage_class))
        if not snapshot_class:
            log.warning("Couldn't find VolumeSnapshotClass", storage_class=storage_class)
            return None
        try:
            created = await self.kube.create(VOLUME_SNAPSHOTS,
                                             volume_snapshot_for(content, backup,
                                                                 snapshot_class))
        except KubeError as error:
            if error.status != 409:
                raise
            return self.stores.get(VOLUME_SNAPSHOTS).get(key_of(dict(content))[0],
                                                         str(backup["volumeSnapshotName"]))
        await self.runtime.event(dict(content), "SuccessfulVolumeSnapshotCreate",
                                 f"Successfully created VolumeSnapshot "
                                 f"{backup['volumeSnapshotName']}")
        return created
