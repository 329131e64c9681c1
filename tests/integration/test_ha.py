"""HA end to end with kubectl: a host powered off is declared failed, fenced, and its VMs
restarted on the other hosts tier by tier (Highest first); Disabled VMs stay down; the host
powered on again is unfenced and nothing runs twice."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import devcluster_with_vdc_crds, get_json, start_vdcos_up, wait
from tests.integration.test_operator_restart import start_operator

pytestmark = [pytest.mark.kubectl]

FAILED = "host-1"
PRIORITIES = {"vm-highest": "Highest", "vm-high": "High", "vm-medium": "Medium",
              "vm-low": "Low", "vm-off": "Disabled"}
CLUSTER = """
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata:
  name: ha
spec:
  hostSelector:
    matchLabels:
      pool: a
  ha:
    enabled: true
    failureDetectionSeconds: 5
    admissionControl:
      policy: Disabled
    fencing:
      method: OutOfServiceTaint
"""


def vm_yaml(name: str, priority: str) -> str:
    return (f"apiVersion: vdcos.io/v1alpha1\nkind: VirtualMachine\nmetadata:\n  name: {name}\n"
            f"spec:\n  clusterName: ha\n  restartPriority: {priority}\n  cpu:\n    count: 1\n"
            f"  memory:\n    size: 256Mi\n")


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = start_vdcos_up(
        tmp_path_factory.mktemp("vdcos-ha"),
        "--hosts", "6", "--node-status-seconds", "1", "--import-seconds", "0.5",
    )
    # Three clusters of two hosts: failover, admission control, fencing an isolated host.
    for hosts, pool in ((("host-1", "host-2"), "a"), (("host-3", "host-4"), "guarded"),
                        (("host-5", "host-6"), "far")):
        for host in hosts:
            cluster.kubectl("label", "node", host, f"pool={pool}")
    yield cluster
    cluster.stop()


def poll(check: Any, what: str, timeout: float = 180) -> Any:
    """Polls kubectl until `check()` returns something truthy (HA acts on a clock: a dead host
    sends no events a watch could wait for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def vmis(cluster: DevCluster, namespace: str) -> dict[str, dict[str, Any]]:
    return {item["metadata"]["name"]: item
            for item in get_json(cluster, "vmi", "-n", namespace)["items"]}


def events(cluster: DevCluster, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    listed = get_json(cluster, "events", "-n", namespace,
                      "--field-selector", f"involvedObject.kind={kind},involvedObject.name={name}")
    # eventTime has microseconds; creationTimestamp only seconds (two Events in one second).
    return sorted(listed["items"], key=lambda event: event.get("eventTime")
                  or event["metadata"]["creationTimestamp"])


def test_powered_off_host_fails_over_by_priority(datacenter: DevCluster) -> None:
    kubectl = datacenter.kubectl
    kubectl("create", "namespace", "apps")
    kubectl("apply", "-f", "-", stdin=CLUSTER)
    # Every VM on host-1: the other host is cordoned while the VMs start.
    others = ("host-2",)
    for host in others:
        kubectl("cordon", host)
    kubectl("apply", "-n", "apps", "-f", "-",
            stdin="---\n".join(vm_yaml(name, priority) for name, priority in PRIORITIES.items()))
    for name in PRIORITIES:
        wait(datacenter, "--for=create", f"vmi/{name}", "-n", "apps", timeout=90)
        wait(datacenter, "--for=condition=Ready", f"vmi/{name}", "-n", "apps", timeout=90)
    assert {vmi["status"]["nodeName"] for vmi in vmis(datacenter, "apps").values()} == {FAILED}
    for host in others:
        kubectl("uncordon", host)
    before = {name: vmi["metadata"]["uid"] for name, vmi in vmis(datacenter, "apps").items()}
    poll(lambda: get_json(datacenter, "cc", "ha").get("status", {}).get("ha", {}).get(
        "protectedVirtualMachines") == 4, "4 protected VMs")

    kubectl("annotate", "node", FAILED, "sim.vdcos.io/power=off")

    def restarted() -> dict[str, dict[str, Any]] | None:
        current = vmis(datacenter, "apps")
        moved = {name: vmi for name, vmi in current.items()
                 if vmi["metadata"]["uid"] != before[name]
                 and vmi.get("status", {}).get("phase") == "Running"}
        return current if len(moved) == 4 else None

    current = poll(restarted, "4 VMs running elsewhere", timeout=120)
    for name in ("vm-highest", "vm-high", "vm-medium", "vm-low"):
        assert current[name]["status"]["nodeName"] != FAILED
    # Tier by tier: each tier's VMI is created no earlier than the tier above's.
    created = [datetime.fromisoformat(current[name]["metadata"]["creationTimestamp"]
                                      .replace("Z", "+00:00"))
               for name in ("vm-highest", "vm-high", "vm-medium", "vm-low")]
    assert created == sorted(created)
    # The Disabled VM is not restarted, and says so.
    assert current["vm-off"]["metadata"]["uid"] == before["vm-off"]
    off = get_json(datacenter, "vdcvm", "vm-off", "-n", "apps")
    ready = next(c for c in off["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "HostFailed", ready
    assert FAILED in ready["message"] and "Disabled" in ready["message"]
    # The cluster tells the story: Degraded naming the host; failed, then fenced.
    cluster = get_json(datacenter, "cc", "ha")
    degraded = next(c for c in cluster["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and FAILED in degraded["message"]
    failover = cluster["status"]["ha"]["lastFailover"]
    assert failover["host"] == FAILED and failover["fencedAt"] >= failover["declaredFailedAt"]
    taints = get_json(datacenter, "node", FAILED)["spec"].get("taints") or []
    assert any(t["key"] == "node.kubernetes.io/out-of-service" for t in taints)
    reasons = [event["reason"] for event in events(datacenter, "default", "ComputeCluster", "ha")]
    assert reasons.index("HostFailed") < reasons.index("HostFenced"), reasons
    restarted_events = events(datacenter, "apps", "VirtualMachine", "vm-high")
    assert any(event["reason"] == "RestartedByHA"
               and f"after {FAILED} failed, priority High" in event["message"]
               for event in restarted_events), restarted_events

    # Back on: unfenced, it rejoins; each VM runs once.
    kubectl("annotate", "node", FAILED, "sim.vdcos.io/power=on", "--overwrite")
    poll(lambda: not get_json(datacenter, "cc", "ha")["status"]["ha"].get("failedHosts"),
         "the host to rejoin", timeout=60)
    taints = get_json(datacenter, "node", FAILED)["spec"].get("taints") or []
    assert not any(t["key"] == "node.kubernetes.io/out-of-service" for t in taints)
    wait(datacenter, "--for=condition=Ready", "vdcvm/vm-off", "-n", "apps", timeout=90)
    pods = get_json(datacenter, "pods", "-n", "apps", "-l", "kubevirt.io=virt-launcher")["items"]
    running = [pod["metadata"]["labels"].get("vm.kubevirt.io/name") for pod in pods
               if pod["status"].get("phase") == "Running"
               and not pod["metadata"].get("deletionTimestamp")]
    assert sorted(running) == sorted(PRIORITIES), json.dumps(running)


GUARDED = """
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata:
  name: guarded
spec:
  hostSelector:
    matchLabels:
      pool: guarded
  ha:
    enabled: true
    hostFailuresToTolerate: 1
"""


def big_vm(name: str, power: str = "PoweredOn") -> str:
    return (f"apiVersion: vdcos.io/v1alpha1\nkind: VirtualMachine\nmetadata:\n  name: {name}\n"
            f"spec:\n  clusterName: guarded\n  powerState: {power}\n  cpu:\n    count: 1\n"
            f"  memory:\n    size: 100Gi\n")


def test_admission_control_refuses_a_power_on_until_room_returns(datacenter: DevCluster) -> None:
    kubectl = datacenter.kubectl
    kubectl("create", "namespace", "big")
    kubectl("apply", "-f", "-", stdin=GUARDED)
    wait(datacenter, "--for=condition=Ready", "cc/guarded")
    # Two hosts of 128Gi, one failure tolerated: 128Gi of VMs fit, two of 100Gi do not.
    kubectl("apply", "-n", "big", "-f", "-", stdin=big_vm("big-1"))
    wait(datacenter, "--for=create", "vmi/big-1", "-n", "big", timeout=90)
    wait(datacenter, "--for=condition=Ready", "vmi/big-1", "-n", "big", timeout=90)
    poll(lambda: get_json(datacenter, "cc", "guarded").get("status", {}).get("ha", {}).get(
        "protectedVirtualMachines") == 1, "big-1 protected")
    kubectl("apply", "-n", "big", "-f", "-", stdin=big_vm("big-2"))
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type=='Ready')].reason}"
         "=InsufficientFailoverCapacity", "vdcvm/big-2", "-n", "big")
    refused = get_json(datacenter, "vdcvm", "big-2", "-n", "big")
    ready = next(c for c in refused["status"]["conditions"] if c["type"] == "Ready")
    assert "hostFailuresToTolerate" in ready["message"], ready
    assert kubectl("get", "vmi", "big-2", "-n", "big", check=False).returncode != 0
    assert any(event["reason"] == "InsufficientFailoverCapacity"
               for event in events(datacenter, "big", "VirtualMachine", "big-2"))
    # Room returns when big-1 powers off: big-2 starts by itself.
    kubectl("apply", "-n", "big", "-f", "-", stdin=big_vm("big-1", "PoweredOff"))
    wait(datacenter, "--for=create", "vmi/big-2", "-n", "big", timeout=90)
    wait(datacenter, "--for=condition=Ready", "vmi/big-2", "-n", "big", timeout=90)


FAR_CLUSTER = """
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata:
  name: far
spec:
  hostSelector:
    matchLabels:
      pool: far
  ha:
    enabled: true
    failureDetectionSeconds: 5
    admissionControl:
      policy: Disabled
    fencing:
      method: FenceAgentsRemediation
      namespace: default
      fenceAgent:
        agent: fence_ipmilan
        sharedParameters:
          --ip: "{{.NodeName}}-bmc"
          --username: admin
          --password: calvin
          --lanplus: ""
          --action: "off"
"""


def guests(cluster: DevCluster) -> list[dict[str, Any]]:
    answer = json.loads(cluster.kubectl("get", "--raw", "/apis/sim.vdcos.io/v1/guests").stdout)
    items: list[dict[str, Any]] = answer["items"]
    return items


def test_an_isolated_host_is_fenced_before_its_vms_run_elsewhere(datacenter: DevCluster) -> None:
    kubectl = datacenter.kubectl
    kubectl("create", "namespace", "iso")
    kubectl("apply", "-f", "-", stdin=FAR_CLUSTER)
    kubectl("cordon", "host-6")
    names = [f"iso-{i}" for i in range(3)]
    kubectl("apply", "-n", "iso", "-f", "-", stdin="---\n".join(
        vm_yaml(name, "High").replace("clusterName: ha", "clusterName: far") for name in names))
    for name in names:
        wait(datacenter, "--for=create", f"vmi/{name}", "-n", "iso", timeout=90)
        wait(datacenter, "--for=condition=Ready", f"vmi/{name}", "-n", "iso", timeout=90)
    kubectl("uncordon", "host-6")

    kubectl("annotate", "node", "host-5", "sim.vdcos.io/network=isolated")
    # Sampled throughout: never two copies of a VM, and none elsewhere before the fencing.
    deadline = time.monotonic() + 120
    fenced_seen = False
    while True:
        running = [g for g in guests(datacenter) if g["namespace"] == "iso"]
        copies = [g["name"] for g in running]
        assert len(copies) == len(set(copies)), running
        elsewhere = {g["name"] for g in running if g["host"] != "host-5"}
        if not fenced_seen:
            far = kubectl("get", "far", "host-5", "-n", "default", "-o", "json", check=False)
            fenced_seen = far.returncode == 0 and any(
                c["type"] == "Succeeded" and c["status"] == "True"
                for c in json.loads(far.stdout).get("status", {}).get("conditions") or [])
        if elsewhere and not fenced_seen:
            fenced_at = get_json(datacenter, "cc", "far")["status"]["ha"]["lastFailover"].get(
                "fencedAt")
            assert fenced_at, f"{elsewhere} started elsewhere before host-5 was fenced"
            fenced_seen = True
        if elsewhere == set(names):
            break
        assert time.monotonic() < deadline, f"not all restarted: {running}"
        time.sleep(0.3)
    reasons = [event["reason"] for event in events(datacenter, "default", "ComputeCluster", "far")]
    assert reasons.index("HostFailed") < reasons.index("HostFenced"), reasons
    # The Event follows once the restarted VM is Ready (orchestration PoweredOn), a moment
    # after its guest runs.
    for name in names:
        poll(lambda name=name: any(
            event["reason"] == "RestartedByHA"
            for event in events(datacenter, "iso", "VirtualMachine", name)),
            f"the RestartedByHA Event of {name}", timeout=30)


RESTART_CLUSTER = """
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata:
  name: ha
spec:
  hostSelector: {}
  ha:
    enabled: true
    failureDetectionSeconds: 5
    admissionControl:
      policy: Disabled
    orchestration:
      postReadyDelaySeconds: 8
    fencing:
      method: OutOfServiceTaint
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevCluster]:
    cluster = devcluster_with_vdc_crds(tmp_path, "--hosts", "3", "--node-status-seconds", "1",
                               "--import-seconds", "0.5")
    yield cluster
    cluster.stop()


def test_an_operator_restarted_mid_failover_finishes_it(server: DevCluster) -> None:
    kubectl = server.kubectl
    first = start_operator(server, "operator-1")
    second = None
    try:
        kubectl("create", "namespace", "apps")
        kubectl("apply", "-f", "-", stdin=RESTART_CLUSTER)
        for host in ("host-2", "host-3"):
            kubectl("cordon", host)
        vms = {"first-1": "High", "first-2": "High", "later-1": "Low", "later-2": "Low"}
        kubectl("apply", "-n", "apps", "-f", "-",
                stdin="---\n".join(vm_yaml(name, p) for name, p in vms.items()))
        for name in vms:
            wait(server, "--for=create", f"vmi/{name}", "-n", "apps", timeout=90)
            wait(server, "--for=condition=Ready", f"vmi/{name}", "-n", "apps", timeout=90)
        for host in ("host-2", "host-3"):
            kubectl("uncordon", host)
        kubectl("annotate", "node", FAILED, "sim.vdcos.io/power=off")
        # The High tier is back and the Low one still held (postReadyDelaySeconds): kill -9.
        poll(lambda: all(vmi.get("status", {}).get("nodeName") not in (None, FAILED)
                         for name, vmi in vmis(server, "apps").items() if name.startswith("first")),
             "the High tier restarted", timeout=180)
        later = get_json(server, "vdcvm", "later-1", "-n", "apps")
        assert later["metadata"]["annotations"]["ha.vdcos.io/restart"] == "Held"
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_operator(server, "operator-2")
        current = poll(lambda: (lambda found: found if all(
            found.get(name, {}).get("status", {}).get("phase") == "Running"
            and found[name]["status"].get("nodeName") != FAILED for name in vms) else None)(
                vmis(server, "apps")), "the Low tier restarted by the new operator", timeout=180)
        # The failover ends (the hold's annotation goes) once the Low tier is ready, which may
        # be a moment after its VMIs run: the new operator must still be running for that.
        for name in vms:
            poll(lambda name=name: not get_json(server, "vdcvm", name, "-n", "apps")[
                "metadata"].get("annotations", {}).get("ha.vdcos.io/restart"),
                 f"the failover of {name} finished", timeout=120)
    finally:
        first.kill()
        if second is not None:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    created = {name: vmi["metadata"]["creationTimestamp"] for name, vmi in current.items()}
    assert max(created["first-1"], created["first-2"]) <= min(created["later-1"],
                                                              created["later-2"])
    names = [g["name"] for g in guests(server) if g["namespace"] == "apps"]
    assert sorted(names) == sorted(vms)

