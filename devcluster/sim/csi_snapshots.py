"""The CSI snapshot controller and the `shared` driver's csi-snapshotter sidecar.

As external-snapshotter (`pkg/common-controller`, `pkg/sidecar-controller`) does:

- a VolumeSnapshot of a claim without `volumeSnapshotClassName` gets the default class of
  its volume's CSI driver written into its spec (`SetDefaultSnapshotClass`); a volume that is
  not CSI (local-path: hostPath), a claim not bound, or a driver without a default class is
  an error in `status.error` ("Failed to set default snapshot class with error ...") with a
  `SetDefaultSnapshotClassFailed` Warning, retried as upstream resyncs;
- then a VolumeSnapshotContent `snapcontent-<snapshot uid>` bound to it (`volumeSnapshotRef`
  with the snapshot's uid, `source.volumeHandle` of the volume), Event `CreatingSnapshot`;
- the sidecar cuts the snapshot: the content's status gets `snapshotHandle`,
  `creationTime` (Unix nanoseconds), `restoreSize` (bytes) and `readyToUse`; the
  simulation copies the volume's content marker into the content (`volume_content.py`);
- the snapshot's status follows: `boundVolumeSnapshotContentName`, `creationTime`,
  `restoreSize` (a quantity), `readyToUse`; Events `SnapshotCreated` and `SnapshotReady`.

Deleting a snapshot deletes its content when the content's `deletionPolicy` is Delete. The
protection finalizers upstream puts on snapshots, contents and source claims are not
emulated. Pre-provisioned snapshots (`source.volumeSnapshotContentName`) bind to the named
content once it exists and points back at them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.quantity import format_bytes, to_bytes
from kubekit.resources import CRDS, PVCS, PVS, ResourceRef
from kubekit.restclient import Kube, KubeError, wait_for_resource
from kubekit.workqueue import WorkQueue

from .ignoring_gone import ignoring_gone
from .object_parts import metadata_of as _meta
from .object_parts import spec_of as _spec
from .object_parts import status_of as _status
from .runtime import SIM_RETRY_DELAYS, SimRuntime, now_rfc3339
from .snapshot_crds import (
    DEFAULT_SNAPSHOT_CLASS_ANNOTATION,
    GROUP,
    SNAPSHOT_RESOURCES,
    VOLUME_SNAPSHOT_CLASSES,
    VOLUME_SNAPSHOT_CONTENTS,
    VOLUME_SNAPSHOTS,
    default_snapshot_classes,
    snapshot_crds,
)
from .volume_content import CONTENT_ANNOTATION, content_of

log = structlog.get_logger("devcluster.sim.csi_snapshots")

Obj = Mapping[str, Any]

SNAPSHOT_CONTROLLER = "snapshot-controller"
CSI_SNAPSHOTTER = "csi-snapshotter sim.vdcos.io/shared"
#: The snapshot controller's resync: a snapshot in error is tried again this often.
RESYNC_SECONDS = 15.0


def snapshot_key(snapshot: Obj) -> str:
    return f"{_meta(snapshot).get('namespace', '')}/{_meta(snapshot)['name']}"


def content_name_for(snapshot: Obj) -> str:
    """`GetDynamicSnapshotContentNameForSnapshot`."""
    return f"snapcontent-{_meta(snapshot)['uid']}"


class SnapshotError(Exception):
    """An error the snapshot controller writes into the snapshot's status."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def source_volume(snapshot: Obj, claims: Mapping[str, Obj], volumes: Mapping[str, Obj]) -> Obj:
    """`getVolumeFromVolumeSnapshot`: the bound volume of the snapshot's source claim.

    `claims` are the snapshot namespace's claims by name, `volumes` the PVs by name; raises
    the error upstream formats (without the reason: callers wrap it)."""
    claim_name = (_spec(snapshot).get("source") or {}).get("persistentVolumeClaimName")
    if not claim_name:
        raise ValueError("the snapshot source PVC name is not specified")
    claim = claims.get(str(claim_name))
    if claim is None:
        raise ValueError(f'failed to retrieve PVC {claim_name} from the lister: '
                         f'"persistentvolumeclaim \\"{claim_name}\\" not found"')
    if _status(claim).get("phase") != "Bound":
        raise ValueError(f"the PVC {claim_name} is not yet bound to a PV, will not attempt "
                         "to take a snapshot")
    volume_name = str(_spec(claim).get("volumeName") or "")
    volume = volumes.get(volume_name)
    if volume is None:
        raise ValueError(f'failed to retrieve PV {volume_name} from the API server: '
                         f'"persistentvolumes \\"{volume_name}\\" not found"')
    claim_ref = _spec(volume).get("claimRef") or {}
    if (claim_ref.get("name"), claim_ref.get("namespace")) != (
            claim_name, _meta(claim).get("namespace")) or (
            claim_ref.get("uid") and claim_ref.get("uid") != _meta(claim).get("uid")):
        raise ValueError("claim in dataSource not bound or invalid")
    return volume


