"""KubeVirt's snapshot logic (vm_snapshot_state.py): the source's state and lock, the content,
the phases, conditions and indications, with KubeVirt's messages; what is built validates
against KubeVirt's swagger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devcluster.sim.vm_snapshot_state import (
    SourceState,
    condition,
    content_for,
    content_status,
    deadline_exceeded,
    indications,
    lock_blocker,
    parse_duration,
    snapshot_status,
    source_state,
    update_condition,
    volume_backups,
    volume_problem,
    volume_snapshot_for,
    volume_snapshot_status,
)
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
VM: dict[str, Any] = {
    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
    "metadata": {"name": "web", "namespace": "prod", "uid": "vm-1",
                 "managedFields": [{"manager": "kubectl"}]},
    "spec": {"runStrategy": "Always", "template": {"spec": {
        "domain": {"devices": {"disks": [{"name": "root", "disk": {}}]}},
        "volumes": [{"name": "root", "dataVolume": {"name": "web-root"}},
                    {"name": "scratch", "persistentVolumeClaim": {"claimName": "tmp"}},
                    {"name": "init", "cloudInitNoCloud": {"userData": "#cloud-config"}}]}}},
    "status": {"printableStatus": "Running"}}
SNAPSHOT: dict[str, Any] = {
    "apiVersion": "snapshot.kubevirt.io/v1beta1", "kind": "VirtualMachineSnapshot",
    "metadata": {"name": "snap", "namespace": "prod", "uid": "s-1",
                 "creationTimestamp": "2026-12-01T11:59:00Z"},
    "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine",
                        "name": "web"}}}


def pvc(name: str, storage_class: str, phase: str = "Bound") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "prod", "uid": f"uid-{name}"},
            "spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteMany"],
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": phase}}


CLAIMS = {"web-root": pvc("web-root", "shared"), "tmp": pvc("tmp", "standard")}


def vmi(*conditions: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "status": {"conditions": list(conditions)}}


def locked(vm: dict[str, Any]) -> dict[str, Any]:
    return {**vm, "metadata": {**vm["metadata"],
                               "finalizers": ["snapshot.kubevirt.io/snapshot-source-protection"]},
            "status": {**vm["status"], "snapshotInProgress": "snap"}}


def test_indications_follow_the_vmi() -> None:
    offline = source_state(VM, None, SNAPSHOT)
    assert indications(offline) == []
    agent = source_state(VM, vmi({"type": "AgentConnected", "status": "True"}), SNAPSHOT)
    assert agent.guest_agent and indications(agent) == ["GuestAgent", "Online"]
    assert indications(source_state(VM, vmi(), SNAPSHOT)) == ["NoGuestAgent", "Online"]
    paused = vmi({"type": "Paused", "status": "True"},
                 {"type": "AgentConnected", "status": "True"})
    assert indications(source_state(VM, paused, SNAPSHOT)) == ["Online", "Paused"]


def test_the_lock_needs_the_finalizer_and_snapshot_in_progress() -> None:
    assert source_state(VM, None, SNAPSHOT).lock_message == "Source not locked"
    state = source_state(locked(VM), None, SNAPSHOT)
    assert state.locked and state.lock_message == "Source locked and operation in progress"


def test_lock_blockers_are_kubevirts_messages() -> None:
    claims = {"web-root": pvc("web-root", "shared", phase="Pending")}
    problem = volume_problem("prod", "web", ["web-root"], claims.get, lambda _: True)
    assert problem == " source prod/web volume not bound: web-root"
    assert volume_problem("prod", "web", ["gone"], claims.get, lambda _: True) == \
        " source prod/web volume doesnt exist: gone"
    assert volume_problem("prod", "web", ["web-root"], CLAIMS.get, lambda _: False) == \
        " source prod/web volume not populated: web-root"
    busy = {**VM, "status": {"snapshotInProgress": "other"}}
    assert lock_blocker(busy, SNAPSHOT, None) == ' snapshot "other" in progress'
    assert lock_blocker(VM, SNAPSHOT, None) is None


def test_only_claims_whose_class_can_snapshot_are_backed_up() -> None:
    backups = volume_backups(SNAPSHOT, VM, CLAIMS.get,
                             lambda claim: "shared-snapclass"
                             if claim["spec"]["storageClassName"] == "shared" else "")
    assert [b["volumeName"] for b in backups] == ["root"]
    assert backups[0]["volumeSnapshotName"] == "vmsnapshot-s-1-volume-root"
    content = content_for(SNAPSHOT, VM, backups)
    assert content["metadata"]["name"] == "vmsnapshot-content-s-1"
    assert "managedFields" not in content["spec"]["source"]["virtualMachine"]["metadata"]
    assert content["spec"]["source"]["virtualMachine"]["status"] == {}
    content["status"] = {"readyToUse": False}
    validate_against_swagger(content, KUBEVIRT_SWAGGER, "v1beta1.VirtualMachineSnapshotContent")
    volume_snapshot = volume_snapshot_for({**content, "metadata": {
        **content["metadata"], "uid": "c-1"}}, backups[0], "shared-snapclass")
    assert volume_snapshot["metadata"]["labels"] == {
        "snapshot.kubevirt.io/source-vm-name": "web",
        "snapshot.kubevirt.io/source-vm-namespace": "prod"}
    assert volume_snapshot["metadata"]["ownerReferences"][0]["uid"] == "c-1"
    assert volume_snapshot["spec"] == {"source": {"persistentVolumeClaimName": "web-root"},
                                       "volumeSnapshotClassName": "shared-snapclass"}


def content_with(backups: int) -> dict[str, Any]:
    return {"metadata": {"name": "vmsnapshot-content-s-1"}, "spec": {
        "source": {"virtualMachine": {"metadata": VM["metadata"], "spec": VM["spec"]}},
        "volumeBackups": [{"volumeName": "root", "volumeSnapshotName": f"vs-{i}",
                           "persistentVolumeClaim": {"metadata": {"name": "web-root"}}}
                          for i in range(backups)]}}


def test_content_status_follows_its_volume_snapshots() -> None:
    content = content_with(1)
    cutting = content_status(content, {"vs-0": {"status": {"readyToUse": False}}},
                             content_created_before=False, now=NOW)
    assert cutting == {"readyToUse": False, "volumeSnapshotStatus": [
        {"volumeSnapshotName": "vs-0", "readyToUse": False}]}
    ready = content_status(content, {"vs-0": {"status": {
        "readyToUse": True, "creationTime": "2026-12-01T11:59:30Z"}}},
        content_created_before=False, now=NOW)
    assert ready["readyToUse"] is True and ready["creationTime"] == "2026-12-01T12:00:00Z"
    failed = content_status(content, {"vs-0": {"status": {"error": {"message": "boom"}}}},
                            content_created_before=False, now=NOW)
    assert failed["error"]["message"] == "VolumeSnapshot vs-0 error: boom"
    missing = content_status({**content, "status": ready}, {}, content_created_before=True,
                             now=NOW)
    assert missing["readyToUse"] is False
    assert missing["error"]["message"] == "VolumeSnapshots (vs-0) missing"
    assert content_status(content_with(0), {}, content_created_before=False, now=NOW)[
        "readyToUse"] is True


def test_a_snapshot_goes_in_progress_then_succeeds() -> None:
    source = source_state(VM, vmi({"type": "AgentConnected", "status": "True"}), SNAPSHOT)
    first = snapshot_status(SNAPSHOT, source, "vm-1", None, NOW)
    assert first["phase"] == "InProgress" and first["readyToUse"] is False
    assert [(c["type"], c["status"], c["reason"]) for c in first["conditions"]] == [
        ("Progressing", "False", "Source not locked"), ("Ready", "False", "Not ready")]
    assert first["indications"] == ["GuestAgent", "Online"]
    assert first["sourceIndications"][0] == {
        "indication": "GuestAgent", "message": "Guest agent was active and attempted to "
        "quiesce the filesystem for application consistency."}
    content = {**content_with(1), "status": {"readyToUse": True,
                                              "creationTime": "2026-12-01T12:00:00Z"}}
    done = snapshot_status({**SNAPSHOT, "status": first}, source, "vm-1", content, NOW)
    assert done["phase"] == "Succeeded" and done["readyToUse"] is True
    assert done["virtualMachineSnapshotContentName"] == "vmsnapshot-content-s-1"
    assert done["sourceUID"] == "vm-1"
    assert done["snapshotVolumes"] == {"includedVolumes": ["root"],
                                       "excludedVolumes": ["scratch", "init"]}
    # scratch could have been snapshotted (a PVC): the snapshot is partial.
    assert done["indications"] == ["GuestAgent", "Online", "PartialSnapshot"]
    reasons = {c["type"]: c["reason"] for c in done["conditions"]}
    assert reasons == {"Progressing": "Operation complete", "Ready": "Ready"}
    validate_against_swagger({**SNAPSHOT, "status": done}, KUBEVIRT_SWAGGER,
                             "v1beta1.VirtualMachineSnapshot")


def test_past_the_failure_deadline_the_snapshot_fails() -> None:
    late = NOW + timedelta(minutes=10)
    assert deadline_exceeded(SNAPSHOT, late)
    status = snapshot_status(SNAPSHOT, None, None, None, late)
    assert status["phase"] == "Failed"
    reasons = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert reasons["Failure"] == ("True", "snapshot deadline exceeded")
    assert reasons["Progressing"] == ("False", "Operation failed")
    no_deadline = {**SNAPSHOT, "spec": {**SNAPSHOT["spec"], "failureDeadline": "0s"}}
    assert not deadline_exceeded(no_deadline, late)


def test_a_missing_source_is_reported() -> None:
    status = snapshot_status(SNAPSHOT, None, None, None, NOW)
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Progressing"] == \
        "Source does not exist"


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("1h30m0s", 5400), ("0", 0),
                                               ("1.5s", 1.5), ("300ms", 0.3)])
def test_durations_parse_as_go_does(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("5 minutes")


def test_volume_snapshot_statuses_say_why_not() -> None:
    assert volume_snapshot_status({"name": "init", "cloudInitNoCloud": {}}, None, None, "") == {
        "name": "init", "enabled": False,
        "reason": "Snapshot is not supported for this volumeSource type [init]"}
    assert volume_snapshot_status({"name": "scratch", "persistentVolumeClaim": {}},
                                  "standard", None, "")["reason"] == (
        "No VolumeSnapshotClass: Volume snapshots are not configured for this StorageClass "
        "[standard] [scratch]")
    assert volume_snapshot_status({"name": "x", "persistentVolumeClaim": {}}, None,
                                  "PVC not found", "") == {
        "name": "x", "enabled": False, "reason": "PVC not found"}
    assert volume_snapshot_status({"name": "root", "dataVolume": {}}, "shared", None,
                                  "shared-snapclass") == {"name": "root", "enabled": True}


@given(st.lists(st.tuples(st.sampled_from(["Ready", "Progressing", "Failure"]),
                          st.sampled_from(["True", "False"]),
                          st.sampled_from(["a", "b"])), max_size=8))
def test_update_condition_keeps_one_per_type_and_the_last_word(
        updates: list[tuple[str, str, str]]) -> None:
    conditions: list[dict[str, Any]] = []
    for index, (type_, status, reason) in enumerate(updates):
        conditions = update_condition(conditions, condition(type_, status, reason,
                                                            NOW + timedelta(seconds=index)))
    types = [c["type"] for c in conditions]
    assert len(types) == len(set(types))
    last = {type_: (status, reason) for type_, status, reason in updates}
    assert {c["type"]: (c["status"], c["reason"]) for c in conditions} == last


def test_source_state_is_a_value() -> None:
    state = SourceState(online=True, paused=False, guest_agent=False, frozen=False,
                        locked=True, lock_message="Source locked and operation in progress")
    assert indications(state) == ["NoGuestAgent", "Online"]
