"""A simulated host's network configuration, as nmstate shows and applies it (pure).

The host's hardware is its Node's `sim.vdcos.io/nics` annotation (ethernet NICs); what
policies configured on top of it (MTUs, bonds, Linux bridges, ports) is kept apart as a list
of nmstate interfaces, so that the hardware can change under it (a NIC pulled from the
annotation disappears from the report and from the bonds and bridges that held it).

`reported_interfaces` is what `nmstatectl show` lists (NodeNetworkState
status.currentState.interfaces): field names as nmstate 2.x writes them (`mac-address`,
`link-aggregation.port`, `bridge.port[].vlan`, `controller` on ports). `apply_desired_state`
is `nmstatectl apply`: it merges a policy's desiredState into the configuration, or raises
`ApplyError` with nmstate's words and leaves the configuration as it was (nmstate's
checkpoint rollback).

Link state: a NIC named in the Node's `sim.vdcos.io/nic-down` annotation is reported
`state: down` (no carrier); a bond or a Linux bridge all of whose ports are down is reported
down too (the kernel's operstate LOWERLAYERDOWN), while one port still up keeps it up.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Obj = Mapping[str, Any]
Interface = dict[str, Any]

NIC_DOWN_ANNOTATION = "sim.vdcos.io/nic-down"
ETHERNET = "ethernet"
BOND = "bond"
LINUX_BRIDGE = "linux-bridge"
VIRTUAL_TYPES = (BOND, LINUX_BRIDGE, "vlan", "dummy")
# What a typical 25G NIC driver allows (`ip -d link` min/max mtu).
NIC_MIN_MTU = 68
NIC_MAX_MTU = 9216
VIRTUAL_MAX_MTU = 65535
DEFAULT_BOND_MODE = "balance-rr"  # the kernel's (and nmstate's) default bond mode
BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
              "balance-tlb", "balance-alb")
# kubernetes-nmstate's default VLAN filtering on a Linux bridge port without `vlan`
# (pkg/bridge/bridge.go ApplyDefaultVlanFiltering): trunk 2-4094.
DEFAULT_BRIDGE_PORT_VLAN: dict[str, Any] = {
    "mode": "trunk", "trunk-tags": [{"id-range": {"min": 2, "max": 4094}}]}


class ApplyError(Exception):
    """`nmstatectl apply` failed; the message is nmstate's NmstateError line."""


def parse_nics(annotation: str | None) -> list[dict[str, Any]]:
    """The host's NICs from `sim.vdcos.io/nics` (a JSON list; bad JSON = no NICs)."""
    if not annotation:
        return []
    try:
        nics = json.loads(annotation)
    except ValueError:
        return []
    return [nic for nic in nics if isinstance(nic, dict) and nic.get("name")] \
        if isinstance(nics, list) else []


def parse_nics_down(annotation: str | None) -> frozenset[str]:
    """`sim.vdcos.io/nic-down: eth1` or `eth1,eth2`: the NICs whose link is down."""
    return frozenset(name.strip() for name in (annotation or "").split(",") if name.strip())


def hardware_interface(nic: Obj) -> Interface:
    """One NIC of the annotation as nmstate reports an ethernet interface."""
    interface: Interface = {
        "name": str(nic["name"]), "type": ETHERNET,
        "state": "up" if nic.get("state", "up") == "up" else "down",
        "mac-address": str(nic.get("macAddress", "")).upper(),
        "permanent-mac-address": str(nic.get("macAddress", "")).upper(),
        "mtu": int(nic.get("mtu") or 1500), "min-mtu": NIC_MIN_MTU, "max-mtu": NIC_MAX_MTU,
        "accept-all-mac-addresses": False,
        "ethernet": {"auto-negotiation": True, "duplex": "full",
                     "speed": int(nic.get("speedMbps") or 0)},
        "lldp": {"enabled": False},
    }
    addresses = nic.get("ipv4") or []
    if addresses:
        interface["ipv4"] = {"enabled": True, "dhcp": False, "address": [
            {"ip": a["ip"], "prefix-length": int(a["prefixLength"])} for a in addresses]}
    else:
        interface["ipv4"] = {"enabled": False}
    interface["ipv6"] = {"enabled": False}
    return interface


def initial_configuration(nics: Iterable[Obj]) -> list[Interface]:
    """What a freshly installed host has configured: its NICs as they come."""
    return [hardware_interface(nic) for nic in nics]


