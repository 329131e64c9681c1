"""medik8s Fence Agents Remediation, network isolation and the guests ground truth, as a
user sees them with kubectl: a remediation powers its host off, taints it and its VMs
restart elsewhere; an isolated host goes silent but keeps running its guests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from tests.harness import DevCluster, start_devcluster

from .conftest import FAST_TIMINGS, wait_for_hosts
from .helpers import apply, condition, get_json

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
FAR_TAINT = "remediation.medik8s.io/fence-agents-remediation"


def guests(cluster: DevCluster) -> list[dict[str, Any]]:
    answer = json.loads(cluster.kubectl("get", "--raw", "/apis/sim.vdcos.io/v1/guests").stdout)
    assert answer["kind"] == "GuestList"
    return list(answer["items"])


def guests_of(cluster: DevCluster, name: str) -> list[dict[str, Any]]:
    return [g for g in guests(cluster) if g["name"] == name]


def running_vm(cluster: DevCluster, name: str) -> dict[str, Any]:
    """An always-running VM; returns its Running VMI."""
    cluster.kubectl("wait", "--for=condition=Established", "crd/virtualmachines.kubevirt.io",
                    "--timeout=60s", timeout=70)
    apply(cluster, f"""
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {{name: {name}}}
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        devices: {{}}
        resources: {{requests: {{memory: 64Mi}}}}
""")
    cluster.kubectl("wait", "--for=jsonpath={.status.phase}=Running", f"vmi/{name}",
                    "--timeout=60s", timeout=70)
    vmi: dict[str, Any] = get_json(cluster, "vmi", name)
    return vmi


def wait_vmi(cluster: DevCluster, name: str, done: Callable[[dict[str, Any]], bool],
             timeout: int = 90) -> dict[str, Any]:
    """Watch the VMI (kubernetes client) until `done` holds for it."""
    api = client.CustomObjectsApi(cluster.api_client())
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    for event in watcher.stream(api.list_namespaced_custom_object, "kubevirt.io", "v1",
                                "default", "virtualmachineinstances",
                                field_selector=f"metadata.name={name}",
                                timeout_seconds=timeout):
        if event["type"] != "DELETED" and done(event["object"]):
            watcher.stop()
            found: dict[str, Any] = event["object"]
            return found
    raise AssertionError(f"vmi/{name} did not get there within {timeout} s")


def restarted(old: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """A new VMI of the same VM, Running."""
    return lambda vmi: vmi["metadata"]["uid"] != old["metadata"]["uid"] and \
        (vmi.get("status") or {}).get("phase") == "Running"


def taints(cluster: DevCluster, node: str) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for t in get_json(cluster, "node", node)["spec"].get("taints") or []}


def far_manifest(node: str, *, agent: str = "fence_ipmilan", ip: str = "{{.NodeName}}-bmc",
                 action: str = "off", strategy: str = "OutOfServiceTaint",
                 retries: int = 5) -> str:
    return f"""
apiVersion: fence-agents-remediation.medik8s.io/v1alpha1
kind: FenceAgentsRemediation
metadata: {{name: {node}}}
spec:
  agent: {agent}
  remediationStrategy: {strategy}
  retrycount: {retries}
  retryinterval: 1s
  sharedSecretName: bmc-credentials
  sharedparameters:
    --ip: "{ip}"
    --username: admin
    --lanplus: ""
    --action: "{action}"
"""


def far_events(cluster: DevCluster, name: str) -> list[tuple[str, str]]:
    events = get_json(cluster, "events", "--field-selector",
                      f"involvedObject.kind=FenceAgentsRemediation,involvedObject.name={name}")
    ordered = sorted(events["items"], key=lambda e: e["metadata"]["name"])
    return [(e["reason"], e["message"]) for e in ordered]


def wait_far_event(cluster: DevCluster, name: str, reason: str, timeout: int = 30) -> None:
    """Watch the FAR's Events (kubernetes client) until one has `reason`."""
    api = client.CoreV1Api(cluster.api_client())
    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    for event in watcher.stream(api.list_namespaced_event, "default",
                                field_selector=f"involvedObject.name={name},"
                                "involvedObject.kind=FenceAgentsRemediation",
                                timeout_seconds=timeout):
        if event["object"].reason == reason:
            watcher.stop()
            return
    raise AssertionError(f"no {reason} Event for far/{name} within {timeout} s")


