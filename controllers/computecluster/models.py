"""The VDC ComputeCluster kind (vdcos.io/v1alpha1, cluster-scoped): spec and status models.

A ComputeCluster pools the hosts (Nodes) its hostSelector picks. VMs that name it run on those
hosts. DRS (balancing) and placement rules are declared here as data and acted on by the
ComputeCluster controller's DRS pass (docs/drs.md); HA (restart after host failure) is
accepted and not acted on yet.
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
RuleType = Literal[
    "KeepTogether", "SeparateVirtualMachines", "VirtualMachinesToHosts", "VirtualMachinesNotOnHosts"
]
HOST_RULE_TYPES = frozenset({"VirtualMachinesToHosts", "VirtualMachinesNotOnHosts"})
RuleEnforcement = Literal["Required", "Preferred"]
LoadMetric = Literal["Usage", "Requests"]
RecommendationReason = Literal["Balance", "RuleViolation", "Maintenance"]


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

    enabled: bool = Field(
        default=False,
        description=(
            "Whether DRS runs a pass over this cluster every intervalSeconds: it measures the "
            "hosts' load, recommends (or makes) live migrations that balance it and repair "
            "broken rules, and reports both in status.drs and status.rules."
        ),
    )
    automation_level: AutomationLevel = Field(
        default="FullyAutomated",
        description=(
            "Manual and PartiallyAutomated: migrations are recommended in status.drs, not made "
            "(apply one by creating the VirtualMachineMigration it carries, or all with "
            "`vdcos drs apply CLUSTER`). FullyAutomated (default): DRS creates them."
        ),
    )
    migration_threshold: int = Field(
        default=3,
        ge=1,
        le=5,
        description=(
            "1 (conservative: only mandatory moves, rules and maintenance) to 5 (aggressive: "
            "any improvement); default 3. The target imbalance is 0.1 * (5 - level) / "
            "sqrt(hosts)."
        ),
    )
    interval_seconds: int = Field(
        default=60,
        ge=15,
        le=3600,
        description="Seconds between DRS passes (15 to 3600, default 60).",
    )
    load_metric: LoadMetric = Field(
        default="Usage",
        description=(
            "Usage (default): a VM's load is what metrics.k8s.io measures of its virt-launcher "
            "pod, and at least its requests. Requests: what the pod requests only."
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
            "host. VirtualMachinesToHosts: the VMs run on the hosts picked by hostSelector. "
            "VirtualMachinesNotOnHosts: the VMs run on none of those hosts. Rules become "
            "scheduling affinity when a VM starts, and each DRS pass repairs a violation by "
            "migration."
        )
    )
    enforcement: RuleEnforcement = Field(
        default="Required",
        description=(
            "Required (vSphere 'must'): DRS never breaks it and repairs it first; the "
            "scheduler refuses hosts that break it. Preferred ('should'): kept when possible."
        ),
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
        if (self.type in HOST_RULE_TYPES) != (self.host_selector is not None):
            raise ValueError(
                f"rule {self.name!r}: hostSelector is required by VirtualMachinesToHosts and "
                "VirtualMachinesNotOnHosts and allowed only there"
            )
        if self.host_selector is not None and not (
            self.host_selector.match_labels or self.host_selector.match_expressions
        ):
            raise ValueError(
                f"rule {self.name!r}: hostSelector must name at least one label (an empty "
                "selector picks every host)"
            )
        return self


class ComputeClusterSpec(SpecModel):
    """Desired state of a compute cluster."""

    host_selector: LabelSelector = Field(
        description="Labels of the Nodes (hosts) in the cluster; {} selects every node."
    )
    drs: DRS = Field(
        default=DRS(),
        description="DRS settings: load balancing by live migration, and rule repair.",
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
            "Placement rules (affinity and anti-affinity); names are unique. Earlier rules are "
            "older: when two conflict the older one wins, and anti-affinity beats affinity; "
            "status.rules says which rule is disabled and why."
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


DECIMAL_PATTERN = r"^[0-9]+\.[0-9]+$"


class VirtualMachineReference(StatusModel):
    """A VDC VirtualMachine by namespace and name."""

    namespace: str = Field(description="Namespace of the VirtualMachine.")
    name: str = Field(description="Name of the VirtualMachine.")


class MigrationMetadata(StatusModel):
    """metadata of the VirtualMachineMigration a recommendation would create."""

    generate_name: str = Field(description="Name prefix; the API server adds a suffix.")
    namespace: str = Field(description="Namespace of the VM.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels marking the migration as DRS-made."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Why DRS made it (reason, imbalance before and after)."
    )


class MigrationSpec(StatusModel):
    """spec of the VirtualMachineMigration a recommendation would create."""

    virtual_machine_name: str = Field(description="The VDC VirtualMachine to move.")
    target_host: str = Field(description="The host to move it to.")


class MigrationManifest(StatusModel):
    """The VirtualMachineMigration that applies a recommendation (`kubectl create -f`)."""

    api_version: str = Field(description="vdcos.io/v1alpha1.")
    kind: str = Field(description="VirtualMachineMigration.")
    metadata: MigrationMetadata = Field(description="Name prefix, namespace, labels.")
    spec: MigrationSpec = Field(description="The VM and the target host.")


class Recommendation(StatusModel):
    """One migration DRS recommends (or, FullyAutomated, has made this pass)."""

    virtual_machine: VirtualMachineReference = Field(description="The VM to move.")
    source_host: str = Field(description="The host it runs on.")
    target_host: str = Field(description="The host to move it to.")
    reason: RecommendationReason = Field(
        description="Balance, RuleViolation (repairs a rule) or Maintenance (empties a host)."
    )
    priority: int = Field(
        ge=1, le=5, description="1 (mandatory) to 5 (slight gain); shown when <= the threshold."
    )
    expected_imbalance: str = Field(
        pattern=DECIMAL_PATTERN,
        description="Cluster imbalance once this move and the ones before it are made.",
    )
    rule: str | None = Field(default=None, description="The rule a RuleViolation move repairs.")
    migration: MigrationManifest = Field(
        description="The VirtualMachineMigration that applies it (create it to apply)."
    )


class HostLoad(StatusModel):
    """A host's load as the last DRS pass measured it."""

    name: str = Field(description="Node name.")
    cpu: str = Field(pattern=DECIMAL_PATTERN, description="CPU load / allocatable, e.g. 0.42.")
    memory: str = Field(pattern=DECIMAL_PATTERN, description="Memory load / allocatable.")