def restored_configuration(reported: Sequence[Obj], nics: Iterable[Obj],
                           nics_down: frozenset[str]) -> list[Interface]:
    """A host's configuration read back from what its NodeNetworkState reported (after a
    restart of the simulation). A pulled NIC, and a bond or bridge reported down, are
    configured up: their state came from the links (one configured down is restored up)."""
    if not reported:
        return initial_configuration(nics)
    restored = []
    for interface in reported:
        configured = copy.deepcopy(dict(interface))
        from_links = configured.get("name") in nics_down or configured.get("type") != ETHERNET
        if from_links and configured.get("state") == "down":
            configured["state"] = "up"
        restored.append(configured)
    return restored


def _by_name(interfaces: Iterable[Obj]) -> dict[str, Interface]:
    return {str(i["name"]): dict(i) for i in interfaces}


def ports_of(interface: Obj) -> list[str]:
    """The ports (names) a bond or Linux bridge holds."""
    if interface.get("type") == BOND:
        return [str(p) for p in (interface.get("link-aggregation") or {}).get("port") or []]
    if interface.get("type") == LINUX_BRIDGE:
        return [str(p["name"]) for p in (interface.get("bridge") or {}).get("port") or []]
    return []


def _without_ports(interface: Interface, missing: set[str]) -> Interface:
    if interface.get("type") == BOND:
        aggregation = dict(interface.get("link-aggregation") or {})
        aggregation["port"] = [p for p in aggregation.get("port") or [] if p not in missing]
        return {**interface, "link-aggregation": aggregation}
    if interface.get("type") == LINUX_BRIDGE:
        bridge = dict(interface.get("bridge") or {})
        bridge["port"] = [p for p in bridge.get("port") or [] if p.get("name") not in missing]
        return {**interface, "bridge": bridge}
    return interface


def reported_interfaces(configuration: Sequence[Obj], nics: Sequence[Obj],
                        nics_down: frozenset[str] = frozenset()) -> list[Interface]:
    """What nmstate shows: the configured interfaces over the present hardware, with link
    state. NICs no longer present vanish (with their place in bonds and bridges); new NICs
    appear as they come."""
    hardware = _by_name(hardware_interface(nic) for nic in nics)
    configured = _by_name(configuration)
    result: dict[str, Interface] = {}
    for name, nic in hardware.items():
        overlay = configured.get(name) or {}
        merged = {**nic, **{k: v for k, v in overlay.items()
                            if k in ("mtu", "state", "controller", "ipv4", "ipv6")}}
        if name in nics_down and merged["state"] == "up":
            merged["state"] = "down"
        result[name] = merged
    missing = {name for name, i in configured.items()
               if i.get("type") == ETHERNET and name not in hardware}
    for name, interface in configured.items():
        if interface.get("type") == ETHERNET:
            continue
        result[name] = _without_ports(copy.deepcopy(interface), missing)
    # Link state rises from the ports: a bond before the bridge that holds it.
    for kind in (BOND, LINUX_BRIDGE):
        for interface in result.values():
            ports = [result[p] for p in ports_of(interface) if p in result]
            if interface.get("type") == kind and interface.get("state") == "up" and ports \
                    and all(p.get("state") != "up" for p in ports):
                interface["state"] = "down"
    return [result[name] for name in sorted(result)]  # nmstatectl show sorts by name


def linux_bridges(interfaces: Iterable[Obj]) -> list[str]:
    """Names of the Linux bridges that exist on the host (whatever their link state)."""
    return sorted(str(i["name"]) for i in interfaces if i.get("type") == LINUX_BRIDGE)


def with_default_vlan_filtering(desired_state: Obj) -> dict[str, Any]:
    """kubernetes-nmstate's rendering of a policy's desiredState for a node: every port of
    an `up` Linux bridge without `vlan` gets trunk 2-4094 (what the NNCE shows)."""
    rendered: dict[str, Any] = copy.deepcopy(dict(desired_state))
    for interface in rendered.get("interfaces") or []:
        if interface.get("type") != LINUX_BRIDGE or interface.get("state", "up") != "up":
            continue
        for port in (interface.get("bridge") or {}).get("port") or []:
            port.setdefault("vlan", copy.deepcopy(DEFAULT_BRIDGE_PORT_VLAN))
    return rendered


# --- nmstatectl apply -------------------------------------------------------------------


