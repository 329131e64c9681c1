"""KubeVirt's restore controller (virt-controller's VMRestoreController), emulated.

A VirtualMachineRestore names a VirtualMachineSnapshot and a target VM: the snapshot's VM
itself (it must be stopped: by default the restore waits 5 minutes for its VMI to go, then
fails; `targetReadinessPolicy` StopTarget stops it, FailImmediate fails at once,
WaitEventually waits) or a new VM (a name that does not exist yet; an existing VM other than
the source is refused). For each VolumeBackup a PVC `restore-<restore uid>-<volume>` is made
from its VolumeSnapshot (it carries the snapshot's content marker), DataVolume templates are
renamed to it and pre-populated, the VM's spec is replaced by the snapshot's with the new
volumes (a new VM is created Halted, with the restore's `patches` applied), DataVolumes no
longer used are deleted (`status.deletedDataVolumes`), and the restore completes
(`complete`, `restoreTime`, `restores[]`, conditions Progressing/Ready, Events). The
decisions are the pure functions of `vm_restore_state.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.resources import DATAVOLUMES, PVCS, STORAGE_CLASSES, VMIS, VMS, ResourceRef
from kubekit.restclient import KubeError, wait_for_resource
from kubekit.workqueue import WorkQueue

from .ignoring_gone import ignoring_gone
from .object_parts import metadata_of as _meta
from .object_parts import spec_of as _spec
from .object_parts import status_of as _status
from .runtime import SIM_RETRY_DELAYS, SimRuntime, now_rfc3339
from .snapshot_crds import VOLUME_SNAPSHOTS
from .vm_restore_state import (
    OWNED_BY_VM_ANNOTATION,
    POPULATED_FOR_ANNOTATION,
    PRE_POPULATED_ANNOTATION,
    RESTORE_TO_EXISTING,
    VM_RESTORE_FINALIZER,
    VMI_EXISTS,
    apply_patches,
    content_problem,
    deleted_datavolumes,
    error_status,
    initial_status,
    is_progressing,
    not_ready_outcome,
    owner_reference,
    restore_claim,
    restore_datavolume,
    restored_vm,
    snapshot_problem,
    snapshot_vm,
    volume_restores,
    was_restored_by,
    with_conditions,
    with_datavolume_names,
)
from .vm_snapshots import VM_RESTORES, VM_SNAPSHOT_CONTENTS, VM_SNAPSHOTS, finalizers_patch

log = structlog.get_logger("devcluster.sim.vm_restore")

Obj = Mapping[str, Any]

VM_SUBRESOURCES = ResourceRef("subresources.kubevirt.io", "v1", "virtualmachines")
#: A restore waiting for its snapshot or target is looked at again this often.
WAIT_SECONDS = 2.0
CREATING_PVCS = (("True", "Creating new PVCs"), ("False", "Waiting for new PVCs"))
UPDATING_TARGET = (("True", "Updating target spec"), ("False", "Waiting for target update"))


class RestoreError(Exception):
    """A failure the restore's conditions and a Warning Event report (`doUpdateError`)."""


