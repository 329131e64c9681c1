"""KubeVirt's VirtualMachineSnapshot logic as pure functions (snapshot.kubevirt.io/v1beta1).

Mirrors `pkg/storage/snapshot/snapshot.go`, `source.go` and `util.go` of KubeVirt: the
source VM's lock, the VirtualMachineSnapshotContent (the VM spec and one VolumeBackup per
snapshottable claim), the content's status from its VolumeSnapshots, the snapshot's status
(phase, conditions, indications, snapshotVolumes), and the VM's `volumeSnapshotStatuses`.
Messages and reasons are KubeVirt's.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .object_parts import metadata_of as _meta
from .object_parts import spec_of as _spec
from .object_parts import status_of as _status

Obj = Mapping[str, Any]

VM_SNAPSHOT_FINALIZER = "snapshot.kubevirt.io/vmsnapshot-protection"
VM_SNAPSHOT_CONTENT_FINALIZER = "snapshot.kubevirt.io/vmsnapshotcontent-protection"
SOURCE_FINALIZER = "snapshot.kubevirt.io/snapshot-source-protection"
SOURCE_NAME_LABEL = "snapshot.kubevirt.io/source-vm-name"
SOURCE_NAMESPACE_LABEL = "snapshot.kubevirt.io/source-vm-namespace"
DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"
DEFAULT_FAILURE_DEADLINE = timedelta(minutes=5)
DEADLINE_EXCEEDED = "snapshot deadline exceeded"

ONLINE = "Online"
GUEST_AGENT = "GuestAgent"
NO_GUEST_AGENT = "NoGuestAgent"
PAUSED = "Paused"
PARTIAL = "PartialSnapshot"
INDICATION_MESSAGES = {
    ONLINE: "Snapshot taken while the VM was running. Consistency depends on guest-agent "
            "quiescing.",
    GUEST_AGENT: "Guest agent was active and attempted to quiesce the filesystem for "
                 "application consistency.",
    NO_GUEST_AGENT: "Guest agent was not available. Snapshot is crash-consistent and may not "
                    "be application-consistent.",
    PAUSED: "Snapshot taken while the VM was paused. Snapshot is crash-consistent and may "
            "not be application-consistent.",
    PARTIAL: "Not all snapshotable volumes were included in the snapshot. Check "
             "status.snapshotVolumes for excluded volumes and VM VolumeSnapshotStatus for "
             "details.",
}


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- conditions (util.go) ----------------------------------------------------------------


def condition(type_: str, status: str, reason: str, now: datetime) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason,
            "lastTransitionTime": rfc3339(now), "lastProbeTime": None}


def update_condition(conditions: Sequence[Obj], new: dict[str, Any]) -> list[dict[str, Any]]:
    """`updateCondition`: replaced only when its status or reason changes (the transition
    time then moves); appended when absent."""
    updated = [dict(c) for c in conditions]
    for index, existing in enumerate(updated):
        if existing.get("type") == new["type"]:
            if (existing.get("status"), existing.get("reason")) != (new["status"],
                                                                    new["reason"]):
                updated[index] = new
            return updated
    return [*updated, new]


# --- durations (metav1.Duration) ---------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0}


def parse_duration(value: str) -> timedelta:
    """Go's `time.ParseDuration` for the forms a Duration field holds ("5m", "1h30m0s")."""
    text = value.strip()
    if text in ("0", ""):
        return timedelta(0)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"time: invalid duration {value!r}")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def failure_deadline(snapshot: Obj) -> timedelta:
    value = _spec(snapshot).get("failureDeadline")
    return DEFAULT_FAILURE_DEADLINE if value is None else parse_duration(str(value))


# --- the snapshot's state ----------------------------------------------------------------


def is_failed(snapshot: Obj) -> bool:
    return _status(snapshot).get("phase") == "Failed"


def is_succeeded(snapshot: Obj) -> bool:
    return _status(snapshot).get("phase") == "Succeeded"


def is_progressing(snapshot: Obj) -> bool:
    return not is_failed(snapshot) and not is_succeeded(snapshot)


