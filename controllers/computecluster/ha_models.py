"""The HA part of the ComputeCluster API: `spec.ha` and `status.ha`.

vSphere HA's settings as data: how long a silent host is given (failureDetectionSeconds),
how much room is kept to restart a failed host's VMs (admissionControl), how restarts of
one priority tier wait for the tier above (orchestration), and how a failed host is fenced
before anything of it runs elsewhere (fencing). The HA controller
(`controllers/hostfailure/`) acts on them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controllers.common.apimodel import SpecModel, StatusModel

RestartPriority = Literal["Disabled", "Lowest", "Low", "Medium", "High", "Highest"]
HostMonitoring = Literal["Enabled", "Disabled"]
AdmissionPolicy = Literal["HostFailuresToTolerate", "Percentage", "Disabled"]
ReadyCondition = Literal["None", "PoweredOn", "GuestReady"]
FencingMethod = Literal["FenceAgentsRemediation", "OutOfServiceTaint", "None"]

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"


class AdmissionControl(SpecModel):
    """How much room is kept free so the VMs of failed hosts can restart."""

    policy: AdmissionPolicy = Field(
        default="HostFailuresToTolerate",
        description=(
            "HostFailuresToTolerate (default): keep the room of the hostFailuresToTolerate "
            "largest hosts. Percentage: keep cpuPercent and memoryPercent of the cluster free. "
            "Disabled: power-ons are never refused."
        ),
    )
    cpu_percent: int = Field(
        default=25, ge=0, le=100, description="Percentage policy: CPU percent kept free."
    )
    memory_percent: int = Field(
        default=25, ge=0, le=100, description="Percentage policy: memory percent kept free."
    )


class Orchestration(SpecModel):
    """When the next priority tier starts after a host failure."""

    ready_condition: ReadyCondition = Field(
        default="PoweredOn",
        description=(
            "None: tiers start one after the other at once. PoweredOn (default): the tier "
            "above is Running and Ready. GuestReady: its guest agent is connected."
        ),
    )
    post_ready_delay_seconds: int = Field(
        default=0, ge=0, le=3600, description="Seconds to wait after the tier above is ready."
    )
    timeout_seconds: int = Field(
        default=600,
        ge=1,
        le=86400,
        description="The next tier starts anyway this long after the tier above began.",
    )


class FenceAgent(SpecModel):
    """The medik8s fence agent HA asks for (FenceAgentsRemediation's spec)."""

    agent: str = Field(
        default="fence_ipmilan",
        pattern=r"^fence_.+",
        description='The fence agent, e.g. "fence_ipmilan" or "fence_redfish".',
    )
    shared_parameters: dict[str, str] = Field(
        default_factory=dict,
        description='Parameters common to all hosts, e.g. {"--action": "reboot"}.',
    )
    node_parameters: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='Per-parameter, per-host values, e.g. {"--ip": {"host-1": "10.0.0.1"}}.',
    )
    shared_secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=NAME_PATTERN,
        description="A Secret (in fencing.namespace) with parameters common to all hosts.",
    )
    node_secret_names: dict[str, str] = Field(
        default_factory=dict,
        description="Per host, a Secret (in fencing.namespace) with that host's parameters.",
    )
    timeout: str = Field(
        default="60s", pattern=DURATION_PATTERN, description="Timeout of one agent run."
    )
    retry_count: int = Field(default=5, ge=1, le=100, description="Agent runs before giving up.")
    retry_interval: str = Field(
        default="5s", pattern=DURATION_PATTERN, description="Interval between agent runs."
    )


class Fencing(SpecModel):
    """How a failed host is made safe before its VMs run elsewhere."""

    method: FencingMethod = Field(
        default="FenceAgentsRemediation",
        description=(
            "FenceAgentsRemediation (default): HA creates a medik8s FenceAgentsRemediation "
            "for the host and waits for its Succeeded condition. OutOfServiceTaint: an admin "
            "or another tool powers the host off; HA then taints it out-of-service. None: HA "
            "waits for an admin to fence the host (taint it out-of-service); status says so."
        ),
    )
    namespace: str = Field(
        default="vdcos-system",
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Namespace of the FenceAgentsRemediation objects (where medik8s runs).",
    )
    fence_agent: FenceAgent = Field(
        default=FenceAgent(), description="The fence agent and its parameters."
    )


class HA(SpecModel):
    """High availability: restart the VMs of a failed host on the others."""

    enabled: bool = Field(default=False, description="Whether HA protects this cluster's VMs.")
    host_monitoring: HostMonitoring = Field(
        default="Enabled",
        description="Enabled (default): host failures trigger restarts. Disabled: they do not.",
    )
    host_failures_to_tolerate: int = Field(
        default=1,
        ge=0,
        le=31,
        description=(
            "Admission control: capacity kept free to restart the VMs of this many failed hosts."
        ),
    )
    default_restart_priority: RestartPriority = Field(
        default="Medium",
        description="Restart priority of VMs that do not set one (vSphere's cluster default).",
    )
    failure_detection_seconds: int = Field(
        default=15,
        ge=5,
        le=300,
        description="Seconds of Lease silence after which a host is declared failed.",
    )
    admission_control: AdmissionControl = Field(
        default=AdmissionControl(), description="Room kept free for failover."
    )
    orchestration: Orchestration = Field(
        default=Orchestration(), description="When each priority tier starts after the one above."
    )
    fencing: Fencing = Field(default=Fencing(), description="How a failed host is fenced.")


class FailedHost(StatusModel):
    """A host HA declared failed and has not seen come back."""

    name: str = Field(description="Node name.")
    last_heartbeat: str | None = Field(default=None, description="Its Lease's last renewal.")
    declared_failed_at: str = Field(description="When HA declared it failed.")
    fenced_at: str | None = Field(default=None, description="When fencing succeeded.")
    phase: str = Field(
        description="Fencing, AwaitingAdminFencing, Restarting, Restarted or Recovering."
    )
    message: str = Field(default="", description="What HA is doing or waiting for.")


class Failover(StatusModel):
    """The latest failover: the story of one failed host."""

    host: str = Field(description="The failed host.")
    last_heartbeat: str | None = Field(default=None, description="Its Lease's last renewal.")
    declared_failed_at: str | None = Field(default=None, description="When it was declared failed.")
    fenced_at: str | None = Field(default=None, description="When fencing succeeded.")
    virtual_machines_restarted: int = Field(default=0, ge=0, description="VMs restarted.")
    virtual_machines_pending: int = Field(
        default=0, ge=0, description="Protected VMs not restarted yet."
    )
    completed_at: str | None = Field(
        default=None, description="When every protected VM was running again."
    )


class HAStatus(StatusModel):
    """What HA protects and what it can absorb."""

    protected_virtual_machines: int = Field(
        default=0, ge=0, description="Running VMs HA would restart (priority not Disabled)."
    )
    failover_capacity: int = Field(
        default=0, ge=0, description="Host failures the cluster can absorb right now."
    )
    failed_hosts: list[FailedHost] = Field(
        default_factory=list,
        description="Hosts declared failed and not back yet.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    last_failover: Failover | None = Field(default=None, description="The latest failover.")
