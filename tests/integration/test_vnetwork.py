"""vNetwork with kubectl on the embedded datacenter: a DistributedSwitch becomes an nmstate
policy enacted on every host of its cluster, a DistributedPortGroup a Multus NAD in every
namespace it admits; deletions wait for what uses them and clean the hosts.

The switch is named `distributedswitch` on kubectl's command line: its short name `dvs` is
also CDI's DataVolume's, and kubectl resolves that one first.

Four hosts: host-1..3 form the cluster "prod"; host-4, whose eth2 was pulled from its
hardware inventory, is alone in the cluster "edge".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, get_json, start_vdcos_up, wait

PROD_HOSTS = ("host-1", "host-2", "host-3")
EDGE_HOST = "host-4"
NICS_ANNOTATION = "sim.vdcos.io/nics"
NODE_NETWORK_STATES = ("nmstate.io", "v1beta1", "nodenetworkstates")
PORT_GROUPS = ("vdcos.io", "v1alpha1", "distributedportgroups")
SWITCHES = ("vdcos.io", "v1alpha1", "distributedswitches")

CLUSTERS = """
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata: {name: prod}
spec:
  hostSelector:
    matchExpressions:
      - {key: kubernetes.io/hostname, operator: In, values: [host-1, host-2, host-3]}
---
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata: {name: edge}
spec:
  hostSelector:
    matchLabels: {kubernetes.io/hostname: host-4}
"""

SWITCH = """
apiVersion: vdcos.io/v1alpha1
kind: DistributedSwitch
metadata: {name: dvs-prod}
spec:
  clusterName: prod
  uplinks: [eth1, eth2]
  mtu: 9000
"""

VLAN_PORT_GROUP = """
apiVersion: vdcos.io/v1alpha1
kind: DistributedPortGroup
metadata: {name: vlan100}
spec:
  switchName: dvs-prod
  vlan: {id: 100}
  namespaceSelector:
    matchLabels: {vdcos.io/network: prod}
"""

TRUNK_PORT_GROUP = """
apiVersion: vdcos.io/v1alpha1
kind: DistributedPortGroup
metadata: {name: trunk}
spec:
  switchName: dvs-prod
  mtu: 1500
  vlan:
    trunk: [{id: 10}, {min: 200, max: 299}]
  securityPolicy: {forgedTransmits: Accept, promiscuousMode: Accept}
  trafficShaping:
    egress: {averageBandwidth: 100M, burstSize: 1Mi}
  namespaceSelector: {}
