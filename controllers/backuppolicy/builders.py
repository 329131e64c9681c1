"""Pure planning of one BackupPolicy pass: which snapshots to take, retry and delete, and
what each VM's last backup says.

A run takes one VirtualMachineSnapshot per selected VM, labelled with the policy and the VM.
A snapshot that failed is retried once (a second snapshot marked attempt 2); a failed retry
is reported and waits for the next run. Retention (`retention.plan_retention`) applies per
VM to the policy's snapshots that succeeded; a failed one goes once a later one of the same
VM succeeded; snapshots still being taken are never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from controllers.backuppolicy.models import BackupPolicySpec, BackupResult
from controllers.backuppolicy.retention import Retention, Snapshot, plan_retention
from controllers.common.vdc_api import API_VERSION
from controllers.computecluster.builders import selector_matches
from controllers.virtualmachinesnapshot.kind import BACKUP_POLICY_LABEL

#: On a policy's snapshots: the VM it is of, and which attempt of its run it is (1 or 2).
BACKUP_VM_LABEL: Final = "vdcos.io/backup-vm"
ATTEMPT_ANNOTATION: Final = "vdcos.io/backup-attempt"
MAX_ATTEMPTS: Final = 2
_UNFINISHED: Final = frozenset({None, "", "Pending", "InProgress"})


@dataclass(frozen=True)
class PolicySnapshot:
    """One snapshot the policy took, as the planner reads it."""

    name: str
    vm: str
    created: datetime
    phase: str | None
    attempt: int = 1
    message: str | None = None


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time (the API's "Z" form), or None."""
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)


def policy_snapshot(body: Mapping[str, Any]) -> PolicySnapshot | None:
    """The planner's view of a VDC snapshot body; None when it is not a policy's."""
    metadata = body.get("metadata") or {}
    labels = metadata.get("labels") or {}
    vm = labels.get(BACKUP_VM_LABEL)
    created = parse_time(metadata.get("creationTimestamp"))
    if not vm or created is None:
        return None
    status = body.get("status") or {}
    attempt = str((metadata.get("annotations") or {}).get(ATTEMPT_ANNOTATION) or "1")
    return PolicySnapshot(
        name=str(metadata["name"]), vm=str(vm), created=created,
        phase=status.get("phase"), attempt=int(attempt) if attempt.isdigit() else 1,
        message=status.get("message"))


def snapshot_name(vm: str, policy: str, when: datetime, attempt: int = 1) -> str:
    """`<vm>-<policy>-<YYYYMMDD-HHMMSSmmm>` (UTC, to the millisecond: runs asked for one after
    another may fall in one second), `-r` for the retry; at most 253 characters."""
    utc = when.astimezone(UTC)
    stamp = utc.strftime("%Y%m%d-%H%M%S") + f"{utc.microsecond // 1000:03d}"
    suffix = f"-{stamp}" + ("-r" if attempt > 1 else "")
    return f"{vm}-{policy}"[: 253 - len(suffix)] + suffix


def snapshot_manifest(namespace: str, policy: str, vm: str, when: datetime,
                      attempt: int = 1) -> dict[str, Any]:
    """The VirtualMachineSnapshot a run (or a retry) creates for one VM.

    Not owned by the policy: deleting a policy keeps the backups it took (as deleting a
    vSphere backup job keeps its restore points).
    """
    return {
        "apiVersion": API_VERSION,
        "kind": "VirtualMachineSnapshot",
        "metadata": {
            "name": snapshot_name(vm, policy, when, attempt),
            "namespace": namespace,
            "labels": {BACKUP_POLICY_LABEL: policy, BACKUP_VM_LABEL: vm},
            "annotations": {ATTEMPT_ANNOTATION: str(attempt)},
        },
        "spec": {"virtualMachineName": vm},
    }


def selected_vms(spec: BackupPolicySpec, vms: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the VMs (of the policy's namespace) its selector picks, sorted."""
    return sorted(
        str(vm["metadata"]["name"]) for vm in vms
        if not vm["metadata"].get("deletionTimestamp")
        and selector_matches(spec.virtual_machine_selector,
                             dict(vm["metadata"].get("labels") or {})))


@dataclass(frozen=True)
class VMBackup:
    """The last backup of one VM, as status.virtualMachines[] shows it."""

    name: str
    result: BackupResult
    snapshot_name: str
    time: datetime
    message: str | None = None
    kept: int = 0

    def to_api(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name, "result": self.result, "snapshotName": self.snapshot_name,
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "kept": self.kept,
        }
        if self.message:
            entry["message"] = self.message
        return entry


@dataclass(frozen=True)
class PassPlan:
    """What one pass does: retries to take, snapshots to delete, and each VM's state."""

    retries: tuple[str, ...] = ()  # VMs whose last run failed at attempt 1
    delete: tuple[str, ...] = ()
    backups: tuple[VMBackup, ...] = field(default_factory=tuple)


def _result(newest: PolicySnapshot) -> BackupResult:
    if newest.phase in _UNFINISHED:
        return "InProgress"
    if newest.phase == "Succeeded":
        return "Succeeded"
    return "Failed" if newest.attempt >= MAX_ATTEMPTS else "Retrying"


def plan_pass(snapshots: Sequence[PolicySnapshot], retention: Retention) -> PassPlan:
    """Retries, deletions and the per-VM last result, from the policy's snapshots."""
    by_vm: dict[str, list[PolicySnapshot]] = {}
    for snapshot in snapshots:
        by_vm.setdefault(snapshot.vm, []).append(snapshot)
    retries: list[str] = []
    delete: list[str] = []
    backups: list[VMBackup] = []
    for vm in sorted(by_vm):
        own = sorted(by_vm[vm], key=lambda s: (s.created, s.attempt, s.name), reverse=True)
        newest = own[0]
        result = _result(newest)
        if result == "Retrying":
            retries.append(vm)
        succeeded = [s for s in own if s.phase == "Succeeded"]
        plan = plan_retention([Snapshot(s.name, s.created) for s in succeeded], retention)
        delete.extend(plan.delete)
        if succeeded:
            newest_good = succeeded[0].created
            delete.extend(s.name for s in own if s.phase == "Failed" and s.created < newest_good)
        message = newest.message if result in ("Failed", "Retrying") else None
        backups.append(VMBackup(vm, result, newest.name, newest.created, message,
                                kept=len(plan.keep)))
    return PassPlan(tuple(retries), tuple(delete), tuple(backups))


def run_due(schedule_next: datetime | None, now: datetime, requested: str | None,
            last_token: str | None) -> bool:
    """Whether a run starts now: the schedule's time came, or `vdcos backup run` asked."""
    if requested and requested != last_token:
        return True
    return schedule_next is not None and schedule_next <= now
