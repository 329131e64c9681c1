"""The operator killed while VMs converge: restarted, it loses nothing and duplicates nothing.

Here the operator runs as its own process (`vdcos run`) against `python -m devcluster`,
as it runs in a cluster against kube-apiserver.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import devcluster_with_vdc_crds, get_json, wait

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

VMS = 30


def start_operator(cluster: DevCluster, name: str) -> subprocess.Popen[bytes]:
    log = open(cluster.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        [sys.executable, "-m", "controllers.cli", "run", "--kubeconfig", str(cluster.kubeconfig)],
        stdout=log, stderr=subprocess.STDOUT, cwd=cluster.workdir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevCluster]:
    cluster = devcluster_with_vdc_crds(tmp_path, "--hosts", "3", "--node-grace-seconds", "3",
                               "--node-status-seconds", "1", "--import-seconds", "0.5")
    yield cluster
    cluster.stop()


def test_operator_killed_while_converging(server: DevCluster) -> None:
    server.kubectl("create", "namespace", "fleet")
    documents = [
        f"apiVersion: vdcos.io/v1alpha1\nkind: VirtualMachine\nmetadata:\n  name: vm-{i}\n"
        f"spec:\n  cpu:\n    count: 1\n  memory:\n    size: 256Mi\n"
        for i in range(VMS)
    ]
    first = start_operator(server, "operator-1")
    try:
        server.kubectl("apply", "-n", "fleet", "-f", "-", stdin="---\n".join(documents))
        # Kill -9 as soon as the operator has begun creating KubeVirt VMs.
        wait(server, "--for=create", "vm/vm-0", "-n", "fleet")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    second = start_operator(server, "operator-2")
    try:
        wait(server, "--for=condition=Ready", "vdcvm", "--all", "-n", "fleet", timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    kubevirt_vms = get_json(server, "vm", "-n", "fleet")["items"]
    assert sorted(vm["metadata"]["name"] for vm in kubevirt_vms) == sorted(
        f"vm-{i}" for i in range(VMS))
    for vm in kubevirt_vms:
        assert len(vm["metadata"]["ownerReferences"]) == 1
    vmis = get_json(server, "vmi", "-n", "fleet")["items"]
    assert len(vmis) == VMS
    launchers = [p for p in get_json(server, "pods", "-n", "fleet")["items"]
                 if p["status"].get("phase") == "Running"]
    assert len(launchers) == VMS
    created = Counter(
        e["involvedObject"]["name"] for e in get_json(server, "events", "-n", "fleet")["items"]
        if e["reason"] == "Created" and e["involvedObject"].get("apiVersion", "").startswith(
            "vdcos.io"))
    assert all(count <= 1 for count in created.values()), created
