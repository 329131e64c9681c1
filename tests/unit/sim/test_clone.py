"""The CDI clone emulation: strategy choice as CDI's planner makes it, clone time by strategy,
DataVolume phases and events of the clone populator, and DataSource readiness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devcluster.sim.cdi import storage_profile_for
from devcluster.sim.clone import (
    ANN_CLONE_PHASE,
    MESSAGE_INCOMPATIBLE_PROVISIONERS,
    MESSAGE_INCOMPATIBLE_VOLUME_MODES,
    MESSAGE_NO_SNAPSHOT_CLASS,
    MESSAGE_NO_VOLUME_EXPANSION,
    CloneChoice,
    choose_clone_strategy,
    clone_progress,
    clone_seconds,
    profile_clone_strategy,
)
from devcluster.sim.datasource import data_source_status
from devcluster.sim.datavolume import next_datavolume_state
from devcluster.sim.storage import default_storage_classes
from tests.oracles import CDI_SWAGGER, validate_against_swagger

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
STANDARD, SHARED = default_storage_classes()
OTHER_CSI = {"metadata": {"name": "ceph"}, "provisioner": "rbd.csi.ceph.com",
             "allowVolumeExpansion": False}


def claim(size: str = "10Gi", *, mode: str = "Filesystem", saved: str | None = None,
          class_name: str = "shared") -> dict[str, Any]:
    annotations = {"cdi.kubevirt.io/cloneType": saved} if saved else {}
    return {"metadata": {"name": "c", "namespace": "ns", "annotations": annotations},
            "spec": {"storageClassName": class_name, "volumeMode": mode,
                     "resources": {"requests": {"storage": size}}},
            "status": {"phase": "Bound", "capacity": {"storage": size}}}


def test_storage_profiles_advise_csi_clone_on_shared_and_copy_on_local_path() -> None:
    assert storage_profile_for(SHARED)["status"]["cloneStrategy"] == "csi-clone"
    assert storage_profile_for(STANDARD)["status"]["cloneStrategy"] == "copy"
    annotated = {**STANDARD, "metadata": {"name": "x", "annotations": {
        "cdi.kubevirt.io/clone-strategy": "snapshot"}}}
    assert profile_clone_strategy(annotated) == "snapshot"
    assert profile_clone_strategy(SHARED, {"cloneStrategy": "copy"}) == "copy"


@pytest.mark.parametrize(
    ("target", "source", "target_class", "profile", "choice"),
    [
        (claim(), claim(), SHARED, "csi-clone", CloneChoice("csi-clone")),
        # The strategy saved on the claim (a Full clone's request) is used as is.
        (claim(saved="copy"), claim(), SHARED, "csi-clone", CloneChoice("copy")),
        (claim(class_name="standard"), claim(), STANDARD, "copy", CloneChoice("copy")),
        # Across provisioners CDI cannot clone in the backend: it copies, saying why.
        (claim(class_name="ceph"), claim(), OTHER_CSI, "csi-clone",
         CloneChoice("copy", MESSAGE_INCOMPATIBLE_PROVISIONERS)),
        (claim(mode="Block"), claim(), SHARED, "csi-clone",
         CloneChoice("copy", MESSAGE_INCOMPATIBLE_VOLUME_MODES)),
        (claim("20Gi", class_name="ceph"), claim(class_name="ceph"),
         OTHER_CSI, "csi-clone", CloneChoice("copy", MESSAGE_INCOMPATIBLE_PROVISIONERS)),
        (claim(), claim(), SHARED, "snapshot", CloneChoice("copy", MESSAGE_NO_SNAPSHOT_CLASS)),
        (claim(), claim(), SHARED, None, CloneChoice("copy", MESSAGE_NO_SNAPSHOT_CLASS)),
    ],
)
def test_strategy_is_chosen_as_cdis_planner_does(
    target: dict[str, Any], source: dict[str, Any], target_class: dict[str, Any],
    profile: str | None, choice: CloneChoice,
) -> None:
    assert choose_clone_strategy(target, source, target_class, SHARED, profile) == choice


def test_a_bigger_target_without_expansion_is_copied() -> None:
    no_expansion = {**SHARED, "allowVolumeExpansion": False}
    assert choose_clone_strategy(claim("20Gi"), claim("10Gi"), no_expansion, no_expansion,
                                 "csi-clone") == CloneChoice("copy", MESSAGE_NO_VOLUME_EXPANSION)
    assert choose_clone_strategy(claim("20Gi"), claim("10Gi"), SHARED, SHARED,
                                 "csi-clone") == CloneChoice("csi-clone")


def test_copy_on_write_takes_the_same_time_whatever_the_size_and_copy_by_size() -> None:
    small, large = 1 * 2**30, 100 * 2**30
    for strategy in ("csi-clone", "snapshot"):
        assert clone_seconds(strategy, small, csi_seconds=3, copy_mbps=200) == 3
        assert clone_seconds(strategy, large, csi_seconds=3, copy_mbps=200) == 3
    assert clone_seconds("copy", large, csi_seconds=3, copy_mbps=200) == pytest.approx(
        large / 200e6)
    assert clone_seconds("copy", large, csi_seconds=3, copy_mbps=200) == pytest.approx(
        100 * clone_seconds("copy", small, csi_seconds=3, copy_mbps=200))
    assert clone_progress("copy", 4, 10) == "40.00%"
    # Read every 2 s as CDI scrapes it: no new status (and write) in between.
    assert clone_progress("copy", 5.9, 10) == "40.00%"
    assert clone_progress("csi-clone", 5, 10) is None


def clone_dv(phase: str = "") -> dict[str, Any]:
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
            "metadata": {"name": "vm-root", "namespace": "ns", "uid": "u1"},
            "spec": {"sourceRef": {"kind": "DataSource", "name": "fedora"},
                     "storage": {"resources": {"requests": {"storage": "10Gi"}}}},
            "status": {"phase": phase} if phase else {}}


def bound_claim(clone_phase: str) -> dict[str, Any]:
    return {"metadata": {"name": "vm-root", "namespace": "ns", "annotations": {
        ANN_CLONE_PHASE: clone_phase, "k8s.io/CloneRequest": "ns/vdcvmt-fedora"}},
        "spec": {"storageClassName": "shared"}, "status": {"phase": "Bound"}}


@pytest.mark.parametrize(
    ("clone_phase", "dv_phase", "event"),
    [
        ("Pending", "CloneScheduled",
         ("CloneScheduled", "Cloning from ns/vdcvmt-fedora into ns/vm-root scheduled")),
        ("CSIClone", "CSICloneInProgress",
         ("CSICloneInProgress", "CSI Volume clone in progress (for pvc ns/vdcvmt-fedora)")),
        ("HostClone", "CloneInProgress",
         ("CloneInProgress", "Cloning from ns/vdcvmt-fedora into ns/vm-root in progress")),
        ("Succeeded", "Succeeded",
         ("CloneSucceeded", "Successfully cloned from ns/vdcvmt-fedora into ns/vm-root")),
    ],
)
def test_data_volume_phases_follow_the_clone_populator(
    clone_phase: str, dv_phase: str, event: tuple[str, str]
) -> None:
    state = next_datavolume_state(clone_dv(), bound_claim(clone_phase), SHARED, "40.00%", NOW)
    assert state.phase == dv_phase
    assert [(e.reason, e.message) for e in state.events] == [event]
    validate_against_swagger(state.status(), CDI_SWAGGER, "v1beta1.DataVolumeStatus")
    ready = {c["type"]: c["status"] for c in state.conditions}["Ready"]
    assert ready == ("True" if dv_phase == "Succeeded" else "False")
    assert state.progress == ("100.0%" if dv_phase == "Succeeded" else "40.00%")
    # The phase reached once posts no second event.
    again = next_datavolume_state(clone_dv(dv_phase), bound_claim(clone_phase), SHARED, None, NOW)
    assert again.events == []


def test_data_source_is_ready_when_its_claim_is_populated() -> None:
    data_source = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataSource",
                   "metadata": {"name": "fedora", "namespace": "ns"},
                   "spec": {"source": {"pvc": {"namespace": "ns", "name": "vdcvmt-fedora"}}}}
    importing = data_source_status(data_source, claim(), {"status": {"phase": "ImportInProgress"}})
    validate_against_swagger({**data_source, "status": importing}, CDI_SWAGGER,
                             "v1beta1.DataSource")
    [condition] = importing["conditions"]
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False", "ImportInProgress", "Import DataVolume phase ImportInProgress")
    assert importing["source"] == {}
    ready = data_source_status(data_source, claim(), {"status": {"phase": "Succeeded"}})
    [condition] = ready["conditions"]
    assert (condition["status"], condition["message"]) == (
        "True", "DataSource is ready to be consumed")
    assert ready["source"] == data_source["spec"]["source"]
    missing = data_source_status(data_source, None, None)
    assert missing["conditions"][0]["reason"] == "NotFound"
