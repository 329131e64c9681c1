"""The NICs of a VDC VM as KubeVirt devices: MAC addresses, bindings, hot-unplug (pure).

- `assign_mac`: a locally administered unicast MAC for a NIC, derived from the NIC's name so
  the same NIC gets the same address even if every record of it were lost, and stepping past
  addresses other NICs already use.
- `resolve_macs`: every NIC's MAC: the one the spec gives, else the one the KubeVirt VM
  already carries (assigned once, kept across restarts, migrations and operator restarts:
  the KubeVirt VM's template is where it lives), else a new one.
- `port_group_wiring`, `wiring_annotation`, `rewired_port_groups`: what CNI wired a NIC with
  (VLAN, MTU, security, shaping) is fixed when the launcher pod starts; the KubeVirt VM's
  template records a digest per port group, the VMI keeps the one it started with, and a
  port group changed since then means a restart (KubeVirt cannot re-wire a running pod).
- `nic_devices`: `spec.template.spec.networks` and `domain.devices.interfaces`, including
  NICs removed from the spec that the running guest still has, marked `state: absent` so
  KubeVirt unplugs them (KubeVirt drops them from the template itself once the VMI no longer
  has them, pkg/network/controllers/vm.go clearDetachedIfacesFromVM; so do we).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from controllers.distributedportgroup.models import DistributedPortGroupSpec
from controllers.virtualmachine.kubevirt_reading import nested
from controllers.virtualmachine.models import Network, VirtualMachineSpec

#: Name of the NIC added when a VM declares none (KubeVirt would add a non-migratable bridge).
DEFAULT_POD_NETWORK: Final = "default"
#: First octets of assigned MACs: 0x02 is locally administered unicast (never a vendor's
#: address), 0x76 ("v") tells a vdcos-assigned address apart in a guest's `ip link`.
ASSIGNED_MAC_PREFIX: Final = (0x02, 0x76)
#: KubeVirt's interface state for hot-unplug.
ABSENT: Final = "absent"
#: Key of the slim KubeVirt VM holding its template's NICs as the API has them (see
#: `observed.slim_kubevirt_vm`): read whole, not through our managed fields, because KubeVirt
#: itself rewrites the interface list when it drops unplugged NICs.
TEMPLATE_NICS: Final = "templateNICs"
#: Template (and so VMI) annotation: "<port group>=<wiring digest>,..." of the NICs.
WIRING_ANNOTATION: Final = "vdcos.io/port-group-wiring"


def network_attachment_name(port_group_name: str) -> str:
    """The NetworkAttachmentDefinition (in the VM's namespace) of a DistributedPortGroup."""
    return port_group_name


def assign_mac(seed: str, in_use: Callable[[str], bool]) -> str:
    """A MAC for the NIC named by `seed` that `in_use` does not know (lowercase, colons).

    The first candidate is a digest of the seed, so it does not depend on the order VMs are
    created in; a collision (about one in four billion per pair) steps to the next digest.
    """
    for attempt in range(1 << 16):
        digest = hashlib.sha256(f"{seed}#{attempt}".encode()).digest()
        octets = (*ASSIGNED_MAC_PREFIX, *digest[:4])
        mac = ":".join(f"{octet:02x}" for octet in octets)
        if not in_use(mac):
            return mac
    raise RuntimeError(f"no free MAC address for {seed}")  # 65,536 collisions in a row


def port_group_wiring(spec: DistributedPortGroupSpec, mtu_in_effect: Any = None) -> str:
    """A digest of what a NIC on the port group is wired with: everything but who may attach
    (namespaceSelector), and the MTU in effect (the switch's when the port group sets none)."""
    wired = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    wired.pop("namespaceSelector", None)
    wired["mtuInEffect"] = mtu_in_effect
    text = json.dumps(wired, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def wiring_annotation(spec: VirtualMachineSpec, wiring: Mapping[str, str]) -> str | None:
    """The WIRING_ANNOTATION value for the port groups the NICs use; None when none."""
    used = sorted({n.port_group_name for n in spec.networks if n.port_group_name} & set(wiring))
    return ",".join(f"{name}={wiring[name]}" for name in used) or None


def _parse_wiring(value: Any) -> dict[str, str]:
    pairs = (item.partition("=") for item in str(value or "").split(",") if "=" in item)
    return {name: digest for name, _, digest in pairs}


def rewired_port_groups(started_with: Any, now: Any) -> list[str]:
    """Port groups in both annotations whose wiring changed since the guest started."""
    before, after = _parse_wiring(started_with), _parse_wiring(now)
    return sorted(name for name, digest in after.items() if before.get(name, digest) != digest)


def nic_names(spec: VirtualMachineSpec) -> list[str]:
    """The NICs the VM has: those of the spec, or the default pod-network NIC."""
    return [network.name for network in spec.networks] or [DEFAULT_POD_NETWORK]


def template_nics(kubevirt_vm: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """{"interfaces": [...], "networks": [...]} of a (slim) KubeVirt VM's template."""
    if kubevirt_vm is None:
        return {}
    kept = kubevirt_vm.get(TEMPLATE_NICS)
    if isinstance(kept, Mapping):
        return kept
    template = nested(kubevirt_vm, "spec", "template", "spec") or {}
    return {
        "interfaces": list(nested(template, "domain", "devices", "interfaces") or []),
        "networks": list(template.get("networks") or []),
    }


def kept_macs(kubevirt_vm: Mapping[str, Any] | None) -> dict[str, str]:
    """{NIC name: MAC} the KubeVirt VM's template carries."""
    return {
        str(interface["name"]): str(interface["macAddress"]).lower()
        for interface in template_nics(kubevirt_vm).get("interfaces") or []
        if interface.get("name") and interface.get("macAddress")
    }


def resolve_macs(
    spec: VirtualMachineSpec,
    namespace: str,
    name: str,
    kept: Mapping[str, str],
    in_use: Callable[[str], bool],
) -> dict[str, str]:
    """{NIC name: MAC} for every NIC of the spec.

    `kept` are the MACs the KubeVirt VM already has; `in_use` says whether a MAC is taken by
    any VM of the cluster (asked only when a NIC needs a new one).
    """
    given = {n.name: n.mac_address.lower() for n in spec.networks if n.mac_address is not None}
    resolved: dict[str, str] = {}
    for nic in nic_names(spec):
        mac = given.get(nic) or kept.get(nic)
        if mac is None:
            mine = {*given.values(), *kept.values(), *resolved.values()}

            def taken(candidate: str, mine: set[str] = mine) -> bool:
                return candidate in mine or in_use(candidate)

            mac = assign_mac(f"{namespace}/{name}/{nic}", taken)
        resolved[nic] = mac
    return resolved


def _network_and_interface(
    network: Network, mac: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    interface: dict[str, Any] = {"name": network.name, "model": network.model}
    if mac is not None:
        interface["macAddress"] = mac
    if network.pod_network is not None:
        # Masquerade (NAT) is the binding that lets the VM live-migrate.
        return {"name": network.name, "pod": {}}, {**interface, "masquerade": {}}
    assert network.port_group_name is not None  # Network validates exactly one
    nad = network_attachment_name(network.port_group_name)
    # Bridge binding: the guest is on the port group's L2 segment, and it is the binding
    # KubeVirt hot-plugs and unplugs.
    return {"name": network.name, "multus": {"networkName": nad}}, {**interface, "bridge": {}}


def vmi_nic_names(vmi: Mapping[str, Any] | None) -> set[str]:
    """NICs a VMI still has: in its spec or reported in its status."""
    spec_interfaces = nested(vmi, "spec", "interfaces") or nested(
        vmi, "spec", "domain", "devices", "interfaces"
    )
    names = {str(i.get("name")) for i in spec_interfaces or []}
    names |= {str(i.get("name")) for i in nested(vmi, "status", "interfaces") or []}
    return names - {"None", ""}


def _unplugging(
    spec_names: Collection[str], live: Mapping[str, Any], vmi: Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """NICs removed from the spec that the running guest still has, marked absent."""
    if vmi is None:
        return [], []
    still_there = vmi_nic_names(vmi)
    networks_by_name = {str(n.get("name")): n for n in live.get("networks") or []}
    networks: list[dict[str, Any]] = []
    interfaces: list[dict[str, Any]] = []
    for interface in live.get("interfaces") or []:
        nic = str(interface.get("name"))
        if nic in spec_names or nic not in still_there or "bridge" not in interface:
            continue  # KubeVirt unplugs bridge NICs only; others need a restart to go
        network = networks_by_name.get(nic)
        if network is None:
            continue
        networks.append(dict(network))
        interfaces.append({**interface, "state": ABSENT})
    return networks, interfaces


def nic_devices(
    spec: VirtualMachineSpec,
    macs: Mapping[str, str],
    kubevirt_vm: Mapping[str, Any] | None = None,
    vmi: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(networks, interfaces) of the KubeVirt template for the spec's NICs.

    NICs the live KubeVirt VM has but the spec no longer names stay, `state: absent`, while
    the VMI still has them; then they are dropped.
    """
    networks: list[dict[str, Any]] = []
    interfaces: list[dict[str, Any]] = []
    declared: Sequence[Network] = spec.networks or [
        Network.model_validate({"name": DEFAULT_POD_NETWORK, "podNetwork": {}})
    ]
    for network in declared:
        built_network, built_interface = _network_and_interface(network, macs.get(network.name))
        networks.append(built_network)
        interfaces.append(built_interface)
    gone_networks, gone_interfaces = _unplugging(
        nic_names(spec), template_nics(kubevirt_vm), vmi
    )
    return networks + gone_networks, interfaces + gone_interfaces
