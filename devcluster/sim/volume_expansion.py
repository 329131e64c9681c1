"""Volume expansion, as the CSI external-resizer and the kubelet do it.

A bound claim whose `spec.resources.requests.storage` grew past `status.capacity.storage`,
on a StorageClass with `allowVolumeExpansion: true` and one of the simulation's
provisioners, is expanded in two steps (kubernetes-csi/external-resizer
`pkg/controller/controller.go`, kubelet `volume_manager` NodeExpandVolume):

1. controller expansion: the claim gets condition `Resizing=True` and
   `status.allocatedResources`/`allocatedResourceStatuses.storage:
   ControllerResizeInProgress`; then the PersistentVolume's capacity grows and the claim
   goes `FileSystemResizePending=True` ("Waiting for user to (re-)start a pod to finish
   file system resize of volume on node.", `NodeResizePending`);
2. node expansion: the volume is mounted by a running pod (a launcher), so the kubelet
   grows the file system online: `status.capacity` takes the new size and the conditions
   and resize statuses go away. A claim no pod mounts stays FileSystemResizePending.

A class without `allowVolumeExpansion` (the `standard` local-path class, as on kind) gets
no expansion: the API server refuses such a resize on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from kubekit.informer import Key, key_of
from kubekit.quantity import to_bytes
from kubekit.resources import PODS, PVCS, PVS, STORAGE_CLASSES
from kubekit.workqueue import WorkQueue

from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .storage import PROVISIONERS

log = structlog.get_logger("devcluster.sim.volume-expansion")

Obj = Mapping[str, Any]

RESIZING: Final = "Resizing"
FS_RESIZE_PENDING: Final = "FileSystemResizePending"
CONTROLLER_IN_PROGRESS: Final = "ControllerResizeInProgress"
NODE_PENDING: Final = "NodeResizePending"
FS_PENDING_MESSAGE: Final = (
    "Waiting for user to (re-)start a pod to finish file system resize of volume on node.")
#: The controller's expansion call to the CSI driver.
CONTROLLER_EXPAND_SECONDS: Final = 0.3


def requested(pvc: Obj) -> str:
    return str((((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
        "storage", "0"))


def capacity(pvc: Obj) -> str:
    return str(((pvc.get("status") or {}).get("capacity") or {}).get("storage", "0"))


def wants_expansion(pvc: Obj) -> bool:
    status = pvc.get("status") or {}
    return status.get("phase") == "Bound" and to_bytes(requested(pvc)) > to_bytes(capacity(pvc))


def expandable(storage_class: Obj | None) -> bool:
    return bool(storage_class and storage_class.get("allowVolumeExpansion")
                and storage_class.get("provisioner") in PROVISIONERS)


def _condition(type_: str, message: str = "") -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result: dict[str, Any] = {"type": type_, "status": "True", "lastProbeTime": None,
                              "lastTransitionTime": now}
    if message:
        result["message"] = message
    return result


def controller_resizing_status(pvc: Obj) -> dict[str, Any]:
    """Step 1a: the resizer took the claim."""
    return {"conditions": [_condition(RESIZING)],
            "allocatedResources": {"storage": requested(pvc)},
            "allocatedResourceStatuses": {"storage": CONTROLLER_IN_PROGRESS}}


def node_pending_status(pvc: Obj) -> dict[str, Any]:
    """Step 1b: the volume grew; the file system waits for the node."""
    return {"conditions": [_condition(FS_RESIZE_PENDING, FS_PENDING_MESSAGE)],
            "allocatedResources": {"storage": requested(pvc)},
            "allocatedResourceStatuses": {"storage": NODE_PENDING}}


def expanded_status(pvc: Obj) -> dict[str, Any]:
    """Step 2: the kubelet grew the file system; the claim reports the new capacity."""
    return {"conditions": None, "allocatedResourceStatuses": None,
            "allocatedResources": {"storage": requested(pvc)},
            "capacity": {"storage": requested(pvc)}}


def mounted_by_running_pod(pvc: Obj, pods: Iterable[Obj]) -> bool:
    meta = pvc.get("metadata") or {}
    for pod in pods:
        pod_meta = pod.get("metadata") or {}
        if pod_meta.get("namespace") != meta.get("namespace") or (
                pod.get("status") or {}).get("phase") != "Running":
            continue
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if (volume.get("persistentVolumeClaim") or {}).get("claimName") == meta.get("name"):
                return True
    return False


class VolumeExpansionController:
    """external-resizer and the kubelet's online file system expansion."""

    name = "volume-expansion"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.pvcs = runtime.informer(PVCS)
        self.pvs = runtime.informer(PVS)
        self.pods = runtime.informer(PODS)
        self.classes = runtime.informer(STORAGE_CLASSES)
        self.queue = WorkQueue("volume-expansion", self._sync, workers=2,
                               retry_delays=SIM_RETRY_DELAYS)

    async def start(self) -> None:
        self.pvcs.add_listener(lambda kind, pvc: self.queue.enqueue(key_of(pvc)))
        self.pods.add_listener(lambda kind, pod: self._requeue_pending())
        self.queue.start()
        await self.runtime.wait_synced(PVCS, PVS, PODS, STORAGE_CLASSES)
        for pvc in self.pvcs.values():
            self.queue.enqueue(key_of(pvc))

    async def stop(self) -> None:
        await self.queue.stop()

    def _requeue_pending(self) -> None:
        for pvc in self.pvcs.values():
            if wants_expansion(pvc):
                self.queue.enqueue(key_of(pvc))

    def _class_of(self, pvc: Obj) -> Obj | None:
        name = (pvc.get("spec") or {}).get("storageClassName")
        return self.classes.get("", str(name)) if name else None

    async def _sync(self, key: Key) -> float | None:
        pvc = self.pvcs.get(*key)
        if pvc is None or not wants_expansion(pvc) or not expandable(self._class_of(pvc)):
            return None
        meta, status = pvc["metadata"], pvc.get("status") or {}
        stage = (status.get("allocatedResourceStatuses") or {}).get("storage")
        allocated = (status.get("allocatedResources") or {}).get("storage")
        volume_name = str((pvc.get("spec") or {}).get("volumeName") or "")
        if stage is None or allocated != requested(pvc):
            await self._patch_status(key, controller_resizing_status(pvc))
            await self.runtime.event(
                pvc, "Resizing", f"External resizer is resizing volume {volume_name}",
                component="external-resizer")
            return CONTROLLER_EXPAND_SECONDS
        if stage == CONTROLLER_IN_PROGRESS:
            if volume_name:
                await self.kube.patch(PVS, None, volume_name,
                                      {"spec": {"capacity": {"storage": requested(pvc)}}})
            await self._patch_status(key, node_pending_status(pvc))
            await self.runtime.event(
                pvc, "FileSystemResizeRequired",
                "Require file system resize of volume on node", component="external-resizer")
            return 0.1
        if stage == NODE_PENDING and mounted_by_running_pod(pvc, self.pods.values()):
            await self._patch_status(key, expanded_status(pvc))
            await self.runtime.event(
                pvc, "FileSystemResizeSuccessful",
                f"MountVolume.NodeExpandVolume succeeded for volume \"{volume_name}\"",
                component="kubelet")
            log.info("Claim expanded", claim=f"{meta['namespace']}/{meta['name']}",
                     size=requested(pvc))
        return None

    async def _patch_status(self, key: Key, status: dict[str, Any]) -> None:
        await self.kube.patch(PVCS, key[0], key[1], {"status": status}, subresource="status")
