"""Pure builders of the DistributedSwitch controller: interface names and the nmstate
NodeNetworkConfigurationPolicy of a switch (configured, or `state: absent` to clean up).

What the policy says, per host of the cluster:
- every uplink is `ethernet`, up, with the switch's MTU;
- with two or more uplinks, a bond of them (active-backup, 802.3ad, or balance-slb as a
  Linux balance-xor bond hashing vlan+srcmac, the kernel's emulation of Open vSwitch SLB),
  with the same MTU; with one uplink, no bond;
- a Linux bridge (STP off, no IP) with the same MTU whose one port (the bond or the uplink)
  trunks every VLAN with VLAN filtering on: 2..4094 tagged and VLAN 1 native (untagged on
  the wire, as on most physical switches; it is the bridge's default VLAN, where untagged
  port groups' VMs are). The full range, not only the VLANs the port groups use, as a
  vSphere uplink port group trunks 0-4094: adding or changing a port group then never
  reconfigures a host, and each VM's VLAN is set where it attaches (the bridge CNI plugin's
  `vlan` / `vlanTrunk` on the VM's port).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from controllers.computecluster.builders import cluster_host_label
from controllers.distributedswitch.models import (
    INTERFACE_NAME_MAX_LENGTH,
    DistributedSwitchSpec,
)
from controllers.distributedswitch.nmstate import POLICIES

SWITCH_LABEL: Final = "vdcos.io/distributed-switch"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "vdcos"
#: Held on a switch until its hosts are cleaned (and while port groups use it).
FINALIZER: Final = "vdcos.io/distributed-switch"
NATIVE_VLAN: Final = 1
TAGGED_VLAN_RANGE: Final = {"min": 2, "max": 4094}
#: Link monitoring every 100 ms, so a pulled uplink fails over within that.
BOND_MIIMON_MS: Final = "100"

#: The interfaces a switch creates; cleaning up removes these and leaves the uplinks.
_CREATED_TYPES: Final = ("linux-bridge", "bond")


def _short_name(prefix: str, switch_name: str) -> str:
    """`prefix + switch_name`, cut to a Linux interface name (15) and kept unique by a hash."""
    name = f"{prefix}{switch_name}"
    if len(name) <= INTERFACE_NAME_MAX_LENGTH:
        return name
    digest = hashlib.sha256(switch_name.encode()).hexdigest()[:4]
    keep = INTERFACE_NAME_MAX_LENGTH - len(prefix) - len(digest) - 1
    return f"{prefix}{switch_name[:keep].rstrip('-.')}-{digest}"


def bridge_name_for(switch_name: str, spec: DistributedSwitchSpec) -> str:
    """The bridge on the hosts: spec.bridgeName, else `br-<switch>` (cut to 15)."""
    return spec.bridge_name or _short_name("br-", switch_name)


def bond_name_for(switch_name: str, spec: DistributedSwitchSpec) -> str | None:
    """The bond of the uplinks, `bd-<switch>` (cut to 15); None with one uplink."""
    if len(spec.uplinks) < 2:
        return None
    return _short_name("bd-", switch_name)


def policy_name_for(switch_name: str) -> str:
    """The NodeNetworkConfigurationPolicy of the switch."""
    return f"vdcos-{switch_name}"


def _no_ip() -> dict[str, Any]:
    return {"ipv4": {"enabled": False}, "ipv6": {"enabled": False}}


def _bond_options(spec: DistributedSwitchSpec) -> tuple[str, dict[str, str]]:
    """(Linux bond mode, its options) for the switch's bond mode."""
    options = {"miimon": BOND_MIIMON_MS}
    if spec.bond.mode == "balance-slb":
        return "balance-xor", {**options, "xmit_hash_policy": "vlan+srcmac"}
    return spec.bond.mode, options


def desired_interfaces(switch_name: str, spec: DistributedSwitchSpec) -> list[dict[str, Any]]:
    """The nmstate interfaces of the switch on every host."""
    bridge = bridge_name_for(switch_name, spec)
    bond = bond_name_for(switch_name, spec)
    interfaces: list[dict[str, Any]] = [
        {"name": uplink, "type": "ethernet", "state": "up", "mtu": spec.mtu}
        for uplink in spec.uplinks
    ]
    port = spec.uplinks[0]
    if bond is not None:
        mode, options = _bond_options(spec)
        interfaces.append(
            {
                "name": bond,
                "type": "bond",
                "state": "up",
                "mtu": spec.mtu,
                **_no_ip(),
                "link-aggregation": {"mode": mode, "options": options, "port": list(spec.uplinks)},
            }
        )
        port = bond
    interfaces.append(
        {
            "name": bridge,
            "type": "linux-bridge",
            "state": "up",
            "mtu": spec.mtu,
            **_no_ip(),
            "bridge": {
                "options": {"stp": {"enabled": False}},
                "port": [
                    {
                        "name": port,
                        "vlan": {
                            "mode": "trunk",
                            "enable-native": True,
                            "tag": NATIVE_VLAN,
                            "trunk-tags": [{"id-range": TAGGED_VLAN_RANGE}],
                        },
                    }
                ],
            },
        }
    )
    return interfaces


