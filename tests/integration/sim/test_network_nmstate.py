"""The emulated nmstate, with kubectl: NodeNetworkState per host, policies enacted per host,
a missing NIC failing and rolled back, a pulled link, bridges advertised on the Nodes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes import client, watch

from tests import upstream
from tests.harness import DevCluster, start_devcluster
from tests.integration.sim.conftest import FAST_TIMINGS, HOSTS, wait_for_hosts

from .helpers import apply, condition, get_json

pytestmark = pytest.mark.kubectl

NETWORK_TIMINGS = ("--nmstate-apply-seconds", "0.2", "--nmstate-retry-seconds", "0.05")
CLUSTER_LABEL = "vdcos.io/cluster.prod"
HOST_LABEL = "sim.vdcos.io/host"


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = start_devcluster(tmp_path_factory.mktemp("network"), "--hosts", str(len(HOSTS)),
                               *FAST_TIMINGS, *NETWORK_TIMINGS)
    try:
        wait_for_hosts(cluster)
        for host in HOSTS:
            cluster.kubectl("label", "node", host, f"{CLUSTER_LABEL}=")
        cluster.kubectl("wait", "--for=create", *(f"nns/{h}" for h in HOSTS), "--timeout=60s",
                        timeout=70)
        yield cluster
    finally:
        cluster.stop()


def switch_policy(name: str, bridge: str, uplinks: tuple[str, ...], *, mtu: int = 9000,
                  selector: str = CLUSTER_LABEL, selector_value: str = "") -> str:
    """An NNCP as the operator writes one for a distributed switch: a bond of the uplinks
    under a Linux bridge with VLAN filtering, the MTU on every member."""
    ports = "".join(f"\n      - name: {nic}\n        type: ethernet\n        state: up\n"
                    f"        mtu: {mtu}" for nic in uplinks)
    bond = f"bond-{bridge}"[:15]
    return f"""
apiVersion: nmstate.io/v1
kind: NodeNetworkConfigurationPolicy
metadata:
  name: {name}
spec:
  nodeSelector:
    {selector}: "{selector_value}"
  desiredState:
    interfaces:{ports}
      - name: {bond}
        type: bond
        state: up
        mtu: {mtu}
        link-aggregation:
          mode: active-backup
          port: [{", ".join(uplinks)}]
      - name: {bridge}
        type: linux-bridge
        state: up
        mtu: {mtu}
        bridge:
          options:
            stp: {{enabled: false}}
          port:
            - name: {bond}
              vlan:
                mode: trunk
                trunk-tags:
                  - id-range: {{min: 2, max: 4094}}
"""


def interfaces(cluster: DevCluster, host: str) -> dict[str, dict[str, Any]]:
    nns = get_json(cluster, "nns", host)
    return {i["name"]: i for i in nns["status"]["currentState"]["interfaces"]}


def wait_node(cluster: DevCluster, host: str, done: Callable[[Any], bool]) -> Any:
    """Watch the Node (kubernetes client) until `done` holds for it."""
    api = client.CoreV1Api(cluster.api_client())
    node: Any = api.read_node(host)
    if done(node):
        return node
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    for event in watcher.stream(api.list_node, field_selector=f"metadata.name={host}",
                                resource_version=node.metadata.resource_version,
                                timeout_seconds=30):
        if done(event["object"]):
            watcher.stop()
            return event["object"]
    raise AssertionError(f"node {host} did not get there within 30 s")


def wait_state(cluster: DevCluster, host: str,
               done: Callable[[dict[str, dict[str, Any]]], bool]) -> dict[str, dict[str, Any]]:
    """Watch the host's NodeNetworkState until `done` holds for its interfaces by name."""
    api = client.CustomObjectsApi(cluster.api_client())
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    for event in watcher.stream(api.list_cluster_custom_object, "nmstate.io", "v1beta1",
                                "nodenetworkstates", field_selector=f"metadata.name={host}",
                                timeout_seconds=30):
        reported = {i["name"]: i for i in event["object"].get("status", {}).get(
            "currentState", {}).get("interfaces", [])}
        if done(reported):
            watcher.stop()
            return reported
    raise AssertionError(f"the network state of {host} did not get there within 30 s")


