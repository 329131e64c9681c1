"""The VDC DistributedSwitch kind (vdcos.io/v1alpha1, cluster-scoped): spec and status models.

A distributed switch is defined once for a ComputeCluster: every host of the cluster gets
the same Linux bridge (VLAN filtering on) over the same uplinks, bonded when there are
several, with one MTU on every member. It is realised as one nmstate
NodeNetworkConfigurationPolicy (docs/vnetwork.md).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel

#: A Linux interface name: at most 15 characters (IFNAMSIZ - 1), no '/', ':' or spaces.
INTERFACE_NAME_PATTERN = r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,14}$"
INTERFACE_NAME_MAX_LENGTH = 15
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MIN_MTU = 576
MAX_MTU = 9216
DEFAULT_MTU = 1500

InterfaceName = Annotated[
    str, Field(pattern=INTERFACE_NAME_PATTERN, max_length=INTERFACE_NAME_MAX_LENGTH)
]
BondMode = Literal["active-backup", "802.3ad", "balance-slb"]
HostState = Literal["Available", "Failing", "Progressing", "Pending"]


class Bond(SpecModel):
    """How the uplinks are bonded when there are two or more."""

    mode: BondMode = Field(
        default="active-backup",
        description=(
            "active-backup (default): one uplink carries traffic, another takes over when it "
            "fails; no switch configuration needed. 802.3ad: LACP, the physical switch ports "
            "must form a LAG. balance-slb: per source MAC and VLAN over all uplinks without "
            "LACP (a Linux balance-xor bond hashing vlan+srcmac, as Open vSwitch's SLB)."
        ),
    )


class DistributedSwitchSpec(SpecModel):
    """Desired state of a distributed switch."""

    cluster_name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="The ComputeCluster whose hosts carry the switch.",
    )
    uplinks: list[InterfaceName] = Field(
        min_length=1,
        max_length=8,
        description=(
            "Host NIC names bridged by the switch, e.g. [eth1, eth2]; two or more are bonded. "
            "Every host of the cluster must have them (see its NodeNetworkState)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    bond: Bond = Field(default=Bond(), description="Bonding of the uplinks (two or more).")
    mtu: int = Field(
        default=DEFAULT_MTU,
        ge=MIN_MTU,
        le=MAX_MTU,
        description="MTU of the bridge, the bond and every uplink (default 1500).",
    )
    bridge_name: str | None = Field(
        default=None,
        max_length=INTERFACE_NAME_MAX_LENGTH,
        pattern=INTERFACE_NAME_PATTERN,
        description=(
            "Name of the Linux bridge on the hosts (at most 15 characters, a Linux limit); "
            "default derived from the switch's name (status.bridgeName says which)."
        ),
    )

    @model_validator(mode="after")
    def _valid_uplinks(self) -> Self:
        if len(set(self.uplinks)) != len(self.uplinks):
            raise ValueError("uplinks: each NIC may be listed once")
        if self.bridge_name is not None and self.bridge_name in self.uplinks:
            raise ValueError(f"bridgeName: {self.bridge_name!r} is one of the uplinks")
        return self


class HostNetworkStatus(StatusModel):
    """The switch on one host, from its NodeNetworkConfigurationEnactment."""

    name: str = Field(description="Node name.")
    state: HostState = Field(
        description=(
            "Available: configured. Progressing: being configured. Pending: waiting for its "
            "turn (maxUnavailable) or for the policy. Failing: not configured, see message."
        )
    )
    message: str | None = Field(
        default=None, description="Why the host is not Available, or what is degraded."
    )


class DistributedSwitchStatus(StatusModel):
    """Observed state of a distributed switch."""

    bridge_name: str | None = Field(default=None, description="The bridge on every host.")
    bond_name: str | None = Field(
        default=None, description="The bond of the uplinks (absent with one uplink)."
    )
    policy_name: str | None = Field(
        default=None, description="The NodeNetworkConfigurationPolicy realising the switch."
    )
    hosts: list[HostNetworkStatus] = Field(
        default_factory=list,
        description="Every host of the cluster and the switch's state there.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    available_hosts: int | None = Field(
        default=None, ge=0, description="Hosts where the switch is Available."
    )
    total_hosts: int | None = Field(default=None, ge=0, description="Hosts of the cluster.")
    host_summary: str | None = Field(
        default=None, description='"available/total" hosts, as kubectl get shows it.'
    )
    port_groups: list[str] = Field(
        default_factory=list, description="DistributedPortGroups on this switch."
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description=(
            "Ready: the switch is Available on every host of the cluster. Degraded: some "
            "host failed, or an uplink of a bond is down."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