class VmRestoreController:
    name = "vm-restore"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self._restores = WorkQueue(
            "vm-restores", ignoring_gone(self._reconcile_safely), workers=2,
            retry_delays=SIM_RETRY_DELAYS)
        self._not_ready_reported: set[str] = set()
        self._errors_reported: dict[str, str] = {}

    def _get(self, resource: ResourceRef, namespace: str, name: str) -> dict[str, Any] | None:
        return self.runtime.informer(resource).get(namespace, name)

    async def start(self) -> None:
        await wait_for_resource(self.kube, VM_RESTORES)
        resources = (VM_RESTORES, VM_SNAPSHOTS, VM_SNAPSHOT_CONTENTS, VMS, VMIS, PVCS,
                     DATAVOLUMES, STORAGE_CLASSES, VOLUME_SNAPSHOTS)
        for resource in resources:
            self.runtime.informer(resource)
        await self.runtime.wait_synced(*resources)
        self.runtime.informer(VM_RESTORES).add_listener(
            lambda kind, restore: self._restores.enqueue(key_of(restore)))
        for resource in (VMS, VMIS, PVCS, DATAVOLUMES, VM_SNAPSHOTS):
            self.runtime.informer(resource).add_listener(self._on_related)
        self._restores.start()
        for restore in self.runtime.informer(VM_RESTORES).values():
            self._restores.enqueue(key_of(restore))

    async def stop(self) -> None:
        await self._restores.stop()

    def _on_related(self, kind: str, obj: dict[str, Any]) -> None:
        # Restores are few and short-lived: any change in their namespace wakes them.
        namespace = key_of(obj)[0]
        for restore in self.runtime.informer(VM_RESTORES).values():
            if key_of(restore)[0] == namespace and is_progressing(restore):
                self._restores.enqueue(key_of(restore))

    async def _write_status(self, restore: Obj, status: dict[str, Any]) -> None:
        if status == dict(_status(restore)):
            return
        namespace, name = key_of(dict(restore))
        await self.kube.request("PUT", VM_RESTORES.path(namespace, name, "status"),
                                body={**restore, "status": status})

    async def _reconcile_safely(self, key: Key) -> float | None:
        restore = self._get(VM_RESTORES, *key)
        if restore is None:
            return None
        try:
            return await self._reconcile(restore)
        except RestoreError as error:
            message = str(error)
            await self._write_status(restore, error_status(_status(restore), message,
                                                           datetime.now(UTC)))
            uid = str(_meta(restore).get("uid", ""))
            if self._errors_reported.get(uid) != message:  # one Event per distinct error
                self._errors_reported[uid] = message
                await self.runtime.event(dict(restore), "VirtualMachineRestoreError",
                                         f"VirtualMachineRestore encountered error {message}",
                                         kind="Warning")
            return WAIT_SECONDS

    async def _reconcile(self, restore: dict[str, Any]) -> float | None:
        now = datetime.now(UTC)
        namespace, name = key_of(restore)
        if not _status(restore):
            await self._write_status(restore, initial_status(now))
            return None
        target_ref = _spec(restore).get("target") or {}
        if target_ref.get("kind") != "VirtualMachine":
            raise RestoreError(f"unknown source {target_ref}")
        target = self._get(VMS, namespace, str(target_ref.get("name", "")))
        if _meta(restore).get("deletionTimestamp"):
            await self._finish_deletion(restore, target, now)
            return None
        if not is_progressing(restore):
            return None
        if await self._own(restore, target):
            return None  # the watch brings the restore back with its owner and finalizer
        if target is not None and self._get(VMIS, namespace, _meta(target)["name"]) is not None:
            return await self._target_not_ready(restore, target, now)
        snapshot_name = str(_spec(restore).get("virtualMachineSnapshotName", ""))
        snapshot = self._get(VM_SNAPSHOTS, namespace, snapshot_name)
        problem = snapshot_problem(namespace, snapshot_name, snapshot)
        if problem:
            raise RestoreError(problem)
        content_name = str(_status(snapshot).get("virtualMachineSnapshotContentName"))
        content = self._get(VM_SNAPSHOT_CONTENTS, namespace, content_name)
        problem = content_problem(namespace, content_name, content)
        if problem or content is None or snapshot is None:
            raise RestoreError(problem or "no content")
        source_uid = _status(snapshot).get("sourceUID")
        if target is not None and not was_restored_by(restore, target) and source_uid and \
                _meta(target).get("uid") != source_uid:
            raise RestoreError(RESTORE_TO_EXISTING)
        await self._mark_in_progress(restore, target)
        restores = volume_restores(restore, content)
        if restores != list(_status(restore).get("restores") or []):
            await self._write_status(restore, with_conditions(
                {**_status(restore), "restores": restores}, *CREATING_PVCS, now))
            return None
        if await self._reconcile_claims(restore, target, content, restores):
            await self._write_status(restore, with_conditions(_status(restore),
                                                              *CREATING_PVCS, now))
            return None
        if (target is None or not was_restored_by(restore, target)) and \
                await self._reconcile_target(restore, target, content, now):
            return None
        for dv_name in _status(restore).get("deletedDataVolumes") or []:
            if self._get(DATAVOLUMES, namespace, str(dv_name)) is not None:
                await self.kube.delete(DATAVOLUMES, namespace, str(dv_name))
        target = self._get(VMS, namespace, str(target_ref.get("name", "")))
        if target is None:
            return WAIT_SECONDS  # created a moment ago: the informer catches up
        if _status(target).get("restoreInProgress") == name:
            await self.kube.patch(VMS, namespace, _meta(target)["name"], {"status": {
                "restoreInProgress": None}}, subresource="status")
        await self.runtime.event(restore, "VirtualMachineRestoreComplete",
                                 f"Successfully completed VirtualMachineRestore {name}")
        status = with_conditions({**_status(restore), "complete": True,
                                  "restoreTime": now_rfc3339()},
                                 ("False", "Operation complete"),
                                 ("True", "Operation complete"), now)
        await self._write_status(restore, status)
        log.info("VM restored", restore=f"{namespace}/{name}", target=_meta(target)["name"])
        return None

    async def _own(self, restore: dict[str, Any], target: Obj | None) -> bool:
        """The target VM as owner and the restore's finalizer; True when written."""
        meta = dict(_meta(restore))
        changed = False
        if not meta.get("ownerReferences") and target is not None:
            meta["ownerReferences"] = [owner_reference(target)]
            changed = True
        finalizers = list(meta.get("finalizers") or [])
        if VM_RESTORE_FINALIZER not in finalizers:
            meta["finalizers"] = [*finalizers, VM_RESTORE_FINALIZER]
            changed = True
        if changed:
            namespace, name = key_of(restore)
            await self.kube.request("PUT", VM_RESTORES.path(namespace, name),
                                    body={**restore, "metadata": meta})
        return changed

    async def _finish_deletion(self, restore: dict[str, Any], target: Obj | None,
                               now: datetime) -> None:
        """`handleVMRestoreDeletion`."""
        if VM_RESTORE_FINALIZER not in (_meta(restore).get("finalizers") or []):
            return
        namespace, name = key_of(restore)
        if target is not None and _status(target).get("restoreInProgress") == name:
            await self.kube.patch(VMS, namespace, _meta(target)["name"], {"status": {
                "restoreInProgress": None}}, subresource="status")
        status = with_conditions(_status(restore), ("False", "VM restore is deleting"),
                                 ("False", "VM restore is deleting"), now)
        if status != dict(_status(restore)):
            await self._write_status(restore, status)
            return
        await self.kube.patch(VM_RESTORES, namespace, name, finalizers_patch(restore, [
            f for f in _meta(restore).get("finalizers") or [] if f != VM_RESTORE_FINALIZER]),
            kind="json")

    async def _target_not_ready(self, restore: dict[str, Any], target: Obj,
                                now: datetime) -> float | None:
        action, message, fail = not_ready_outcome(restore, now)
        namespace = key_of(restore)[0]
        if action == "fail":
            await self._write_status(restore, error_status(_status(restore), str(message), now,
                                                           fail=fail))
            await self.runtime.event(restore, "Operation failed",
                                     f"VirtualMachineRestore failed {message}", kind="Warning")
            return None
        uid = str(_meta(restore).get("uid", ""))
        if uid not in self._not_ready_reported:
            self._not_ready_reported.add(uid)
            await self.runtime.event(restore, "RestoreTargetNotReady",
                                     VMI_EXISTS if action == "wait" else str(message),
                                     kind="Warning")
        await self._write_status(restore, with_conditions(
            _status(restore), ("False", str(message)), ("False", str(message)), now))
        if action == "stop":
            await self.kube.request("PUT", VM_SUBRESOURCES.path(
                namespace, _meta(target)["name"], "stop"), body={})
        return WAIT_SECONDS

    async def _mark_in_progress(self, restore: Obj, target: Obj | None) -> None:
        """`UpdateRestoreInProgress`."""
        if target is None or was_restored_by(restore, target):
            return
        name = _meta(restore)["name"]
        current = _status(target).get("restoreInProgress")
        if current and current != name:
            raise RestoreError(f"vm restore {current} in progress")
        if not current:
            await self.kube.patch(VMS, key_of(dict(target))[0], _meta(target)["name"], {
                "status": {"restoreInProgress": name}}, subresource="status")

    async def _reconcile_claims(self, restore: dict[str, Any], target: Obj | None,
                                content: Obj, restores: list[dict[str, Any]]) -> bool:
        """The restore PVCs: created from their snapshots, bound. True while waiting."""
        namespace = key_of(restore)[0]
        waiting = False
        backups = {b.get("volumeName"): b for b in _spec(content).get("volumeBackups") or []}
        source_vm = snapshot_vm(content)
        for entry in restores:
            claim = self._get(PVCS, namespace, str(entry["persistentVolumeClaim"]))
            if claim is None:
                await self._create_claim(restore, target, backups[entry["volumeName"]],
                                         entry, source_vm)
                waiting = True
            elif _spec(restore).get("volumeRestorePolicy") == "InPlace" and \
                    not was_restored_by(restore, claim):
                await self._replace_in_place(claim)
                waiting = True
            elif _status(claim).get("phase") == "Pending":
                storage_class = self._get(STORAGE_CLASSES, "", str(
                    _spec(claim).get("storageClassName") or ""))
                if storage_class is None and _spec(claim).get("storageClassName"):
                    raise RestoreError(f"StorageClass {_spec(claim)['storageClassName']} "
                                       "does not exist")
                if (storage_class or {}).get("volumeBindingMode", "Immediate") == "Immediate":
                    waiting = True
            elif _status(claim).get("phase") != "Bound":
                raise RestoreError(f'PVC {namespace}/{_meta(claim)["name"]} in status '
                                   f'"{_status(claim).get("phase")}"')
        return waiting

    async def _create_claim(self, restore: Obj, target: Obj | None, backup: Obj,
                            entry: Obj, source_vm: Obj) -> None:
        namespace = key_of(dict(restore))[0]
        volume_snapshot = self._get(VOLUME_SNAPSHOTS, namespace,
                                    str(backup.get("volumeSnapshotName")))
        if volume_snapshot is None:
            raise RestoreError(f"missing volumeSnapshot {backup.get('volumeSnapshotName')}")
        claim = restore_claim(restore, str(entry["persistentVolumeClaim"]), volume_snapshot,
                              backup, source_vm)
        if entry.get("dataVolumeName"):
            claim["metadata"]["annotations"][POPULATED_FOR_ANNOTATION] = entry["dataVolumeName"]
        elif _spec(restore).get("volumeOwnershipPolicy") != "None":
            if target is not None:
                claim["metadata"]["ownerReferences"] = [owner_reference(target)]
            elif any(ref.get("kind") == "VirtualMachine" and ref.get("uid") == _meta(
                    source_vm).get("uid") for ref in _meta(
                    backup.get("persistentVolumeClaim")).get("ownerReferences") or []):
                claim["metadata"]["annotations"][OWNED_BY_VM_ANNOTATION] = \
                    _meta(restore)["name"]
        try:
            await self.kube.create(PVCS, claim)
        except KubeError as error:
            if error.status != 409:
                raise

    async def _replace_in_place(self, claim: Obj) -> None:
        """InPlace: the claim is deleted and made again from the snapshot; a DataVolume owning
        it is marked pre-populated first, so CDI does not make it again meanwhile."""
        namespace, name = key_of(dict(claim))
        for ref in _meta(claim).get("ownerReferences") or []:
            if ref.get("kind") == "DataVolume" and ref.get("controller"):
                await self.kube.patch(DATAVOLUMES, namespace, str(ref["name"]), {
                    "metadata": {"annotations": {PRE_POPULATED_ANNOTATION: "true"}}})
        # By uid: the informer may still show the old claim after the restored one was made
        # under the same name; deleting by name alone would delete the restored one (and its
        # volume), over and over.
        await self.kube.delete(PVCS, namespace, name, uid=str(_meta(claim).get("uid") or ""))

    async def _reconcile_target(self, restore: dict[str, Any], target: Obj | None,
                                content: Obj, now: datetime) -> bool:
        """`vmRestoreTarget.Reconcile`; True when it wrote something (and must come back)."""
        namespace, name = key_of(restore)
        source_vm = snapshot_vm(content)
        restores = list(_status(restore).get("restores") or [])
        named = with_datavolume_names(restores, restore, source_vm)
        for entry in named:
            if entry.get("dataVolumeName"):
                await self._hand_claim_to_datavolume(namespace, entry)
        if named != restores:
            await self._write_status(restore, with_conditions(
                {**_status(restore), "restores": named}, *UPDATING_TARGET, now))
            return True
        try:
            new_vm = restored_vm(restore, source_vm, target)
        except ValueError as error:
            raise RestoreError(str(error)) from error
        busy = False
        for template in (new_vm.get("spec") or {}).get("dataVolumeTemplates") or []:
            dv_name = str((template.get("metadata") or {}).get("name"))
            dv = self._get(DATAVOLUMES, namespace, dv_name)
            if dv is not None:
                busy = busy or _status(dv).get("phase") not in (
                    "Succeeded", "WaitForFirstConsumer", "PendingPopulation")
                continue
            claim = self._get(PVCS, namespace, dv_name)
            if claim is None:
                raise RestoreError(f"when creating restore dv pvc {namespace}/{dv_name} does "
                                   "not exist and should")
            if (_meta(claim).get("annotations") or {}).get(POPULATED_FOR_ANNOTATION) != \
                    dv_name or _meta(claim).get("ownerReferences"):
                continue
            await self.kube.create(DATAVOLUMES, restore_datavolume(template, namespace, name))
            busy = True
        status = dict(_status(restore))
        if target is not None:
            deleted = deleted_datavolumes(_spec(target).get("dataVolumeTemplates") or [],
                                          (new_vm.get("spec") or {}).get(
                                              "dataVolumeTemplates") or [])
            if deleted != list(status.get("deletedDataVolumes") or []):
                status["deletedDataVolumes"] = deleted or None
                if not deleted:
                    status.pop("deletedDataVolumes")
                busy = True
        if busy:
            await self._write_status(restore, with_conditions(status, *UPDATING_TARGET, now))
            return True
        if target is None:
            try:
                new_vm = apply_patches(new_vm, list(_spec(restore).get("patches") or []))
            except ValueError as error:
                raise RestoreError(str(error)) from error
            created = await self.kube.create(VMS, new_vm)
            await self._own_restored_claims(restore, created)
        else:
            await self.kube.request("PUT", VMS.path(namespace, _meta(target)["name"]),
                                    body=new_vm)
        await self._write_status(restore, with_conditions(status, *UPDATING_TARGET, now))
        return True

    async def _hand_claim_to_datavolume(self, namespace: str, entry: Obj) -> None:
        """`updatePVCPopulatedForAnnotation`: the DataVolume takes ownership of the claim."""
        claim = self._get(PVCS, namespace, str(entry["persistentVolumeClaim"]))
        if claim is None:
            raise RestoreError(f"pvc {namespace}/{entry['persistentVolumeClaim']} does not "
                               "exist and should")
        if (_meta(claim).get("annotations") or {}).get(POPULATED_FOR_ANNOTATION) == \
                entry["dataVolumeName"]:
            return
        meta = dict(_meta(claim))
        meta["annotations"] = {**(meta.get("annotations") or {}),
                               POPULATED_FOR_ANNOTATION: entry["dataVolumeName"]}
        meta.pop("ownerReferences", None)
        await self.kube.request("PUT", PVCS.path(namespace, meta["name"]),
                                body={**claim, "metadata": meta})

    async def _own_restored_claims(self, restore: Obj, vm: Obj) -> None:
        """`updateRestorePVCOwnership`: claims the source VM owned go to the new VM."""
        if _spec(restore).get("volumeOwnershipPolicy") == "None":
            return
        namespace = key_of(dict(restore))[0]
        for volume in ((_spec(vm).get("template") or {}).get("spec") or {}).get(
                "volumes") or []:
            claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            claim = self._get(PVCS, namespace, str(claim_name)) if claim_name else None
            annotations = dict(_meta(claim).get("annotations") or {})
            if claim is None or _meta(claim).get("ownerReferences") or \
                    annotations.get(OWNED_BY_VM_ANNOTATION) != _meta(restore)["name"]:
                continue
            annotations.pop(OWNED_BY_VM_ANNOTATION)
            meta = {**_meta(claim), "annotations": annotations,
                    "ownerReferences": [owner_reference(vm)]}
            await self.kube.request("PUT", PVCS.path(namespace, str(claim_name)),
                                    body={**claim, "metadata": meta})
