"""VirtualMachineSnapshot: the KubeVirt snapshot it creates, how KubeVirt's status reads back
(phase, consistency from the indications, size and VolumeSnapshots of the content), and the
VM's snapshot tree."""

from __future__ import annotations

import pydantic
import pytest

from controllers.virtualmachinesnapshot.builders import (
    SnapshotPoint,
    consistency_of,
    content_summary,
    indications_of,
    kubevirt_snapshot,
    parent_of,
    phase_of,
)
from controllers.virtualmachinesnapshot.kind import SNAPSHOT_LABEL
from controllers.virtualmachinesnapshot.models import VirtualMachineSnapshotSpec
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

OURS = {
    "apiVersion": "vdcos.io/v1alpha1",
    "kind": "VirtualMachineSnapshot",
    "metadata": {"name": "before-upgrade", "namespace": "team-a", "uid": "u-1"},
    "spec": {"virtualMachineName": "web"},
}


def test_spec_defaults_quiesce_and_names_a_bad_vm_name() -> None:
    assert VirtualMachineSnapshotSpec.model_validate({"virtualMachineName": "web"}).quiesce
    with pytest.raises(pydantic.ValidationError, match=r"virtualMachineName"):
        VirtualMachineSnapshotSpec.model_validate({"virtualMachineName": "Web_1"})


def test_kubevirt_snapshot_of_the_vm_owned_by_ours() -> None:
    built = kubevirt_snapshot(OURS)
    assert built["apiVersion"] == "snapshot.kubevirt.io/v1beta1"
    assert built["metadata"]["name"] == "before-upgrade"
    assert built["metadata"]["labels"] == {SNAPSHOT_LABEL: "before-upgrade"}
    owner = built["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "VirtualMachineSnapshot", "u-1", True)
    assert built["spec"]["source"] == {"apiGroup": "kubevirt.io", "kind": "VirtualMachine",
                                       "name": "web"}


def test_kubevirt_snapshot_validates_against_the_upstream_schema() -> None:
    validate_against_swagger(kubevirt_snapshot(OURS), KUBEVIRT_SWAGGER,
                             "v1beta1.VirtualMachineSnapshot")


@pytest.mark.parametrize(("status", "phase"), [
    ({}, "Pending"),
    ({"phase": "InProgress"}, "InProgress"),
    ({"phase": "Succeeded", "readyToUse": False}, "InProgress"),
    ({"phase": "Succeeded", "readyToUse": True}, "Succeeded"),
    ({"phase": "Failed"}, "Failed"),
])
def test_phase_follows_kubevirt(status: dict[str, object], phase: str) -> None:
    assert phase_of(status) == phase


def test_consistency_comes_from_the_indications() -> None:
    with_agent = {"indications": ["Online", "GuestAgent"]}
    without = {"sourceIndications": [{"indication": "Online"}, {"indication": "NoGuestAgent"}]}
    assert indications_of(with_agent) == ["GuestAgent", "Online"]
    assert consistency_of(indications_of(with_agent)) == "ApplicationConsistent"
    assert indications_of(without) == ["NoGuestAgent", "Online"]
    assert consistency_of(indications_of(without)) == "CrashConsistent"
    assert consistency_of([]) == "ApplicationConsistent"  # powered off: nothing was writing


def test_content_summary_adds_sizes_and_names_volume_snapshots() -> None:
    content = {"spec": {"volumeBackups": [
        {"volumeName": "root", "volumeSnapshotName": "vmsnapshot-x-volume-root",
         "persistentVolumeClaim": {"spec": {"resources": {"requests": {"storage": "10Gi"}}}}},
        {"volumeName": "data", "volumeSnapshotName": "vmsnapshot-x-volume-data",
         "persistentVolumeClaim": {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}},
    ]}}
    summary = content_summary(content)
    assert summary.size_bytes == 11 * 2**30
    assert summary.volume_snapshots == {"data": "vmsnapshot-x-volume-data",
                                        "root": "vmsnapshot-x-volume-root"}


def test_parent_is_the_latest_before_or_the_snapshot_reverted_to() -> None:
    siblings = [SnapshotPoint("s1", "2026-03-01T10:00:00Z"),
                SnapshotPoint("s2", "2026-03-01T11:00:00Z"),
                SnapshotPoint("s3", "2026-03-01T12:00:00Z")]
    assert parent_of("s1", "2026-03-01T10:00:00Z", siblings) is None
    assert parent_of("s3", "2026-03-01T12:00:00Z", siblings) == "s2"
    # Reverted to s1 after s2 was taken: s3 branches off s1.
    assert parent_of("s3", "2026-03-01T12:00:00Z", siblings,
                     ("s1", "2026-03-01T11:30:00Z")) == "s1"
    # A revert before s2 does not matter any more.
    assert parent_of("s3", "2026-03-01T12:00:00Z", siblings,
                     ("s1", "2026-03-01T10:30:00Z")) == "s2"