def missing_device_error(name: str) -> ApplyError:
    """NetworkManager's activation error for a profile whose NIC does not exist, as
    nmstate passes it on (kubernetes-nmstate's eth666 tutorial shows the same line)."""
    return ApplyError(
        f"NmstateError: Bug: Connection activation failed on connection_id {name}: "
        "error=nm-manager-error-quark: No suitable device found for this connection "
        "(device eth0 not available because profile is not compatible with device "
        "(mismatching interface name)).")


def _check_mtu(interface: Obj, max_mtu: int) -> None:
    mtu = interface.get("mtu")
    if mtu is None:
        return
    if not isinstance(mtu, int) or isinstance(mtu, bool):
        raise ApplyError(f"NmstateError: InvalidArgument: Invalid MTU {mtu!r} of interface "
                         f"{interface['name']}: an integer is expected")
    if mtu > max_mtu:
        raise ApplyError(f"NmstateError: InvalidArgument: Desired MTU {mtu} for interface "
                         f"{interface['name']} is bigger than maximum allowed MTU {max_mtu}")
    if mtu < NIC_MIN_MTU:
        raise ApplyError(f"NmstateError: InvalidArgument: Desired MTU {mtu} for interface "
                         f"{interface['name']} is smaller than minimum allowed MTU "
                         f"{NIC_MIN_MTU}")


def _merged(current: Obj | None, desired: Obj) -> Interface:
    """nmstate merges a desired interface into the current one, key by key (a section
    given replaces that section's keys given)."""
    merged: Interface = copy.deepcopy(dict(current or {}))
    for key, value in desired.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **copy.deepcopy(dict(value))}
        else:
            merged[key] = copy.deepcopy(value)
    merged["state"] = str(desired.get("state", "up"))
    return merged


def _new_virtual(desired: Obj, mac: str) -> Interface:
    kind = str(desired["type"])
    base: Interface = {"name": str(desired["name"]), "type": kind, "state": "up",
                       "mac-address": mac, "mtu": 1500, "min-mtu": NIC_MIN_MTU,
                       "max-mtu": VIRTUAL_MAX_MTU, "accept-all-mac-addresses": False,
                       "ipv4": {"enabled": False}, "ipv6": {"enabled": False}}
    if kind == BOND:
        base["link-aggregation"] = {"mode": DEFAULT_BOND_MODE, "options": {"miimon": 100},
                                    "port": []}
    elif kind == LINUX_BRIDGE:
        base["bridge"] = {"options": {"stp": {"enabled": True, "forward-delay": 15,
                                              "hello-time": 2, "max-age": 20,
                                              "priority": 32768},
                                      "vlan-protocol": "802.1q"},
                          "port": []}
    return base


def _normalised_bridge_ports(ports: Iterable[Obj]) -> list[dict[str, Any]]:
    return [{"name": str(p["name"]), "stp-hairpin-mode": False, "stp-path-cost": 100,
             "stp-priority": 32, **{k: copy.deepcopy(v) for k, v in p.items() if k != "name"}}
            for p in ports]


def _interface_mac(ports: Sequence[str], interfaces: Mapping[str, Obj], name: str) -> str:
    """A bond or bridge takes its first port's MAC, as the kernel does."""
    for port in ports:
        mac = (interfaces.get(port) or {}).get("mac-address")
        if mac:
            return str(mac)
    digest = sum(name.encode()) % 256
    return f"02:00:00:00:00:{digest:02X}"


