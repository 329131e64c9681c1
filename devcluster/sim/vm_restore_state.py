"""KubeVirt's VirtualMachineRestore logic as pure functions (pkg/storage/snapshot/restore.go).

Restore names (`restore-<restore uid>-<volume>` by default, `volumeRestorePolicy` InPlace or
PrefixTargetName, `volumeRestoreOverrides`), the restore PVC made from a VolumeBackup and
its VolumeSnapshot, the restored VM (spec from the snapshot, volumes renamed, a new VM
halted, an existing one keeping its run strategy, `restore.kubevirt.io/lastRestoreUID`),
the DataVolumes no longer used, the target's readiness policy and KubeVirt's messages.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import jsonpatch

from kubekit.quantity import compare_quantities

from .object_parts import metadata_of as _meta
from .object_parts import spec_of as _spec
from .object_parts import status_of as _status
from .vm_snapshot_state import condition, parse_time, update_condition

Obj = Mapping[str, Any]

RESTORE_NAME_ANNOTATION = "restore.kubevirt.io/name"
VM_RESTORE_FINALIZER = "snapshot.kubevirt.io/vmrestore-protection"
POPULATED_FOR_ANNOTATION = "cdi.kubevirt.io/storage.populatedFor"
CONTENT_TYPE_ANNOTATION = "cdi.kubevirt.io/storage.contentType"
PRE_POPULATED_ANNOTATION = "cdi.kubevirt.io/storage.prePopulated"
LAST_RESTORE_ANNOTATION = "restore.kubevirt.io/lastRestoreUID"
SOURCE_NAME_LABEL = "restore.kubevirt.io/source-vm-name"
SOURCE_NAMESPACE_LABEL = "restore.kubevirt.io/source-vm-namespace"
OWNED_BY_VM_ANNOTATION = "restore.kubevirt.io/owned-by-vm"
BACKEND_PVC_LABEL = "persistent-state-for"
DEFAULT_GRACE_PERIOD = timedelta(minutes=5)
FIRMWARE_UUID_NAMESPACE = uuid.UUID("6a1a24a1-4061-4607-8bf4-a3963d0c5895")  # firmware.go
ANNOTATION_PREFIXES_DROPPED = ("pv.kubernetes.io", "volume.beta.kubernetes.io",
                               "cdi.kubevirt.io", "volume.kubernetes.io",
                               "k8s.io/CloneRequest", "k8s.io/CloneOf")

WAIT_EVENTUALLY = ("Waiting for target VM to be powered off. Please stop the restore target "
                   "to proceed with restore")
STOP_TARGET = "Automatically stopping restore target for restore operation"
VMI_EXISTS = ("Restore target VMI still exists, please stop the restore target to proceed "
              "with restore")
TARGET_NOT_READY = "Restore target VMI must be powered off before restore operation"
RESTORE_TO_EXISTING = ("restore source and restore target are different but restore target "
                       "already exists")
GRACE_PERIOD_EXCEEDED = ("Restore target failed to be ready within 5m0s. Please power off the "
                         "target VM before attempting restore")
WAIT_GRACE_PERIOD = ("Waiting for target VM to be powered off. Please stop the restore target "
                     "to proceed with restore, or the operation will fail after 5m0s")


# --- state ----------------------------------------------------------------------------


def is_complete(restore: Obj) -> bool:
    return bool(_status(restore).get("complete"))


def is_failed(restore: Obj) -> bool:
    return any(c.get("type") == "Failure" for c in _status(restore).get("conditions") or [])


def is_progressing(restore: Obj) -> bool:
    return not is_complete(restore) and not is_failed(restore)


def with_conditions(status: Obj, progressing: tuple[str, str], ready: tuple[str, str],
                    now: datetime, *, failure: str | None = None) -> dict[str, Any]:
    """The status with Progressing and Ready (and Failure) set as `updateRestoreCondition`."""
    updated = copy.deepcopy(dict(status))
    conditions = list(updated.get("conditions") or [])
    conditions = update_condition(conditions, condition("Progressing", progressing[0],
                                                        progressing[1], now))
    conditions = update_condition(conditions, condition("Ready", ready[0], ready[1], now))
    if failure is not None:
        conditions = update_condition(conditions, condition("Failure", "True", failure, now))
    updated["conditions"] = conditions
    return updated


def initial_status(now: datetime) -> dict[str, Any]:
    return with_conditions({"complete": False},
                           ("True", "Initializing VirtualMachineRestore"),
                           ("False", "Initializing VirtualMachineRestore"), now)


def error_status(status: Obj, message: str, now: datetime, *, fail: bool = False
                 ) -> dict[str, Any]:
    """`doUpdateErrorWithFailure`."""
    return with_conditions(status, ("False", message), ("False", message), now,
                           failure=message if fail else None)


def annotation_value(restore: Obj) -> str:
    return f"{_meta(restore)['name']}-{_meta(restore)['uid']}"


def was_restored_by(restore: Obj, obj: Obj | None) -> bool:
    """`hasLastRestoreAnnotation`."""
    return (_meta(obj).get("annotations") or {}).get(LAST_RESTORE_ANNOTATION) == \
        annotation_value(restore)


def not_ready_outcome(restore: Obj, now: datetime) -> tuple[str, str | None, bool]:
    """`handleVMRestoreTargetNotReady`: (action, message, fail) for a target whose VMI still
    exists; action is "wait", "stop" or "fail"."""
    policy = _spec(restore).get("targetReadinessPolicy") or "WaitGracePeriod"
    if policy == "WaitEventually":
        return "wait", WAIT_EVENTUALLY, False
    if policy == "StopTarget":
        return "stop", STOP_TARGET, False
    if policy == "FailImmediate":
        return "fail", TARGET_NOT_READY, True
    if policy != "WaitGracePeriod":
        raise ValueError(f"unknown targetReadinessPolicy: {policy}")
    created = parse_time(str(_meta(restore).get("creationTimestamp")))
    if now > created + DEFAULT_GRACE_PERIOD:
        return "fail", GRACE_PERIOD_EXCEEDED, True
    return "wait", WAIT_GRACE_PERIOD, False


def snapshot_problem(namespace: str, name: str, snapshot: Obj | None) -> str | None:
    """`getVMSnapshot`'s refusals."""
    key = f"{namespace}/{name}"
    if snapshot is None:
        return f"VMSnapshot {key} does not exist"
    if _status(snapshot).get("phase") == "Failed":
        return f"VMSnapshot {key} failed and is invalid to use"
    if not _status(snapshot).get("readyToUse"):
        return f"VMSnapshot {key} not ready"
    if not _status(snapshot).get("virtualMachineSnapshotContentName"):
        return f"no snapshot content name in {key}"
    return None