def wait_policy(cluster: DevCluster, name: str, condition_type: str,
                timeout: int = 60) -> dict[str, Any]:
    cluster.kubectl("wait", f"nncp/{name}", f"--for=condition={condition_type}",
                    f"--timeout={timeout}s", timeout=timeout + 10)
    policy: dict[str, Any] = get_json(cluster, "nncp", name)
    return policy


def test_every_host_reports_its_nics_as_node_network_state(datacenter: DevCluster) -> None:
    for host in HOSTS:
        node = get_json(datacenter, "node", host)
        nics = json.loads(node["metadata"]["annotations"]["sim.vdcos.io/nics"])
        nns = get_json(datacenter, "nns", host)
        assert nns["metadata"]["ownerReferences"][0]["name"] == host
        reported = {i["name"]: i for i in nns["status"]["currentState"]["interfaces"]}
        for nic in nics:
            assert reported[nic["name"]]["type"] == "ethernet"
            assert reported[nic["name"]]["state"] == "up"
            assert reported[nic["name"]]["mtu"] == nic["mtu"]
            assert reported[nic["name"]]["mac-address"] == nic["macAddress"].upper()
        assert nns["status"]["lastSuccessfulUpdateTime"]


def test_a_deleted_node_network_state_is_reported_again(datacenter: DevCluster) -> None:
    uid = get_json(datacenter, "nns", "host-1")["metadata"]["uid"]
    datacenter.kubectl("delete", "nns", "host-1")
    datacenter.kubectl("wait", "--for=create", "nns/host-1", "--timeout=30s", timeout=40)
    datacenter.kubectl("wait", "nns/host-1", "--timeout=30s", "--for=jsonpath="
                       "{.status.currentState.interfaces[?(@.name==\"eth1\")].state}=up",
                       timeout=40)
    assert get_json(datacenter, "nns", "host-1")["metadata"]["uid"] != uid


def test_switch_policy_is_enacted_on_every_selected_host(datacenter: DevCluster) -> None:
    apply(datacenter, switch_policy("dvs-prod", "br-prod", ("eth1", "eth2")))
    policy = wait_policy(datacenter, "dvs-prod", "Available")
    available = condition(policy, "Available")
    assert available["reason"] == "SuccessfullyConfigured"
    assert available["message"] == "3/3 nodes successfully configured"
    assert condition(policy, "Degraded")["status"] == "False"

    enactments = get_json(datacenter, "nnce", "-l", "nmstate.io/policy=dvs-prod")["items"]
    assert sorted(e["metadata"]["name"] for e in enactments) == [
        f"{host}.dvs-prod" for host in HOSTS]
    for enactment in enactments:
        assert condition(enactment, "Available")["status"] == "True"
        assert condition(enactment, "Available")["reason"] == "SuccessfullyConfigured"
        assert condition(enactment, "Failing")["status"] == "False"
        assert enactment["status"]["policyGeneration"] == 1

    for host in HOSTS:
        reported = interfaces(datacenter, host)
        bridge, bond = reported["br-prod"], reported["bond-br-prod"]
        assert bridge["type"] == "linux-bridge" and bridge["state"] == "up"
        assert bridge["mtu"] == 9000
        assert [p["name"] for p in bridge["bridge"]["port"]] == ["bond-br-prod"]
        assert bridge["bridge"]["port"][0]["vlan"]["mode"] == "trunk"
        assert bond["link-aggregation"]["mode"] == "active-backup"
        assert bond["link-aggregation"]["port"] == ["eth1", "eth2"]
        assert reported["eth1"]["mtu"] == reported["eth2"]["mtu"] == 9000
        assert reported["eth1"]["controller"] == "bond-br-prod"
        assert reported["eth0"]["mtu"] == 1500

    rows = datacenter.kubectl("get", "nnce", "-l", "nmstate.io/policy=dvs-prod",
                              "--no-headers").stdout.splitlines()
    assert [row.split()[1::2] for row in rows] == [["Available", "SuccessfullyConfigured"]] * 3
    row = datacenter.kubectl("get", "nncp", "dvs-prod", "--no-headers").stdout.split()
    assert row == ["dvs-prod", "Available", "SuccessfullyConfigured"]


def test_bridge_is_advertised_on_the_nodes(datacenter: DevCluster) -> None:
    wait_policy(datacenter, "dvs-prod", "Available")
    for host in HOSTS:
        datacenter.kubectl(
            "wait", f"node/{host}", "--timeout=30s",
            "--for=jsonpath={.status.allocatable.bridge\\.network\\.kubevirt\\.io/br-prod}=1k",
            timeout=40)
        node = get_json(datacenter, "node", host)
        assert node["status"]["capacity"]["bridge.network.kubevirt.io/br-prod"] == "1k"