def apply_desired_state(configuration: Sequence[Obj], nics: Sequence[Obj],
                        desired_state: Obj) -> list[Interface]:
    """The host's configuration after `nmstatectl apply` of `desired_state`.

    Raises ApplyError (the configuration untouched, as after nmstate's rollback) when a
    port names a NIC the host does not have, an MTU is out of range, a bond mode is
    unknown or an interface lacks its type.
    """
    current = _by_name(reported_interfaces(configuration, nics))
    configured = _by_name(copy.deepcopy(list(configuration)))
    hardware = {str(n["name"]) for n in nics}
    for name in list(configured):  # NICs gone from the hardware are gone from nmstate too
        if configured[name].get("type") == ETHERNET and name not in hardware:
            del configured[name]
    desired_interfaces = list((desired_state or {}).get("interfaces") or [])
    desired_names = {str(i.get("name")) for i in desired_interfaces}
    controllers: dict[str, list[str]] = {}
    for desired in desired_interfaces:
        if not isinstance(desired, Mapping) or not desired.get("name"):
            raise ApplyError("NmstateError: InvalidArgument: Interface without name")
        name = str(desired["name"])
        state = str(desired.get("state", "up"))
        existing = configured.get(name)
        if state == "absent":
            if existing is not None and existing.get("type") != ETHERNET:
                del configured[name]
                for interface in configured.values():
                    if interface.get("controller") == name:
                        interface.pop("controller", None)
            elif existing is not None:
                existing["state"] = "down"  # the NIC stays, its profile is gone
            continue
        kind = desired.get("type") or (existing or {}).get("type")
        if not kind:
            raise ApplyError(f"NmstateError: InvalidArgument: Interface {name} has no type "
                             "defined and does not exist in current state")
        if kind == ETHERNET and name not in hardware:
            raise missing_device_error(name)
        if kind not in (ETHERNET, *VIRTUAL_TYPES):
            # Real nmstate knows many more types; the simulated host says it lacks them.
            raise ApplyError(f"NmstateError: NotSupportedError: the simulated host does not "
                             f"emulate interface type {kind} (of {name})")
        merged = _merged(existing if existing is not None else None, desired)
        if existing is None:
            merged = _merged(_new_virtual({**desired, "type": kind}, ""), desired)
        _check_mtu(merged, NIC_MAX_MTU if kind == ETHERNET else VIRTUAL_MAX_MTU)
        if kind == BOND:
            aggregation = dict(merged.get("link-aggregation") or {})
            aggregation.pop("slaves", None)
            ports = [str(p) for p in aggregation.get("port")
                     or (desired.get("link-aggregation") or {}).get("slaves") or []]
            aggregation["port"] = ports
            if aggregation.get("mode", DEFAULT_BOND_MODE) not in BOND_MODES:
                raise ApplyError(f"NmstateError: InvalidArgument: Invalid bond mode "
                                 f"{aggregation.get('mode')!r} of {name}")
            merged["link-aggregation"] = aggregation
        elif kind == LINUX_BRIDGE:
            bridge = dict(merged.get("bridge") or {})
            bridge["port"] = _normalised_bridge_ports(
                bridge.get("port") or bridge.pop("slaves", None) or [])
            ports = [p["name"] for p in bridge["port"]]
            merged["bridge"] = bridge
        else:
            ports = []
        for port in ports:
            if port not in current and port not in desired_names:
                raise missing_device_error(port)
        configured[name] = merged
        controllers[name] = ports
    for name, ports in controllers.items():  # once every desired interface exists
        for interface in configured.values():  # ports leaving this controller
            if interface.get("controller") == name and interface["name"] not in ports:
                interface.pop("controller", None)
        for port in ports:
            if port not in configured:
                configured[port] = copy.deepcopy(current[port])
            previous = configured[port].get("controller")
            if previous and previous != name and previous in configured:
                # A port has one controller: the new one takes it from the old.
                configured[previous] = _without_ports(configured[previous], {port})
            configured[port]["controller"] = name
    _propagate(configured, current)
    return [configured[name] for name in sorted(configured)]


def _propagate(configured: dict[str, Interface], current: Mapping[str, Obj]) -> None:
    """What the kernel does on its own: a bond's MTU is set on its ports, and a bond or
    bridge takes the MAC of its first port."""
    for interface in configured.values():
        ports = ports_of(interface)
        if interface.get("type") == BOND:
            for port in ports:
                if port in configured and interface.get("mtu"):
                    configured[port]["mtu"] = interface["mtu"]
        if interface.get("type") in (BOND, LINUX_BRIDGE) and not interface.get("mac-address"):
            interface["mac-address"] = _interface_mac(ports, {**current, **configured},
                                                      str(interface["name"]))


def current_state(interfaces: Sequence[Obj]) -> dict[str, Any]:
    """NodeNetworkState status.currentState: nmstate's whole report."""
    routes = []
    for interface in interfaces:
        for address in ((interface.get("ipv4") or {}).get("address") or []):
            routes.append({"destination": "0.0.0.0/0", "next-hop-interface": interface["name"],
                           "next-hop-address": _gateway(address), "metric": 100,
                           "table-id": 254})
    return {
        "dns-resolver": {"config": {}, "running": {"server": ["172.18.0.1"]}},
        "interfaces": [copy.deepcopy(dict(i)) for i in interfaces],
        "route-rules": {"config": []},
        "routes": {"config": [], "running": routes},
    }


def _gateway(address: Obj) -> str:
    parts = str(address["ip"]).split(".")
    return ".".join([*parts[:3], "1"]) if len(parts) == 4 else ""