def content_problem(namespace: str, name: str, content: Obj | None) -> str | None:
    key = f"{namespace}/{name}"
    if content is None:
        return f"VMSnapshotContent {key} does not exist"
    if not _status(content).get("readyToUse"):
        return f"VMSnapshotContent {key} not ready"
    return None


# --- names and volumes ------------------------------------------------------------------


def restore_volume_name(restore: Obj, volume_name: str, claim_name: str) -> str:
    """`restoreVolumeName`: an override, the policy's name, else restore-<uid>-<volume>."""
    for override in _spec(restore).get("volumeRestoreOverrides") or []:
        if override.get("volumeName") == volume_name and override.get("restoreName"):
            return str(override["restoreName"])
    policy = _spec(restore).get("volumeRestorePolicy")
    if policy == "InPlace":
        return claim_name
    if policy == "PrefixTargetName":
        return f"{(_spec(restore).get('target') or {}).get('name')}-{volume_name}"[:63]
    return f"restore-{_meta(restore)['uid']}-{volume_name}"


def snapshot_vm(content: Obj) -> Obj:
    vm: Obj = (_spec(content).get("source") or {}).get("virtualMachine") or {}
    return vm


def _volumes(vm: Obj) -> list[Obj]:
    volumes: list[Obj] = ((_spec(vm).get("template") or {}).get("spec") or {}).get(
        "volumes") or []
    return volumes


def volume_restores(restore: Obj, content: Obj) -> list[dict[str, Any]]:
    """`reconcileVolumeRestores`' list: one VolumeRestore per backup (memory dumps are not
    restored), keeping what the status already has for a volume."""
    no_restore = {str(v.get("name")) for v in _volumes(snapshot_vm(content))
                  if v.get("memoryDump")}
    existing = {r.get("volumeName"): r for r in _status(restore).get("restores") or []}
    restores: list[dict[str, Any]] = []
    for backup in _spec(content).get("volumeBackups") or []:
        name = str(backup.get("volumeName"))
        if name in no_restore:
            continue
        if name in existing:
            restores.append(dict(existing[name]))
            continue
        if not backup.get("volumeSnapshotName"):
            raise ValueError(f"VolumeSnapshotName missing {backup}")
        claim = backup.get("persistentVolumeClaim") or {}
        restores.append({
            "volumeName": name,
            "persistentVolumeClaim": restore_volume_name(restore, name,
                                                         str(_meta(claim).get("name", ""))),
            "volumeSnapshotName": backup["volumeSnapshotName"]})
    return restores


