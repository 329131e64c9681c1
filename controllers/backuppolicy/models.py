"""The VDC BackupPolicy kind (vdcos.io/v1alpha1, namespaced): scheduled VM snapshots with a
retention, as vSphere Data Protection schedules backups.

On each time its cron `schedule` names, the policy takes one VirtualMachineSnapshot of every
VM of its namespace that `virtualMachineSelector` selects (labelled with the policy), then
deletes the policy's snapshots that `retention` no longer keeps (restic's `forget --keep-*`
rules, `controllers/backuppolicy/retention.py`).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from controllers.backuppolicy.schedule import ScheduleError, check_schedule
from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel
from controllers.computecluster.models import LabelSelector

#: What the schema can check of a schedule: five or six fields, or a macro. Whether the
#: fields mean something is croniter's call (Ready=False naming spec.schedule).
SCHEDULE_PATTERN: Final = r"^\s*(@[a-z]+|\S+(\s+\S+){4,5})\s*$"
KEEPS_NOTHING: Final = "retention keeps nothing: set keepLast, keepDaily, keepWeekly or keepMonthly"

BackupResult = Literal["Succeeded", "Failed", "InProgress", "Retrying"]


class Retention(SpecModel):
    """How many snapshots the policy keeps, per VM (restic's forget --keep-* rules)."""

    model_config = SpecModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [{
                "rule": "(has(self.keepLast) ? self.keepLast : 0) + "
                        "(has(self.keepDaily) ? self.keepDaily : 0) + "
                        "(has(self.keepWeekly) ? self.keepWeekly : 0) + "
                        "(has(self.keepMonthly) ? self.keepMonthly : 0) > 0",
                "message": KEEPS_NOTHING,
            }]
        }
    }

    keep_last: int = Field(default=0, ge=0, le=1000, description="The N newest snapshots.")
    keep_daily: int = Field(
        default=0, ge=0, le=1000,
        description="The newest snapshot of each of the N newest days (UTC) that have one.")
    keep_weekly: int = Field(
        default=0, ge=0, le=1000,
        description="The newest snapshot of each of the N newest ISO weeks that have one.")
    keep_monthly: int = Field(
        default=0, ge=0, le=1000,
        description="The newest snapshot of each of the N newest months that have one.")

    @model_validator(mode="after")
    def _keeps_something(self) -> Retention:
        if not (self.keep_last or self.keep_daily or self.keep_weekly or self.keep_monthly):
            raise ValueError(KEEPS_NOTHING)
        return self


class BackupPolicySpec(SpecModel):
    """When to snapshot which VMs, and how many snapshots to keep."""

    schedule: str = Field(
        pattern=SCHEDULE_PATTERN,
        max_length=128,
        description=(
            "Cron schedule in UTC: 5 fields (minute hour day-of-month month day-of-week), an "
            "optional 6th of seconds, or @hourly, @daily, @weekly, @monthly."
        ),
    )
    virtual_machine_selector: LabelSelector = Field(
        default_factory=LabelSelector,
        description="VirtualMachines of this namespace to back up (empty: all of them).",
    )
    retention: Retention = Field(description="How many snapshots to keep per VM.")
    suspend: bool = Field(
        default=False, description="Take no snapshots while true (retention still applies)."
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        try:
            return check_schedule(schedule)
        except ScheduleError as error:
            raise ValueError(str(error)) from None


class VirtualMachineBackup(StatusModel):
    """The last backup of one VM."""

    name: str = Field(description="The VirtualMachine.")
    result: BackupResult = Field(
        description="Succeeded, Failed (after its one retry), InProgress or Retrying.")
    snapshot_name: str | None = Field(
        default=None, description="The VirtualMachineSnapshot of the last run.")
    time: str | None = Field(
        default=None, description="When the last run started (RFC 3339).",
        json_schema_extra={"format": "date-time"})
    message: str | None = Field(default=None, description="Why it failed, in words.")
    kept: int | None = Field(
        default=None, ge=0, description="Snapshots of the VM the retention keeps now.")


class BackupPolicyStatus(StatusModel):
    """Observed state of a backup policy."""

    last_backup_time: str | None = Field(
        default=None, description="When the last run started (RFC 3339).",
        json_schema_extra={"format": "date-time"})
    next_backup_time: str | None = Field(
        default=None, description="When the next run starts (RFC 3339); unset while suspended.",
        json_schema_extra={"format": "date-time"})
    last_run_token: str | None = Field(
        default=None,
        description="The vdcos.io/backup-run-requested token of the last run asked for by "
                    "`vdcos backup run` (that command waits for it here).")
    virtual_machines: list[VirtualMachineBackup] = Field(
        default_factory=list,
        description="Per VM, the last backup's result.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description="Ready: the spec is valid and the last run of every VM succeeded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