@pytest.fixture(scope="module")
def credentials(datacenter: DevCluster) -> None:
    datacenter.kubectl("create", "secret", "generic", "bmc-credentials",
                       "--from-literal=--password=calvin")


def test_remediation_fences_the_host_and_its_vm_restarts_elsewhere(
        datacenter: DevCluster, credentials: None) -> None:
    vmi = running_vm(datacenter, "web")
    host = vmi["status"]["nodeName"]
    assert [(g["host"], g["vmiUID"]) for g in guests_of(datacenter, "web")] == [
        (host, vmi["metadata"]["uid"])]

    apply(datacenter, far_manifest(host))
    datacenter.kubectl("wait", f"far/{host}", "--for=condition=Succeeded", "--timeout=60s",
                       timeout=70)
    far = get_json(datacenter, "far", host)
    assert far["metadata"]["finalizers"] == ["fence-agents-remediation.medik8s.io/far-finalizer"]
    assert {c["type"]: (c["status"], c["reason"]) for c in far["status"]["conditions"]} == {
        "Processing": ("False", "RemediationFinishedSuccessfully"),
        "FenceAgentActionSucceeded": ("True", "FenceAgentSucceeded"),
        "Succeeded": ("True", "RemediationFinishedSuccessfully")}
    assert [reason for reason, _ in far_events(datacenter, host)] == [
        "RemediationStarted", "AddFinalizer", "FenceAgentExecuted", "FenceAgentSucceeded",
        "RemediationFinished"]
    node = get_json(datacenter, "node", host)
    assert node["metadata"]["annotations"]["sim.vdcos.io/power"] == "off"
    assert taints(datacenter, host)[OUT_OF_SERVICE]["value"] == "nodeshutdown"
    assert taints(datacenter, host)[OUT_OF_SERVICE]["effect"] == "NoExecute"
    assert taints(datacenter, host)[FAR_TAINT]["effect"] == "NoSchedule"
    assert not [g for g in guests(datacenter) if g["host"] == host], "an off host runs nothing"

    # Kubernetes force-deletes the launcher pod, KubeVirt starts the VM on another host.
    moved = wait_vmi(datacenter, "web", restarted(vmi))
    assert moved["status"]["nodeName"] != host
    assert [g["host"] for g in guests_of(datacenter, "web")] == [moved["status"]["nodeName"]]

    # The remediation gone, its taints go; powered on, the host rejoins empty.
    datacenter.kubectl("delete", "far", host, "--timeout=30s")
    assert not {OUT_OF_SERVICE, FAR_TAINT} & set(taints(datacenter, host))
    silent = get_json(datacenter, "lease", "-n", "kube-node-lease", host)["spec"]["renewTime"]
    datacenter.kubectl("annotate", "node", host, "sim.vdcos.io/power=on", "--overwrite")
    datacenter.kubectl("wait", f"node/{host}", "--for=condition=Ready", "--timeout=30s")
    assert get_json(datacenter, "lease", "-n", "kube-node-lease", host)["spec"][
        "renewTime"] > silent, "the kubelet renews its Lease again"
    assert not [g for g in guests(datacenter) if g["host"] == host]
    assert len(guests_of(datacenter, "web")) == 1


def test_an_unsupported_agent_or_unreachable_bmc_fails(
        datacenter: DevCluster, credentials: None) -> None:
    apply(datacenter, far_manifest("host-2", agent="fence_unknown"))
    datacenter.kubectl("wait", "far/host-2", "--timeout=30s",
                       "--for=jsonpath={.status.conditions[?(@.type==\"Succeeded\")]"
                       ".reason}=FenceAgentFailed")
    far = get_json(datacenter, "far", "host-2")
    assert condition(far, "Processing")["status"] == "False"
    assert condition(far, "FenceAgentActionSucceeded")["message"] == \
        "Fence agent command has failed"
    assert ("FenceAgentFailed", "[remediation] unsupported fence agent: fence_unknown") in \
        far_events(datacenter, "host-2")
    assert get_json(datacenter, "node", "host-2")["metadata"]["annotations"].get(
        "sim.vdcos.io/power", "on") == "on"
    datacenter.kubectl("delete", "far", "host-2", "--timeout=30s")
    assert FAR_TAINT not in taints(datacenter, "host-2")

    apply(datacenter, far_manifest("host-2", ip="10.9.9.9", retries=2))
    datacenter.kubectl("wait", "far/host-2", "--timeout=30s",
                       "--for=jsonpath={.status.conditions[?(@.type==\"Succeeded\")]"
                       ".reason}=FenceAgentFailed")
    assert ("FenceAgentFailed", "[remediation] Failed: Unable to connect/login to fencing "
            "device") in far_events(datacenter, "host-2")
    datacenter.kubectl("delete", "far", "host-2", "--timeout=30s")