def test_a_missing_nic_fails_with_nmstates_words_and_rolls_back(
        datacenter: DevCluster) -> None:
    before = {host: interfaces(datacenter, host) for host in HOSTS}
    apply(datacenter, switch_policy("dvs-eth9", "br-eth9", ("eth1", "eth9")))
    # 50% of 3 hosts, rounded up: two may be unavailable at once. Both fail (after 5
    # tries) and keep their slot, so the third host is aborted rather than tried.
    datacenter.kubectl(
        "wait", "nncp/dvs-eth9", "--timeout=60s",
        "--for=jsonpath={.status.conditions[?(@.type==\"Degraded\")].message}"
        "=2/3 nodes failed to configure, 1 nodes aborted configuration", timeout=70)
    policy = get_json(datacenter, "nncp", "dvs-eth9")
    assert condition(policy, "Degraded")["status"] == "True"
    assert condition(policy, "Degraded")["reason"] == "FailedToConfigure"
    assert condition(policy, "Available")["status"] == "False"
    enactments = get_json(datacenter, "nnce", "-l", "nmstate.io/policy=dvs-eth9")["items"]
    aborted = [e for e in enactments if condition(e, "Aborted")["status"] == "True"]
    assert len(aborted) == 1
    assert condition(aborted[0], "Aborted")["reason"] == "ConfigurationAborted"
    failed = [e for e in enactments if e not in aborted]
    assert [condition(e, "Failing")["reason"] for e in failed] == ["FailedToConfigure"] * 2
    for enactment in failed:
        host = enactment["metadata"]["labels"]["nmstate.io/node"]
        failing = condition(enactment, "Failing")
        assert failing["status"] == "True"
        assert "No suitable device found for this connection" in failing["message"]
        assert f"error reconciling NodeNetworkConfigurationPolicy on node {host}" in \
            failing["message"]
        assert enactment["status"]["retryCount"] == {"1": 5}
    for host in HOSTS:
        after = interfaces(datacenter, host)
        assert "br-eth9" not in after, "the failed apply was rolled back"
        assert after == before[host]


def test_max_unavailable_limits_hosts_configuring_at_once(datacenter: DevCluster) -> None:
    api = client.CustomObjectsApi(datacenter.api_client())
    before: Any = api.list_cluster_custom_object(
        "nmstate.io", "v1beta1", "nodenetworkconfigurationenactments")
    apply(datacenter, """
apiVersion: nmstate.io/v1
kind: NodeNetworkConfigurationPolicy
metadata:
  name: dvs-one
spec:
  nodeSelector:
    vdcos.io/cluster.prod: ""
  maxUnavailable: 1
  desiredState:
    interfaces:
      - name: br-one
        type: linux-bridge
        state: up
        bridge:
          port: []
""")
    # Every change of the enactments since before the apply: at most one host Progressing
    # at a time, the others Pending.
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    latest: dict[str, dict[str, str]] = {}
    seen_pending = False
    for event in watcher.stream(api.list_cluster_custom_object, "nmstate.io", "v1beta1",
                                "nodenetworkconfigurationenactments",
                                label_selector="nmstate.io/policy=dvs-one",
                                resource_version=before["metadata"]["resourceVersion"],
                                timeout_seconds=60):
        enactment = event["object"]
        latest[enactment["metadata"]["name"]] = {
            c["type"]: c["status"] for c in enactment.get("status", {}).get("conditions", [])}
        assert sum(c.get("Progressing") == "True" for c in latest.values()) <= 1, latest
        seen_pending = seen_pending or any(c.get("Pending") == "True"
                                           for c in latest.values())
        if len(latest) == len(HOSTS) and all(c.get("Available") == "True"
                                             for c in latest.values()):
            watcher.stop()
    assert seen_pending, "hosts beyond maxUnavailable waited Pending"
    policy = wait_policy(datacenter, "dvs-one", "Available")
    assert condition(policy, "Available")["message"] == "3/3 nodes successfully configured"