class DRSStatus(StatusModel):
    """What the last DRS pass measured and decided."""

    imbalance: str | None = Field(
        default=None,
        pattern=DECIMAL_PATTERN,
        description=(
            "Standard deviation of the hosts' loads: the quadratic mean of the CPU and the "
            "memory deviations, e.g. 0.082."
        ),
    )
    target_imbalance: str | None = Field(
        default=None,
        pattern=DECIMAL_PATTERN,
        description="The imbalance DRS accepts: 0.1 * (5 - migrationThreshold) / sqrt(hosts).",
    )
    last_pass_time: str | None = Field(
        default=None,
        description="When the last pass ran (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    usage_percent: ResourcePercent | None = Field(
        default=None, description="The cluster's load (loadMetric) as percents of capacity."
    )
    host_loads: list[HostLoad] = Field(
        default_factory=list,
        description="Each host's load, per resource.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    recommendations: list[Recommendation] = Field(
        default_factory=list,
        description=(
            "Migrations in the order DRS would make them. Manual and PartiallyAutomated: "
            "apply with `vdcos drs apply CLUSTER` or by creating each one's migration."
        ),
    )
    migrations_in_progress: int = Field(
        default=0, ge=0, description="Live migrations of the cluster's VMs not finished yet."
    )
    message: str = Field(default="", description="What the pass did, or why it could not run.")
    last_request: str | None = Field(
        default=None,
        description=(
            "The value of the annotation vdcos.io/drs-pass-requested the last asked-for pass "
            "answered (`vdcos drs run` prints it; wait for it here)."
        ),
    )


class RuleStatus(StatusModel):
    """Whether one rule holds."""

    name: str = Field(description="The rule's name.")
    satisfied: bool = Field(description="Whether every VM of the rule is placed as it says.")
    violating_virtual_machines: list[str] = Field(
        default_factory=list, description="namespace/name of each VM placed against the rule."
    )
    disabled: bool = Field(
        default=False, description="True when an older or stronger conflicting rule wins."
    )
    message: str = Field(default="", description="Why it is violated or disabled.")


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
    drs: DRSStatus | None = Field(
        default=None, description="The last DRS pass (when spec.drs.enabled)."
    )
    rules: list[RuleStatus] = Field(
        default_factory=list,
        description="Each rule of spec.rules: satisfied, violated or disabled, and why.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description=(
            "Ready: the cluster has at least one Ready host. Balanced (with DRS): the imbalance "
            "is within the target and no Required rule is broken. With HA, Degraded names "
            "failed hosts and FailoverCapacity says whether the policy's room is kept."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
    ha: HAStatus | None = Field(
        default=None, description="HA: protected VMs, failover capacity, failed hosts."
    )