def snapshot_class_for(snapshot: Obj, volume: Obj | None, volume_error: str | None,
                       classes: Sequence[Obj]) -> Obj:
    """`checkAndUpdateSnapshotClass`: the class named, else the one default class of the
    volume's CSI driver; raises SnapshotError with upstream's reason and message."""
    named = _spec(snapshot).get("volumeSnapshotClassName")
    if named:
        for snapshot_class in classes:
            if _meta(snapshot_class).get("name") == named:
                return snapshot_class
        raise SnapshotError("GetSnapshotClassFailed",
                            f"Failed to get snapshot class with error "
                            f'volumesnapshotclass.snapshot.storage.k8s.io "{named}" not found')

    def failed(message: str) -> SnapshotError:
        return SnapshotError("SetDefaultSnapshotClassFailed",
                             f"Failed to set default snapshot class with error {message}")

    if volume is None:
        raise failed(volume_error or "claim in dataSource not bound or invalid")
    csi = _spec(volume).get("csi")
    if not csi:
        raise failed(f"snapshotting non-CSI volumes is not supported, snapshot:"
                     f"{snapshot_key(snapshot)}")
    defaults = [c for c in classes if c.get("driver") == csi.get("driver") and (
        _meta(c).get("annotations") or {}).get(DEFAULT_SNAPSHOT_CLASS_ANNOTATION) == "true"]
    if not defaults:
        raise failed("cannot find default snapshot class")
    if len(defaults) > 1:
        raise failed(f"{len(defaults)} default snapshot classes were found")
    return defaults[0]


def content_for(snapshot: Obj, volume: Obj, snapshot_class: Obj) -> dict[str, Any]:
    """The VolumeSnapshotContent `createSnapshotContent` writes for a dynamic snapshot; the
    simulation adds the volume's content marker, what the storage keeps of the snapshot."""
    meta = _meta(snapshot)
    content: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1", "kind": "VolumeSnapshotContent",
        "metadata": {"name": content_name_for(snapshot)},
        "spec": {
            "volumeSnapshotRef": {"apiVersion": f"{GROUP}/v1", "kind": "VolumeSnapshot",
                                  "name": meta["name"], "namespace": meta.get("namespace", ""),
                                  "uid": meta.get("uid", ""),
                                  "resourceVersion": meta.get("resourceVersion", "")},
            "source": {"volumeHandle": str((_spec(volume).get("csi") or {}).get(
                "volumeHandle", ""))},
            "volumeSnapshotClassName": _meta(snapshot_class)["name"],
            "deletionPolicy": snapshot_class.get("deletionPolicy", "Delete"),
            "driver": snapshot_class["driver"],
            "sourceVolumeMode": _spec(volume).get("volumeMode", "Filesystem"),
        },
    }
    marker = content_of(volume)
    if marker is not None:
        content["metadata"]["annotations"] = {CONTENT_ANNOTATION: marker}
    return content