def is_ready(obj: Obj | None) -> bool:
    return bool(_status(obj).get("readyToUse"))


def is_deleting(obj: Obj | None) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def seconds_until_deadline(snapshot: Obj, now: datetime) -> float | None:
    """None when no deadline applies (failureDeadline 0)."""
    deadline = failure_deadline(snapshot)
    if deadline == timedelta(0):
        return None
    created = parse_time(str(_meta(snapshot).get("creationTimestamp") or rfc3339(now)))
    return (created + deadline - now).total_seconds()


def deadline_exceeded(snapshot: Obj, now: datetime) -> bool:
    if is_failed(snapshot):
        return True
    if not is_progressing(snapshot):
        return False
    left = seconds_until_deadline(snapshot, now)
    return left is not None and left < 0


def is_terminating(snapshot: Obj, now: datetime) -> bool:
    return is_deleting(snapshot) or deadline_exceeded(snapshot, now)


def deletes_content(snapshot: Obj) -> bool:
    return _spec(snapshot).get("deletionPolicy") in (None, "Delete")


def should_delete_content(snapshot: Obj, content: Obj) -> bool:
    return deletes_content(snapshot) or not is_ready(content)


def can_unlock_source(snapshot: Obj, content: Obj | None, now: datetime) -> bool:
    content_handled = content is None or not should_delete_content(snapshot, content)
    return not is_progressing(snapshot) or (is_terminating(snapshot, now) and content_handled)


def content_name(snapshot: Obj) -> str:
    named = _status(snapshot).get("virtualMachineSnapshotContentName")
    return str(named) if named else f"vmsnapshot-content-{_meta(snapshot)['uid']}"


# --- the source VM ------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceState:
    """`sourceState`: what the VM and its VMI are now."""

    online: bool
    paused: bool
    guest_agent: bool
    frozen: bool
    locked: bool
    lock_message: str


def _has_condition(obj: Obj | None, type_: str, status: str | None = None) -> bool:
    return any(c.get("type") == type_ and (status is None or c.get("status") == status)
               for c in _status(obj).get("conditions") or [])


def source_state(vm: Obj, vmi: Obj | None, snapshot: Obj) -> SourceState:
    """`UpdateSourceState`."""
    locked = _status(vm).get("snapshotInProgress") == _meta(snapshot)["name"] and \
        SOURCE_FINALIZER in (_meta(vm).get("finalizers") or [])
    return SourceState(
        online=vmi is not None,
        paused=_has_condition(vmi, "Paused", "True"),
        # KubeVirt checks the condition's presence only (virt-handler removes it on loss).
        guest_agent=_has_condition(vmi, "AgentConnected"),
        frozen=_status(vmi).get("fsFreezeStatus") == "frozen",
        locked=locked,
        lock_message="Source locked and operation in progress" if locked
        else "Source not locked")


def vm_claims(vm: Obj) -> dict[str, str]:
    """`GetPVCsFromVolumes`: volume name -> claim name of the VM's PVC and DataVolume
    volumes (memory dumps included), in the template's order."""
    claims: dict[str, str] = {}
    for volume in ((_spec(vm).get("template") or {}).get("spec") or {}).get("volumes") or []:
        for key, name_field in (("persistentVolumeClaim", "claimName"),
                                ("dataVolume", "name"), ("memoryDump", "claimName")):
            if volume.get(key) is not None:
                claims[str(volume["name"])] = str(volume[key].get(name_field, ""))
    return claims


def is_snapshottable(volume: Obj) -> bool:
    return any(volume.get(key) is not None
               for key in ("persistentVolumeClaim", "dataVolume", "memoryDump"))


def volume_problem(namespace: str, vm_name: str, claims: Sequence[str],
                   pvcs: Callable[[str], Obj | None],
                   populated: Callable[[Obj], bool]) -> str | None:
    """`verifyVolumes`: the suffix KubeVirt adds to the lock message when a claim is not
    ready to be snapshotted, or None."""
    for claim_name in sorted(set(claims)):
        pvc = pvcs(claim_name)
        if pvc is None:
            problem = "volume doesnt exist"
        elif is_deleting(pvc):
            problem = "volume is being deleted"
        elif _status(pvc).get("phase") != "Bound":
            problem = "volume not bound"
        elif not populated(pvc):
            problem = "volume not populated"
        else:
            continue
        return f" source {namespace}/{vm_name} {problem}: {claim_name}"
    return None