def test_a_pulled_link_shows_down_and_the_bond_stays_up(datacenter: DevCluster) -> None:
    wait_policy(datacenter, "dvs-prod", "Available")
    datacenter.kubectl("annotate", "node", "host-3", "sim.vdcos.io/nic-down=eth1")
    datacenter.kubectl("wait", "nns/host-3", "--timeout=30s",
                       "--for=jsonpath={.status.currentState.interfaces[?(@.name==\"eth1\")]"
                       ".state}=down", timeout=40)
    reported = interfaces(datacenter, "host-3")
    assert reported["eth2"]["state"] == "up"
    assert reported["bond-br-prod"]["state"] == "up"
    assert reported["br-prod"]["state"] == "up"
    datacenter.kubectl("annotate", "node", "host-3", "sim.vdcos.io/nic-down=eth1,eth2",
                       "--overwrite")
    datacenter.kubectl("wait", "nns/host-3", "--timeout=30s",
                       "--for=jsonpath={.status.currentState.interfaces[?(@.name==\"bond-br-prod\")]"
                       ".state}=down", timeout=40)
    assert interfaces(datacenter, "host-3")["br-prod"]["state"] == "down"
    assert condition(get_json(datacenter, "nncp", "dvs-prod"), "Available")["status"] == "True"
    datacenter.kubectl("annotate", "node", "host-3", "sim.vdcos.io/nic-down-")
    datacenter.kubectl("wait", "nns/host-3", "--timeout=30s",
                       "--for=jsonpath={.status.currentState.interfaces[?(@.name==\"br-prod\")]"
                       ".state}=up", timeout=40)


def test_absent_removes_the_bridge_and_deleting_a_policy_keeps_the_host(
        datacenter: DevCluster) -> None:
    wait_policy(datacenter, "dvs-one", "Available")
    datacenter.kubectl("delete", "nncp", "dvs-one")
    datacenter.kubectl("wait", "--for=delete", "nnce/host-1.dvs-one", "--timeout=30s",
                       timeout=40)
    assert "br-one" in interfaces(datacenter, "host-1"), "nmstate does not revert"
    apply(datacenter, """
apiVersion: nmstate.io/v1
kind: NodeNetworkConfigurationPolicy
metadata:
  name: dvs-one-absent
spec:
  nodeSelector:
    vdcos.io/cluster.prod: ""
  desiredState:
    interfaces:
      - name: br-one
        type: linux-bridge
        state: absent
""")
    wait_policy(datacenter, "dvs-one-absent", "Available")
    for host in HOSTS:
        reported = interfaces(datacenter, host)
        assert "br-one" not in reported
        assert reported["br-prod"]["state"] == "up"
    for host in HOSTS:
        node = wait_node(datacenter, host, lambda n: "bridge.network.kubevirt.io/br-one"
                         not in (n.status.allocatable or {}))
        assert "bridge.network.kubevirt.io/br-prod" in node.status.allocatable


def test_a_changed_policy_is_enacted_again_as_a_new_generation(datacenter: DevCluster) -> None:
    wait_policy(datacenter, "dvs-prod", "Available")
    apply(datacenter, switch_policy("dvs-prod", "br-prod", ("eth1", "eth2"), mtu=1500))
    datacenter.kubectl("wait", "nnce", "-l", "nmstate.io/policy=dvs-prod", "--timeout=60s",
                       "--for=jsonpath={.status.policyGeneration}=2", timeout=70)
    wait_policy(datacenter, "dvs-prod", "Available")
    datacenter.kubectl("wait", "nnce", "-l", "nmstate.io/policy=dvs-prod", "--timeout=60s",
                       "--for=condition=Available", timeout=70)
    for host in HOSTS:
        reported = interfaces(datacenter, host)
        assert reported["br-prod"]["mtu"] == reported["eth1"]["mtu"] == 1500


def test_a_host_leaving_the_selector_loses_its_enactment_not_its_bridge(
        datacenter: DevCluster) -> None:
    wait_policy(datacenter, "dvs-prod", "Available")
    datacenter.kubectl("label", "node", "host-3", f"{CLUSTER_LABEL}-")
    datacenter.kubectl("wait", "--for=delete", "nnce/host-3.dvs-prod", "--timeout=30s",
                       timeout=40)
    assert "br-prod" in interfaces(datacenter, "host-3"), "nmstate does not revert"
    datacenter.kubectl("wait", "nncp/dvs-prod", "--timeout=30s",
                       "--for=jsonpath={.status.conditions[?(@.type==\"Available\")].message}"
                       "=2/2 nodes successfully configured", timeout=40)
    datacenter.kubectl("label", "node", "host-3", f"{CLUSTER_LABEL}=")
    datacenter.kubectl("wait", "nnce/host-3.dvs-prod", "--for=condition=Available",
                       "--timeout=30s", timeout=40)