def restore_claim(restore: Obj, claim_name: str, volume_snapshot: Obj, backup: Obj,
                  source_vm: Obj) -> dict[str, Any]:
    """`CreateRestorePVCDefFromVMRestore`: the source claim's shape, from the snapshot."""
    source = backup.get("persistentVolumeClaim") or {}
    source_spec = _spec(source)
    resources = copy.deepcopy(dict(source_spec.get("resources") or {}))
    requests = dict(resources.get("requests") or {})
    restore_size = _status(volume_snapshot).get("restoreSize")
    if restore_size is not None and (
            "storage" not in requests or compare_quantities(requests["storage"],
                                                            restore_size) < 0):
        requests["storage"] = restore_size
    resources["requests"] = requests
    annotations = {key: value for key, value in (_meta(source).get("annotations") or {}).items()
                   if key == CONTENT_TYPE_ANNOTATION or not any(
                       key.startswith(prefix) for prefix in ANNOTATION_PREFIXES_DROPPED)}
    labels = {key: value for key, value in (_meta(source).get("labels") or {}).items()
              if key != BACKEND_PVC_LABEL}
    labels[SOURCE_NAME_LABEL] = str(_meta(source_vm).get("name", ""))
    labels[SOURCE_NAMESPACE_LABEL] = str(_meta(source_vm).get("namespace", ""))
    annotations[RESTORE_NAME_ANNOTATION] = str(_meta(restore)["name"])
    annotations[LAST_RESTORE_ANNOTATION] = annotation_value(restore)
    reference = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                 "name": str(backup["volumeSnapshotName"])}
    spec: dict[str, Any] = {"accessModes": list(source_spec.get("accessModes") or []),
                            "resources": resources, "dataSource": dict(reference),
                            "dataSourceRef": dict(reference)}
    for key in ("storageClassName", "volumeMode"):
        if source_spec.get(key) is not None:
            spec[key] = source_spec[key]
    claim: dict[str, Any] = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim_name, "namespace": _meta(restore).get("namespace", ""),
                     "labels": labels, "annotations": annotations},
        "spec": spec}
    for override in _spec(restore).get("volumeRestoreOverrides") or []:
        if override.get("volumeName") == backup.get("volumeName"):
            claim["metadata"]["labels"].update(override.get("labels") or {})
            claim["metadata"]["annotations"].update(override.get("annotations") or {})
    return claim


def owner_reference(vm: Obj) -> dict[str, Any]:
    """`Own`: the target VM as controller."""
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "name": _meta(vm)["name"], "uid": _meta(vm).get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def _template_index(name: str, vm: Obj) -> int:
    for index, template in enumerate(_spec(vm).get("dataVolumeTemplates") or []):
        if (template.get("metadata") or {}).get("name") == name:
            return index
    return -1


def with_datavolume_names(restores: Sequence[Obj], restore: Obj, source_vm: Obj
                          ) -> list[dict[str, Any]]:
    """`updateVMRestoreRestores`: a volume of a DataVolume template gets its DV's name."""
    updated = [dict(r) for r in restores]
    for entry in updated:
        for volume in _volumes(source_vm):
            if volume.get("name") != entry.get("volumeName") or not volume.get("dataVolume"):
                continue
            if _template_index(str(volume["dataVolume"].get("name")), source_vm) >= 0:
                entry["dataVolumeName"] = restore_volume_name(
                    restore, str(entry["volumeName"]), str(volume["dataVolume"].get("name")))
    return updated