"""


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = start_vdcos_up(
        tmp_path_factory.mktemp("vnetwork"),
        "--hosts", "4", "--node-status-seconds", "1",
        "--nmstate-apply-seconds", "0.2", "--nmstate-retry-seconds", "0.05",
    )
    try:
        wait(cluster, "--for=create", *(f"node/host-{n}" for n in range(1, 5)))
        wait(cluster, "--for=create", f"nns/{EDGE_HOST}")
        node = get_json(cluster, "node", EDGE_HOST)
        nics = [nic for nic in json.loads(node["metadata"]["annotations"][NICS_ANNOTATION])
                if nic["name"] != "eth2"]
        cluster.kubectl("annotate", "--overwrite", "node", EDGE_HOST,
                        f"{NICS_ANNOTATION}={json.dumps(nics, separators=(',', ':'))}")
        wait_for_node_state(cluster, EDGE_HOST, lambda found: "eth2" not in found)
        apply_yaml(cluster, CLUSTERS)
        yield cluster
    finally:
        cluster.stop()


def wait_for_object(
    cluster: DevCluster,
    resource: tuple[str, str, str],
    name: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: int = 30,
) -> dict[str, Any]:
    """Watches a cluster-scoped custom object (group, version, plural) until `done(it)`."""
    api = client.CustomObjectsApi(cluster.api_client())
    stream = watch.Watch()
    for event in stream.stream(
        api.list_cluster_custom_object, *resource,
        field_selector=f"metadata.name={name}", timeout_seconds=timeout,
    ):
        if done(event["object"]):
            stream.stop()
            found: dict[str, Any] = event["object"]
            return found
    raise AssertionError(f"{resource[2]}/{name} did not get there in {timeout}s")


def wait_for_node_state(
    cluster: DevCluster, host: str, done: Callable[[dict[str, Any]], bool]
) -> None:
    """Waits until `done(the host's interfaces by name)` holds."""

    def interfaces_done(nns: dict[str, Any]) -> bool:
        current = (nns.get("status") or {}).get("currentState") or {}
        return done({i["name"]: i for i in current.get("interfaces") or []})

    wait_for_object(cluster, NODE_NETWORK_STATES, host, interfaces_done)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def host_interfaces(cluster: DevCluster, host: str) -> dict[str, dict[str, Any]]:
    nns = get_json(cluster, "nns", host)
    return {i["name"]: i for i in nns["status"]["currentState"]["interfaces"]}


def nad_config(cluster: DevCluster, namespace: str, name: str) -> dict[str, Any]:
    nad = get_json(cluster, "network-attachment-definitions", "-n", namespace, name)
    config: dict[str, Any] = json.loads(nad["spec"]["config"])
    return config


def make_namespace(cluster: DevCluster, name: str, *labels: str) -> None:
    cluster.kubectl("create", "namespace", name)
    if labels:
        cluster.kubectl("label", "namespace", name, *labels)


@pytest.fixture(scope="module")
def switch(datacenter: DevCluster) -> str:
    apply_yaml(datacenter, SWITCH)
    wait(datacenter, "distributedswitch/dvs-prod", "--for=condition=Ready")
    return "dvs-prod"


def test_switch_is_available_on_every_host_of_its_cluster(
    datacenter: DevCluster, switch: str
) -> None:
    dvs = get_json(datacenter, "distributedswitch", switch)
    assert dvs["status"]["hosts"] == [{"name": h, "state": "Available"} for h in PROD_HOSTS]
    assert dvs["status"]["availableHosts"] == 3
    row = datacenter.kubectl("get", "distributedswitch", switch, "--no-headers").stdout.split()
    assert row[:4] == ["dvs-prod", "prod", "9000", "3/3"]
    for host in PROD_HOSTS:
        found = host_interfaces(datacenter, host)
        bridge, bond = found["br-dvs-prod"], found["bd-dvs-prod"]
        assert bridge["type"] == "linux-bridge" and bridge["state"] == "up"
        assert {bridge["mtu"], bond["mtu"], found["eth1"]["mtu"], found["eth2"]["mtu"]} == {9000}
        assert sorted(bond["link-aggregation"]["port"]) == ["eth1", "eth2"]
        node = get_json(datacenter, "node", host)
        assert "vdcos.io/cluster.prod" in node["metadata"]["labels"]
    assert "br-dvs-prod" not in host_interfaces(datacenter, EDGE_HOST)


def test_a_host_without_an_uplink_is_named_and_no_policy_is_applied(
    datacenter: DevCluster,
) -> None:
    apply_yaml(datacenter, SWITCH.replace("dvs-prod", "dvs-edge").replace("prod", "edge"))
    wait(datacenter, "distributedswitch/dvs-edge",
         "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=UplinkMissing")
    dvs = get_json(datacenter, "distributedswitch", "dvs-edge")
    ready = condition(dvs, "Ready")
    assert ready["status"] == "False"
    assert "host host-4 has no NIC eth2" in ready["message"]
    assert dvs["status"]["hosts"] == [
        {"name": EDGE_HOST, "state": "Failing", "message": "host host-4 has no NIC eth2"}
    ]
    missing = datacenter.kubectl("get", "nncp", "vdcos-dvs-edge", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    datacenter.kubectl("delete", "distributedswitch", "dvs-edge", "--timeout=30s")


def test_a_second_switch_over_the_same_nic_is_refused(datacenter: DevCluster, switch: str) -> None:
    apply_yaml(datacenter, SWITCH.replace("dvs-prod", "dvs-clash").replace(
        "[eth1, eth2]", "[eth2]"))
    wait(datacenter, "distributedswitch/dvs-clash",
         "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=Conflict")
    ready = condition(get_json(datacenter, "distributedswitch", "dvs-clash"), "Ready")
    assert ready["message"].startswith(
        'spec.uplinks: eth2 already bridged by DistributedSwitch "dvs-prod" on cluster "prod"')
    missing = datacenter.kubectl("get", "nncp", "vdcos-dvs-clash", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    datacenter.kubectl("delete", "distributedswitch", "dvs-clash", "--timeout=30s")


def test_vlan_port_group_has_a_nad_in_each_admitted_namespace(
    datacenter: DevCluster, switch: str
) -> None:
    make_namespace(datacenter, "net-a", "vdcos.io/network=prod")
    make_namespace(datacenter, "net-b", "vdcos.io/network=prod")
    make_namespace(datacenter, "net-other")
    apply_yaml(datacenter, VLAN_PORT_GROUP)
    wait(datacenter, "dvpg/vlan100", "--for=condition=Ready")
    for namespace in ("net-a", "net-b"):
        config = nad_config(datacenter, namespace, "vlan100")
        bridge = config["plugins"][0]
        assert bridge["type"] == "bridge" and bridge["bridge"] == "br-dvs-prod"
        assert (bridge["vlan"], bridge["mtu"], bridge["macspoofchk"]) == (100, 9000, True)
        assert bridge["ipam"] == {}
        nad = get_json(datacenter, "net-attach-def", "-n", namespace, "vlan100")
        assert nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"] == (
            "bridge.network.kubevirt.io/br-dvs-prod"
        )
    absent = datacenter.kubectl("get", "net-attach-def", "-n", "net-other", "vlan100",
                                check=False)
    assert absent.returncode != 0
    dvpg = get_json(datacenter, "dvpg", "vlan100")
    assert {"net-a", "net-b"} <= set(dvpg["status"]["namespaces"])
    assert "net-other" not in dvpg["status"]["namespaces"]
    assert dvpg["status"]["notEnforced"] == ["securityPolicy.macAddressChanges"]
    row = datacenter.kubectl("get", "dvpg", "vlan100", "--no-headers").stdout.split()
    assert row[:5] == ["vlan100", "dvs-prod", "100", "9000", "0"]

    # A new namespace gets the NAD; one relabelled out of the selector loses it.
    make_namespace(datacenter, "net-c", "vdcos.io/network=prod")
    wait(datacenter, "--for=create", "net-attach-def/vlan100", "-n", "net-c")
    datacenter.kubectl("label", "namespace", "net-a", "vdcos.io/network-")
    wait(datacenter, "--for=delete", "net-attach-def/vlan100", "-n", "net-a")
    wait_for_object(datacenter, PORT_GROUPS, "vlan100",
                    lambda pg: (pg.get("status") or {}).get("namespaces") == ["net-b", "net-c"])


def test_a_change_of_vlan_reaches_every_nad(datacenter: DevCluster, switch: str) -> None:
    make_namespace(datacenter, "net-d", "vdcos.io/network=prod")
    wait(datacenter, "--for=create", "net-attach-def/vlan100", "-n", "net-d")
    datacenter.kubectl("patch", "dvpg", "vlan100", "--type=merge",
                       "-p", '{"spec": {"vlan": {"id": 101}, "mtu": 8000}}')
    wait(datacenter, "dvpg/vlan100", "--for=jsonpath={.status.vlan}=101")
    for namespace in get_json(datacenter, "dvpg", "vlan100")["status"]["namespaces"]:
        bridge = nad_config(datacenter, namespace, "vlan100")["plugins"][0]
        assert (bridge["vlan"], bridge["mtu"]) == (101, 8000)


def test_trunk_port_group_with_shaping_and_open_security(
    datacenter: DevCluster, switch: str
) -> None:
    apply_yaml(datacenter, TRUNK_PORT_GROUP)
    wait(datacenter, "dvpg/trunk", "--for=condition=Ready")
    wait(datacenter, "--for=create", "net-attach-def/trunk", "-n", "net-other")
    plugins = {p["type"]: p for p in nad_config(datacenter, "net-other", "trunk")["plugins"]}
    assert plugins["bridge"]["vlanTrunk"] == [{"id": 10}, {"minID": 200, "maxID": 299}]
    assert "vlan" not in plugins["bridge"] and "macspoofchk" not in plugins["bridge"]
    assert plugins["bridge"]["mtu"] == 1500
    assert plugins["tuning"] == {"type": "tuning", "promisc": True}
    assert (plugins["bandwidth"]["ingressRate"], plugins["bandwidth"]["ingressBurst"]) == (
        100_000_000, 2**20 * 8)
    row = datacenter.kubectl("get", "dvpg", "trunk", "--no-headers").stdout.split()
    assert row[:5] == ["trunk", "dvs-prod", "trunk", "10,200-299", "1500"]


def test_a_port_group_mtu_above_the_switch_is_refused_naming_the_field(
    datacenter: DevCluster, switch: str
) -> None:
    apply_yaml(datacenter, VLAN_PORT_GROUP.replace("vlan100", "jumbo").replace(
        "vlan: {id: 100}", "vlan: {id: 300}\n  mtu: 9216"))
    wait(datacenter, "dvpg/jumbo",
         "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=MTUTooLarge")
    ready = condition(get_json(datacenter, "dvpg", "jumbo"), "Ready")
    assert ready["status"] == "False"
    assert ready["message"].startswith("spec.mtu: 9216 is above the MTU")
    assert get_json(datacenter, "net-attach-def", "-n", "net-b", "-l",
                    "vdcos.io/distributed-port-group=jumbo")["items"] == []
    datacenter.kubectl("delete", "dvpg", "jumbo", "--timeout=30s")


def test_a_pulled_uplink_degrades_the_switch_and_keeps_it_available(
    datacenter: DevCluster, switch: str
) -> None:
    datacenter.kubectl("annotate", "node", "host-3", "sim.vdcos.io/nic-down=eth1")
    wait(datacenter, "distributedswitch/dvs-prod", "--for=condition=Degraded")
    dvs = get_json(datacenter, "distributedswitch", switch)
    assert condition(dvs, "Ready")["status"] == "True"
    assert condition(dvs, "Degraded")["reason"] == "UplinkDown"
    host_3 = next(h for h in dvs["status"]["hosts"] if h["name"] == "host-3")
    assert host_3["state"] == "Available" and "eth1" in host_3["message"]
    datacenter.kubectl("annotate", "node", "host-3", "sim.vdcos.io/nic-down-")
    wait(datacenter, "distributedswitch/dvs-prod", "--for=condition=Degraded=False")


def test_a_host_leaving_the_cluster_loses_the_switch_and_rejoining_gets_it(
    datacenter: DevCluster, switch: str
) -> None:
    def hosts_in(values: str) -> str:
        return json.dumps({"spec": {"hostSelector": {"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": values.split()}]}}})

    def summary_is(expected: str) -> Callable[[dict[str, Any]], bool]:
        return lambda dvs: (dvs.get("status") or {}).get("hostSummary") == expected and any(
            c["type"] == "Ready" and c["status"] == "True" for c in dvs["status"]["conditions"])

    datacenter.kubectl("patch", "cc", "prod", "--type=merge", "-p", hosts_in("host-1 host-2"))
    wait_for_object(datacenter, SWITCHES, switch, summary_is("2/2"))
    # nmstate drops a host's enactment when the host stops matching the policy's selector.
    wait(datacenter, "--for=delete", "nnce/host-3.vdcos-dvs-prod")
    assert "vdcos.io/cluster.prod" not in get_json(datacenter, "node", "host-3")["metadata"][
        "labels"]
    datacenter.kubectl("patch", "cc", "prod", "--type=merge",
                       "-p", hosts_in("host-1 host-2 host-3"))
    wait_for_object(datacenter, SWITCHES, switch, summary_is("3/3"))
    # Available again means nmstate enacted the policy there: the host carries the label.
    assert "vdcos.io/cluster.prod" in get_json(datacenter, "node", "host-3")["metadata"]["labels"]
    assert "br-dvs-prod" in host_interfaces(datacenter, "host-3")


VM = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata: {name: on-vlan}
spec:
  clusterName: prod
  powerState: PoweredOff
  cpu: {count: 1}
  memory: {size: 1Gi}
  networks:
    - {name: nic0, portGroupName: vlan100}
"""


