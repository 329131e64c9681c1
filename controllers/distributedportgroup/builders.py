"""Pure builders of the DistributedPortGroup controller: the Multus
NetworkAttachmentDefinition of a port group in one namespace, and what its status shows.

The NAD's spec.config is a CNI network configuration list (containernetworking/plugins):
- `bridge` on the switch's bridge: `mtu`; `vlan` (access) or `vlanTrunk` ([{id} |
  {minID, maxID}]); `preserveDefaultVlan: false` when tagged, so a VM on VLAN 100 is not
  also on the bridge's default VLAN; `macspoofchk: true` when forgedTransmits is Reject;
  `ipam: {}` (layer 2 only: the guest brings its own addresses);
- `tuning` with `promisc: true` when promiscuousMode is Accept;
- `bandwidth` when trafficShaping is set. CNI's view is the pod's (the VM's): its ingress
  is what the VM receives, vSphere's egress (switch to VM); its egress is what the VM sends,
  vSphere's ingress. Rates are bits per second and bursts bits (the plugin's
  BandwidthEntry), so burstSize in bytes is multiplied by 8.
macAddressChanges and peakBandwidth have no CNI field; they are listed as not enforced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from controllers.distributedportgroup.models import DistributedPortGroupSpec, Shaping, Vlan
from controllers.virtualmachine.builders import network_attachment_name
from kubekit.quantity import parse_quantity

CNI_VERSION: Final = "0.3.1"
PORT_GROUP_LABEL: Final = "vdcos.io/distributed-port-group"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "vdcos"
#: bridge-marker's resource: VMs using the NAD only schedule where the bridge exists.
RESOURCE_NAME_ANNOTATION: Final = "k8s.v1.cni.cncf.io/resourceName"
BRIDGE_RESOURCE_PREFIX: Final = "bridge.network.kubevirt.io/"
#: Held on a port group while VMs use it, so their NICs do not lose their network.
FINALIZER: Final = "vdcos.io/distributed-port-group"
NAD_API_VERSION: Final = "k8s.cni.cncf.io/v1"


def effective_mtu(spec: DistributedPortGroupSpec, switch_mtu: int) -> int:
    """The port group's MTU, the switch's when it sets none."""
    return spec.mtu if spec.mtu is not None else switch_mtu


def vlan_display(vlan: Vlan) -> str:
    """The VLAN as `kubectl get` shows it: "100", "untagged", "trunk 10,20-29"."""
    if vlan.trunk is None:
        return str(vlan.id) if vlan.id else "untagged"
    parts = [str(low) if low == high else f"{low}-{high}" for low, high in vlan.vlan_ids()]
    return "trunk " + ",".join(parts)


def _bits(quantity: str) -> int:
    return int(parse_quantity(quantity))


def _bandwidth_plugin(ingress: Shaping | None, egress: Shaping | None) -> dict[str, Any]:
    """The bandwidth plugin from vSphere's ingress (VM to switch) and egress (switch to VM)."""
    plugin: dict[str, Any] = {"type": "bandwidth"}
    # vSphere egress reaches the VM: CNI ingress.
    if egress is not None:
        plugin["ingressRate"] = _bits(egress.average_bandwidth)
        plugin["ingressBurst"] = _bits(egress.burst_size) * 8
    if ingress is not None:
        plugin["egressRate"] = _bits(ingress.average_bandwidth)
        plugin["egressBurst"] = _bits(ingress.burst_size) * 8
    return plugin


def cni_config(
    port_group_name: str, spec: DistributedPortGroupSpec, bridge: str, switch_mtu: int
) -> dict[str, Any]:
    """The CNI network configuration list of the port group (spec.config, parsed)."""
    bridge_plugin: dict[str, Any] = {
        "type": "bridge",
        "bridge": bridge,
        "mtu": effective_mtu(spec, switch_mtu),
    }
    if spec.vlan.trunk is not None:
        bridge_plugin["vlanTrunk"] = [
            {"id": low} if low == high else {"minID": low, "maxID": high}
            for low, high in spec.vlan.vlan_ids()
        ]
        bridge_plugin["preserveDefaultVlan"] = False
    elif spec.vlan.id:
        bridge_plugin["vlan"] = spec.vlan.id
        bridge_plugin["preserveDefaultVlan"] = False
    if spec.security_policy.forged_transmits == "Reject":
        bridge_plugin["macspoofchk"] = True
    bridge_plugin["ipam"] = {}
    plugins = [bridge_plugin]
    if spec.security_policy.promiscuous_mode == "Accept":
        plugins.append({"type": "tuning", "promisc": True})
    shaping = spec.traffic_shaping
    if shaping is not None and (shaping.ingress is not None or shaping.egress is not None):
        plugins.append(_bandwidth_plugin(shaping.ingress, shaping.egress))
    return {"cniVersion": CNI_VERSION, "name": port_group_name, "plugins": plugins}


def build_network_attachment(
    port_group: Mapping[str, Any],
    spec: DistributedPortGroupSpec,
    namespace: str,
    bridge: str,
    switch_mtu: int,
) -> dict[str, Any]:
    """The k8s.cni.cncf.io/v1 NetworkAttachmentDefinition of the port group in a namespace.

    Owned by the (cluster-scoped) port group, so it goes when the port group goes.
    """
    name = str(port_group["metadata"]["name"])
    config = cni_config(name, spec, bridge, switch_mtu)
    return {
        "apiVersion": NAD_API_VERSION,
        "kind": "NetworkAttachmentDefinition",
        "metadata": {
            "name": network_attachment_name(name),
            "namespace": namespace,
            "labels": {PORT_GROUP_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {RESOURCE_NAME_ANNOTATION: BRIDGE_RESOURCE_PREFIX + bridge},
            "ownerReferences": [
                {
                    "apiVersion": port_group["apiVersion"],
                    "kind": port_group["kind"],
                    "name": name,
                    "uid": port_group["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"config": json.dumps(config, separators=(",", ":"))},
    }


def network_attachment_differs(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether the live NAD lacks what the desired one says (config, labels, annotation)."""
    if json.loads(desired["spec"]["config"]) != _parsed_config(live):
        return True
    live_metadata = live.get("metadata") or {}
    for section in ("labels", "annotations"):
        have = live_metadata.get(section) or {}
        if any(have.get(key) != value for key, value in desired["metadata"][section].items()):
            return True
    return False


def _parsed_config(live: Mapping[str, Any]) -> Any:
    try:
        return json.loads((live.get("spec") or {}).get("config") or "null")
    except ValueError:
        return None


def not_enforced(spec: DistributedPortGroupSpec) -> list[str]:
    """Fields the spec sets that no CNI plugin enforces (reported, never silently dropped)."""
    fields = []
    if spec.security_policy.mac_address_changes == "Reject":
        fields.append("securityPolicy.macAddressChanges")
    shaping = spec.traffic_shaping
    if shaping is not None:
        for direction, setting in (("ingress", shaping.ingress), ("egress", shaping.egress)):
            if setting is not None and setting.peak_bandwidth is not None:
                fields.append(f"trafficShaping.{direction}.peakBandwidth")
    return fields


def attached_vms(port_group_name: str, vms: Iterable[Mapping[str, Any]]) -> list[str]:
    """The VDC VMs ("namespace/name") with a NIC on the port group, sorted."""
    attached = []
    for vm in vms:
        for network in (vm.get("spec") or {}).get("networks") or []:
            if network.get("portGroupName") == port_group_name:
                metadata = vm.get("metadata") or {}
                attached.append(f"{metadata.get('namespace')}/{metadata.get('name')}")
                break
    return sorted(attached)