def lock_blocker(vm: Obj, snapshot: Obj, volume_message: str | None) -> str | None:
    """Why the source cannot be locked now (the lock message's suffix), or None."""
    if volume_message:
        return volume_message
    in_progress = _status(vm).get("snapshotInProgress")
    if in_progress and in_progress != _meta(snapshot)["name"]:
        return f' snapshot "{in_progress}" in progress'
    return None


def snapshot_class_name(storage_class_name: str, storage_classes: Callable[[str], Obj | None],
                        snapshot_classes: Sequence[Obj], profile_snapshot_class: str | None,
                        ) -> str:
    """`getVolumeSnapshotClassName`: "" when the class's driver has none; raises ValueError
    when several match and none is the default."""
    storage_class = storage_classes(storage_class_name)
    if storage_class is None:
        return ""
    if profile_snapshot_class:
        return profile_snapshot_class if any(
            _meta(c).get("name") == profile_snapshot_class for c in snapshot_classes) else ""
    matches = [c for c in snapshot_classes if c.get("driver") == storage_class.get(
        "provisioner")]
    if not matches:
        return ""
    if len(matches) == 1:
        return str(_meta(matches[0])["name"])
    for match in matches:
        if DEFAULT_SNAPSHOT_CLASS_ANNOTATION in (_meta(match).get("annotations") or {}):
            return str(_meta(match)["name"])
    raise ValueError(f"{len(matches)} matching VolumeSnapshotClasses for {storage_class_name}")


def simplified_meta(meta: Obj) -> dict[str, Any]:
    """`getSimplifiedMetaObject`: the object's metadata without managedFields."""
    kept = copy.deepcopy(dict(meta))
    kept.pop("managedFields", None)
    return kept


def volume_backups(snapshot: Obj, vm: Obj, pvcs: Callable[[str], Obj | None],
                   class_for_claim: Callable[[Obj], str]) -> list[dict[str, Any]]:
    """`createContent`'s VolumeBackups: one per bound claim whose class can snapshot."""
    backups = []
    for volume_name, claim_name in vm_claims(vm).items():
        pvc = pvcs(claim_name)
        if pvc is None or _status(pvc).get("phase") != "Bound" or \
                not _spec(pvc).get("storageClassName") or not class_for_claim(pvc):
            continue
        backups.append({
            "volumeName": volume_name,
            "persistentVolumeClaim": {"metadata": simplified_meta(_meta(pvc)),
                                      "spec": copy.deepcopy(dict(_spec(pvc)))},
            "volumeSnapshotName": f"vmsnapshot-{_meta(snapshot)['uid']}-volume-{volume_name}",
        })
    return backups


def source_spec(vm: Obj) -> dict[str, Any]:
    """`Spec()`: the VM as the content keeps it (its spec; status emptied)."""
    return {"virtualMachine": {"metadata": simplified_meta(_meta(vm)),
                               "spec": copy.deepcopy(dict(_spec(vm))), "status": {}}}


def content_for(snapshot: Obj, vm: Obj, backups: list[dict[str, Any]]) -> dict[str, Any]:
    meta = _meta(snapshot)
    content: dict[str, Any] = {
        "apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshotContent",
        "metadata": {"name": content_name(snapshot), "namespace": meta.get("namespace", ""),
                     "finalizers": [VM_SNAPSHOT_CONTENT_FINALIZER]},
        "spec": {"virtualMachineSnapshotName": meta["name"], "source": source_spec(vm)},
    }
    if backups:
        content["spec"]["volumeBackups"] = backups
    return content