def test_a_nic_gone_from_the_host_leaves_its_network_state(datacenter: DevCluster) -> None:
    node = get_json(datacenter, "node", "host-2")
    nics = json.loads(node["metadata"]["annotations"]["sim.vdcos.io/nics"])
    without_eth2 = json.dumps([nic for nic in nics if nic["name"] != "eth2"])
    datacenter.kubectl("annotate", "node", "host-2", f"sim.vdcos.io/nics={without_eth2}",
                       "--overwrite")
    state = wait_state(datacenter, "host-2", lambda reported: "eth2" not in reported)
    assert state["bond-br-prod"]["link-aggregation"]["port"] == ["eth1"]
    datacenter.kubectl("annotate", "node", "host-2",
                       f"sim.vdcos.io/nics={json.dumps(nics)}", "--overwrite")
    datacenter.kubectl("wait", "nns/host-2", "--timeout=30s",
                       "--for=jsonpath={.status.currentState.interfaces[?(@.name==\"eth2\")]"
                       ".state}=up", timeout=40)


def closed(node: Any) -> Any:
    """Objects listing properties refuse others, unless they keep unknown fields."""
    if isinstance(node, dict):
        result = {k: closed(v) for k, v in node.items()}
        if "properties" in result and "additionalProperties" not in result and \
                not result.get("x-kubernetes-preserve-unknown-fields"):
            result["additionalProperties"] = False
        return result
    if isinstance(node, list):
        return [closed(item) for item in node]
    return node


@pytest.mark.parametrize("plural", ["nodenetworkstates", "nodenetworkconfigurationenactments",
                                    "nodenetworkconfigurationpolicies"])
def test_every_object_written_validates_against_kubernetes_nmstate(
        datacenter: DevCluster, plural: str) -> None:
    """Runs after the scenarios above: what they left behind, against upstream's CRD."""
    path = upstream.require(upstream.path(f"schemas/nmstate/{plural}.yaml"))
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    version = next(v for v in crd["spec"]["versions"] if v["storage"])
    validator = jsonschema.Draft4Validator(closed(version["schema"]["openAPIV3Schema"]))
    items = get_json(datacenter, f"{plural}.nmstate.io")["items"]
    assert items
    for item in items:
        assert item.get("status"), f"{item['metadata']['name']} has a status"
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(item)]
        assert errors == [], item["metadata"]["name"]


def test_hosts_keep_their_network_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ("--hosts", "1", *FAST_TIMINGS, *NETWORK_TIMINGS, "--data-dir", str(data))
    first = start_devcluster(tmp_path / "first", *args)
    try:
        wait_for_hosts(first, ("host-1",))
        apply(first, switch_policy("dvs-all", "br-all", ("eth1", "eth2"), selector=HOST_LABEL,
                                   selector_value="true"))
        wait_policy(first, "dvs-all", "Available")
    finally:
        first.stop()
    second = start_devcluster(tmp_path / "second", *args)
    try:
        wait_for_hosts(second, ("host-1",))
        second.kubectl("wait", "nnce/host-1.dvs-all", "--for=condition=Available",
                       "--timeout=30s", timeout=40)
        # A new policy applies on top of the restored network, not on bare NICs.
        apply(second, """
apiVersion: nmstate.io/v1
kind: NodeNetworkConfigurationPolicy
metadata:
  name: mtu-eth0
spec:
  desiredState:
    interfaces:
      - name: eth0
        type: ethernet
        mtu: 1400
""")
        wait_policy(second, "mtu-eth0", "Available")
        reported = interfaces(second, "host-1")
        assert reported["br-all"]["bridge"]["port"][0]["name"] == "bond-br-all"
        assert reported["eth1"]["mtu"] == 9000
        assert reported["eth0"]["mtu"] == 1400
        assert get_json(second, "node", "host-1")["status"]["allocatable"][
            "bridge.network.kubevirt.io/br-all"] == "1k"
    finally:
        second.stop()