def cut_snapshot_status(volume: Obj | None, now_ns: int, handle: str) -> dict[str, Any]:
    """The sidecar's content status once the driver's CreateSnapshot returned."""
    capacity = (_spec(volume).get("capacity") or {}).get("storage", "0")
    return {"snapshotHandle": handle, "creationTime": now_ns, "readyToUse": True,
            "restoreSize": to_bytes(capacity)}


def bound_snapshot_status(snapshot: Obj, content: Obj) -> dict[str, Any]:
    """`updateSnapshotStatus`: what a snapshot shows of its bound, cut content."""
    status = dict(_status(snapshot))
    status["boundVolumeSnapshotContentName"] = _meta(content)["name"]
    content_status = _status(content)
    created = content_status.get("creationTime")
    if created is not None:
        status["creationTime"] = datetime.fromtimestamp(int(created) / 1e9, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    ready = bool(content_status.get("readyToUse"))
    status["readyToUse"] = ready
    if ready:
        status.pop("error", None)
    if content_status.get("restoreSize") is not None:
        status["restoreSize"] = format_bytes(int(content_status["restoreSize"]))
    return status


def _points_at(content: Obj, snapshot: Obj) -> bool:
    ref = _spec(content).get("volumeSnapshotRef") or {}
    meta = _meta(snapshot)
    return (ref.get("name"), ref.get("namespace")) == (meta["name"], meta.get("namespace")) \
        and ref.get("uid") in (None, "", meta.get("uid"))


async def install_snapshot_api(kube: Kube) -> None:
    """The CRDs, as a cluster's snapshot-controller deployment brings them, and the class."""
    for definition in snapshot_crds():
        try:
            await kube.create(CRDS, definition)
        except KubeError as error:
            if error.status != 409:
                raise
    for resource in SNAPSHOT_RESOURCES:
        await wait_for_resource(kube, resource)
    for snapshot_class in default_snapshot_classes():
        try:
            await kube.create(VOLUME_SNAPSHOT_CLASSES, snapshot_class)
        except KubeError as error:
            if error.status != 409:
                raise


class CsiSnapshotter:
    """snapshot-controller and the csi-snapshotter sidecar of the `shared` driver."""

    name = "csi-snapshots"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self._snapshots = WorkQueue(
            "volume-snapshots", ignoring_gone(self._reconcile_snapshot), workers=2,
            retry_delays=SIM_RETRY_DELAYS)
        self._contents = WorkQueue(
            "volume-snapshot-contents", ignoring_gone(self._reconcile_content), workers=2,
            retry_delays=SIM_RETRY_DELAYS)
        self._reported: dict[Key, str] = {}  # the last error evented per snapshot

    def _informer(self, resource: ResourceRef) -> Any:
        return self.runtime.informer(resource)

    async def start(self) -> None:
        await install_snapshot_api(self.kube)
        snapshots = self._informer(VOLUME_SNAPSHOTS)
        contents = self._informer(VOLUME_SNAPSHOT_CONTENTS)
        self._informer(VOLUME_SNAPSHOT_CLASSES)
        claims = self._informer(PVCS)
        self._informer(PVS)
        await self.runtime.wait_synced(*SNAPSHOT_RESOURCES, PVCS, PVS)
        snapshots.add_listener(self._on_snapshot)
        contents.add_listener(self._on_content)
        claims.add_listener(self._on_claim)
        self._snapshots.start()
        self._contents.start()
        for snapshot in snapshots.values():
            self._snapshots.enqueue(key_of(snapshot))
        for content in contents.values():
            self._contents.enqueue(key_of(content))

    async def stop(self) -> None:
        await self._snapshots.stop()
        await self._contents.stop()

    def _on_snapshot(self, kind: str, snapshot: dict[str, Any]) -> None:
        if kind == "DELETED":
            self._reported.pop(key_of(snapshot), None)
            bound = _status(snapshot).get("boundVolumeSnapshotContentName")
            if bound:
                self._contents.enqueue(("", str(bound)))
            return
        self._snapshots.enqueue(key_of(snapshot))

    def _on_content(self, kind: str, content: dict[str, Any]) -> None:
        ref = _spec(content).get("volumeSnapshotRef") or {}
        if ref.get("name"):
            self._snapshots.enqueue((str(ref.get("namespace", "")), str(ref["name"])))
        if kind != "DELETED":
            self._contents.enqueue(key_of(content))

    def _on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        # A snapshot waiting for its claim to bind is retried when the claim changes.
        namespace, name = key_of(claim)
        for snapshot in self._informer(VOLUME_SNAPSHOTS).values():
            source = (_spec(snapshot).get("source") or {}).get("persistentVolumeClaimName")
            if _meta(snapshot).get("namespace") == namespace and source == name and not \
                    _status(snapshot).get("boundVolumeSnapshotContentName"):
                self._snapshots.enqueue(key_of(snapshot))

    async def _reconcile_snapshot(self, key: Key) -> float | None:
        snapshot = self._informer(VOLUME_SNAPSHOTS).get(*key)
        if snapshot is None or _meta(snapshot).get("deletionTimestamp"):
            return None
        source = _spec(snapshot).get("source") or {}
        if source.get("volumeSnapshotContentName"):
            return await self._bind_pre_provisioned(snapshot, str(
                source["volumeSnapshotContentName"]))
        contents = self._informer(VOLUME_SNAPSHOT_CONTENTS)
        content = contents.get("", content_name_for(snapshot))
        if content is not None:
            if _points_at(content, snapshot) and _status(content).get("creationTime"):
                await self._write_snapshot_status(snapshot, content)
            return None
        claim_name = str(source.get("persistentVolumeClaimName") or "")
        found = self._informer(PVCS).get(key[0], claim_name) if claim_name else None
        claims = {claim_name: found} if found is not None else {}
        volume_name = str(_spec(found).get("volumeName") or "")
        bound = self._informer(PVS).get("", volume_name) if volume_name else None
        volumes = {volume_name: bound} if bound is not None else {}
        volume: Obj | None = None
        volume_error: str | None = None
        try:
            volume = source_volume(snapshot, claims, volumes)
        except ValueError as error:
            volume_error = str(error)
        try:
            snapshot_class = snapshot_class_for(
                snapshot, volume, volume_error, self._informer(VOLUME_SNAPSHOT_CLASSES).values())
            if volume is None:
                raise SnapshotError(
                    "SnapshotContentCreationFailed",
                    f"Failed to create snapshot content with error failed to get input "
                    f'parameters to create snapshot {key[1]}: "{volume_error}"')
        except SnapshotError as error:
            await self._report_error(snapshot, error)
            return RESYNC_SECONDS
        if not _spec(snapshot).get("volumeSnapshotClassName"):
            await self.kube.patch(VOLUME_SNAPSHOTS, key[0], key[1], {
                "spec": {"volumeSnapshotClassName": _meta(snapshot_class)["name"]}})
        try:
            await self.kube.create(VOLUME_SNAPSHOT_CONTENTS,
                                   content_for(snapshot, volume, snapshot_class))
        except KubeError as error:
            if error.status != 409:
                raise
            return None
        await self.runtime.event(
            dict(snapshot), "CreatingSnapshot",
            f"Waiting for a snapshot {snapshot_key(snapshot)} to be created by the CSI driver.",
            component=SNAPSHOT_CONTROLLER)
        return None

    async def _bind_pre_provisioned(self, snapshot: Obj, content_name: str) -> float | None:
        content = self._informer(VOLUME_SNAPSHOT_CONTENTS).get("", content_name)
        if content is None:
            await self._report_error(snapshot, SnapshotError(
                "SnapshotContentMissing", "VolumeSnapshotContent is missing"))
            return RESYNC_SECONDS
        if not _points_at(content, snapshot):
            await self._report_error(snapshot, SnapshotError(
                "SnapshotContentMisbound",
                f"VolumeSnapshotContent {content_name} is bound to a different snapshot"))
            return RESYNC_SECONDS
        await self._write_snapshot_status(snapshot, content)
        return None

    async def _write_snapshot_status(self, snapshot: Obj, content: Obj) -> None:
        status = bound_snapshot_status(snapshot, content)
        if status == dict(_status(snapshot)):
            return
        namespace, name = key_of(dict(snapshot))
        was_created = bool(_status(snapshot).get("creationTime"))
        was_ready = bool(_status(snapshot).get("readyToUse"))
        await self.kube.request("PUT", VOLUME_SNAPSHOTS.path(namespace, name, "status"),
                                body={**snapshot, "status": status})
        if status.get("creationTime") and not was_created:
            await self.runtime.event(
                dict(snapshot), "SnapshotCreated",
                f"Snapshot {snapshot_key(snapshot)} was successfully created by the CSI "
                "driver.", component=SNAPSHOT_CONTROLLER)
        if status.get("readyToUse") and not was_ready:
            await self.runtime.event(
                dict(snapshot), "SnapshotReady",
                f"Snapshot {snapshot_key(snapshot)} is ready to use.",
                component=SNAPSHOT_CONTROLLER)
        log.info("Volume snapshot bound", snapshot=snapshot_key(snapshot),
                 content=_meta(content)["name"], ready=status.get("readyToUse"))

    async def _report_error(self, snapshot: Obj, error: SnapshotError) -> None:
        """`updateSnapshotErrorStatusWithEvent`: the same message is written once."""
        current = (_status(snapshot).get("error") or {}).get("message")
        key = key_of(dict(snapshot))
        if current != error.message:
            status = {**_status(snapshot), "error": {"message": error.message,
                                                     "time": now_rfc3339()}}
            await self.kube.request("PUT", VOLUME_SNAPSHOTS.path(key[0], key[1], "status"),
                                    body={**snapshot, "status": status})
        if self._reported.get(key) != error.message:
            self._reported[key] = error.message
            await self.runtime.event(dict(snapshot), error.reason, error.message, kind="Warning",
                                     component=SNAPSHOT_CONTROLLER)

    async def _reconcile_content(self, key: Key) -> float | None:
        content = self._informer(VOLUME_SNAPSHOT_CONTENTS).get(*key)
        if content is None or _meta(content).get("deletionTimestamp"):
            return None
        ref = _spec(content).get("volumeSnapshotRef") or {}
        snapshot = self._informer(VOLUME_SNAPSHOTS).get(str(ref.get("namespace", "")),
                                                        str(ref.get("name", "")))
        if snapshot is None or (ref.get("uid") and _meta(snapshot).get("uid") != ref["uid"]):
            # The snapshot is gone: its content goes with it unless it is Retain.
            if _spec(content).get("deletionPolicy") == "Delete":
                await self.kube.delete(VOLUME_SNAPSHOT_CONTENTS, None, key[1])
                log.info("Volume snapshot content deleted", content=key[1])
            return None
        if _status(content).get("creationTime") or not (_spec(content).get("source") or {}).get(
                "volumeHandle"):
            return None
        if _spec(content).get("driver") != default_snapshot_classes()[0]["driver"]:
            return None  # no sidecar of ours serves that driver
        volume = self._informer(PVS).get("", str(_spec(content)["source"]["volumeHandle"]))
        status = cut_snapshot_status(volume, time.time_ns(), f"snapshot-{uuid.uuid4()}")
        await self.kube.request("PUT", VOLUME_SNAPSHOT_CONTENTS.path(None, key[1], "status"),
                                body={**content, "status": status})
        log.info("Snapshot cut", content=key[1], restore_size=status["restoreSize"])
        return None
