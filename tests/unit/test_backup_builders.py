"""BackupPolicy: its spec's validation (schedule, retention), the schedule's next times, and
one pass's plan (retries, deletions, each VM's last result)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from controllers.backuppolicy.builders import (
    ATTEMPT_ANNOTATION,
    BACKUP_VM_LABEL,
    PolicySnapshot,
    plan_pass,
    policy_snapshot,
    run_due,
    selected_vms,
    snapshot_manifest,
    snapshot_name,
)
from controllers.backuppolicy.models import BackupPolicySpec
from controllers.backuppolicy.retention import Retention
from controllers.backuppolicy.schedule import ScheduleError, check_schedule, next_run
from controllers.common.validation import validation_message
from controllers.virtualmachinesnapshot.kind import BACKUP_POLICY_LABEL

NOON = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


def spec(**fields: object) -> BackupPolicySpec:
    return BackupPolicySpec.model_validate(
        {"schedule": "0 3 * * *", "retention": {"keepLast": 3}, **fields})


def test_a_schedule_that_does_not_parse_is_refused_naming_the_field() -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        spec(schedule="61 * * * *")
    message = validation_message(raised.value)
    assert message.startswith("spec.schedule: ")
    assert '"61 * * * *" is not a cron schedule' in message


def test_a_retention_that_keeps_nothing_is_refused_naming_the_field() -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        spec(retention={"keepLast": 0, "keepDaily": 0})
    assert validation_message(raised.value).startswith("spec.retention: ")
    assert "keeps nothing" in validation_message(raised.value)


@pytest.mark.parametrize("schedule", ["every day", "* * * *", "1 2 3 4 5 6 7"])
def test_schedules_with_the_wrong_field_count_say_so(schedule: str) -> None:
    with pytest.raises(ScheduleError, match="fields"):
        check_schedule(schedule)


def test_next_run_five_and_six_fields_and_macros() -> None:
    assert next_run("0 3 * * *", NOON) == datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    assert next_run("* * * * * */10", NOON) == NOON + timedelta(seconds=10)
    assert next_run("@hourly", NOON) == NOON + timedelta(hours=1)


def test_a_run_is_due_at_its_time_or_when_asked_with_a_new_token() -> None:
    assert run_due(NOON, NOON, None, None)
    assert not run_due(NOON + timedelta(seconds=1), NOON, None, None)
    assert run_due(None, NOON, "token-2", "token-1")
    assert not run_due(None, NOON, "token-1", "token-1")


def test_snapshot_manifest_is_labelled_with_policy_and_vm_and_not_owned() -> None:
    manifest = snapshot_manifest("team-a", "nightly", "web", NOON)
    metadata = manifest["metadata"]
    assert metadata["name"] == "web-nightly-20260302-120000000"
    assert metadata["labels"] == {BACKUP_POLICY_LABEL: "nightly", BACKUP_VM_LABEL: "web"}
    assert metadata["annotations"] == {ATTEMPT_ANNOTATION: "1"}
    assert "ownerReferences" not in metadata
    assert manifest["spec"] == {"virtualMachineName": "web"}
    assert snapshot_name("web", "nightly", NOON, 2) == "web-nightly-20260302-120000000-r"
    assert len(snapshot_name("v" * 200, "p" * 100, NOON)) == 253


def test_selected_vms_follow_the_selector() -> None:
    vms = [{"metadata": {"name": "web", "labels": {"tier": "prod"}}},
           {"metadata": {"name": "db", "labels": {"tier": "prod"}}},
           {"metadata": {"name": "scratch", "labels": {}}}]
    assert selected_vms(spec(virtualMachineSelector={"matchLabels": {"tier": "prod"}}),
                        vms) == ["db", "web"]
    assert selected_vms(spec(), vms) == ["db", "scratch", "web"]


def test_policy_snapshot_reads_labels_attempt_and_phase() -> None:
    body = {"metadata": {"name": "web-nightly-x", "creationTimestamp": "2026-03-02T12:00:00Z",
                         "labels": {BACKUP_VM_LABEL: "web"},
                         "annotations": {ATTEMPT_ANNOTATION: "2"}},
            "status": {"phase": "Failed", "message": "boom"}}
    assert policy_snapshot(body) == PolicySnapshot("web-nightly-x", "web", NOON, "Failed", 2,
                                                   "boom")
    assert policy_snapshot({"metadata": {"name": "manual"}}) is None


def taken(name: str, vm: str, minutes: int, phase: str | None = "Succeeded",
          attempt: int = 1) -> PolicySnapshot:
    return PolicySnapshot(name, vm, NOON + timedelta(minutes=minutes), phase, attempt,
                          "KubeVirt failed" if phase == "Failed" else None)


def test_plan_keeps_per_vm_and_deletes_what_retention_drops() -> None:
    snapshots = [taken(f"web-{i}", "web", i) for i in range(5)] + [taken("db-0", "db", 0)]
    plan = plan_pass(snapshots, Retention(keep_last=2))
    assert plan.delete == ("web-2", "web-1", "web-0")
    assert [(b.name, b.result, b.snapshot_name, b.kept) for b in plan.backups] == [
        ("db", "Succeeded", "db-0", 1), ("web", "Succeeded", "web-4", 2)]
    assert plan.retries == ()


def test_a_failed_backup_is_retried_once_then_reported() -> None:
    first = [taken("web-0", "web", 0), taken("web-1", "web", 1, "Failed")]
    plan = plan_pass(first, Retention(keep_last=5))
    assert plan.retries == ("web",)
    assert plan.backups[0].result == "Retrying"
    assert plan.delete == ()  # the failure is kept until a later one succeeds
    retried = [*first, taken("web-1-r", "web", 1, "Failed", attempt=2)]
    plan = plan_pass(retried, Retention(keep_last=5))
    assert plan.retries == ()
    assert (plan.backups[0].result, plan.backups[0].message) == ("Failed", "KubeVirt failed")
    recovered = [*retried, taken("web-2", "web", 2)]
    plan = plan_pass(recovered, Retention(keep_last=5))
    assert plan.backups[0].result == "Succeeded"
    assert set(plan.delete) == {"web-1", "web-1-r"}


def test_snapshots_being_taken_are_never_deleted() -> None:
    snapshots = [taken("web-0", "web", 0), taken("web-1", "web", 1),
                 taken("web-2", "web", 2, "InProgress")]
    plan = plan_pass(snapshots, Retention(keep_last=1))
    assert plan.delete == ("web-0",)
    assert plan.backups[0].result == "InProgress"
