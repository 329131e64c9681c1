"""The emulated Multus with kubectl: a pod naming a missing NAD fails its sandbox with
Multus' words until the NAD exists; a VMI on a NAD with bridge-marker's resourceName runs
only where the bridge is, with its bridge NIC in status; no host with the bridge: the
launcher pod is Unschedulable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from tests.harness import DevCluster, start_devcluster
from tests.integration.sim.conftest import FAST_TIMINGS, HOSTS, wait_for_hosts

from .helpers import apply, busybox_pod, condition, get_json

pytestmark = pytest.mark.kubectl

BRIDGE_HOSTS = ("host-1", "host-2")


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = start_devcluster(tmp_path_factory.mktemp("multus"), "--hosts", str(len(HOSTS)),
                               *FAST_TIMINGS, "--nmstate-apply-seconds", "0.1")
    try:
        wait_for_hosts(cluster)
        for host in BRIDGE_HOSTS:
            cluster.kubectl("label", "node", host, "vdcos.io/cluster.edge=")
        apply(cluster, """
apiVersion: nmstate.io/v1
kind: NodeNetworkConfigurationPolicy
metadata:
  name: dvs-edge
spec:
  nodeSelector:
    vdcos.io/cluster.edge: ""
  desiredState:
    interfaces:
      - name: br-edge
        type: linux-bridge
        state: up
        bridge:
          options: {stp: {enabled: false}}
          port: [{name: eth1}]
""")
        cluster.kubectl("wait", "nncp/dvs-edge", "--for=condition=Available", "--timeout=60s",
                        timeout=70)
        yield cluster
    finally:
        cluster.stop()


def nad(name: str, bridge: str, namespace: str = "default") -> str:
    config = json.dumps({"cniVersion": "0.3.1", "name": name, "type": "bridge",
                         "bridge": bridge, "vlan": 100, "ipam": {}})
    return f"""
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: {name}
  namespace: {namespace}
  annotations:
    k8s.v1.cni.cncf.io/resourceName: bridge.network.kubevirt.io/{bridge}
spec:
  config: '{config}'
"""


def vmi(name: str, network: str) -> str:
    return f"""
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: {name}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {{}}
      - name: vlan100
        bridge: {{}}
        macAddress: "02:00:00:00:10:01"
    memory:
      guest: 512Mi
  networks:
  - name: default
    pod: {{}}
  - name: vlan100
    multus:
      networkName: {network}