def restored_vm(restore: Obj, source_vm: Obj, target: Obj | None) -> dict[str, Any]:
    """`generateRestoredVMSpec`: the target VM as the restore leaves it."""
    restores = {r.get("volumeName"): r for r in _status(restore).get("restores") or []}
    templates = copy.deepcopy(list(_spec(source_vm).get("dataVolumeTemplates") or []))
    volumes: list[dict[str, Any]] = []
    for volume in _volumes(source_vm):
        new = copy.deepcopy(dict(volume))
        entry = restores.get(new.get("name"))
        if new.get("memoryDump"):
            continue
        if entry is not None and new.get("persistentVolumeClaim"):
            new["persistentVolumeClaim"]["claimName"] = entry["persistentVolumeClaim"]
        elif entry is not None and new.get("dataVolume"):
            index = _template_index(str(new["dataVolume"].get("name")), source_vm)
            if index >= 0:
                if not entry.get("dataVolumeName"):
                    raise ValueError(f"DataVolumeName for dv {new['dataVolume'].get('name')} "
                                     "should have been updated already")
                templates[index]["metadata"]["name"] = entry["dataVolumeName"]
                new["dataVolume"]["name"] = entry["dataVolumeName"]
            else:
                new = {"name": new["name"], "persistentVolumeClaim": {
                    "claimName": entry["persistentVolumeClaim"]}}
        volumes.append(new)
    spec = copy.deepcopy(dict(_spec(source_vm)))
    if target is None:
        vm: dict[str, Any] = {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": (_spec(restore).get("target") or {}).get("name"),
                         "namespace": _meta(restore).get("namespace", "")},
            "spec": spec}
        for key in ("labels", "annotations"):
            if _meta(source_vm).get(key):
                vm["metadata"][key] = dict(_meta(source_vm)[key])
        if "running" in spec:
            spec["running"] = False
        else:
            spec["runStrategy"] = "Halted"
    else:
        vm = copy.deepcopy(dict(target))
        vm.pop("status", None)
        previous = _spec(target)
        if "running" in previous:
            spec["running"] = False
            spec.pop("runStrategy", None)
        else:
            spec["runStrategy"] = previous.get("runStrategy") or (
                "Always" if previous.get("running") else "Halted")
            spec.pop("running", None)
        vm["spec"] = spec
    spec["dataVolumeTemplates"] = templates
    if not templates:
        spec.pop("dataVolumeTemplates")
    spec.setdefault("template", {}).setdefault("spec", {})["volumes"] = volumes
    annotations = dict(vm["metadata"].get("annotations") or {})
    annotations[LAST_RESTORE_ANNOTATION] = annotation_value(restore)
    vm["metadata"]["annotations"] = annotations
    if _meta(source_vm).get("name") == vm["metadata"].get("name"):
        _set_legacy_firmware_uuid(vm)
    return vm


def _set_legacy_firmware_uuid(vm: dict[str, Any]) -> None:
    """`setLegacyFirmwareUUID`: a VM restored onto itself keeps the UUID KubeVirt derived
    from its name (uuid5 of the name in KubeVirt's namespace) when it had none."""
    domain = vm["spec"].setdefault("template", {}).setdefault("spec", {}).setdefault(
        "domain", {})
    firmware = domain.setdefault("firmware", {})
    if not firmware.get("uuid"):
        firmware["uuid"] = str(uuid.uuid5(FIRMWARE_UUID_NAMESPACE, str(vm["metadata"]["name"])))


def apply_patches(vm: dict[str, Any], patches: Sequence[str]) -> dict[str, Any]:
    """`patchVM`: the restore's JSON patches (strings, one operation each) on a new VM."""
    if not patches:
        return vm
    try:
        operations = [json.loads(p) for p in patches]
        patched: dict[str, Any] = jsonpatch.apply_patch(vm, operations)
    except (ValueError, jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
        raise ValueError(f"error patching VM {vm['metadata'].get('name')}: {error}") from error
    return patched


def deleted_datavolumes(old_templates: Sequence[Obj], new_templates: Sequence[Obj]
                        ) -> list[str]:
    """`findDatavolumesForDeletion`."""
    new = {(t.get("metadata") or {}).get("name") for t in new_templates}
    return [str((t.get("metadata") or {}).get("name")) for t in old_templates
            if (t.get("metadata") or {}).get("name") not in new]


def restore_datavolume(template: Obj, namespace: str, restore_name: str) -> dict[str, Any]:
    """`createDataVolume`: the DV of a renamed template, pre-populated by the restore PVC."""
    metadata = copy.deepcopy(dict(template.get("metadata") or {}))
    metadata["namespace"] = namespace
    annotations = dict(metadata.get("annotations") or {})
    annotations[RESTORE_NAME_ANNOTATION] = restore_name
    annotations[PRE_POPULATED_ANNOTATION] = "true"
    metadata["annotations"] = annotations
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": metadata, "spec": copy.deepcopy(dict(template.get("spec") or {}))}
