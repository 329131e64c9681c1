"""`vdcos up` started as a user starts it (a subprocess), driven with kubectl."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import DevCluster, start_devcluster

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLES = REPO / "examples"


def start_vdcos_up(workdir: Path, *extra: str, timeout: float = 90) -> DevCluster:
    """Runs `vdcos up` and waits until the operator reports it runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    log_path = workdir / "vdcos-up.log"
    args = [sys.executable, "-m", "controllers.cli", "up", "--kubeconfig", str(kubeconfig),
            "--port", "0", *extra]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    cluster = DevCluster(workdir, kubeconfig, process, args, None, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vdcos up exited early:\n{cluster.log()}")
        if "Operator running" in cluster.log():
            return cluster
        time.sleep(0.1)  # waiting for a just-spawned process to print; nothing to watch yet
    cluster.stop(kill=True)
    raise RuntimeError(f"vdcos up did not start in {timeout}s:\n{cluster.log()}")


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One embedded datacenter with the operator per test module."""
    cluster = start_vdcos_up(
        tmp_path_factory.mktemp("vdcos-up"),
        "--hosts", "3", "--node-grace-seconds", "3", "--node-status-seconds", "1",
        "--import-seconds", "0.5", "--migration-seconds", "0.5",
    )
    yield cluster
    cluster.stop()


_namespaces = itertools.count()


@pytest.fixture
def namespace(datacenter: DevCluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test, so tests of one module do not see each other's VMs."""
    name = f"t{next(_namespaces)}-{request.node.name.lower().replace('_', '-')[:40]}".strip("-")
    datacenter.kubectl("create", "namespace", name)
    return name


def get_json(cluster: DevCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def apply_yaml(cluster: DevCluster, text: str, namespace: str | None = None,
               check: bool = True) -> subprocess.CompletedProcess[str]:
    extra = ["-n", namespace] if namespace else []
    return cluster.kubectl("apply", *extra, "-f", "-", stdin=text, check=check)


def wait(cluster: DevCluster, *args: str, timeout: int = 60) -> None:
    cluster.kubectl("wait", *args, f"--timeout={timeout}s", timeout=timeout + 10)


def devcluster_with_vdc_crds(tmp_path: Path, *flags: str) -> DevCluster:
    """`python -m devcluster` with these flags and the operator's CRDs installed (the
    operator itself is started by the test: its restarts are what such tests are about)."""
    cluster = start_devcluster(tmp_path, *flags)
    crds = subprocess.run([sys.executable, "-m", "controllers.cli", "crds"], check=True,
                          capture_output=True, text=True).stdout
    cluster.kubectl("apply", "-f", "-", stdin=crds)
    wait(cluster, "--for=condition=Established", "crd/virtualmachines.vdcos.io")
    return cluster