def test_isolated_host_goes_silent_but_keeps_its_guests(datacenter: DevCluster) -> None:
    vmi = running_vm(datacenter, "island")
    host = vmi["status"]["nodeName"]
    datacenter.kubectl("annotate", "node", host, "sim.vdcos.io/network=isolated")
    datacenter.kubectl("wait", f"node/{host}", "--for=condition=Ready=Unknown",
                       "--timeout=30s")
    renewed = get_json(datacenter, "lease", "-n", "kube-node-lease", host)["spec"]["renewTime"]
    datacenter.kubectl("wait", f"node/{host}", "--timeout=30s",
                       "--for=jsonpath={.spec.taints[?(@.effect==\"NoExecute\")].key}"
                       "=node.kubernetes.io/unreachable")
    lease = get_json(datacenter, "lease", "-n", "kube-node-lease", host)
    assert lease["spec"]["renewTime"] == renewed, "an isolated host renews nothing"
    assert [g["host"] for g in guests_of(datacenter, "island")] == [host]
    assert get_json(datacenter, "vmi", "island")["status"]["phase"] == "Running"

    # Force the pod away without fencing (what HA must never do): KubeVirt starts a second
    # copy elsewhere, and the ground truth shows both.
    datacenter.kubectl("taint", "node", host, f"{OUT_OF_SERVICE}=nodeshutdown:NoExecute")
    wait_vmi(datacenter, "island", restarted(vmi))
    copies = guests_of(datacenter, "island")
    assert len(copies) == 2 and host in {g["host"] for g in copies}

    # Reconnected, the host stops the guest whose pod is gone and reports Ready again.
    datacenter.kubectl("taint", "node", host, f"{OUT_OF_SERVICE}-")
    datacenter.kubectl("annotate", "node", host, "sim.vdcos.io/network-")
    datacenter.kubectl("wait", f"node/{host}", "--for=condition=Ready", "--timeout=30s")
    assert [g["host"] for g in guests_of(datacenter, "island")] != [host]
    assert len(guests_of(datacenter, "island")) == 1
    datacenter.kubectl("wait", f"node/{host}", "--for=condition=Ready", "--timeout=30s")
    assert get_json(datacenter, "lease", "-n", "kube-node-lease", host)["spec"][
        "renewTime"] != lease["spec"]["renewTime"]


def test_reboot_with_resource_deletion_power_cycles_the_host(
        datacenter: DevCluster, credentials: None) -> None:
    vmi = running_vm(datacenter, "cycled")
    host = vmi["status"]["nodeName"]
    apply(datacenter, far_manifest(host, action="reboot", strategy="ResourceDeletion"))
    datacenter.kubectl("wait", f"far/{host}", "--for=condition=Succeeded", "--timeout=60s",
                       timeout=70)
    # The agent returns once the host is on again; its pods were deleted, not tainted away.
    annotations = get_json(datacenter, "node", host)["metadata"]["annotations"]
    assert annotations["sim.vdcos.io/power"] == "on"
    assert OUT_OF_SERVICE not in taints(datacenter, host)
    assert taints(datacenter, host)[FAR_TAINT]["effect"] == "NoSchedule"
    node_events = get_json(datacenter, "events", "--field-selector",
                           f"involvedObject.kind=Node,involvedObject.name={host}")["items"]
    assert "DeleteResources" in {e["reason"] for e in node_events}
    moved = wait_vmi(datacenter, "cycled", restarted(vmi))
    assert moved["status"]["nodeName"] != host, "the NoSchedule taint keeps it off the host"
    datacenter.kubectl("wait", f"node/{host}", "--for=condition=Ready", "--timeout=30s")
    assert [g["host"] for g in guests_of(datacenter, "cycled")] == [moved["status"]["nodeName"]]
    datacenter.kubectl("delete", "far", host, "--timeout=30s")
    assert FAR_TAINT not in taints(datacenter, host)