def volume_snapshot_for(content: Obj, backup: Obj, snapshot_class: str) -> dict[str, Any]:
    """`createVolumeSnapshot`: owned by the content, labelled with the source VM."""
    vm_meta = ((_spec(content).get("source") or {}).get("virtualMachine") or {}).get(
        "metadata") or {}
    meta = _meta(content)
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {
            "name": backup["volumeSnapshotName"], "namespace": meta.get("namespace", ""),
            "labels": {SOURCE_NAME_LABEL: vm_meta.get("name", ""),
                       SOURCE_NAMESPACE_LABEL: vm_meta.get("namespace", "")},
            "ownerReferences": [{"apiVersion": "snapshot.kubevirt.io/v1beta1",
                                 "kind": "VirtualMachineSnapshotContent",
                                 "name": meta["name"], "uid": meta.get("uid", ""),
                                 "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"source": {"persistentVolumeClaimName":
                            backup["persistentVolumeClaim"]["metadata"]["name"]},
                 "volumeSnapshotClassName": snapshot_class},
    }


def content_status(content: Obj, volume_snapshots: Mapping[str, Obj | None], *,
                   content_created_before: bool, now: datetime) -> dict[str, Any]:
    """`updateVMSnapshotContent`'s status once every VolumeSnapshot is created (or found
    missing): readyToUse, creationTime, volumeSnapshotStatus, error."""
    status = dict(_status(content))
    statuses: list[dict[str, Any]] = []
    missing: list[str] = []
    for backup in _spec(content).get("volumeBackups") or []:
        name = backup.get("volumeSnapshotName")
        if not name:
            continue
        volume_snapshot = volume_snapshots.get(str(name))
        if volume_snapshot is None:
            missing.append(str(name))
            continue
        entry: dict[str, Any] = {"volumeSnapshotName": name}
        vs_status = _status(volume_snapshot)
        if "readyToUse" in vs_status:
            entry["readyToUse"] = vs_status["readyToUse"]
        if vs_status.get("creationTime"):
            entry["creationTime"] = vs_status["creationTime"]
        if vs_status.get("error"):
            entry["error"] = dict(vs_status["error"])
        statuses.append(entry)
    created = ready = True
    message = ""
    if missing and content_created_before:
        created = ready = False
        message = f"VolumeSnapshots ({','.join(missing)}) missing"
    else:
        for entry in statuses:
            created = created and bool(entry.get("creationTime"))
            ready = ready and bool(entry.get("readyToUse"))
            error = entry.get("error") or {}
            if error.get("message"):
                message = f"VolumeSnapshot {entry['volumeSnapshotName']} error: " \
                          f"{error['message']}"
                break
    if created and not status.get("creationTime"):
        status["creationTime"] = rfc3339(now)
    if message and not ready:
        if (status.get("error") or {}).get("message") != message:
            status["error"] = {"message": message, "time": rfc3339(now)}
    elif not message:
        status.pop("error", None)
    status["readyToUse"] = ready
    if statuses:
        status["volumeSnapshotStatus"] = statuses
    else:
        status.pop("volumeSnapshotStatus", None)
    return status


def indications(source: SourceState) -> list[str]:
    """`updateSnapshotSourceIndications`: sorted, as KubeVirt's sets.List."""
    if not source.online:
        return []
    found = {ONLINE}
    if source.paused:
        found.add(PAUSED)
    elif source.guest_agent:
        found.add(GUEST_AGENT)
    else:
        found.add(NO_GUEST_AGENT)
    return sorted(found)


def snapshot_volumes(content: Obj | None, snapshottable: Callable[[Obj], bool]
                     ) -> tuple[dict[str, list[str]], bool]:
    """`updateSnapshotSnapshotableVolumes`: included/excluded volume names of the snapshotted
    VM, and whether a snapshottable one was left out (the PartialSnapshot indication)."""
    vm = (_spec(content).get("source") or {}).get("virtualMachine") or {}
    backed_up = {b.get("volumeName") for b in _spec(content).get("volumeBackups") or []}
    included: list[str] = []
    excluded: list[str] = []
    partial = False
    for volume in ((_spec(vm).get("template") or {}).get("spec") or {}).get("volumes") or []:
        if volume.get("name") in backed_up:
            included.append(str(volume["name"]))
        else:
            excluded.append(str(volume["name"]))
            partial = partial or snapshottable(volume)
    lists: dict[str, list[str]] = {}
    if included:
        lists["includedVolumes"] = included
    if excluded:
        lists["excludedVolumes"] = excluded
    return lists, partial