def test_deleting_a_port_group_in_use_waits_for_its_vms(
    datacenter: DevCluster, switch: str
) -> None:
    apply_yaml(datacenter, VM, namespace="net-b")
    wait(datacenter, "dvpg/vlan100", "--for=jsonpath={.status.virtualMachines}=1")
    datacenter.kubectl("delete", "dvpg", "vlan100", "--wait=false")
    wait(datacenter, "dvpg/vlan100",
         "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=InUse")
    dvpg = get_json(datacenter, "dvpg", "vlan100")
    assert dvpg["status"]["inUseBy"] == ["net-b/on-vlan"]
    assert "net-b/on-vlan" in condition(dvpg, "Ready")["message"]
    events = get_json(datacenter, "events", "-A",
                      "--field-selector", "involvedObject.name=vlan100,reason=DeletionBlocked")
    assert any("net-b/on-vlan" in event["message"] for event in events["items"])
    datacenter.kubectl("delete", "vdcvm", "on-vlan", "-n", "net-b", "--timeout=60s")
    wait(datacenter, "--for=delete", "dvpg/vlan100")
    wait(datacenter, "--for=delete", "net-attach-def/vlan100", "-n", "net-b")


def test_deleting_the_switch_waits_for_port_groups_then_cleans_the_hosts(
    datacenter: DevCluster, switch: str
) -> None:
    datacenter.kubectl("delete", "distributedswitch", switch, "--wait=false")
    wait(datacenter, "distributedswitch/dvs-prod",
         "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=InUse")
    blocked = condition(get_json(datacenter, "distributedswitch", switch), "Ready")
    assert "DistributedPortGroup trunk uses the switch" in blocked["message"]
    assert "br-dvs-prod" in host_interfaces(datacenter, "host-1")
    datacenter.kubectl("delete", "dvpg", "trunk", "--timeout=30s")
    wait(datacenter, "--for=delete", "distributedswitch/dvs-prod", timeout=90)
    for host in PROD_HOSTS:
        found = host_interfaces(datacenter, host)
        assert "br-dvs-prod" not in found and "bd-dvs-prod" not in found
        assert found["eth1"]["state"] == "up"
    gone = datacenter.kubectl("get", "nncp", "vdcos-dvs-prod", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
