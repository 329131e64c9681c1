"""The VDC ComputeCluster kind (vdcos.io/v1alpha1, cluster-scoped): spec and status models.

A ComputeCluster pools the hosts (Nodes) its hostSelector picks. VMs that name it run on those
hosts. DRS (balancing), HA (restart after host failure) and placement rules are declared here
as data; the DRS/HA planners act on them.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel
from controllers.computecluster.ha_models import HA, HAStatus

LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"

SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
AutomationLevel = Literal["Manual", "PartiallyAutomated", "FullyAutomated"]
RuleType = Literal["KeepTogether", "SeparateVirtualMachines", "VirtualMachinesToHosts"]
RuleEnforcement = Literal["Required", "Preferred"]


class LabelSelectorRequirement(SpecModel):
    """One matchExpressions entry (metav1.LabelSelectorRequirement)."""

    key: str = Field(max_length=317, pattern=LABEL_KEY_PATTERN, description="Label key.")
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] = Field(
        default_factory=list,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_match_operator(self) -> Self:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"{self.key}: operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"{self.key}: operator {self.operator} takes no values")
        return self


class LabelSelector(SpecModel):
    """A label selector (metav1.LabelSelector). An empty selector selects everything."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels that must all be present with these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Requirements that must all hold."
    )


class DRS(SpecModel):
    """Distributed Resource Scheduler: balances VMs across the cluster's hosts."""

    enabled: bool = Field(default=False, description="Whether DRS balances this cluster.")
    automation_level: AutomationLevel = Field(
        default="FullyAutomated",
        description=(
            "Manual: recommend only. PartiallyAutomated: place new VMs, recommend migrations. "
            "FullyAutomated (default): place and migrate."
        ),
    )
    migration_threshold: int = Field(
        default=3,
        ge=1,
        le=5,
        description=(
            "1 (conservative: only mandatory moves) to 5 (aggressive: any improvement); default 3."
        ),
    )


class Rule(SpecModel):
    """A DRS placement rule over VMs picked by label."""

    name: str = Field(
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the rule, unique within the cluster.",
    )
    type: RuleType = Field(
        description=(
            "KeepTogether: the VMs share a host. SeparateVirtualMachines: each VM on its own "
            "host. VirtualMachinesToHosts: the VMs run on the hosts picked by hostSelector."
        )
    )
    enforcement: RuleEnforcement = Field(
        default="Required",
        description="Required (vSphere 'must'): never violated. Preferred ('should'): best effort.",
    )
    virtual_machine_selector: LabelSelector = Field(
        description="Labels of the VirtualMachines the rule applies to."
    )
    host_selector: LabelSelector | None = Field(
        default=None,
        description="Hosts of a VirtualMachinesToHosts rule (a subset of the cluster).",
    )

    @model_validator(mode="after")
    def _hosts_for_host_rules(self) -> Self:
        if (self.type == "VirtualMachinesToHosts") != (self.host_selector is not None):
            raise ValueError(
                f"rule {self.name!r}: hostSelector is required by VirtualMachinesToHosts "
                "and allowed only there"
            )
        return self


class ComputeClusterSpec(SpecModel):
    """Desired state of a compute cluster."""

    host_selector: LabelSelector = Field(
        description="Labels of the Nodes (hosts) in the cluster; {} selects every node."
    )
    drs: DRS = Field(
        default=DRS(),
        description="DRS settings (balancing). Accepted and stored; nothing acts on them yet.",
    )
    ha: HA = Field(
        default=HA(),
        description=(
            "HA settings: a failed host is detected, fenced, and its VMs restarted on the "
            "others by priority, with admission control (docs/ha.md)."
        ),
    )
    rules: list[Rule] = Field(
        default_factory=list,
        description=(
            "DRS affinity and anti-affinity rules; names are unique. Accepted and stored; not "
            "enforced yet."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _unique_rules(self) -> Self:
        names = [rule.name for rule in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique")
        return self


class Resources(StatusModel):
    """CPU and memory, as quantities."""

    cpu: str = Field(default="0", description='CPU, e.g. "16" or "3500m".')
    memory: str = Field(default="0", description='Memory, e.g. "64Gi".')


class ResourcePercent(StatusModel):
    """Allocation as whole percents of capacity."""

    cpu: int = Field(default=0, ge=0, description="Percent of CPU capacity allocated.")
    memory: int = Field(default=0, ge=0, description="Percent of memory capacity allocated.")


class HostStatus(StatusModel):
    """One host of the cluster."""

    name: str = Field(description="Node name.")
    ready: bool = Field(description="Whether the node's Ready condition is True.")
    schedulable: bool = Field(default=True, description="False when the node is cordoned.")
    capacity: Resources = Field(description="Allocatable CPU and memory of the node.")
    allocated: Resources = Field(description="CPU and memory requested by pods on the node.")


class ComputeClusterStatus(StatusModel):
    """Observed state of a compute cluster."""

    hosts: list[HostStatus] = Field(
        default_factory=list,
        description="The hosts the hostSelector picks.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    host_count: int | None = Field(default=None, ge=0, description="Number of hosts.")
    ready_host_count: int | None = Field(default=None, ge=0, description="Number of Ready hosts.")
    capacity: Resources | None = Field(
        default=None, description="Total allocatable CPU and memory."
    )
    allocated: Resources | None = Field(default=None, description="Total CPU and memory requested.")
    allocated_percent: ResourcePercent | None = Field(
        default=None, description="Allocated as percents of capacity."
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description=(
            "Ready is True when the cluster has at least one Ready host; with HA, Degraded "
            "names failed hosts and FailoverCapacity says whether the policy's room is kept."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
    ha: HAStatus | None = Field(
        default=None, description="HA: protected VMs, failover capacity, failed hosts."
    )
