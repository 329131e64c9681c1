"""CDI DataVolume phases, conditions and the PVC CDI creates for a DataVolume (CDI 1.66).

Mirrors `pkg/controller/datavolume/controller-base.go updateStatus`, `import-controller.go
updateStatusPhase`, `clone-controller-base.go`, `conditions.go` and `util.go renderPvcSpec`.
The importer/cloner pod is not modelled as an object: its phase comes from the PVC
annotation `cdi.kubevirt.io/storage.pod.phase`, as CDI itself reads it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devcluster.sim.clone import ANN_CLONE_PHASE, clone_event, clone_phase
from devcluster.sim.vmi_status import rfc3339
from kubekit.quantity import format_decimal, to_bytes

Obj = Mapping[str, Any]

DEFAULT_FILESYSTEM_OVERHEAD = 0.06
ALIGN_BLOCK_SIZE = 1024 * 1024
ANN_POD_PHASE = "cdi.kubevirt.io/storage.pod.phase"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_DEFAULT_VIRT_CLASS = "storageclass.kubevirt.io/is-default-virt-class"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
#: Why a clone waits in CloneScheduled (the simulation's: CDI posts it as an Event).
ANN_CLONE_WAITING = "sim.vdcos.io/clone-waiting"
MSG_CLAIM_NOT_VALID = "PVC spec is missing accessMode and no storageClass to choose profile"
PROGRESS_NONE = "N/A"
PROGRESS_DONE = "100.0%"


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class DataVolumeState:
    """The DV status after one sync, plus the events to post on the DV."""

    phase: str
    conditions: list[dict[str, Any]]
    progress: str
    events: list[Event] = field(default_factory=list)
    claim_name: str | None = None

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"conditions": self.conditions, "progress": self.progress}
        if self.phase:
            status["phase"] = self.phase
        if self.claim_name:
            status["claimName"] = self.claim_name
        return status


class ClaimNotValid(ValueError):
    """CDI cannot render a PVC: no access modes and no storage class to get a profile."""


# --- PVC rendering ----------------------------------------------------------------------


def default_storage_class(classes: Sequence[Obj], *, kubevirt_content: bool = True) -> Obj | None:
    """The virt default class for KubeVirt content, else the cluster default (newest wins)."""

    def newest_with(annotation: str) -> Obj | None:
        marked = [
            c
            for c in classes
            if ((c.get("metadata") or {}).get("annotations") or {}).get(annotation) == "true"
        ]
        marked.sort(key=lambda c: str((c.get("metadata") or {}).get("creationTimestamp", "")))
        return marked[-1] if marked else None

    if kubevirt_content:
        virt = newest_with(ANN_DEFAULT_VIRT_CLASS)
        if virt is not None:
            return virt
    return newest_with(ANN_DEFAULT_CLASS)


def required_space(size: int, overhead: float = DEFAULT_FILESYSTEM_OVERHEAD) -> int:
    """`GetRequiredSpace`: round up to 1MiB, then size / (1 - overhead), rounded up."""
    aligned = math.ceil(size / ALIGN_BLOCK_SIZE) * ALIGN_BLOCK_SIZE
    return math.ceil(float(aligned) / (1 - overhead))


def _source_kind(dv: Obj) -> str:
    spec = dv.get("spec") or {}
    if spec.get("sourceRef"):
        return "sourceRef"
    return next(iter((spec.get("source") or {"blank": {}}).keys()), "blank")


def is_clone(dv: Obj) -> bool:
    return _source_kind(dv) in ("pvc", "sourceRef", "snapshot")


def build_pvc_for_datavolume(
    dv: Obj,
    storage_class: Obj | None,
    default_class: Obj | None,
    *,
    profile_access_modes: Sequence[str] = (),
    profile_volume_mode: str = "Filesystem",
    filesystem_overhead: float = DEFAULT_FILESYSTEM_OVERHEAD,
    preallocation: bool = False,
) -> dict[str, Any]:
    """The PVC CDI creates for `dv` (raises ClaimNotValid like CDI's ErrClaimNotValid).

    `storage_class` is the class named by the DV (None if unnamed or missing);
    `default_class` the one `default_storage_class` picked. The StorageProfile of the
    class supplies missing access modes / volume mode for the `storage` API.
    """
    metadata = dv["metadata"]
    spec = dv.get("spec") or {}
    content_type = str(spec.get("contentType") or "kubevirt")
    if spec.get("pvc") is not None:
        pvc_spec: dict[str, Any] = copy.deepcopy(dict(spec["pvc"]))
        volume_mode = str(pvc_spec.get("volumeMode") or "Filesystem")
    else:
        storage = dict(spec.get("storage") or {})
        class_name = storage.get("storageClassName")
        chosen = storage_class if class_name else default_class
        if not class_name and chosen is not None:
            class_name = chosen["metadata"]["name"]
        access_modes = list(storage.get("accessModes") or [])
        if not access_modes:
            if chosen is None or not profile_access_modes:
                raise ClaimNotValid(MSG_CLAIM_NOT_VALID)
            access_modes = list(profile_access_modes)
        volume_mode = str(storage.get("volumeMode") or profile_volume_mode)
        requested = ((storage.get("resources") or {}).get("requests") or {}).get("storage")
        if requested is None:
            raise ClaimNotValid("missing storage size")
        size = max(to_bytes(requested), ALIGN_BLOCK_SIZE)
        if volume_mode == "Filesystem" and content_type == "kubevirt":
            size = required_space(size, filesystem_overhead)
        else:
            size = math.ceil(size / ALIGN_BLOCK_SIZE) * ALIGN_BLOCK_SIZE
        pvc_spec = {
            "accessModes": access_modes,
            "resources": {"requests": {"storage": format_decimal(size)}},
            "volumeMode": volume_mode,
        }
        if class_name:
            pvc_spec["storageClassName"] = class_name
    snapshot = (spec.get("source") or {}).get("snapshot")
    if snapshot is not None:
        # CDI restores a `source.snapshot` DataVolume from the CSI snapshot itself.
        pvc_spec["dataSourceRef"] = {"apiGroup": "snapshot.storage.k8s.io",
                                     "kind": "VolumeSnapshot", "name": str(snapshot["name"])}
    labels: dict[str, str] = {"app": "containerized-data-importer"}
    if volume_mode == "Filesystem":
        labels["alerts.k8s.io/KubePersistentVolumeFillingUp"] = "disabled"
    labels.update(metadata.get("labels") or {})
    annotations: dict[str, str] = dict(metadata.get("annotations") or {})
    annotations.update(
        {
            "cdi.kubevirt.io/storage.pod.restarts": "0",
            "cdi.kubevirt.io/storage.contentType": content_type,
            "cdi.kubevirt.io/storage.preallocation.requested": str(
                bool(spec.get("preallocation", preallocation))
            ).lower(),
            "cdi.kubevirt.io/createdForDataVolume": str(metadata.get("uid", "")),
        }
    )
    annotations.update(_source_annotations(dv))
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata.get("namespace", "default"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "cdi.kubevirt.io/v1beta1",
                    "kind": "DataVolume",
                    "name": metadata["name"],
                    "uid": metadata.get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pvc_spec,
    }


def _source_annotations(dv: Obj) -> dict[str, str]:
    spec = dv.get("spec") or {}
    source = spec.get("source") or {}
    namespace = str(dv["metadata"].get("namespace", "default"))
    if "http" in source:
        return {
            "cdi.kubevirt.io/storage.import.source": "http",
            "cdi.kubevirt.io/storage.import.endpoint": str(source["http"].get("url", "")),
        }
    if "registry" in source:
        return {
            "cdi.kubevirt.io/storage.import.source": "registry",
            "cdi.kubevirt.io/storage.import.endpoint": str(source["registry"].get("url", "")),
        }
    if "pvc" in source:
        src = source["pvc"]
        return {"k8s.io/CloneRequest": f"{src.get('namespace', namespace)}/{src.get('name')}"}
    if spec.get("sourceRef"):
        ref = spec["sourceRef"]
        ref_key = f"{ref.get('namespace', namespace)}/{ref.get('name')}"
        return {"cdi.kubevirt.io/storage.sourceRef": ref_key}
    return {"cdi.kubevirt.io/storage.import.source": "none"}


def build_pv_for_claim(pvc: Obj, *, node_name: str | None = None) -> dict[str, Any]:
    """A PersistentVolume the simulated provisioner creates and pre-binds to `pvc`."""
    metadata = pvc["metadata"]
    spec = pvc.get("spec") or {}
    name = f"pvc-{metadata.get('uid', metadata['name'])}"
    pv_spec: dict[str, Any] = {
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "capacity": {
            "storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
        },
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "name": metadata["name"],
            "namespace": metadata.get("namespace", "default"),
            "uid": metadata.get("uid", ""),
        },
        "persistentVolumeReclaimPolicy": "Delete",
        "storageClassName": spec.get("storageClassName", ""),
        "volumeMode": spec.get("volumeMode", "Filesystem"),
        "hostPath": {"path": f"/var/lib/devcluster/volumes/{name}", "type": "DirectoryOrCreate"},
    }
    if node_name:
        pv_spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/hostname",
                                "operator": "In",
                                "values": [node_name],
                            }
                        ]
                    }
                ]
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "annotations": {"pv.kubernetes.io/provisioned-by": "devcluster"},
        },
        "spec": pv_spec,
    }


# --- the phase machine ------------------------------------------------------------------


def _clone_state(
    dv: Obj,
    pvc: Obj,
    current_phase: str,
    current_progress: str,
    progress: str | None,
    conditions: list[dict[str, Any]],
) -> DataVolumeState:
    """A DataVolume whose claim the clone populator works on (clone-controller-base.go)."""
    annotations = pvc["metadata"].get("annotations") or {}
    phase = clone_phase(annotations)
    target = f"{pvc['metadata'].get('namespace', 'default')}/{pvc['metadata']['name']}"
    events: list[Event] = []
    if phase != current_phase:
        event = clone_event(phase, str(annotations.get("k8s.io/CloneRequest") or ""), target)
        if event is not None:
            events.append(Event("Normal", *event))
    shown = PROGRESS_DONE if phase == "Succeeded" else progress or current_progress
    return DataVolumeState(phase=phase, conditions=conditions, progress=shown, events=events,
                           claim_name=str(pvc["metadata"]["name"]))



def _condition(
    type_: str, status: str, reason: str, message: str, now: datetime, previous: Obj | None
) -> dict[str, Any]:
    stamp = rfc3339(now)
    transition = stamp
    if previous is not None and previous.get("status") == status:
        transition = str(previous.get("lastTransitionTime") or stamp)
    result: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": transition,
    }
    if reason:
        result["reason"] = reason
    if message:
        result["message"] = message
    return result


def _previous(dv: Obj, type_: str) -> Obj | None:
    for item in (dv.get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            found: Obj = item
            return found
    return None


def _is_wffc(storage_class: Obj | None) -> bool:
    return (
        bool(storage_class)
        and (storage_class or {}).get("volumeBindingMode") == "WaitForFirstConsumer"
    )


def next_datavolume_state(
    dv: Obj,
    pvc: Obj | None,
    storage_class: Obj | None,
    progress: str | None,
    now: datetime,
    *,
    claim_not_valid: bool = False,
) -> DataVolumeState:
    """One CDI sync of `dv` given its PVC (None if not created) and the PVC's class.

    `progress` is the importer's scraped progress ("45.32%") while it runs.
    `claim_not_valid` says CDI could not render the PVC (see build_pvc_for_datavolume).
    """
    current_phase = str((dv.get("status") or {}).get("phase") or "")
    current_progress = str((dv.get("status") or {}).get("progress") or PROGRESS_NONE)
    clone = is_clone(dv)

    def conditions(
        bound: tuple[str, str, str], ready: tuple[str, str, str], running: tuple[str, str, str]
    ) -> list[dict[str, Any]]:
        return [
            _condition("Bound", *bound, now, _previous(dv, "Bound")),
            _condition("Ready", *ready, now, _previous(dv, "Ready")),
            _condition("Running", *running, now, _previous(dv, "Running")),
        ]

    if pvc is None:
        if claim_not_valid:
            return DataVolumeState(
                phase=current_phase,
                conditions=conditions(
                    ("False", "ErrClaimNotValid", MSG_CLAIM_NOT_VALID),
                    ("False", "ErrClaimNotValid", MSG_CLAIM_NOT_VALID),
                    ("False", "", ""),
                ),
                progress=current_progress,
                events=[Event("Warning", "ErrClaimNotValid", MSG_CLAIM_NOT_VALID)],
            )
        return DataVolumeState(
            phase="Pending",
            conditions=conditions(
                ("False", "NotFound", "No PVC found"), ("False", "", ""), ("False", "", "")
            ),
            progress=current_progress,
        )

    pvc_name = str(pvc["metadata"]["name"])
    pvc_phase = (pvc.get("status") or {}).get("phase") or "Pending"
    annotations = pvc["metadata"].get("annotations") or {}
    events: list[Event] = []
    if pvc_phase == "Lost":
        message = f"PVC {pvc_name} lost"
        if current_phase != "Failed":
            events.append(Event("Warning", "ErrClaimLost", message))
        return DataVolumeState(
            phase="Failed",
            conditions=conditions(
                ("False", "ClaimLost", message), ("False", "", ""), ("False", "", "")
            ),
            progress=current_progress,
            events=events,
            claim_name=pvc_name,
        )
    if pvc_phase != "Bound":
        phase = "Pending"
        if _is_wffc(storage_class) and not annotations.get(ANN_SELECTED_NODE):
            phase = "WaitForFirstConsumer"
        return DataVolumeState(
            phase=phase,
            conditions=conditions(
                ("False", "Pending", f"PVC {pvc_name} Pending"),
                ("False", "", ""),
                ("False", "", ""),
            ),
            progress=current_progress,
            claim_name=pvc_name,
        )

    bound = ("True", "Bound", f"PVC {pvc_name} Bound")
    if clone and annotations.get(ANN_CLONE_PHASE) is not None:
        return _clone_state(dv, pvc, current_phase, current_progress, progress, conditions(
            bound, ("True", "", "") if clone_phase(annotations) == "Succeeded"
            else ("False", "", ""),
            ("False", "Completed", "") if clone_phase(annotations) == "Succeeded"
            else ("True", "", "") if clone_phase(annotations) != "CloneScheduled"
            else ("False", str(annotations.get(ANN_CLONE_WAITING) or ""), ""),
        ))
    pod_phase = annotations.get(ANN_POD_PHASE)
    # A claim populated for the DataVolume (a KubeVirt restore's) is adopted as done (CDI's
    # pvcPopulated).
    populated = annotations.get("cdi.kubevirt.io/storage.populatedFor") == dv["metadata"]["name"]
    if current_phase == "Succeeded" or pod_phase == "Succeeded" or populated:
        if current_phase != "Succeeded":
            if clone:
                events.append(
                    Event("Normal", "CloneSucceeded", f"Successfully cloned into PVC {pvc_name}")
                )
            else:
                events.append(
                    Event("Normal", "ImportSucceeded", f"Successfully imported into PVC {pvc_name}")
                )
        return DataVolumeState(
            phase="Succeeded",
            conditions=conditions(bound, ("True", "", ""), ("False", "Completed", "")),
            progress=PROGRESS_DONE,
            events=events,
            claim_name=pvc_name,
        )
    if pod_phase == "Pending":
        phase = "CloneScheduled" if clone else "ImportScheduled"
        if current_phase != phase:
            source = annotations.get("k8s.io/CloneRequest", "")
            message = (
                f"Cloning from {source} into {pvc_name} scheduled"
                if clone
                else f"Import into {pvc_name} scheduled"
            )
            events.append(Event("Normal", phase, message))
        return DataVolumeState(
            phase=phase,
            conditions=conditions(bound, ("False", "", ""), ("False", "", "")),
            progress=current_progress,
            events=events,
            claim_name=pvc_name,
        )
    if pod_phase in ("Running", "Failed"):
        phase = "CloneInProgress" if clone else "ImportInProgress"
        if pod_phase == "Running":
            running = ("True", "Pod is running", "")
            ready = ("False", "TransferRunning", "")
        else:
            # A failed importer is retried; the DV stays in progress.
            running = ("False", "Error", "")
            ready = ("False", "", "")
        if current_phase != phase:
            events.append(
                Event(
                    "Normal",
                    phase,
                    f"{'Cloning' if clone else 'Import'} into {pvc_name} in progress",
                )
            )
        return DataVolumeState(
            phase=phase,
            conditions=conditions(bound, ready, running),
            progress=progress or current_progress,
            events=events,
            claim_name=pvc_name,
        )
    return DataVolumeState(
        phase="PVCBound",
        conditions=conditions(bound, ("False", "", ""), ("False", "", "")),
        progress=current_progress,
        events=events,
        claim_name=pvc_name,
    )
