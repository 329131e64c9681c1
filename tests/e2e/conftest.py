"""The e2e target: the cluster `VDCOS_E2E_KUBECONFIG` names (kind with real KubeVirt in CI),
or, when unset, an embedded datacenter started like `vdcos up`."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import start_vdcos_up

#: Seconds a scenario step may take: real KubeVirt under emulation is much slower.
TIMEOUT = int(os.environ.get("VDCOS_E2E_TIMEOUT", "90"))


@dataclass
class Target:
    kubeconfig: Path
    workdir: Path

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float = TIMEOUT + 30) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "HOME": str(self.workdir / "home")}
        result = subprocess.run(["kubectl", "--cache-dir", str(self.workdir / "cache"), *args],
                                input=stdin, capture_output=True, text=True, env=env,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}:\n{result.stdout}{result.stderr}")
        return result

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def wait(self, *args: str) -> None:
        self.kubectl("wait", *args, f"--timeout={TIMEOUT}s")


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp("e2e")
    configured = os.environ.get("VDCOS_E2E_KUBECONFIG")
    if configured:
        yield Target(Path(configured), workdir)
        return
    cluster = start_vdcos_up(workdir / "datacenter", "--hosts", "3", "--node-grace-seconds",
                             "3", "--node-status-seconds", "1")
    try:
        yield Target(cluster.kubeconfig, workdir)
    finally:
        cluster.stop()


_count = itertools.count()


@pytest.fixture
def namespace(target: Target) -> Iterator[str]:
    name = f"e2e-{os.getpid()}-{next(_count)}"
    target.kubectl("create", "namespace", name)
    yield name
    target.kubectl("delete", "namespace", name, "--wait=false", check=False)
