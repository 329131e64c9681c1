"""What a simulated volume holds: one text marker per disk, so a test can change something
"inside" a VM's disk and see a snapshot, a restore or a clone carry (or undo) it.

The marker lives on the PersistentVolume (the disk itself), annotation
`sim.vdcos.io/content`, and is mirrored on its claim under the same annotation (read-only:
the simulation rewrites it). To write, annotate the claim `sim.vdcos.io/write-marker: TEXT`:
the simulated guest writes TEXT into the volume, the mirror follows and the write-marker
annotation is removed (one write per annotation). A volume starts with the content of what
it was made from:

- a claim with `dataSource`/`dataSourceRef` kind VolumeSnapshot: the snapshot's content, as
  its VolumeSnapshotContent recorded it when the snapshot was cut (`storage.py` sets it on
  the new volume);
- a claim with a data source kind PersistentVolumeClaim (a CSI clone), or a CDI clone target
  (`k8s.io/CloneRequest: ns/name`; `cdi.kubevirt.io/storage.sourceRef` naming a DataSource
  whose source is a PVC or a VolumeSnapshot; the claim of a DataVolume whose
  `source.snapshot` or `source.pvc` names one): the source's content at the time;
- anything else (blank, an import): no marker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.resources import DATASOURCES, DATAVOLUMES, PVCS, PVS
from kubekit.workqueue import WorkQueue

from .ignoring_gone import ignoring_gone
from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .snapshot_crds import VOLUME_SNAPSHOT_CONTENTS, VOLUME_SNAPSHOTS

log = structlog.get_logger("devcluster.sim.volume_content")

Obj = Mapping[str, Any]

CONTENT_ANNOTATION = "sim.vdcos.io/content"
WRITE_MARKER_ANNOTATION = "sim.vdcos.io/write-marker"
CLONE_REQUEST_ANNOTATION = "k8s.io/CloneRequest"
SOURCE_REF_ANNOTATION = "cdi.kubevirt.io/storage.sourceRef"
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"


def _annotations(obj: Obj | None) -> Mapping[str, str]:
    found: Mapping[str, str] = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return found


def content_of(obj: Obj | None) -> str | None:
    """The marker a volume, a claim's mirror or a snapshot content holds (None: none)."""
    return _annotations(obj).get(CONTENT_ANNOTATION)


@dataclass(frozen=True)
class Origin:
    """What a new volume is made from: a VolumeSnapshot or a PVC, by namespace and name."""

    kind: str  # "VolumeSnapshot" | "PersistentVolumeClaim"
    namespace: str
    name: str


def _split_key(value: str, namespace: str) -> tuple[str, str]:
    if "/" in value:
        first, second = value.split("/", 1)
        return first, second
    return namespace, value


def _no_object(namespace: str, name: str) -> Obj | None:
    return None


def _datavolume_of(claim: Obj, datavolumes: Callable[[str, str], Obj | None]) -> Obj | None:
    meta = claim.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "DataVolume":
            return datavolumes(str(meta.get("namespace", "")), str(ref.get("name")))
    return None


def _source_origin(source: Obj, namespace: str) -> Origin | None:
    """The origin a CDI source (`spec.source` of a DataVolume or a DataSource) names."""
    for key, kind in (("pvc", "PersistentVolumeClaim"), ("snapshot", "VolumeSnapshot")):
        if source.get(key):
            return Origin(kind, str(source[key].get("namespace") or namespace),
                          str(source[key].get("name")))
    return None


def claim_origin(claim: Obj, datasources: Callable[[str, str], Obj | None],
                 datavolumes: Callable[[str, str], Obj | None] = _no_object) -> Origin | None:
    """The snapshot or claim a new claim's content comes from, if any."""
    meta, spec = claim.get("metadata") or {}, claim.get("spec") or {}
    namespace = str(meta.get("namespace", ""))
    for ref in (spec.get("dataSourceRef"), spec.get("dataSource")):
        if not ref:
            continue
        kind, group = ref.get("kind"), ref.get("apiGroup") or ""
        if kind == "VolumeSnapshot" and group == SNAPSHOT_GROUP:
            return Origin(kind, str(ref.get("namespace") or namespace), str(ref["name"]))
        if kind == "PersistentVolumeClaim" and group == "":
            return Origin(kind, str(ref.get("namespace") or namespace), str(ref["name"]))
    annotations = _annotations(claim)
    if annotations.get(CLONE_REQUEST_ANNOTATION):
        source_namespace, name = _split_key(annotations[CLONE_REQUEST_ANNOTATION], namespace)
        return Origin("PersistentVolumeClaim", source_namespace, name)
    if annotations.get(SOURCE_REF_ANNOTATION):
        datasource = datasources(*_split_key(annotations[SOURCE_REF_ANNOTATION], namespace))
        source = ((datasource or {}).get("spec") or {}).get("source") or {}
        return _source_origin(source, str(((datasource or {}).get("metadata") or {}).get(
            "namespace", namespace)))
    datavolume = _datavolume_of(claim, datavolumes)
    return _source_origin(((datavolume or {}).get("spec") or {}).get("source") or {},
                          namespace)


