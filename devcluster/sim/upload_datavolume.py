"""A DataVolume with `source: upload: {}` (CDI's upload-controller, `updateStatusPhase`):
UploadScheduled while its upload server pod starts, UploadReady once the pod is ready for
bytes, Succeeded once the bytes are in; the phase follows the PVC annotations
`cdi.kubevirt.io/storage.pod.phase` and `.../storage.pod.ready`, as CDI reads them. The
upload server itself (the pod CDI starts per PVC) is not an object here: the upload proxy
(`uploadproxy.py`) writes what it would have."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .datavolume import (
    ANN_POD_PHASE,
    PROGRESS_DONE,
    DataVolumeState,
    Event,
    _condition,
    _previous,
    next_datavolume_state,
)

Obj = Mapping[str, Any]

ANN_POD_READY = "cdi.kubevirt.io/storage.pod.ready"
ANN_UPLOAD_TARGET = "cdi.kubevirt.io/storage.upload.target"
ANN_UPLOAD_POD = "cdi.kubevirt.io/storage.uploadPodName"
ANN_RUNNING = "cdi.kubevirt.io/storage.condition.running"
ANN_RUNNING_REASON = "cdi.kubevirt.io/storage.condition.running.reason"
ANN_RUNNING_MESSAGE = "cdi.kubevirt.io/storage.condition.running.message"
#: What the simulated upload server records on the PVC (CDI records nothing like it).
ANN_UPLOADED_BYTES = "sim.vdcos.io/uploaded-bytes"
ANN_VIRTUAL_SIZE = "sim.vdcos.io/image-virtual-size"


def is_upload(dv: Obj) -> bool:
    return "upload" in ((dv.get("spec") or {}).get("source") or {})


def upload_server_started() -> dict[str, str]:
    """The PVC annotations once CDI's upload server pod for it runs and is ready."""
    return {ANN_UPLOAD_TARGET: "", ANN_POD_PHASE: "Running", ANN_POD_READY: "true",
            ANN_RUNNING: "true",
            ANN_RUNNING_REASON: "Pod is running"}


def upload_finished(uploaded_bytes: int, virtual_size: int) -> dict[str, str]:
    """The PVC annotations once the upload server has written the image and exited."""
    return {ANN_POD_PHASE: "Succeeded", ANN_POD_READY: "false", ANN_RUNNING: "false",
            ANN_RUNNING_REASON: "Completed", ANN_RUNNING_MESSAGE: "Upload Complete",
            ANN_UPLOADED_BYTES: str(uploaded_bytes), ANN_VIRTUAL_SIZE: str(virtual_size)}


def upload_pod_name(pvc_name: str) -> str:
    return f"cdi-upload-{pvc_name}"


def next_upload_state(dv: Obj, pvc: Obj | None, storage_class: Obj | None,
                      now: datetime) -> DataVolumeState:
    """One sync of an upload DataVolume; before its PVC is bound it is any DataVolume."""
    generic = next_datavolume_state(dv, pvc, storage_class, None, now)
    if pvc is None or ((pvc.get("status") or {}).get("phase") or "Pending") != "Bound":
        return generic
    pvc_name = str(pvc["metadata"]["name"])
    annotations = pvc["metadata"].get("annotations") or {}
    current = str((dv.get("status") or {}).get("phase") or "")
    pod_phase = annotations.get(ANN_POD_PHASE)
    bound = _condition("Bound", "True", "Bound", f"PVC {pvc_name} Bound", now,
                       _previous(dv, "Bound"))
    phase, reason, message = "UploadScheduled", "UploadScheduled", \
        f"Upload into {pvc_name} scheduled"
    ready = ("False", "", "")
    running = ("False", "", "")
    progress = str((dv.get("status") or {}).get("progress") or "N/A")
    if pod_phase == "Running" and annotations.get(ANN_POD_READY) == "true":
        phase, reason, message = "UploadReady", "UploadReady", f"Upload into {pvc_name} ready"
        running = ("True", "Pod is running", "")
    elif pod_phase == "Succeeded" or current == "Succeeded":
        phase, reason, message = "Succeeded", "UploadSucceeded", \
            f"Successfully uploaded into {pvc_name}"
        ready = ("True", "", "")
        running = ("False", "Completed", "")
        progress = PROGRESS_DONE
    elif pod_phase == "Failed":
        reason, message = "UploadFailed", f"Upload into {pvc_name} failed"
        running = ("False", "Error", "")
    kind = "Warning" if reason == "UploadFailed" else "Normal"
    events = [Event(kind, reason, message)] if phase != current else []
    return DataVolumeState(
        phase=phase,
        conditions=[bound,
                    _condition("Ready", *ready, now, _previous(dv, "Ready")),
                    _condition("Running", *running, now, _previous(dv, "Running"))],
        progress=progress, events=events, claim_name=pvc_name)
