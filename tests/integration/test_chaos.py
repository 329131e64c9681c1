"""The operator under chaos: 200 VDC VMs converge while 30% of the operator's writes are
answered 409 Conflict, every watch is cut after 20 s, and the operator is killed (SIGKILL) 10
times at random moments; VMs are changed, deleted and added while that goes on.

In the end every VM is Ready with what was asked last, each has one KubeVirt VM and one
DataVolume per disk, and nothing is left of the deleted ones. The faults are devcluster's
(`--fault-*`, devcluster/apiserver/faults.py); the moments are drawn from a fixed seed, so a
failure can be run again. Figures (time to converge, kills, 409s served, watch cuts) are
printed (`pytest -s`) and kept in the test's report (`record_property`).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import DevCluster, start_devcluster
from tests.integration.conftest import get_json, wait
from tests.integration.faults import get_faults
from tests.integration.test_operator_restart import start_operator

pytestmark = [pytest.mark.kubectl, pytest.mark.slow, pytest.mark.chaos]

SEED = 13
VMS = 200
KILLS = 10
CONFLICT_SHARE = 0.3
WATCH_CUT_SECONDS = 20
NAMESPACE = "chaos"
CONVERGE_SECONDS = 420
STARTED = "Started vdcos operator"  # controllers/operator.py, once its start-up handler ran
#: Kills that land while the operator starts (logging in, listing), not once it works.
KILLED_STARTING = {4, 9}

RESIZED = [f"vm-{i}" for i in range(0, 10)]  # cpu 1 -> 2 while the operator is down
POWERED_OFF = [f"vm-{i}" for i in range(10, 20)]  # while a new operator starts
DELETED = [f"vm-{i}" for i in range(190, VMS)]  # mid-chaos
ADDED = [f"vm-{i}" for i in range(VMS, VMS + 10)]  # mid-chaos


def vm_document(name: str) -> str:
    return (f"apiVersion: vdcos.io/v1alpha1\nkind: VirtualMachine\nmetadata:\n  name: {name}\n"
            "spec:\n  cpu:\n    count: 1\n  memory:\n    size: 128Mi\n"
            "  disks:\n    - name: root\n      size: 1Gi\n      storagePolicyName: thin\n")


THIN_POLICY = """apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: thin
spec:
  storageClassName: standard
  accessMode: ReadWriteOnce
  default: true
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevCluster]:
    cluster = start_devcluster(
        tmp_path, "--hosts", "4", "--host-cpu", "64", "--host-memory", "256Gi",
        "--import-seconds", "0.5", "--vmi-start-seconds", "0.2",
        "--fault-conflict-share", str(CONFLICT_SHARE), "--fault-user-agent", "vdcos-operator",
        # Every watch: the operator's (kopf's) and the simulated KubeVirt's informers.
        "--fault-watch-cut-seconds", str(WATCH_CUT_SECONDS), "--fault-seed", str(SEED),
        timeout=120)
    crds = subprocess.run([sys.executable, "-m", "controllers.cli", "crds"], check=True,
                          capture_output=True, text=True).stdout
    cluster.kubectl("apply", "-f", "-", stdin=crds)
    wait(cluster, "--for=condition=Established", "crd/virtualmachines.vdcos.io")
    cluster.kubectl("apply", "-f", "-", stdin=THIN_POLICY)
    cluster.kubectl("create", "namespace", NAMESPACE)
    yield cluster
    cluster.stop()


def apply_vms(cluster: DevCluster, names: list[str]) -> None:
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-",
                    stdin="---\n".join(vm_document(name) for name in names))


def patch_vms(cluster: DevCluster, names: list[str], patch: str) -> None:
    for name in names:
        cluster.kubectl("patch", "vdcvm", name, "-n", NAMESPACE, "--type", "merge", "-p", patch)


def wait_until_started(cluster: DevCluster, name: str, timeout: float = 120) -> None:
    """Until the operator's log says it started (its own output: nothing to watch)."""
    log = cluster.workdir / f"{name}.log"
    deadline = time.monotonic() + timeout
    while STARTED not in log.read_text():
        assert time.monotonic() < deadline, f"{name} did not start:\n{log.read_text()}"
        time.sleep(0.1)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind]
    return found[0] if found else {}


