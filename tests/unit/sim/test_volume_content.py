"""Disk content markers: where a new volume's content comes from and what one reconcile of
a claim writes (the guest's write, a clone's first content, the claim's mirror)."""

from __future__ import annotations

from typing import Any

from devcluster.sim.volume_content import (
    ContentChange,
    Origin,
    claim_origin,
    next_content_change,
    origin_content,
)


def claim(spec: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
          ) -> dict[str, Any]:
    return {"metadata": {"name": "new", "namespace": "web", "annotations": annotations or {}},
            "spec": spec or {}}


def no_datasource(namespace: str, name: str) -> None:
    return None


def test_origins_of_a_new_claim() -> None:
    snapshot_ref = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                    "name": "snap"}
    assert claim_origin(claim({"dataSourceRef": snapshot_ref}), no_datasource) == \
        Origin("VolumeSnapshot", "web", "snap")
    assert claim_origin(claim({"dataSource": {"kind": "PersistentVolumeClaim",
                                              "name": "golden"}}), no_datasource) == \
        Origin("PersistentVolumeClaim", "web", "golden")
    assert claim_origin(claim(annotations={"k8s.io/CloneRequest": "images/golden"}),
                        no_datasource) == Origin("PersistentVolumeClaim", "images", "golden")
    datasource = {"metadata": {"namespace": "images"},
                  "spec": {"source": {"snapshot": {"name": "golden-snap"}}}}
    assert claim_origin(claim(annotations={"cdi.kubevirt.io/storage.sourceRef": "images/os"}),
                        lambda namespace, name: datasource) == \
        Origin("VolumeSnapshot", "images", "golden-snap")
    assert claim_origin(claim(), no_datasource) is None
    owned = claim()
    owned["metadata"]["ownerReferences"] = [{"kind": "DataVolume", "name": "from-snap"}]
    datavolume = {"spec": {"source": {"snapshot": {"namespace": "web", "name": "snap"}}}}
    assert claim_origin(owned, no_datasource, lambda namespace, name: datavolume) == \
        Origin("VolumeSnapshot", "web", "snap")
    # A data source of another group is not a snapshot of ours.
    assert claim_origin(claim({"dataSourceRef": {**snapshot_ref, "apiGroup": "x.io"}}),
                        no_datasource) is None


def test_origin_content_reads_the_source_volume_or_the_snapshot_content() -> None:
    source = {"spec": {"volumeName": "pvc-1"}}
    volume = {"metadata": {"annotations": {"sim.vdcos.io/content": "golden"}}}
    snapshot = {"status": {"boundVolumeSnapshotContentName": "snapcontent-1"}}
    content = {"metadata": {"annotations": {"sim.vdcos.io/content": "at-snapshot"}}}
    lookups: dict[str, Any] = {
        "claims": lambda namespace, name: source, "volumes": lambda name: volume,
        "snapshots": lambda namespace, name: snapshot,
        "snapshot_contents": lambda name: content}
    assert origin_content(Origin("PersistentVolumeClaim", "web", "golden"), **lookups) == \
        "golden"
    assert origin_content(Origin("VolumeSnapshot", "web", "snap"), **lookups) == "at-snapshot"
    lookups["snapshots"] = lambda namespace, name: {"status": {}}
    assert origin_content(Origin("VolumeSnapshot", "web", "snap"), **lookups) is None


def volume(content: str | None) -> dict[str, Any]:
    annotations = {} if content is None else {"sim.vdcos.io/content": content}
    return {"metadata": {"name": "pvc-1", "annotations": annotations}}


def test_the_guest_write_goes_to_the_volume_and_the_mirror_once() -> None:
    written = claim(annotations={"sim.vdcos.io/write-marker": "v2",
                                 "sim.vdcos.io/content": "v1"})
    assert next_content_change(written, volume("v1"), None) == ContentChange(
        volume_content="v2", claim_mirror="v2", drop_write_marker=True)
    # Written already (the mirror lagging): only the claim is touched.
    assert next_content_change(written, volume("v2"), None) == ContentChange(
        claim_mirror="v2", drop_write_marker=True)


def test_a_clone_starts_with_its_sources_content_then_keeps_its_own() -> None:
    assert next_content_change(claim(), volume(None), "golden") == ContentChange(
        volume_content="golden", claim_mirror="golden")
    assert next_content_change(claim(), volume("mine"), "golden") == ContentChange(
        claim_mirror="mine")
    mirrored = claim(annotations={"sim.vdcos.io/content": "mine"})
    assert next_content_change(mirrored, volume("mine"), "golden") == ContentChange()
    assert next_content_change(claim(), volume(None), None) == ContentChange()
