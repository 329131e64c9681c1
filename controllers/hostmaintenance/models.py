"""The VDC HostMaintenance kind (vdcos.io/v1alpha1, cluster-scoped): empty a host for work.

Creating one puts the host in maintenance: it is cordoned and the VMs of its cluster are
live-migrated (VirtualMachineMigrations, within KubeVirt's limits) to hosts DRS picks. The
phase is InMaintenance once none of them runs there. Deleting it ends maintenance (the host
is uncordoned). A VM that cannot move is never shut down silently: with strategy Migrate it
stays, and status names it and what pins it; with Shutdown it is powered off.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel
from controllers.virtualmachinemigration.models import DNS_SUBDOMAIN_PATTERN

MaintenanceStrategy = Literal["Migrate", "Shutdown"]
MaintenancePhase = Literal["Entering", "InMaintenance", "Failed"]


class HostMaintenanceSpec(SpecModel):
    """Which host to empty, and what to do with VMs that cannot move."""

    host_name: str = Field(
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="The host (Node) to put in maintenance.",
    )
    strategy: MaintenanceStrategy = Field(
        default="Migrate",
        description=(
            "Migrate (default): live-migrate every VM; one that cannot move stays and is "
            "listed in status.remainingVirtualMachines (the host stays Entering). Shutdown: "
            "also power off what cannot migrate; one whose disk data lives on this host "
            "(ReadWriteOnce) cannot start elsewhere and is powered on again when maintenance "
            "ends; any other is restarted on another host."
        ),
    )
    force: bool = Field(
        default=False,
        description=(
            "Enter maintenance even when that breaks a Required placement rule or the "
            "cluster's HA failover capacity (refused otherwise)."
        ),
    )


class RemainingVirtualMachine(StatusModel):
    """A VM of the host's cluster still running on the host, and what holds it there."""

    namespace: str = Field(description="Namespace of the VirtualMachine.")
    name: str = Field(description="Name of the VirtualMachine.")
    reason: str = Field(
        description=(
            'What holds it, e.g. "disk data is ReadWriteOnce on host-2 (PVC web-root)", '
            '"migration limit", "migrating to host-3".'
        )
    )


class HostMaintenanceStatus(StatusModel):
    """Observed progress of a host's maintenance."""

    phase: MaintenancePhase | None = Field(
        default=None,
        description=(
            "Entering (cordoned, VMs being moved), InMaintenance (no VM of the cluster runs "
            "there), or Failed (refused, see the Ready condition's message)."
        ),
    )
    cluster_name: str | None = Field(
        default=None, description="The ComputeCluster the host belongs to."
    )
    remaining_virtual_machines: list[RemainingVirtualMachine] = Field(
        default_factory=list,
        description="VMs still on the host, each with what holds it.",
    )
    powered_off_virtual_machines: list[str] = Field(
        default_factory=list,
        description=(
            "VMs (namespace/name) a Shutdown maintenance powered off because their disk data "
            "lives on the host; they are powered on again when maintenance ends."
        ),
    )
    migrations_in_progress: int | None = Field(
        default=None, ge=0, description="VirtualMachineMigrations of this maintenance running."
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description=(
            "Ready: True once the host is in maintenance; False while entering (reason "
            "Evacuating or VirtualMachinesPinned) or when refused (RuleViolation, "
            "InsufficientFailoverCapacity, HostNotFound)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