def origin_content(origin: Origin, *, claims: Callable[[str, str], Obj | None],
                   volumes: Callable[[str], Obj | None],
                   snapshots: Callable[[str, str], Obj | None],
                   snapshot_contents: Callable[[str], Obj | None]) -> str | None:
    """The content of an origin now: a claim's volume's, or what a snapshot recorded."""
    if origin.kind == "PersistentVolumeClaim":
        source = claims(origin.namespace, origin.name)
        volume_name = ((source or {}).get("spec") or {}).get("volumeName")
        return content_of(volumes(str(volume_name))) if volume_name else None
    snapshot = snapshots(origin.namespace, origin.name)
    bound = ((snapshot or {}).get("status") or {}).get("boundVolumeSnapshotContentName")
    return content_of(snapshot_contents(str(bound))) if bound else None


@dataclass(frozen=True)
class ContentChange:
    """The writes one reconcile of a bound claim makes (None: leave as is)."""

    volume_content: str | None = None  # write to the volume
    claim_mirror: str | None = None  # write to the claim's mirror annotation
    drop_write_marker: bool = False


def next_content_change(claim: Obj, volume: Obj, inherited: str | None) -> ContentChange:
    """Pure: what the guest's write, a clone's first content or a stale mirror calls for.

    `inherited` is the content of the claim's origin (a clone source), used only while the
    volume has no marker yet.
    """
    annotations = _annotations(claim)
    marker = annotations.get(WRITE_MARKER_ANNOTATION)
    current = content_of(volume)
    if marker is not None:
        return ContentChange(volume_content=marker if marker != current else None,
                             claim_mirror=marker, drop_write_marker=True)
    if current is None and inherited is not None:
        return ContentChange(volume_content=inherited, claim_mirror=inherited)
    if current is not None and annotations.get(CONTENT_ANNOTATION) != current:
        return ContentChange(claim_mirror=current)
    return ContentChange()


class VolumeContents:
    """Plays the guests writing to their disks and keeps each claim's mirror current."""

    name = "volume-content"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self._claims = WorkQueue(
            "volume-content", ignoring_gone(self._reconcile), workers=2,
            retry_delays=SIM_RETRY_DELAYS)

    async def start(self) -> None:
        claims = self.runtime.informer(PVCS)
        volumes = self.runtime.informer(PVS)
        for resource in (DATASOURCES, DATAVOLUMES, VOLUME_SNAPSHOTS, VOLUME_SNAPSHOT_CONTENTS):
            self.runtime.informer(resource)
        await self.runtime.wait_synced(PVCS, PVS, DATASOURCES, DATAVOLUMES, VOLUME_SNAPSHOTS,
                                       VOLUME_SNAPSHOT_CONTENTS)
        claims.add_listener(self._on_claim)
        volumes.add_listener(self._on_volume)
        self._claims.start()
        for claim in claims.values():
            self._claims.enqueue(key_of(claim))

    async def stop(self) -> None:
        await self._claims.stop()

    def _on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        if kind != "DELETED":
            self._claims.enqueue(key_of(claim))

    def _on_volume(self, kind: str, volume: dict[str, Any]) -> None:
        claim_ref = (volume.get("spec") or {}).get("claimRef") or {}
        if kind != "DELETED" and claim_ref.get("name"):
            self._claims.enqueue((str(claim_ref.get("namespace", "")), str(claim_ref["name"])))

    def inherited_content(self, claim: Obj) -> str | None:
        origin = claim_origin(claim, self.runtime.informer(DATASOURCES).get,
                              self.runtime.informer(DATAVOLUMES).get)
        if origin is None:
            return None
        return origin_content(
            origin, claims=self.runtime.informer(PVCS).get,
            volumes=lambda name: self.runtime.informer(PVS).get("", name),
            snapshots=self.runtime.informer(VOLUME_SNAPSHOTS).get,
            snapshot_contents=lambda name: self.runtime.informer(
                VOLUME_SNAPSHOT_CONTENTS).get("", name))

    async def _reconcile(self, key: Key) -> float | None:
        claim = self.runtime.informer(PVCS).get(*key)
        if claim is None or (claim.get("status") or {}).get("phase") != "Bound":
            return None
        volume_name = str((claim.get("spec") or {}).get("volumeName") or "")
        volume = self.runtime.informer(PVS).get("", volume_name) if volume_name else None
        if volume is None:
            return None
        change = next_content_change(claim, volume, self.inherited_content(claim))
        if change.volume_content is not None:
            await self.kube.patch(PVS, None, volume_name, {"metadata": {"annotations": {
                CONTENT_ANNOTATION: change.volume_content}}})
            log.info("Volume content written", claim=f"{key[0]}/{key[1]}",
                     content=change.volume_content)
        annotations: dict[str, str | None] = {}
        if change.claim_mirror is not None:
            annotations[CONTENT_ANNOTATION] = change.claim_mirror
        if change.drop_write_marker:
            annotations[WRITE_MARKER_ANNOTATION] = None
        if annotations:
            await self.kube.patch(PVCS, key[0], key[1],
                                  {"metadata": {"annotations": annotations}})
        return None