def test_guests_api_is_discoverable(datacenter: DevCluster) -> None:
    discovery = json.loads(datacenter.kubectl("get", "--raw", "/apis/sim.vdcos.io/v1").stdout)
    assert [r["name"] for r in discovery["resources"]] == ["guests"]
    assert "sim.vdcos.io/v1" in datacenter.kubectl("api-versions").stdout
    one_host = json.loads(datacenter.kubectl(
        "get", "--raw", "/apis/sim.vdcos.io/v1/guests?host=host-1").stdout)
    assert {g["host"] for g in one_host["items"]} <= {"host-1"}


def test_a_remediation_of_no_node_or_without_parameters_says_why(
        datacenter: DevCluster, credentials: None) -> None:
    apply(datacenter, far_manifest("host-9"))
    datacenter.kubectl("wait", "far/host-9", "--timeout=30s",
                       "--for=jsonpath={.status.conditions[?(@.type==\"Succeeded\")]"
                       ".reason}=RemediationFinishedNodeNotFound")
    assert condition(get_json(datacenter, "far", "host-9"), "Processing")["message"] == \
        "FAR CR name doesn't match a node name"
    assert ("NodeNotFound", "[remediation] CR name doesn't match a node name") in \
        far_events(datacenter, "host-9")
    datacenter.kubectl("delete", "far", "host-9", "--timeout=30s")

    apply(datacenter, """
apiVersion: fence-agents-remediation.medik8s.io/v1alpha1
kind: FenceAgentsRemediation
metadata: {name: host-3}
spec:
  agent: fence_redfish
  sharedparameters: {--ip: 172.19.0.4, --username: admin, --password: x}
""")
    wait_far_event(datacenter, "host-3", "InvalidSpec")
    assert ("InvalidSpec", "[remediation] invalid spec: mandatory parameters are missing") in \
        far_events(datacenter, "host-3")
    far = get_json(datacenter, "far", "host-3")
    assert condition(far, "Processing")["status"] == "True"
    assert condition(far, "FenceAgentActionSucceeded")["status"] == "Unknown"
    assert get_json(datacenter, "node", "host-3")["metadata"]["annotations"].get(
        "sim.vdcos.io/power", "on") == "on"
    datacenter.kubectl("delete", "far", "host-3", "--timeout=30s")


def test_fencing_an_isolated_host_stops_its_guests_before_the_restart(
        datacenter: DevCluster, credentials: None) -> None:
    vmi = running_vm(datacenter, "lonely")
    host = vmi["status"]["nodeName"]
    datacenter.kubectl("annotate", "node", host, "sim.vdcos.io/network=isolated")
    datacenter.kubectl("wait", f"node/{host}", "--for=condition=Ready=Unknown",
                       "--timeout=30s")
    assert [g["host"] for g in guests_of(datacenter, "lonely")] == [host]
    apply(datacenter, far_manifest(host))  # the BMC is out of band: reachable
    datacenter.kubectl("wait", f"far/{host}", "--for=condition=Succeeded", "--timeout=60s",
                       timeout=70)
    assert guests_of(datacenter, "lonely") == [], "fenced: the isolated host runs nothing"
    moved = wait_vmi(datacenter, "lonely", restarted(vmi))
    assert [g["host"] for g in guests_of(datacenter, "lonely")] == [moved["status"]["nodeName"]]
    datacenter.kubectl("delete", "far", host, "--timeout=30s")
    datacenter.kubectl("annotate", "node", host, "sim.vdcos.io/network-",
                       "sim.vdcos.io/power=on", "--overwrite")
    datacenter.kubectl("wait", f"node/{host}", "--for=condition=Ready", "--timeout=30s")
    assert [g["host"] for g in guests_of(datacenter, "lonely")] == [moved["status"]["nodeName"]]


def test_a_restarted_simulation_still_knows_what_runs(tmp_path: Path) -> None:
    args = ("--hosts", "1", *FAST_TIMINGS, "--data-dir", str(tmp_path / "data"))
    first = start_devcluster(tmp_path / "first", *args)
    try:
        wait_for_hosts(first, ("host-1",))
        vmi = running_vm(first, "kept")
        first.kubectl("annotate", "node", "host-1", "sim.vdcos.io/network=isolated")
        before = guests_of(first, "kept")
        assert [(g["host"], g["vmiUID"]) for g in before] == [("host-1", vmi["metadata"]["uid"])]
    finally:
        first.stop()
    second = start_devcluster(tmp_path / "second", *args)
    try:
        second.kubectl("wait", "--for=create", "node/host-1", "--timeout=60s", timeout=70)
        assert guests_of(second, "kept") == before, "the isolated host still runs its guest"
    finally:
        second.stop()