def build_policy(switch_name: str, spec: DistributedSwitchSpec) -> dict[str, Any]:
    """The nmstate.io/v1 NodeNetworkConfigurationPolicy of the switch.

    It selects the cluster's hosts by the label the ComputeCluster controller keeps on them,
    so a host joining the cluster gets the switch and one leaving stops being configured.
    """
    return {
        "apiVersion": POLICIES.api_version,
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {
            "name": policy_name_for(switch_name),
            "labels": {SWITCH_LABEL: switch_name, MANAGED_BY_LABEL: MANAGED_BY},
        },
        "spec": {
            "nodeSelector": {cluster_host_label(spec.cluster_name): ""},
            "desiredState": {"interfaces": desired_interfaces(switch_name, spec)},
        },
    }


def _interfaces(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(((policy.get("spec") or {}).get("desiredState") or {}).get("interfaces") or [])


def cleanup_policy(live: Mapping[str, Any]) -> dict[str, Any]:
    """The live policy turned into its clean-up: its bridge and bond `state: absent`.

    nmstate does not revert a host when a policy is deleted, so a switch going away first
    applies this. It is made from what was applied (not from the spec, which may have changed
    since). The uplinks are left as they are: nmstate cannot know what they were before, and
    setting them down would cut whatever else uses them; they keep the switch's MTU.
    """
    removed = [
        {"name": entry["name"], "type": entry["type"], "state": "absent"}
        for entry in _interfaces(live)
        if entry.get("type") in _CREATED_TYPES and entry.get("name")
    ]
    metadata = live.get("metadata") or {}
    return {
        "apiVersion": POLICIES.api_version,
        "kind": "NodeNetworkConfigurationPolicy",
        "metadata": {"name": metadata.get("name"), "labels": dict(metadata.get("labels") or {})},
        "spec": {
            "nodeSelector": dict((live.get("spec") or {}).get("nodeSelector") or {}),
            "desiredState": {"interfaces": removed},
        },
    }


def policy_is_cleanup(policy: Mapping[str, Any] | None) -> bool:
    """Whether a policy (as read) is a clean-up one: every interface `state: absent`."""
    if policy is None:
        return False
    interfaces = _interfaces(policy)
    return bool(interfaces) and all(entry.get("state") == "absent" for entry in interfaces)


def policy_differs(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Whether the live policy's spec or labels are not what the switch wants."""
    if live is None:
        return True
    have_labels = (live.get("metadata") or {}).get("labels") or {}
    wanted_labels = desired["metadata"]["labels"]
    if any(have_labels.get(key) != value for key, value in wanted_labels.items()):
        return True
    live_spec = live.get("spec") or {}
    return bool(
        live_spec.get("desiredState") != desired["spec"]["desiredState"]
        or (live_spec.get("nodeSelector") or {}) != desired["spec"]["nodeSelector"]
    )


def conflicting_switch(
    name: str,
    spec: DistributedSwitchSpec,
    switches: Mapping[str, tuple[DistributedSwitchSpec, bool]],
) -> str | None:
    """Why the switch may not be applied beside another one on the same cluster, or None.

    Two switches of one cluster must not share an uplink (nmstate would move the NIC into
    the later bond) nor a bridge name. `switches` maps every valid switch (this one may be
    among them) to (spec, whether its policy exists). The one whose policy exists keeps its
    hosts; between two without (or two with) one, the name sorting first does.
    """
    bridge = bridge_name_for(name, spec)
    has_policy = switches[name][1] if name in switches else False
    for other_name, (other, other_has_policy) in sorted(switches.items()):
        if other_name == name or other.cluster_name != spec.cluster_name:
            continue
        wins = has_policy if has_policy != other_has_policy else name < other_name
        if wins:
            continue  # the other one reports the conflict
        shared = [uplink for uplink in spec.uplinks if uplink in other.uplinks]
        if shared:
            return (
                f"spec.uplinks: {', '.join(shared)} already bridged by DistributedSwitch "
                f'"{other_name}" on cluster "{spec.cluster_name}"'
            )
        if bridge_name_for(other_name, other) == bridge:
            return (
                f'spec.bridgeName: bridge "{bridge}" is already DistributedSwitch '
                f'"{other_name}"\'s on cluster "{spec.cluster_name}"'
            )
    return None
