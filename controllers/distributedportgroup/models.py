"""The VDC DistributedPortGroup kind (vdcos.io/v1alpha1, cluster-scoped): spec and status.

A port group is a VLAN (or a trunk of VLANs) on a DistributedSwitch with an MTU, vSphere's
port security (forged transmits, MAC address changes, promiscuous mode) and traffic shaping,
offered to the namespaces its namespaceSelector picks. It is realised as one Multus
NetworkAttachmentDefinition in each of those namespaces (docs/vnetwork.md).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel
from controllers.computecluster.models import LabelSelector
from controllers.distributedswitch.models import DNS_LABEL_PATTERN, MAX_MTU, MIN_MTU
from kubekit.quantity import SIZE_PATTERN, QuantityError, parse_quantity

MAX_VLAN_ID = 4094
SecuritySetting = Literal["Accept", "Reject"]


class VlanRange(SpecModel):
    """One VLAN of a trunk ({id}) or a range of them ({min, max}, both included)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["id"]}, {"required": ["min", "max"]}]}
    )

    id: int | None = Field(default=None, ge=1, le=MAX_VLAN_ID, description="One VLAN ID.")
    min: int | None = Field(default=None, ge=1, le=MAX_VLAN_ID, description="First VLAN ID.")
    max: int | None = Field(default=None, ge=1, le=MAX_VLAN_ID, description="Last VLAN ID.")

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        ranged = self.min is not None or self.max is not None
        if (self.id is not None) == ranged:
            raise ValueError("set either id or both min and max")
        if ranged:
            if self.min is None or self.max is None:
                raise ValueError("min and max are set together")
            if self.min > self.max:
                raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def bounds(self) -> tuple[int, int]:
        """(first, last) VLAN ID, both included."""
        if self.id is not None:
            return self.id, self.id
        assert self.min is not None and self.max is not None
        return self.min, self.max


class Vlan(SpecModel):
    """The VLAN of the port group: exactly one of id or trunk."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["id"]}, {"required": ["trunk"]}]}
    )

    id: int | None = Field(
        default=None,
        ge=0,
        le=MAX_VLAN_ID,
        description="Access VLAN: the guest sends and receives untagged frames; 0 = untagged.",
    )
    trunk: list[VlanRange] | None = Field(
        default=None,
        min_length=1,
        description="Trunk: the guest sends and receives frames tagged with these VLANs.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.id is None) == (self.trunk is None):
            raise ValueError("set exactly one of id or trunk")
        return self

    def vlan_ids(self) -> list[tuple[int, int]]:
        """The (first, last) ranges of tagged VLANs the port group carries; [] for untagged."""
        if self.trunk is not None:
            return [entry.bounds() for entry in self.trunk]
        return [(self.id, self.id)] if self.id else []


class SecurityPolicy(SpecModel):
    """vSphere's port security; the defaults are a distributed port group's (all Reject)."""

    forged_transmits: SecuritySetting = Field(
        default="Reject",
        description=(
            "Reject (default): frames whose source MAC is not the NIC's are dropped "
            "(the bridge plugin's macspoofchk). Accept: any source MAC."
        ),
    )
    mac_address_changes: SecuritySetting = Field(
        default="Reject",
        description=(
            "Accepted and stored but NOT enforced: no CNI plugin can refuse a guest changing "
            "its MAC (status.notEnforced says so); use forgedTransmits: Reject to drop its "
            "frames."
        ),
    )
    promiscuous_mode: SecuritySetting = Field(
        default="Reject",
        description=(
            "Accept: the VM's interface is promiscuous (the tuning plugin's promisc). Reject "
            "(default): it receives only its own traffic."
        ),
    )


class Shaping(SpecModel):
    """Traffic shaping of one direction, as vSphere states it."""

    average_bandwidth: str = Field(
        pattern=SIZE_PATTERN,
        description='Average rate in bits per second, a quantity: "100M" = 100 Mbit/s.',
    )
    peak_bandwidth: str | None = Field(
        default=None,
        pattern=SIZE_PATTERN,
        description=(
            "Peak rate in bits per second. Accepted but not enforced: the CNI bandwidth plugin "
            "shapes to the average rate with a burst (status.notEnforced says so)."
        ),
    )
    burst_size: str = Field(
        pattern=SIZE_PATTERN, description='Burst in bytes, a quantity: "10Mi" = 10 MiB.'
    )

    @field_validator("average_bandwidth", "peak_bandwidth", "burst_size")
    @classmethod
    def _positive(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            amount = parse_quantity(value)
        except QuantityError as error:
            raise ValueError(f"{value!r} is not a quantity") from error
        if amount < 1:
            raise ValueError(f"{value!r} must be at least 1")
        return value


class TrafficShaping(SpecModel):
    """Shaping per direction, vSphere's view: ingress is from the VM into the switch."""

    ingress: Shaping | None = Field(
        default=None, description="Traffic from the VM into the switch (what the VM sends)."
    )
    egress: Shaping | None = Field(
        default=None, description="Traffic from the switch to the VM (what the VM receives)."
    )


class DistributedPortGroupSpec(SpecModel):
    """Desired state of a distributed port group."""

    switch_name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="The DistributedSwitch the port group is on.",
    )
    vlan: Vlan = Field(
        default=Vlan(id=0),
        description="Exactly one of id (access VLAN, 0 = untagged) or trunk (default id 0).",
    )
    mtu: int | None = Field(
        default=None,
        ge=MIN_MTU,
        le=MAX_MTU,
        description="MTU of the VMs' NICs; at most the switch's, default the switch's.",
    )
    security_policy: SecurityPolicy = Field(
        default=SecurityPolicy(),
        description="Port security (defaults: Reject, Reject, Reject).",
    )
    traffic_shaping: TrafficShaping | None = Field(
        default=None, description="Rate limits per direction; none by default."
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description=(
            "Namespaces whose VMs may attach (a NetworkAttachmentDefinition is made in each). "
            "Absent: none; {}: every namespace."
        ),
    )


class DistributedPortGroupStatus(StatusModel):
    """Observed state of a distributed port group."""

    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces where its NetworkAttachmentDefinition exists.",
    )
    virtual_machines: int | None = Field(
        default=None, ge=0, description="VirtualMachines with a NIC on the port group."
    )
    vlan: str | None = Field(
        default=None, description='The VLAN as shown: "100", "trunk 10,20-29".'
    )
    mtu: int | None = Field(default=None, description="The MTU in effect (the switch's default).")
    bridge_name: str | None = Field(default=None, description="The switch's bridge on the hosts.")
    not_enforced: list[str] = Field(
        default_factory=list,
        description=(
            "Fields set in the spec that no CNI plugin can enforce, e.g. "
            "securityPolicy.macAddressChanges."
        ),
    )
    in_use_by: list[str] = Field(
        default_factory=list,
        description='VMs ("namespace/name") attached, named while a deletion waits for them.',
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description="Ready: the switch exists and fits, and every admitted namespace has the NAD.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
