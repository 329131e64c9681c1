"""The VDC VirtualMachineMigration kind (vdcos.io/v1alpha1, namespaced): vMotion of one VM.

A VirtualMachineMigration asks that a running VirtualMachine move to another host of its
ComputeCluster while it runs. Without `targetHost` DRS picks the host; with one, the move is
refused (phase Failed, with a reason) when that host cannot take the VM. The move runs as a
KubeVirt VirtualMachineInstanceMigration whose `addedNodeSelector` names the target host.
A migration is a one-shot request, like a Job: once Succeeded or Failed it stays so.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN: Final = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)

MigrationPhase = Literal["Pending", "Scheduling", "Running", "Succeeded", "Failed"]
#: Phases after which nothing changes any more.
FINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})

#: Why a migration was refused or failed (status.reason); the message says the details.
RefusalReason = Literal[
    "VirtualMachineNotFound",
    "VirtualMachineNotRunning",
    "NotLiveMigratable",
    "TargetNotInCluster",
    "TargetNotReady",
    "TargetIsSource",
    "InsufficientCapacity",
    "RuleViolation",
    "NoTarget",
    "InvalidSpec",
    "MigrationFailed",
]


class VirtualMachineMigrationSpec(SpecModel):
    """Which VM to move, and optionally where."""

    virtual_machine_name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the VirtualMachine (in this namespace) to move while it runs.",
    )
    target_host: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "Host (Node) to move the VM to; it must be a Ready host of the VM's cluster with "
            "room for it. Unset: DRS picks the best host."
        ),
    )


class VirtualMachineMigrationStatus(StatusModel):
    """Observed progress of one migration."""

    phase: MigrationPhase | None = Field(
        default=None,
        description=(
            "Pending (accepted, waiting for a migration slot), Scheduling (target host being "
            "prepared), Running (memory being copied), Succeeded, or Failed (see reason)."
        ),
    )
    source_host: str | None = Field(default=None, description="Host the VM ran on.")
    target_host: str | None = Field(
        default=None, description="Host the VM is moving (or moved) to."
    )
    start_time: str | None = Field(
        default=None,
        description="When the migration was accepted (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    completion_time: str | None = Field(
        default=None,
        description="When it Succeeded or Failed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    reason: RefusalReason | None = Field(
        default=None,
        description=(
            "Why the migration was refused or failed, e.g. TargetNotInCluster, "
            "TargetNotReady, InsufficientCapacity, RuleViolation, NotLiveMigratable."
        ),
    )
    message: str | None = Field(
        default=None, description="What refused it or what went wrong, in words."
    )
    kubevirt_migration_name: str | None = Field(
        default=None,
        description="The KubeVirt VirtualMachineInstanceMigration that runs the move.",
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description="Succeeded: True once the VM runs on the target, False when it failed.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
