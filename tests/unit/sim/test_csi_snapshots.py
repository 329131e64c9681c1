"""The snapshot controller's decisions (csi_snapshots.py, storage.py): which class, which
error as external-snapshotter writes it, the content it creates, the status it reports."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.apiserver.cel_rules import validate_rules
from devcluster.sim.csi_snapshots import (
    SnapshotError,
    bound_snapshot_status,
    content_for,
    cut_snapshot_status,
    snapshot_class_for,
    source_volume,
)
from devcluster.sim.snapshot_crds import default_snapshot_classes, snapshot_crds
from devcluster.sim.storage import snapshot_source_problem
from tests.oracles import crd_schema_errors

SNAPSHOT: dict[str, Any] = {
    "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
    "metadata": {"name": "snap", "namespace": "web", "uid": "u-1",
                 "resourceVersion": "7"},
    "spec": {"source": {"persistentVolumeClaimName": "data"}}}
CLAIM: dict[str, Any] = {
    "metadata": {"name": "data", "namespace": "web", "uid": "c-1"},
    "spec": {"volumeName": "pvc-c-1"}, "status": {"phase": "Bound"}}
CSI_VOLUME: dict[str, Any] = {
    "metadata": {"name": "pvc-c-1", "annotations": {"sim.vdcos.io/content": "v1"}},
    "spec": {"capacity": {"storage": "2Gi"}, "volumeMode": "Filesystem",
             "claimRef": {"name": "data", "namespace": "web", "uid": "c-1"},
             "csi": {"driver": "sim.vdcos.io/shared", "volumeHandle": "pvc-c-1"}}}
HOSTPATH_VOLUME: dict[str, Any] = {
    "metadata": {"name": "pvc-c-1"},
    "spec": {"capacity": {"storage": "1Gi"},
             "claimRef": {"name": "data", "namespace": "web", "uid": "c-1"},
             "hostPath": {"path": "/var/local-path-provisioner/x"}}}


def crd(plural: str) -> dict[str, Any]:
    return next(c for c in snapshot_crds() if c["spec"]["names"]["plural"] == plural)


def test_the_default_class_of_the_volumes_driver_is_chosen() -> None:
    chosen = snapshot_class_for(SNAPSHOT, CSI_VOLUME, None, default_snapshot_classes())
    assert chosen["metadata"]["name"] == "shared-snapclass"


@pytest.mark.parametrize(("volume", "volume_error", "classes", "message"), [
    (HOSTPATH_VOLUME, None, default_snapshot_classes(),
     "Failed to set default snapshot class with error snapshotting non-CSI volumes is not "
     "supported, snapshot:web/snap"),
    (None, "the PVC data is not yet bound to a PV, will not attempt to take a snapshot",
     default_snapshot_classes(),
     "Failed to set default snapshot class with error the PVC data is not yet bound to a PV, "
     "will not attempt to take a snapshot"),
    (CSI_VOLUME, None, [], "Failed to set default snapshot class with error cannot find "
                           "default snapshot class"),
    (CSI_VOLUME, None, default_snapshot_classes() * 2,
     "Failed to set default snapshot class with error 2 default snapshot classes were found"),
])
def test_errors_are_external_snapshotters(volume: Any, volume_error: str | None,
                                          classes: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(SnapshotError) as raised:
        snapshot_class_for(SNAPSHOT, volume, volume_error, classes)
    assert raised.value.reason == "SetDefaultSnapshotClassFailed"
    assert raised.value.message == message


def test_a_named_class_that_does_not_exist() -> None:
    named = {**SNAPSHOT, "spec": {**SNAPSHOT["spec"], "volumeSnapshotClassName": "gold"}}
    with pytest.raises(SnapshotError) as raised:
        snapshot_class_for(named, CSI_VOLUME, None, default_snapshot_classes())
    assert raised.value.reason == "GetSnapshotClassFailed"
    assert raised.value.message == ('Failed to get snapshot class with error '
                                    'volumesnapshotclass.snapshot.storage.k8s.io "gold" not found')


def test_source_volume_needs_a_bound_claim_and_its_volume() -> None:
    assert source_volume(SNAPSHOT, {"data": CLAIM}, {"pvc-c-1": CSI_VOLUME}) is CSI_VOLUME
    with pytest.raises(ValueError, match="the PVC data is not yet bound to a PV"):
        source_volume(SNAPSHOT, {"data": {**CLAIM, "status": {"phase": "Pending"}}}, {})
    with pytest.raises(ValueError, match='failed to retrieve PVC data from the lister'):
        source_volume(SNAPSHOT, {}, {})
    stolen = {**CSI_VOLUME, "spec": {**CSI_VOLUME["spec"], "claimRef": {
        "name": "data", "namespace": "web", "uid": "other"}}}
    with pytest.raises(ValueError, match="claim in dataSource not bound or invalid"):
        source_volume(SNAPSHOT, {"data": CLAIM}, {"pvc-c-1": stolen})


def test_the_content_is_bound_to_the_snapshot_and_valid_under_its_crd() -> None:
    content = content_for(SNAPSHOT, CSI_VOLUME, default_snapshot_classes()[0])
    assert content["metadata"]["name"] == "snapcontent-u-1"
    assert content["metadata"]["annotations"] == {"sim.vdcos.io/content": "v1"}
    assert content["spec"]["volumeSnapshotRef"] == {
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "name": "snap",
        "namespace": "web", "uid": "u-1", "resourceVersion": "7"}
    assert content["spec"]["source"] == {"volumeHandle": "pvc-c-1"}
    content["status"] = cut_snapshot_status(CSI_VOLUME, 1_700_000_000_000_000_000, "h-1")
    schema = crd("volumesnapshotcontents")
    assert crd_schema_errors(content, schema) == []
    rules = validate_rules(content, schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert rules == []


def test_the_snapshot_reports_its_content_once_cut() -> None:
    content = {"metadata": {"name": "snapcontent-u-1"},
               "status": cut_snapshot_status(CSI_VOLUME, 1_700_000_000_000_000_000, "h-1")}
    status = bound_snapshot_status({**SNAPSHOT, "status": {"error": {"message": "old"}}},
                                   content)
    assert status == {"boundVolumeSnapshotContentName": "snapcontent-u-1",
                      "creationTime": "2023-11-14T22:13:20Z", "readyToUse": True,
                      "restoreSize": "2Gi"}
    assert crd_schema_errors({**SNAPSHOT, "status": status}, crd("volumesnapshots")) == []


def test_a_claim_from_a_snapshot_waits_for_it_to_be_ready() -> None:
    claim: dict[str, Any] = {"metadata": {"name": "copy"}, "spec": {"dataSourceRef": {
        "apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"}}}
    prefix = "error getting handle for DataSource Type VolumeSnapshot by Name snap"
    assert snapshot_source_problem(claim, None) == (
        f'{prefix}: error getting snapshot snap from api server: '
        f'volumesnapshots.snapshot.storage.k8s.io "snap" not found')
    assert snapshot_source_problem(claim, SNAPSHOT) == f"{prefix}: snapshot snap is not Ready"
    ready = {**SNAPSHOT, "status": {"readyToUse": True,
                                    "boundVolumeSnapshotContentName": "snapcontent-u-1"}}
    assert snapshot_source_problem(claim, ready) is None
    small = {**claim, "spec": {**claim["spec"], "resources": {"requests": {"storage": "1Gi"}}}}
    assert snapshot_source_problem(small, {**ready, "status": {
        **ready["status"], "restoreSize": "2Gi"}}) == (
        "requested volume size 1073741824 is less than the size 2147483648 for the source "
        "snapshot snap")


def test_the_crds_cel_rules_see_escaped_reserved_words() -> None:
    """`has(self.__namespace__)`: a reference without a namespace is refused, as by
    kube-apiserver (the property `namespace` is a CEL reserved word)."""
    content = content_for(SNAPSHOT, CSI_VOLUME, default_snapshot_classes()[0])
    del content["spec"]["volumeSnapshotRef"]["namespace"]
    schema = crd("volumesnapshotcontents")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    messages = [str(cause) for cause in validate_rules(content, schema)]
    assert len(messages) == 1
    assert "both spec.volumeSnapshotRef.name and spec.volumeSnapshotRef.namespace must be set" \
        in messages[0]