"""


def events_of(cluster: DevCluster, name: str) -> list[dict[str, str]]:
    items = get_json(cluster, "events", "--field-selector", f"involvedObject.name={name}")
    return [{"reason": e["reason"], "message": e["message"],
             "source": e.get("source", {}).get("component", "")} for e in items["items"]]


def wait_event(cluster: DevCluster, name: str, reason: str) -> None:
    """Watch the Events of `name` (kubernetes client) until one has `reason`."""
    api = client.CoreV1Api(cluster.api_client())
    selector = f"involvedObject.name={name},reason={reason}"
    listed: Any = api.list_namespaced_event("default", field_selector=selector)
    if listed.items:
        return
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    for _ in watcher.stream(api.list_namespaced_event, "default", field_selector=selector,
                            resource_version=listed.metadata.resource_version,
                            timeout_seconds=30):
        watcher.stop()
        return
    raise AssertionError(f"no {reason} event for {name} within 30 s")


def test_a_pod_naming_a_missing_nad_fails_its_sandbox_until_it_exists(
        datacenter: DevCluster) -> None:
    pod = busybox_pod("needs-net").replace(
        "  labels: {app: needs-net}",
        "  labels: {app: needs-net}\n  annotations:\n"
        "    k8s.v1.cni.cncf.io/networks: vlan-missing")
    apply(datacenter, pod)
    wait_event(datacenter, "needs-net", "FailedCreatePodSandBox")
    deadline_events = events_of(datacenter, "needs-net")
    by_reason = {e["reason"]: e for e in deadline_events}
    assert by_reason["NoNetworkFound"]["source"] == "multus"
    assert by_reason["NoNetworkFound"]["message"] == (
        "cannot find a network-attachment-definition (vlan-missing) in namespace (default): "
        'network-attachment-definitions.k8s.cni.cncf.io "vlan-missing" not found')
    sandbox = by_reason["FailedCreatePodSandBox"]
    assert sandbox["source"] == "kubelet"
    assert sandbox["message"].startswith("Failed to create pod sandbox: rpc error: code = "
                                         "Unknown desc = failed to setup network for sandbox")
    assert "cannot find a network-attachment-definition (vlan-missing)" in sandbox["message"]
    assert get_json(datacenter, "pod", "needs-net")["status"]["phase"] == "Pending"
    datacenter.kubectl("wait", "pod/needs-net", "--timeout=30s",
                       "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}"
                       "=ContainerCreating", timeout=40)
    row = datacenter.kubectl("get", "pod", "needs-net", "--no-headers").stdout.split()
    assert row[1:3] == ["0/1", "ContainerCreating"]

    apply(datacenter, nad("vlan-missing", "br-edge").replace(
        "  annotations:\n    k8s.v1.cni.cncf.io/resourceName: bridge.network.kubevirt.io/"
        "br-edge\n", ""))
    datacenter.kubectl("wait", "pod/needs-net", "--for=condition=Ready", "--timeout=30s",
                       timeout=40)


def test_a_vmi_on_a_bridge_port_group_runs_only_where_the_bridge_is(
        datacenter: DevCluster) -> None:
    apply(datacenter, nad("vlan100", "br-edge"))
    apply(datacenter, vmi("edge-vm", "vlan100"))
    datacenter.kubectl("wait", "vmi/edge-vm", "--for=condition=Ready", "--timeout=60s",
                       timeout=70)
    running = get_json(datacenter, "vmi", "edge-vm")
    assert running["status"]["nodeName"] in BRIDGE_HOSTS
    launcher = get_json(datacenter, "pods", "-l", "kubevirt.io/created-by="
                        + running["metadata"]["uid"])["items"][0]
    compute = next(c for c in launcher["spec"]["containers"] if c["name"] == "compute")
    assert compute["resources"]["requests"]["bridge.network.kubevirt.io/br-edge"] == "1"
    assert compute["resources"]["limits"]["bridge.network.kubevirt.io/br-edge"] == "1"
    nic = next(i for i in running["status"]["interfaces"] if i["name"] == "vlan100")
    assert nic["mac"] == "02:00:00:00:10:01"
    assert nic["interfaceName"] == "eth1"
    assert "multus-status" in nic["infoSource"]
    assert "ipAddress" not in nic, "ipam: {} hands out no address"


def test_no_host_with_the_bridge_leaves_the_launcher_unschedulable(
        datacenter: DevCluster) -> None:
    apply(datacenter, nad("vlan200", "br-nowhere"))
    apply(datacenter, vmi("lost-vm", "vlan200"))
    datacenter.kubectl("wait", "--for=create", "--timeout=30s", "pods", "-l",
                       "vm.kubevirt.io/name=lost-vm", timeout=40)
    datacenter.kubectl("wait", "pods", "-l", "vm.kubevirt.io/name=lost-vm", "--timeout=30s",
                       "--for=jsonpath={.status.conditions[?(@.type==\"PodScheduled\")]"
                       ".reason}=Unschedulable", timeout=40)
    pod = get_json(datacenter, "pods", "-l", "vm.kubevirt.io/name=lost-vm")["items"][0]
    scheduled = condition(pod, "PodScheduled")
    assert "Insufficient bridge.network.kubevirt.io/br-nowhere" in scheduled["message"]


def test_a_vmi_naming_a_nad_missing_in_its_namespace_is_not_synchronized(
        datacenter: DevCluster) -> None:
    datacenter.kubectl("create", "namespace", "tenant-b")
    apply(datacenter, vmi("tenant-vm", "vlan100").replace(
        "  name: tenant-vm\n", "  name: tenant-vm\n  namespace: tenant-b\n"))
    datacenter.kubectl("wait", "-n", "tenant-b", "vmi/tenant-vm",
                       "--for=condition=Synchronized=False", "--timeout=30s", timeout=40)
    synchronized = condition(get_json(datacenter, "-n", "tenant-b", "vmi", "tenant-vm"),
                             "Synchronized")
    assert synchronized["reason"] == "FailedCreate"
    assert synchronized["message"] == ("failed to render launch manifest: failed to locate "
                                       "network attachment definition tenant-b/vlan100")