def test_vms_converge_through_conflicts_watch_cuts_and_kills(
    server: DevCluster, record_property: Callable[[str, object], None],
) -> None:
    chance = random.Random(SEED)
    def replace_some() -> None:
        server.kubectl("delete", "vdcvm", "-n", NAMESPACE, "--wait=false", *DELETED)
        apply_vms(server, ADDED)

    # The mid-chaos changes, each made after the kill of this number.
    changes: dict[int, Callable[[], None]] = {
        2: lambda: patch_vms(server, RESIZED, '{"spec":{"cpu":{"count":2}}}'),
        5: lambda: patch_vms(server, POWERED_OFF, '{"spec":{"powerState":"PoweredOff"}}'),
        7: replace_some,
    }
    started = time.monotonic()
    operator = start_operator(server, "operator-0")
    apply_vms(server, [f"vm-{i}" for i in range(VMS)])
    for kill in range(1, KILLS + 1):
        # A random moment of this operator's life: while it starts, or while it works.
        if kill in KILLED_STARTING:
            time.sleep(chance.uniform(0.3, 2.0))
        else:
            wait_until_started(server, f"operator-{kill - 1}")
            time.sleep(chance.uniform(0.0, 6.0))
        operator.send_signal(signal.SIGKILL)
        operator.wait()
        if kill in changes:
            changes[kill]()
        operator = start_operator(server, f"operator-{kill}")
    chaos_seconds = time.monotonic() - started
    try:
        wait(server, "--for=condition=Ready", "vdcvm", "--all", "-n", NAMESPACE,
             timeout=CONVERGE_SECONDS)
        for name in DELETED:
            wait(server, "--for=delete", f"vm/{name}", "-n", NAMESPACE, timeout=60)
        converged_seconds = time.monotonic() - started
    finally:
        operator.send_signal(signal.SIGTERM)
        operator.wait(timeout=30)

    faults = get_faults(server)
    figures = {"vms": VMS, "kills": KILLS, "chaos_seconds": round(chaos_seconds, 1),
               "converged_seconds": round(converged_seconds, 1),
               "conflicts_served": faults["injected"].get("409", 0),
               "watch_cuts": faults["watchCuts"]}
    for key, value in figures.items():
        record_property(key, value)
    print(f"\nchaos figures: {figures}")
    assert figures["conflicts_served"] > 0 and figures["watch_cuts"] > 0, figures

    wanted = sorted(set(f"vm-{i}" for i in range(VMS)) - set(DELETED) | set(ADDED))
    vdc_vms = {vm["metadata"]["name"]: vm for vm in get_json(server, "vdcvm", "-n",
                                                             NAMESPACE)["items"]}
    assert sorted(vdc_vms) == wanted
    for name, vm in vdc_vms.items():
        ready = condition(vm, "Ready")
        assert ready.get("status") == "True", (name, vm.get("status"))
        assert ready.get("observedGeneration") == vm["metadata"]["generation"], (name, ready)

    # One KubeVirt VM per VDC VM, owned by it; none for a deleted one.
    kubevirt_vms = {vm["metadata"]["name"]: vm for vm in get_json(server, "vm", "-n",
                                                                 NAMESPACE)["items"]}
    assert sorted(kubevirt_vms) == wanted
    for name, vm in kubevirt_vms.items():
        owners = vm["metadata"]["ownerReferences"]
        assert [(o["kind"], o["name"], o["uid"]) for o in owners] == [
            ("VirtualMachine", name, vdc_vms[name]["metadata"]["uid"])], (name, owners)

    # One DataVolume (and one PVC) per disk, owned by its KubeVirt VM; nothing else.
    data_volumes = get_json(server, "dv", "-n", NAMESPACE)["items"]
    assert Counter(dv["metadata"]["name"] for dv in data_volumes) == Counter(
        f"{name}-root" for name in wanted)
    for dv in data_volumes:
        owner = dv["metadata"]["name"].removesuffix("-root")
        assert [o["uid"] for o in dv["metadata"]["ownerReferences"]] == [
            kubevirt_vms[owner]["metadata"]["uid"]], dv["metadata"]
    claims = [pvc["metadata"]["name"] for pvc in get_json(server, "pvc", "-n",
                                                          NAMESPACE)["items"]
              if pvc["metadata"].get("deletionTimestamp") is None]
    assert sorted(claims) == sorted(f"{name}-root" for name in wanted)

    # The changes made mid-chaos are what runs now.
    for name in RESIZED:
        cpu = kubevirt_vms[name]["spec"]["template"]["spec"]["domain"]["cpu"]
        assert cpu["sockets"] * cpu.get("cores", 1) * cpu.get("threads", 1) == 2, (name, cpu)
    running = {vmi["metadata"]["name"] for vmi in get_json(server, "vmi", "-n",
                                                           NAMESPACE)["items"]}
    for name in POWERED_OFF:
        assert kubevirt_vms[name]["spec"]["runStrategy"] == "Halted", name
        assert vdc_vms[name]["status"]["powerState"] == "PoweredOff", name
    assert running == set(wanted) - set(POWERED_OFF)
    launchers = Counter(
        pod["metadata"]["labels"].get("vm.kubevirt.io/name")
        for pod in get_json(server, "pods", "-n", NAMESPACE)["items"]
        if pod["status"].get("phase") == "Running")
    assert launchers == Counter(running), launchers
