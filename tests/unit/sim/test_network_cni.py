"""Multus' and bridge-marker's parts, pure: the networks a pod asks for, why its sandbox
fails, the extended resources a launcher requests, which NADs give an address, and the
Node patch that advertises a host's bridges."""

from __future__ import annotations

import copy
import json
from typing import Any

from devcluster.sim.bridge_marker import bridge_resources_patch
from devcluster.sim.cni import (
    PodNetwork,
    assigns_address,
    network_resources,
    no_network_found_message,
    pod_networks,
    sandbox_failure,
    sandbox_failure_message,
)
from devcluster.sim.launcher import build_launcher_pod, multus_networks_annotation


def pod(networks: str, namespace: str = "tenant-a") -> dict[str, Any]:
    return {"metadata": {"name": "virt-launcher-web-abcde", "namespace": namespace,
                         "uid": "uid-1",
                         "annotations": {"k8s.v1.cni.cncf.io/networks": networks}}}


def nad(config: dict[str, Any], resource: str = "") -> dict[str, Any]:
    annotations = {"k8s.v1.cni.cncf.io/resourceName": resource} if resource else {}
    return {"metadata": {"name": "vlan100", "annotations": annotations},
            "spec": {"config": json.dumps(config)}}


def test_networks_are_read_from_json_and_from_multus_short_form() -> None:
    assert pod_networks(pod('[{"name":"vlan100","namespace":"shared","interface":"pod1"},'
                            '{"name":"vlan200"}]')) == [
        PodNetwork("shared", "vlan100", "pod1"), PodNetwork("tenant-a", "vlan200", "")]
    assert pod_networks(pod("shared/vlan100@net1, vlan200")) == [
        PodNetwork("shared", "vlan100", "net1"), PodNetwork("tenant-a", "vlan200", "")]
    assert pod_networks(pod("")) == []
    assert pod_networks(pod("[not json")) == []


def test_the_first_missing_nad_fails_the_sandbox_with_multus_words() -> None:
    existing = {("tenant-a", "vlan100")}
    launcher = pod("vlan100, vlan200")
    failed = sandbox_failure(launcher, lambda ns, name: (ns, name) in existing)
    assert failed == PodNetwork("tenant-a", "vlan200", "")
    assert no_network_found_message(failed) == (
        "cannot find a network-attachment-definition (vlan200) in namespace (tenant-a): "
        'network-attachment-definitions.k8s.cni.cncf.io "vlan200" not found')
    message = sandbox_failure_message(launcher, failed)
    assert message.startswith("Failed to create pod sandbox: rpc error: code = Unknown desc = "
                              "failed to setup network for sandbox \"")
    assert 'plugin type="multus-shim" name="multus-cni-network" failed (add)' in message
    assert "error configuring pod [tenant-a/virt-launcher-web-abcde] networking" in message
    assert message.endswith(f"getKubernetesDelegate: {no_network_found_message(failed)}\n'")
    assert sandbox_failure(launcher, lambda ns, name: True) is None


VMI: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "tenant-a", "uid": "vmi-uid"},
    "spec": {"domain": {"devices": {"interfaces": [
        {"name": "default", "masquerade": {}}, {"name": "front", "bridge": {}},
        {"name": "back", "bridge": {}}]}, "memory": {"guest": "1Gi"}},
        "networks": [{"name": "default", "pod": {}},
                     {"name": "front", "multus": {"networkName": "vlan100"}},
                     {"name": "back", "multus": {"networkName": "shared/vlan100"}}]},
}


def test_launcher_requests_one_bridge_resource_per_nic() -> None:
    with_bridge = nad({"type": "bridge", "bridge": "br-prod", "ipam": {}},
                      "bridge.network.kubevirt.io/br-prod")
    resources = network_resources(VMI, lambda network: with_bridge)
    assert resources == {"bridge.network.kubevirt.io/br-prod": 2}
    launcher = build_launcher_pod(VMI, name_suffix="abcde", network_resources=resources)
    compute = launcher["spec"]["containers"][0]["resources"]
    assert compute["requests"]["bridge.network.kubevirt.io/br-prod"] == "2"
    assert compute["limits"]["bridge.network.kubevirt.io/br-prod"] == "2"
    assert network_resources(VMI, lambda network: nad({"type": "bridge"})) == {}
    assert network_resources(VMI, lambda network: None) == {}


def test_only_an_ipam_with_a_type_gives_an_address() -> None:
    assert not assigns_address(nad({"type": "bridge", "ipam": {}}))
    assert not assigns_address(nad({"type": "bridge"}))
    assert assigns_address(nad({"type": "bridge", "ipam": {"type": "whereabouts"}}))
    assert assigns_address(nad({"cniVersion": "0.3.1", "plugins": [
        {"type": "bridge", "ipam": {"type": "host-local"}}, {"type": "tuning"}]}))
    assert not assigns_address({"spec": {"config": "not json"}})
    assert not assigns_address(None)


def test_bridge_marker_advertises_exactly_the_hosts_bridges() -> None:
    node = {"status": {"capacity": {"cpu": "32", "bridge.network.kubevirt.io/br-old": "1k"},
                       "allocatable": {"cpu": "32",
                                       "bridge.network.kubevirt.io/br-old": "1k"}}}
    patch = bridge_resources_patch(node, ["br-prod"])
    assert patch == {"status": {
        section: {"bridge.network.kubevirt.io/br-old": None,
                  "bridge.network.kubevirt.io/br-prod": "1k"}
        for section in ("capacity", "allocatable")}}
    advertised = {"status": {section: {"bridge.network.kubevirt.io/br-prod": "1k"}
                             for section in ("capacity", "allocatable")}}
    assert bridge_resources_patch(advertised, ["br-prod"]) is None


def test_a_nic_being_unplugged_is_left_out_of_the_launcher_pod() -> None:
    """KubeVirt leaves `state: absent` interfaces out of the pod's networks: a migration target
    must not wait for (or request the bridge of) a NIC that is going away."""
    unplugging = copy.deepcopy(VMI)
    for interface in unplugging["spec"]["domain"]["devices"]["interfaces"]:
        if interface["name"] == "back":
            interface["state"] = "absent"
    with_bridge = nad({"type": "bridge", "bridge": "br-prod", "ipam": {}},
                      "bridge.network.kubevirt.io/br-prod")
    assert network_resources(unplugging, lambda network: with_bridge) == {
        "bridge.network.kubevirt.io/br-prod": 1}
    annotation = multus_networks_annotation(unplugging)
    assert annotation is not None
    assert [e["name"] for e in json.loads(annotation)] == ["vlan100"]
    assert [e["namespace"] for e in json.loads(annotation)] == ["tenant-a"]
