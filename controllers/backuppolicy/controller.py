"""The BackupPolicy controller: scheduled VirtualMachineSnapshots and their retention.

A pass over one policy: when its schedule's next time has come (or `vdcos backup run` asked),
take a snapshot of each selected VM; retry a failed one once; delete the snapshots the
retention no longer keeps; write the status (last and next run, each VM's last result) and
come back at the next scheduled time. Snapshots are ordinary VirtualMachineSnapshots: they
do not hold the VM, so a migration or a power change goes on while one is taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import kopf

from controllers.backuppolicy.builders import (
    MAX_ATTEMPTS,
    PassPlan,
    PolicySnapshot,
    parse_time,
    plan_pass,
    policy_snapshot,
    run_due,
    selected_vms,
    snapshot_manifest,
)
from controllers.backuppolicy.kind import (
    BACKUP_POLICY,
    BACKUP_POLICY_CACHE,
    BACKUP_RUN_REQUESTED_ANNOTATION,
)
from controllers.backuppolicy.models import BackupPolicySpec
from controllers.backuppolicy.retention import Retention
from controllers.backuppolicy.schedule import next_run
from controllers.common.apply import patch_status, post_event
from controllers.common.caches import SpecEntry
from controllers.common.conditions import Condition, mark_false, mark_true, timestamp
from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.common.kube import KubeError
from controllers.common.logging import get_logger
from controllers.virtualmachine.controller import VDC_VMS
from controllers.virtualmachinesnapshot.kind import (
    BACKUP_POLICY_LABEL,
    VIRTUAL_MACHINE_SNAPSHOT,
    VIRTUAL_MACHINE_SNAPSHOT_CACHE,
)

log = get_logger("vdcos.backup")

Key = tuple[str, str]
#: A pass comes back at least this often (a clock jump, a missed event).
RESYNC_SECONDS: Final = 300.0


class BackupPolicyController(Controller[Key]):
    name = "backuppolicies"
    kind = BACKUP_POLICY
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (
        BACKUP_POLICY_CACHE,
        VIRTUAL_MACHINE_SNAPSHOT_CACHE,
        VDC_VMS,
    )

    def __init__(self, context: OperatorContext) -> None:
        self.policies = context.cache(BACKUP_POLICY_CACHE)
        self.snapshots = context.cache(VIRTUAL_MACHINE_SNAPSHOT_CACHE)
        self.vdc_vms = context.cache(VDC_VMS)
        #: The last run (time, token) and the deletions this process made, which the cache
        #: may not show yet: a pass right after a run must not run again.
        self._runs: dict[Key, tuple[str, str | None]] = {}
        self._deleted: dict[Key, set[str]] = {}
        super().__init__(context)

    async def reconcile(self, key: Key) -> None:
        entry = self.policies.get(key)
        if entry is None:
            self._runs.pop(key, None)
            self._deleted.pop(key, None)
            return  # deleted: the snapshots it took stay (they are not owned by it)
        if entry.body["metadata"].get("deletionTimestamp"):
            return
        if entry.spec is None:
            await self._write(entry, {}, False, "InvalidSpec", entry.invalid or "spec is invalid")
            return
        await self._pass(key, entry, entry.spec)

    def _policy_snapshots(self, key: Key) -> list[PolicySnapshot]:
        namespace, name = key
        found = []
        for snapshot_key, snapshot in self.snapshots.items():
            if not isinstance(snapshot_key, tuple) or snapshot_key[0] != namespace:
                continue
            if (snapshot.body["metadata"].get("labels") or {}).get(BACKUP_POLICY_LABEL) != name:
                continue
            parsed = policy_snapshot(snapshot.body)
            if parsed is not None and parsed.name not in self._deleted.get(key, set()):
                found.append(parsed)
        return found

    async def _pass(self, key: Key, entry: SpecEntry[BackupPolicySpec],
                    spec: BackupPolicySpec) -> None:
        namespace, name = key
        metadata = entry.body["metadata"]
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        now = datetime.now(UTC)
        remembered_time, remembered_token = self._runs.get(key, ("", None))
        last_time = max(str(previous.get("lastBackupTime") or ""), remembered_time) or None
        last_token = (remembered_token if remembered_time > str(previous.get("lastBackupTime")
                                                                 or "")
                      else previous.get("lastRunToken"))
        last = parse_time(last_time)
        since = last or parse_time(metadata.get("creationTimestamp")) or now
        scheduled = None if spec.suspend else next_run(spec.schedule, since)
        requested = (metadata.get("annotations") or {}).get(BACKUP_RUN_REQUESTED_ANNOTATION)
        fields: dict[str, Any] = {"lastBackupTime": last_time, "lastRunToken": last_token}
        if run_due(scheduled, now, requested, last_token):
            vms = selected_vms(spec, [vm for (vm_namespace, _), vm in self._vms() if
                                      vm_namespace == namespace])
            for vm in vms:
                await self._create(key, snapshot_manifest(namespace, name, vm, now))
            log.info("Backup run", namespace=namespace, name=name, vms=vms,
                     requested=bool(requested and requested != last_token))
            fields["lastBackupTime"] = timestamp(now)
            if requested:
                fields["lastRunToken"] = requested
            self._runs[key] = (fields["lastBackupTime"], fields["lastRunToken"])
            since = now
        if not spec.suspend:
            fields["nextBackupTime"] = timestamp(next_run(spec.schedule, since))
        plan = self._plan(key, spec)
        for vm in plan.retries:
            failed_run = next(b for b in plan.backups if b.name == vm)
            await self._create(key, snapshot_manifest(namespace, name, vm, failed_run.time,
                                                      MAX_ATTEMPTS))
            log.warning("Retrying backup", namespace=namespace, name=name, vm=vm,
                        message=failed_run.message)
        for snapshot in plan.delete:
            await self._delete(key, snapshot)
        fields["virtualMachines"] = [backup.to_api() for backup in plan.backups]
        failed = [b for b in plan.backups if b.result == "Failed"]
        if failed:
            message = "; ".join(f"{b.name}: {b.message or 'the snapshot failed'}"
                                for b in failed)
            await self._write(entry, fields, False, "BackupFailed",
                              f"the last backup failed after a retry: {message}")
        else:
            await self._write(entry, fields, True, "Scheduled", "suspended" if spec.suspend
                              else f"next backup at {fields['nextBackupTime']}")
        self._come_back(key, fields.get("nextBackupTime"), now)

    def _plan(self, key: Key, spec: BackupPolicySpec) -> PassPlan:
        retention = Retention(spec.retention.keep_last, spec.retention.keep_daily,
                              spec.retention.keep_weekly, spec.retention.keep_monthly)
        return plan_pass(self._policy_snapshots(key), retention)

    def _vms(self) -> list[tuple[tuple[str, str], Mapping[str, Any]]]:
        return [(key, vm) for key, vm in self.vdc_vms.items() if isinstance(key, tuple)]

    def _come_back(self, key: Key, next_time: Any, now: datetime) -> None:
        when = parse_time(next_time)
        delay = RESYNC_SECONDS if when is None else (when - now).total_seconds()
        self.queue.enqueue(key, max(0.0, min(delay, RESYNC_SECONDS)))

    async def _create(self, key: Key, manifest: dict[str, Any]) -> None:
        name = str(manifest["metadata"]["name"])
        try:
            await self.kube.create(VIRTUAL_MACHINE_SNAPSHOT.resource, manifest)
        except KubeError as error:
            if error.status != 409:  # 409: this run's snapshot exists already
                raise
            return
        log.info("Created VirtualMachineSnapshot", namespace=key[0], name=name,
                 backupPolicy=key[1])

    async def _delete(self, key: Key, name: str) -> None:
        try:
            await self.kube.delete(VIRTUAL_MACHINE_SNAPSHOT.resource, key[0], name)
        except KubeError as error:
            if error.status != 404:
                raise
        self._deleted.setdefault(key, set()).add(name)
        log.info("Deleted VirtualMachineSnapshot", namespace=key[0], name=name,
                 backupPolicy=key[1], why="retention")

    async def _write(self, entry: SpecEntry[BackupPolicySpec], fields: Mapping[str, Any],
                     ready: bool, reason: str, message: str) -> None:
        metadata = entry.body["metadata"]
        previous: Mapping[str, Any] = entry.body.get("status") or {}
        generation = metadata.get("generation")
        conditions: list[Condition] = list(previous.get("conditions") or [])
        mark = mark_true if ready else mark_false
        status = {
            **{k: v for k, v in fields.items() if v not in (None, [], {})},
            "conditions": mark(conditions, "Ready", reason, message,
                               observed_generation=generation, now=datetime.now(UTC)),
            "observedGeneration": generation,
        }
        written = await patch_status(self.kube, BACKUP_POLICY.resource,
                                     str(metadata["namespace"]), str(metadata["name"]),
                                     previous, status)
        was = next((c for c in conditions if c.get("type") == "Ready"), None)
        if written and not ready and (was is None or was.get("reason") != reason):
            log.warning("BackupPolicy not ready", namespace=metadata["namespace"],
                        name=metadata["name"], reason=reason, message=message)
            await post_event(self.kube, entry.body, "Warning", reason, message)

    def policy_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue((event.namespace, event.name))

    def snapshot_changed(self, event: WatchEvent) -> None:
        labels = (event.body.get("metadata") or {}).get("labels") or {}
        policy = labels.get(BACKUP_POLICY_LABEL)
        if policy:
            self.queue.enqueue((event.namespace, str(policy)), 0.5)

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (
            Watch(BACKUP_POLICY.resource, cls.policy_changed),
            Watch(VIRTUAL_MACHINE_SNAPSHOT.resource, cls.snapshot_changed,
                  labels={BACKUP_POLICY_LABEL: kopf.PRESENT}),
        )