def snapshot_status(snapshot: Obj, source: SourceState | None, source_uid: str | None,
                    content: Obj | None, now: datetime,
                    snapshottable: Callable[[Obj], bool] = is_snapshottable,
                    ) -> dict[str, Any]:
    """`updateSnapshotStatus`: the VirtualMachineSnapshot's whole status."""
    status: dict[str, Any] = copy.deepcopy(dict(_status(snapshot))) or {"readyToUse": False}
    conditions = list(status.get("conditions") or [])
    if source_uid is not None:
        status["sourceUID"] = source_uid
    if content is not None and _status(content):
        content_status_ = _status(content)
        status["virtualMachineSnapshotContentName"] = _meta(content)["name"]
        for key in ("creationTime", "readyToUse", "error"):
            if key in content_status_:
                status[key] = copy.deepcopy(content_status_[key])
            else:
                status.pop(key, None)
    with_status = {**snapshot, "status": status}
    if deadline_exceeded(with_status, now):
        status["phase"] = "Failed"
        conditions = update_condition(conditions, condition("Failure", "True",
                                                            DEADLINE_EXCEEDED, now))
        conditions = update_condition(conditions, condition("Progressing", "False",
                                                            "Operation failed", now))
    elif is_succeeded(with_status) or status.get("creationTime"):
        status["phase"] = "Succeeded"
        conditions = update_condition(conditions, condition("Progressing", "False",
                                                            "Operation complete", now))
        if content is not None:
            lists, partial = snapshot_volumes(content, snapshottable)
            status["snapshotVolumes"] = lists
            if partial:
                found = list(status.get("indications") or [])
                if PARTIAL not in found:
                    status["indications"] = [*found, PARTIAL]
                sources = list(status.get("sourceIndications") or [])
                if not any(s.get("indication") == PARTIAL for s in sources):
                    status["sourceIndications"] = [
                        *sources, {"indication": PARTIAL, "message": INDICATION_MESSAGES[PARTIAL]}]
    else:
        status["phase"] = "InProgress"
        if source is not None:
            conditions = update_condition(conditions, condition(
                "Progressing", "True" if source.locked else "False", source.lock_message, now))
            found = indications(source)
            if found:
                status["indications"] = found
                status["sourceIndications"] = [
                    {"indication": i, "message": INDICATION_MESSAGES[i]} for i in found]
            else:
                status.pop("indications", None)
                status.pop("sourceIndications", None)
        else:
            conditions = update_condition(conditions, condition(
                "Progressing", "False", "Source does not exist", now))
        if is_deleting(snapshot):
            status["phase"] = "Deleting"
            conditions = update_condition(conditions, condition(
                "Progressing", "False", "VM snapshot is deleting", now))
    ready = bool(status.get("readyToUse"))
    conditions = update_condition(conditions, condition(
        "Ready", "True" if ready else "False", "Ready" if ready else "Not ready", now))
    if status.get("error"):
        conditions = update_condition(conditions, condition("Progressing", "False",
                                                            "In error state", now))
    status["conditions"] = conditions
    return status


def volume_snapshot_status(volume: Obj, storage_class: str | None, class_error: str | None,
                           snapshot_class: str) -> dict[str, Any]:
    """`getVolumeSnapshotStatus`: one entry of the VM's `status.volumeSnapshotStatuses`."""
    name = str(volume.get("name", ""))
    if not is_snapshottable(volume):
        return {"name": name, "enabled": False,
                "reason": f"Snapshot is not supported for this volumeSource type [{name}]"}
    if class_error is not None:
        return {"name": name, "enabled": False, "reason": class_error}
    if not snapshot_class:
        return {"name": name, "enabled": False,
                "reason": f"No VolumeSnapshotClass: Volume snapshots are not configured for "
                          f"this StorageClass [{storage_class or ''}] [{name}]"}
    return {"name": name, "enabled": True}
