"""Switch and port group builders: the nmstate policy and the Multus NAD they write validate
against the upstream CRDs, and the CNI config holds only the plugins' documented fields."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import yaml

from controllers.common.conditions import find_condition
from controllers.computecluster.builders import cluster_host_label, host_label_changes
from controllers.distributedportgroup.builders import (
    attached_vms,
    build_network_attachment,
    cni_config,
    network_attachment_differs,
    not_enforced,
    vlan_display,
)
from controllers.distributedportgroup.models import DistributedPortGroupSpec
from controllers.distributedswitch.builders import (
    bond_name_for,
    bridge_name_for,
    build_policy,
    cleanup_policy,
    conflicting_switch,
    policy_differs,
    policy_is_cleanup,
)
from controllers.distributedswitch.models import DistributedSwitchSpec
from controllers.distributedswitch.status import host_report, switch_conditions
from tests import upstream

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# The fields each plugin documents (containernetworking/plugins: plugins/main/bridge,
# plugins/meta/tuning, plugins/meta/bandwidth READMEs and their config structs).
BRIDGE_FIELDS = {
    "type", "bridge", "isGateway", "isDefaultGateway", "forceAddress", "ipMasq", "mtu",
    "hairpinMode", "ipam", "promiscMode", "vlan", "vlanTrunk", "preserveDefaultVlan",
    "enabledad", "macspoofchk", "disableContainerInterface", "portIsolation",
}
TUNING_FIELDS = {"type", "mac", "mtu", "promisc", "allmulti", "sysctl"}
BANDWIDTH_FIELDS = {
    "type", "ingressRate", "ingressBurst", "egressRate", "egressBurst", "unshapedSubnets",
    "shapedSubnets",
}
CONFLIST_FIELDS = {"cniVersion", "name", "plugins", "disableCheck"}
QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def crd_version_schema(path: Path, version: str) -> dict[str, Any]:
    crd = next(d for d in yaml.safe_load_all(path.read_text()) if d)
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
    return schema


def schema_errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(schema)
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(obj)
    )


def switch(**fields: Any) -> DistributedSwitchSpec:
    return DistributedSwitchSpec.model_validate(
        {"clusterName": "prod", "uplinks": ["eth1", "eth2"], "mtu": 9000, **fields}
    )


def port_group(**fields: Any) -> DistributedPortGroupSpec:
    return DistributedPortGroupSpec.model_validate({"switchName": "dvs-prod", **fields})


PORT_GROUP_BODY = {
    "apiVersion": "vdcos.io/v1alpha1",
    "kind": "DistributedPortGroup",
    "metadata": {"name": "vlan100", "uid": "0f7e5d1c-0000-4000-8000-000000000001"},
}


def interfaces(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in policy["spec"]["desiredState"]["interfaces"]}


# --------------------------------------------------------------------------- switch


def test_switch_policy_bonds_two_uplinks_under_a_vlan_filtering_bridge() -> None:
    policy = build_policy("dvs-prod", switch())
    assert policy["spec"]["nodeSelector"] == {"vdcos.io/cluster.prod": ""}
    found = interfaces(policy)
    assert set(found) == {"eth1", "eth2", "bd-dvs-prod", "br-dvs-prod"}
    assert {entry["mtu"] for entry in found.values()} == {9000}
    bond = found["bd-dvs-prod"]
    assert bond["type"] == "bond"
    assert bond["link-aggregation"]["mode"] == "active-backup"
    assert bond["link-aggregation"]["port"] == ["eth1", "eth2"]
    bridge = found["br-dvs-prod"]
    assert bridge["type"] == "linux-bridge"
    assert bridge["ipv4"] == {"enabled": False}
    (port,) = bridge["bridge"]["port"]
    assert port["name"] == "bd-dvs-prod"
    assert port["vlan"]["mode"] == "trunk"
    assert port["vlan"]["trunk-tags"] == [{"id-range": {"min": 2, "max": 4094}}]
    assert port["vlan"]["enable-native"] is True and port["vlan"]["tag"] == 1


def test_one_uplink_is_the_bridge_port_without_a_bond() -> None:
    spec = switch(uplinks=["eth1"])
    found = interfaces(build_policy("dvs-prod", spec))
    assert set(found) == {"eth1", "br-dvs-prod"}
    assert bond_name_for("dvs-prod", spec) is None
    assert found["br-dvs-prod"]["bridge"]["port"][0]["name"] == "eth1"


def test_balance_slb_is_a_linux_xor_bond_hashing_vlan_and_source_mac() -> None:
    bond = interfaces(build_policy("dvs-prod", switch(bond={"mode": "balance-slb"})))[
        "bd-dvs-prod"
    ]
    assert bond["link-aggregation"]["mode"] == "balance-xor"
    assert bond["link-aggregation"]["options"]["xmit_hash_policy"] == "vlan+srcmac"


@pytest.mark.parametrize("mode", ["active-backup", "802.3ad", "balance-slb"])
def test_switch_policy_validates_against_the_nmstate_crd(mode: str) -> None:
    schema = crd_version_schema(
        upstream.require("schemas/nmstate/nodenetworkconfigurationpolicies.yaml"), "v1"
    )
    for spec in (switch(bond={"mode": mode}), switch(uplinks=["eth1"])):
        policy = build_policy("dvs-prod", spec)
        assert schema_errors(policy, schema) == []
        assert all(QUALIFIED_NAME.match(key) for key in policy["spec"]["nodeSelector"])
        cleanup = cleanup_policy(policy)
        assert schema_errors(cleanup, schema) == []


def test_cleanup_removes_bridge_and_bond_and_leaves_the_uplinks() -> None:
    cleanup = cleanup_policy(build_policy("dvs-prod", switch()))
    assert cleanup["spec"]["desiredState"]["interfaces"] == [
        {"name": "bd-dvs-prod", "type": "bond", "state": "absent"},
        {"name": "br-dvs-prod", "type": "linux-bridge", "state": "absent"},
    ]
    assert policy_is_cleanup(cleanup)
    assert not policy_is_cleanup(build_policy("dvs-prod", switch()))


def test_policy_differs_only_on_what_the_switch_sets() -> None:
    desired = build_policy("dvs-prod", switch())
    live = json.loads(json.dumps(desired))
    live["metadata"]["generation"] = 3
    live["metadata"]["labels"]["other"] = "kept"
    assert not policy_differs(desired, live)
    assert policy_differs(build_policy("dvs-prod", switch(mtu=1500)), live)
    assert policy_differs(desired, None)


def test_two_switches_of_a_cluster_may_not_share_an_uplink_or_a_bridge() -> None:
    first, second = switch(), switch(uplinks=["eth2", "eth3"])
    # The one whose policy exists keeps the hosts; the other names the NIC and the switch.
    switches = {"b-first": (first, True), "a-second": (second, False)}
    assert conflicting_switch("b-first", first, switches) is None
    message = conflicting_switch("a-second", second, switches)
    assert message == (
        'spec.uplinks: eth2 already bridged by DistributedSwitch "b-first" on cluster "prod"'
    )
    # Neither applied yet: the name sorting first wins.
    fresh = {"b-first": (first, False), "a-second": (second, False)}
    assert conflicting_switch("a-second", second, fresh) is None
    assert conflicting_switch("b-first", first, fresh) is not None
    # Another cluster, or other NICs and bridge: no conflict.
    elsewhere = switch(clusterName="edge")
    assert conflicting_switch("x", elsewhere, {"b-first": (first, True)}) is None
    same_bridge = switch(uplinks=["eth3"], bridgeName="br-b-first")
    bridge_message = conflicting_switch("z", same_bridge, {"b-first": (first, True)})
    assert bridge_message is not None and bridge_message.startswith("spec.bridgeName")


def test_bridge_names_fit_linux_and_stay_distinct() -> None:
    long_a = "a-switch-with-a-very-long-name-one"
    long_b = "a-switch-with-a-very-long-name-two"
    names = {bridge_name_for(long_a, switch()), bridge_name_for(long_b, switch())}
    assert len(names) == 2 and all(len(name) <= 15 for name in names)
    assert bridge_name_for("x", switch(bridgeName="br-data")) == "br-data"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mtu": 9300}, "mtu"),
        ({"mtu": 500}, "mtu"),
        ({"bridgeName": "a-bridge-name-too-long"}, "bridgeName"),
        ({"uplinks": []}, "uplinks"),
        ({"uplinks": ["eth1", "eth1"]}, "uplinks"),
        ({"uplinks": ["eth/1"]}, "uplinks"),
        ({"bond": {"mode": "balance-rr"}}, "bond"),
    ],
)
def test_bad_switch_specs_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        switch(**fields)
    assert field in str(raised.value)


def test_cluster_label_is_a_valid_label_key_even_for_long_names() -> None:
    assert cluster_host_label("prod") == "vdcos.io/cluster.prod"
    long_label = cluster_host_label("c" * 63)
    assert QUALIFIED_NAME.match(long_label) and len(long_label.split("/")[1]) <= 63


def test_hosts_that_join_get_the_label_and_hosts_that_leave_lose_it() -> None:
    label = cluster_host_label("prod")
    nodes = [
        {"metadata": {"name": "host-1", "labels": {label: ""}}},
        {"metadata": {"name": "host-2", "labels": {}}},
        {"metadata": {"name": "host-3", "labels": {label: ""}}},
    ]
    assert host_label_changes("prod", ["host-1", "host-2"], nodes) == {
        "host-2": True,
        "host-3": False,
    }


def enactment(state: str, generation: int = 1, message: str = "") -> dict[str, Any]:
    return {
        "node": "host-1",
        "policyGeneration": generation,
        "conditions": [{"type": state, "status": "True", "reason": "R", "message": message}],
    }


UP = {"eth1": {"state": "up"}, "eth2": {"state": "up"}}


def test_host_states_from_node_state_and_enactment() -> None:
    spec = switch()
    assert host_report("host-1", spec, None, None, 1).state == "Pending"
    missing = host_report("host-1", spec, {"eth1": {"state": "up"}}, None, None)
    assert (missing.state, missing.message) == ("Failing", "host host-1 has no NIC eth2")
    assert host_report("host-1", spec, UP, None, 1).state == "Pending"
    assert host_report("host-1", spec, UP, enactment("Available", 1), 2).state == "Progressing"
    failing = host_report(
        "host-1", spec, UP, enactment("Failing", 1, "No suitable device found"), 1
    )
    assert (failing.state, failing.message) == ("Failing", "No suitable device found")
    assert host_report("host-1", spec, UP, enactment("Available"), 1).state == "Available"


def test_an_uplink_down_keeps_the_host_available_and_degrades_the_switch() -> None:
    spec = switch()
    down = {"eth1": {"state": "down"}, "eth2": {"state": "up"}}
    report = host_report("host-1", spec, down, enactment("Available"), 1)
    assert report.state == "Available" and "eth1" in report.message
    conditions = switch_conditions([report], [], 1, NOW)
    ready = find_condition(conditions, "Ready")
    degraded = find_condition(conditions, "Degraded")
    assert ready is not None and ready["status"] == "True"
    assert degraded is not None and degraded["status"] == "True"
    assert degraded["reason"] == "UplinkDown" and "host-1" in degraded["message"]
    both_down = {"eth1": {"state": "down"}, "eth2": {"state": "down"}}
    assert host_report("host-1", spec, both_down, enactment("Available"), 1).state == "Failing"


# --------------------------------------------------------------------------- port group


def plugins_by_type(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {plugin["type"]: plugin for plugin in config["plugins"]}


def assert_documented(config: dict[str, Any]) -> None:
    assert set(config) <= CONFLIST_FIELDS
    documented = {"bridge": BRIDGE_FIELDS, "tuning": TUNING_FIELDS, "bandwidth": BANDWIDTH_FIELDS}
    for plugin in config["plugins"]:
        assert set(plugin) <= documented[plugin["type"]], plugin


def test_access_vlan_port_group_config() -> None:
    config = cni_config("vlan100", port_group(vlan={"id": 100}), "br-dvs-prod", 9000)
    assert_documented(config)
    assert config["cniVersion"] and config["name"] == "vlan100"
    (bridge,) = config["plugins"]
    assert bridge == {
        "type": "bridge",
        "bridge": "br-dvs-prod",
        "mtu": 9000,
        "vlan": 100,
        "preserveDefaultVlan": False,
        "macspoofchk": True,
        "ipam": {},
    }


def test_trunk_port_group_config() -> None:
    spec = port_group(vlan={"trunk": [{"id": 10}, {"min": 200, "max": 299}]}, mtu=1500)
    config = cni_config("trunk", spec, "br-dvs-prod", 9000)
    assert_documented(config)
    bridge = plugins_by_type(config)["bridge"]
    assert bridge["vlanTrunk"] == [{"id": 10}, {"minID": 200, "maxID": 299}]
    assert "vlan" not in bridge  # the bridge plugin refuses both at once
    assert bridge["mtu"] == 1500
    assert vlan_display(spec.vlan) == "trunk 10,200-299"


def test_untagged_port_group_sets_no_vlan() -> None:
    bridge = plugins_by_type(cni_config("flat", port_group(), "br0", 1500))["bridge"]
    assert "vlan" not in bridge and "vlanTrunk" not in bridge
    assert vlan_display(port_group().vlan) == "untagged"


def test_security_policy_maps_to_macspoofchk_and_tuning() -> None:
    open_policy = port_group(
        securityPolicy={"forgedTransmits": "Accept", "promiscuousMode": "Accept"}
    )
    config = cni_config("open", open_policy, "br0", 1500)
    assert_documented(config)
    plugins = plugins_by_type(config)
    assert "macspoofchk" not in plugins["bridge"]
    assert plugins["tuning"] == {"type": "tuning", "promisc": True}
    assert "tuning" not in plugins_by_type(cni_config("closed", port_group(), "br0", 1500))


def test_shaping_is_the_bandwidth_plugin_in_bits_from_the_vms_side() -> None:
    spec = port_group(
        trafficShaping={
            "ingress": {"averageBandwidth": "100M", "burstSize": "10Mi", "peakBandwidth": "200M"},
            "egress": {"averageBandwidth": "1G", "burstSize": "1Mi"},
        }
    )
    config = cni_config("shaped", spec, "br0", 1500)
    assert_documented(config)
    bandwidth = plugins_by_type(config)["bandwidth"]
    # vSphere ingress is what the VM sends: the pod's egress; vSphere egress reaches the VM.
    assert bandwidth["egressRate"] == 100_000_000
    assert bandwidth["egressBurst"] == 10 * 2**20 * 8
    assert bandwidth["ingressRate"] == 1_000_000_000
    assert bandwidth["ingressBurst"] == 2**20 * 8
    assert config["plugins"][-1]["type"] == "bandwidth"  # chained after the bridge
    assert not_enforced(spec) == [
        "securityPolicy.macAddressChanges",
        "trafficShaping.ingress.peakBandwidth",
    ]


def test_nad_validates_against_the_multus_crd_and_names_the_bridge_resource() -> None:
    crd_path = upstream.require("schemas/multus/networks-crd.yaml")
    schema = crd_version_schema(crd_path, "v1")
    nad = build_network_attachment(
        PORT_GROUP_BODY, port_group(vlan={"id": 100}), "tenant-a", "br-dvs-prod", 9000
    )
    assert schema_errors(nad, schema) == []
    assert nad["metadata"]["namespace"] == "tenant-a"
    assert nad["metadata"]["name"] == "vlan100"
    assert nad["metadata"]["annotations"] == {
        "k8s.v1.cni.cncf.io/resourceName": "bridge.network.kubevirt.io/br-dvs-prod"
    }
    assert json.loads(nad["spec"]["config"])["plugins"][0]["vlan"] == 100
    changed = build_network_attachment(
        PORT_GROUP_BODY, port_group(vlan={"id": 200}), "tenant-a", "br-dvs-prod", 9000
    )
    assert network_attachment_differs(changed, nad)
    assert not network_attachment_differs(nad, json.loads(json.dumps(nad)))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"vlan": {"id": 4095}}, "vlan.id"),
        ({"vlan": {"id": 10, "trunk": [{"id": 11}]}}, "vlan"),
        ({"vlan": {"trunk": [{"min": 20, "max": 10}]}}, "vlan.trunk.0"),
        ({"vlan": {"trunk": [{"id": 5, "min": 1, "max": 9}]}}, "vlan.trunk.0"),
        ({"mtu": 10000}, "mtu"),
        ({"securityPolicy": {"forgedTransmits": "Maybe"}}, "securityPolicy.forgedTransmits"),
        (
            {"trafficShaping": {"ingress": {"averageBandwidth": "fast", "burstSize": "1"}}},
            "trafficShaping.ingress.averageBandwidth",
        ),
    ],
)
def test_bad_port_group_specs_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        port_group(**fields)
    locations = {".".join(str(part) for part in error["loc"]) for error in raised.value.errors()}
    aliases = {
        re.sub(r"_([a-z])", lambda m: m.group(1).upper(), location) for location in locations
    }
    assert any(location.startswith(field) for location in aliases), aliases


def test_attached_vms_are_named_namespace_slash_name() -> None:
    vms = [
        {"metadata": {"namespace": "a", "name": "web"}, "spec": {"networks": [
            {"name": "nic0", "portGroupName": "vlan100"}]}},
        {"metadata": {"namespace": "b", "name": "db"}, "spec": {"networks": [
            {"name": "nic0", "podNetwork": {}}]}},
    ]
    assert attached_vms("vlan100", vms) == ["a/web"]
