"""`vdcos up` as a user runs it: three processes, examples Ready, Ctrl-C stops all, a crash
of one child is reported and stops the rest."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import DevCluster

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent.parent
VDCOS = Path(sys.executable).parent / "vdcos"  # the console script pip installed


@dataclass
class Up:
    cluster: DevCluster

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.cluster.process

    def children(self) -> dict[int, str]:
        """pid -> command line of each child process of `vdcos up`."""
        pid = self.process.pid
        found = {}
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                found[int(child)] = cmdline.read().replace(b"\0", b" ").decode()
        return found

    def wait_for_output(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.cluster.log():
            if self.process.poll() is not None:
                raise AssertionError(f"vdcos up exited:\n{self.cluster.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in {timeout}s:\n{self.cluster.log()}")
            time.sleep(0.2)  # reading a child's log file: nothing to watch


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def start_up(workdir: Path, *extra: str) -> Up:
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    log_path = workdir / "vdcos-up.log"
    args = [str(VDCOS), "up", "--kubeconfig", str(kubeconfig), "--hosts", "3", *extra]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT,
                                   cwd=workdir, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return Up(DevCluster(workdir, kubeconfig, process, args, None, log_path))


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    started = start_up(tmp_path_factory.mktemp("vdcos-up"), "--apply", str(REPO / "examples"))
    yield started
    started.cluster.stop(kill=True)


def test_three_processes_and_the_examples_ready(up: Up) -> None:
    up.wait_for_output("All 4 VMs are Ready")
    commands = sorted(up.children().values())
    assert len(commands) == 3, commands
    assert any("-m devcluster --no-sim" in c for c in commands)
    assert any("-m devcluster.sim --kubeconfig" in c for c in commands)
    assert any("controllers.cli run --kubeconfig" in c for c in commands)
    up.cluster.kubectl("wait", "--for=condition=Ready", "vdcvm", "--all", "--timeout=30s")
    log = up.cluster.log()
    assert re.search(r"VMs ready [0-3]/4", log)  # the progress was shown
    assert log.index("All 4 VMs are Ready") < log.index("In another terminal")
    assert "kubectl apply -f examples/" not in log  # --apply did it
    assert "OS signals are ignored" not in log  # kopf runs in its process's main thread


def test_the_printed_hot_add_works_live(up: Up) -> None:
    up.wait_for_output("Ctrl-C stops the datacenter.")
    hint = next(line for line in up.cluster.log().splitlines() if "# hot-add CPU" in line)
    patch = json.loads(hint.split("-p '", 1)[1].split("'", 1)[0])
    name = hint.split("kubectl patch vdcvm ", 1)[1].split()[0]
    uid = json.loads(up.cluster.kubectl("get", "vmi", name, "-o", "json").stdout)[
        "metadata"]["uid"]
    up.cluster.kubectl("patch", "vdcvm", name, "--type", "merge", "-p", json.dumps(patch))
    sockets = patch["spec"]["cpu"]["count"]
    up.cluster.kubectl("wait", f"--for=jsonpath={{.status.currentCPUTopology.sockets}}={sockets}",
                       f"vmi/{name}", "--timeout=60s", timeout=70)
    vmi = json.loads(up.cluster.kubectl("get", "vmi", name, "-o", "json").stdout)
    assert vmi["metadata"]["uid"] == uid  # the same guest: hot-added, not restarted


def test_ctrl_c_stops_all_three(up: Up) -> None:
    up.wait_for_output("Ctrl-C stops the datacenter.")
    children = up.children()
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=60) == 0
    assert [pid for pid in children if alive(pid)] == []


def test_a_crashed_simulation_is_reported_and_stops_the_rest(tmp_path: Path) -> None:
    started = start_up(tmp_path)
    try:
        started.wait_for_output("Ctrl-C stops the datacenter.")
        children = started.children()
        sim = next(pid for pid, command in children.items() if "devcluster.sim" in command)
        os.kill(sim, signal.SIGKILL)
        assert started.process.wait(timeout=60) != 0
        log = started.cluster.log()
        assert f"simulation (pid {sim}) was killed by signal 9" in log
        assert "Its last output:" in log
        assert [pid for pid in children if alive(pid)] == []
    finally:
        started.cluster.stop(kill=True)


def test_python_m_devcluster_runs_two_processes_and_sigterm_stops_both(tmp_path: Path) -> None:
    from tests.harness import start_devcluster

    cluster = start_devcluster(tmp_path, "--hosts", "1")
    try:
        up = Up(cluster)
        children = up.children()
        commands = sorted(children.values())
        assert len(commands) == 2, commands
        assert any("-m devcluster --no-sim --virt-api" in c for c in commands)
        assert any("-m devcluster.sim --kubeconfig" in c for c in commands)
        cluster.kubectl("wait", "--for=condition=Ready", "node/host-1", "--timeout=60s")
        cluster.process.send_signal(signal.SIGTERM)
        assert cluster.process.wait(timeout=60) == 0
        assert [pid for pid in children if alive(pid)] == []
    finally:
        cluster.stop(kill=True)
