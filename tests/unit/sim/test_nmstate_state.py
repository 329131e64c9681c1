"""A simulated host's network as nmstate shows and applies it: NICs from the annotation, a
switch policy (bond under a VLAN-filtering bridge, MTU 9000), missing NICs refused with
nmstate's words and nothing changed, `state: absent`, pulled links, NICs removed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devcluster.sim.hosts import HostSpec, nic_inventory
from devcluster.sim.nmstate_state import (
    ApplyError,
    apply_desired_state,
    current_state,
    initial_configuration,
    linux_bridges,
    parse_nics,
    parse_nics_down,
    reported_interfaces,
    restored_configuration,
    with_default_vlan_filtering,
)

HOST = HostSpec(name="host-1", index=1, zone="zone-a", internal_ip="172.18.0.2",
                pod_cidr="10.244.0.0/24")
NICS = nic_inventory(HOST)

SWITCH: dict[str, Any] = {"interfaces": [
    {"name": "eth1", "type": "ethernet", "state": "up", "mtu": 9000},
    {"name": "eth2", "type": "ethernet", "state": "up", "mtu": 9000},
    {"name": "bond-prod", "type": "bond", "state": "up", "mtu": 9000,
     "link-aggregation": {"mode": "active-backup", "port": ["eth1", "eth2"]}},
    {"name": "br-prod", "type": "linux-bridge", "state": "up", "mtu": 9000,
     "bridge": {"options": {"stp": {"enabled": False}},
                "port": [{"name": "bond-prod", "vlan": {
                    "mode": "trunk", "trunk-tags": [{"id-range": {"min": 2, "max": 4094}}]}}]}},
]}


def by_name(interfaces: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in interfaces}


def configured_switch() -> list[dict[str, Any]]:
    return apply_desired_state(initial_configuration(NICS), NICS, SWITCH)


def test_nics_are_reported_as_ethernet_interfaces() -> None:
    reported = by_name(reported_interfaces(initial_configuration(NICS), NICS))
    assert sorted(reported) == ["eth0", "eth1", "eth2"]
    for nic in NICS:
        interface = reported[nic["name"]]
        assert interface["type"] == "ethernet"
        assert interface["state"] == "up"
        assert interface["mtu"] == 1500
        assert interface["mac-address"] == nic["macAddress"].upper()
        assert interface["ethernet"]["speed"] == 25000
    assert reported["eth0"]["ipv4"]["address"] == [{"ip": "172.18.0.2", "prefix-length": 16}]
    assert reported["eth1"]["ipv4"] == {"enabled": False}


def test_switch_policy_makes_a_bond_under_a_vlan_filtering_bridge() -> None:
    reported = by_name(reported_interfaces(configured_switch(), NICS))
    assert linux_bridges(reported.values()) == ["br-prod"]
    bridge, bond = reported["br-prod"], reported["bond-prod"]
    assert bridge["mtu"] == bond["mtu"] == 9000
    assert bridge["bridge"]["options"]["stp"]["enabled"] is False
    assert bridge["bridge"]["port"][0]["name"] == "bond-prod"
    assert bridge["bridge"]["port"][0]["vlan"]["trunk-tags"] == [
        {"id-range": {"min": 2, "max": 4094}}]
    assert bond["link-aggregation"]["mode"] == "active-backup"
    assert bond["link-aggregation"]["port"] == ["eth1", "eth2"]
    assert bond["controller"] == "br-prod"
    assert reported["eth1"]["controller"] == reported["eth2"]["controller"] == "bond-prod"
    assert reported["eth1"]["mtu"] == 9000
    assert bond["mac-address"] == reported["eth1"]["mac-address"]
    assert reported["eth0"]["mtu"] == 1500 and "controller" not in reported["eth0"]


def test_applying_the_same_policy_again_changes_nothing() -> None:
    once = configured_switch()
    assert apply_desired_state(once, NICS, SWITCH) == once


def test_a_port_naming_a_missing_nic_is_refused_with_nmstates_words() -> None:
    desired = copy.deepcopy(SWITCH)
    desired["interfaces"][2]["link-aggregation"]["port"] = ["eth1", "eth3"]
    before = initial_configuration(NICS)
    with pytest.raises(ApplyError, match="No suitable device found for this connection"):
        apply_desired_state(before, NICS, desired)
    assert before == initial_configuration(NICS), "the configuration was not touched"


def test_an_ethernet_the_host_lacks_is_refused() -> None:
    with pytest.raises(ApplyError, match="connection_id eth7"):
        apply_desired_state(initial_configuration(NICS), NICS, {"interfaces": [
            {"name": "eth7", "type": "ethernet", "state": "up"}]})


@pytest.mark.parametrize("mtu, words", [(9500, "bigger than maximum allowed MTU 9216"),
                                        (10, "smaller than minimum allowed MTU 68")])
def test_an_mtu_out_of_the_nics_range_is_refused(mtu: int, words: str) -> None:
    with pytest.raises(ApplyError, match=words):
        apply_desired_state(initial_configuration(NICS), NICS, {"interfaces": [
            {"name": "eth1", "type": "ethernet", "mtu": mtu}]})


def test_an_interface_type_the_simulation_lacks_is_refused_saying_so() -> None:
    with pytest.raises(ApplyError, match="does not emulate interface type ovs-bridge"):
        apply_desired_state(initial_configuration(NICS), NICS, {"interfaces": [
            {"name": "ovs0", "type": "ovs-bridge"}]})


def test_an_unknown_bond_mode_is_refused() -> None:
    with pytest.raises(ApplyError, match="Invalid bond mode 'fastest'"):
        apply_desired_state(initial_configuration(NICS), NICS, {"interfaces": [
            {"name": "bond0", "type": "bond", "link-aggregation": {"mode": "fastest",
                                                                  "port": ["eth1"]}}]})


def test_absent_removes_bridge_and_bond_and_frees_their_ports() -> None:
    removed = apply_desired_state(configured_switch(), NICS, {"interfaces": [
        {"name": "br-prod", "type": "linux-bridge", "state": "absent"},
        {"name": "bond-prod", "type": "bond", "state": "absent"}]})
    reported = by_name(reported_interfaces(removed, NICS))
    assert sorted(reported) == ["eth0", "eth1", "eth2"]
    assert "controller" not in reported["eth1"]
    assert linux_bridges(reported.values()) == []


def test_a_pulled_link_is_down_and_the_bond_stays_up_on_the_other() -> None:
    reported = by_name(reported_interfaces(configured_switch(), NICS, frozenset({"eth1"})))
    assert reported["eth1"]["state"] == "down"
    assert reported["eth2"]["state"] == "up"
    assert reported["bond-prod"]["state"] == "up"
    assert reported["br-prod"]["state"] == "up"


def test_with_both_uplinks_pulled_bond_and_bridge_are_down() -> None:
    reported = by_name(reported_interfaces(configured_switch(), NICS,
                                           frozenset({"eth1", "eth2"})))
    assert reported["bond-prod"]["state"] == "down"
    assert reported["br-prod"]["state"] == "down"
    assert linux_bridges(reported.values()) == ["br-prod"], "the bridge still exists"


def test_a_nic_removed_from_the_host_leaves_the_bond() -> None:
    without_eth2 = [nic for nic in NICS if nic["name"] != "eth2"]
    reported = by_name(reported_interfaces(configured_switch(), without_eth2))
    assert "eth2" not in reported
    assert reported["bond-prod"]["link-aggregation"]["port"] == ["eth1"]


def test_a_port_taken_by_another_controller_leaves_the_first() -> None:
    moved = apply_desired_state(configured_switch(), NICS, {"interfaces": [
        {"name": "br-two", "type": "linux-bridge", "bridge": {"port": [{"name": "eth2"}]}}]})
    reported = by_name(reported_interfaces(moved, NICS))
    assert reported["bond-prod"]["link-aggregation"]["port"] == ["eth1"]
    assert reported["eth2"]["controller"] == "br-two"


def test_ports_without_vlan_get_kubernetes_nmstates_default_trunk() -> None:
    rendered = with_default_vlan_filtering({"interfaces": [
        {"name": "br1", "type": "linux-bridge", "state": "up",
         "bridge": {"port": [{"name": "eth1"}]}}]})
    assert rendered["interfaces"][0]["bridge"]["port"][0]["vlan"] == {
        "mode": "trunk", "trunk-tags": [{"id-range": {"min": 2, "max": 4094}}]}


def test_annotations_are_parsed_leniently() -> None:
    assert parse_nics("not json") == []
    assert [n["name"] for n in parse_nics('[{"name": "eth1"}, 3]')] == ["eth1"]
    assert parse_nics_down(" eth1, eth2 ,") == frozenset({"eth1", "eth2"})
    assert parse_nics_down(None) == frozenset()


def test_current_state_has_nmstates_sections() -> None:
    state = current_state(reported_interfaces(initial_configuration(NICS), NICS))
    assert set(state) == {"dns-resolver", "interfaces", "route-rules", "routes"}
    assert state["routes"]["running"][0]["next-hop-interface"] == "eth0"


def test_configuration_read_back_from_a_report_with_pulled_links_is_up() -> None:
    configured = configured_switch()
    pulled = frozenset({"eth1", "eth2"})
    report = reported_interfaces(configured, NICS, pulled)
    restored = restored_configuration(report, NICS, pulled)
    assert reported_interfaces(restored, NICS) == reported_interfaces(configured, NICS)
    assert reported_interfaces(restored, NICS, pulled) == report
    assert restored_configuration([], NICS, frozenset()) == initial_configuration(NICS)
