"""VM benchmarks for hack/bench.py, through `vdcos up` as a user starts it. Figures only.

bench_kubevirt: bare KubeVirt VMs applied through the API -> all Running (what the simulated
                KubeVirt costs; the operator runs beside it, as `vdcos up` starts it).
bench_vms:      VDC VirtualMachines -> all Ready through the operator; then the writes of a
                second operator started on the converged datacenter (a resync; aim: none).

Both start `vdcos up` (a subprocess, a temporary kubeconfig), apply N VMs through the API,
and print the time to all Ready/Running, the API writes per VM of the operator and of the
simulation apart (the API server counts writes by User-Agent at /debug/devcluster/writes),
and CPU seconds and RSS of each process (from /proc/<pid>).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubekit.resources import NAMESPACES, VMS, ResourceRef
from kubekit.restclient import Kube

VDC_VMS = ResourceRef("vdcos.io", "v1alpha1", "virtualmachines")
NAMESPACE = "bench"
UP_READY = "Ctrl-C stops the datacenter."
WRITE_COUNTS_PATH = "/debug/devcluster/writes"
# Which process a User-Agent belongs to: the operator logs in twice (its client, and kopf's).
PROCESS_OF_AGENT = {"vdcos-operator": "operator", "kopf": "operator",
                    "devcluster-sim": "simulation", "metrics-server": "simulation",
                    "vdcos-up": "vdcos up", "bench": "bench"}
CHILD_NAMES = (("-m devcluster.sim", "simulation"), ("-m devcluster --no-sim", "apiserver"),
               ("controllers.cli run", "operator"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class UpProcess:
    process: subprocess.Popen[bytes]
    kubeconfig: Path
    log_path: Path

    def pids(self) -> dict[str, int]:
        """name -> pid of `vdcos up` and of each of its children."""
        pid = self.process.pid
        found = {"vdcos up": pid}
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            name = next((n for marker, n in CHILD_NAMES if marker in command), command)
            found[name] = int(child)
        return found

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def process_figures(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) and RSS now and at peak (MB) of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"cpu_seconds": round(cpu, 1),
            "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024),
            "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024)}


def start_vdcos_up(workdir: Path, vms: int, timeout: float = 180) -> UpProcess:
    return start_up_with(workdir, max(3, vms // 150 + 1), [
        "--host-pods", "250", "--host-cpu", "256", "--host-memory", "1Ti",
        "--watch-history", str(max(20_000, vms * 20)), "--import-seconds", "0.5"], timeout)


def start_up_with(workdir: Path, hosts: int, flags: list[str], timeout: float = 180) -> UpProcess:
    """`vdcos up` as a user runs it, with `hosts` hosts and these flags; returns once the
    operator runs."""
    kubeconfig = workdir / "kubeconfig"
    log_path = workdir / "vdcos-up.log"
    vdcos = Path(sys.executable).parent / "vdcos"
    args = [str(vdcos), "up", "--kubeconfig", str(kubeconfig), "--hosts", str(hosts), *flags]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    up = UpProcess(process, kubeconfig, log_path)
    deadline = time.monotonic() + timeout
    while UP_READY not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            up.stop()
            raise RuntimeError(f"vdcos up did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)  # a child process's log: nothing to watch
    return up


async def _create_all(kube: Kube, resource: ResourceRef, objects: list[dict[str, Any]],
                      concurrency: int = 32) -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for obj in objects:
        queue.put_nowait(obj)

    async def worker() -> None:
        while not queue.empty():
            await kube.create(resource, queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _wait_for(kube: Kube, resource: ResourceRef, done: Callable[[dict[str, Any]], bool],
                    count: int, timeout: float) -> None:
    """Until `count` objects satisfy `done` (a benchmark may poll; the operator never)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        items = (await kube.list(resource, NAMESPACE)).get("items", [])
        if sum(1 for item in items if done(item)) >= count:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"not all {count} {resource.plural} converged in {timeout}s")


def _ready(vm: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in vm.get("status", {}).get("conditions") or [])


def _running(vm: dict[str, Any]) -> bool:
    return bool(vm.get("status", {}).get("printableStatus") == "Running")


def writes_by_process(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
                      ) -> dict[str, dict[str, int]]:
    """Writes made between two snapshots, by process, then resource (and `total`)."""
    found: dict[str, dict[str, int]] = {}
    for agent, counts in after.items():
        process = PROCESS_OF_AGENT.get(agent, agent)
        of_process = found.setdefault(process, {})
        for resource, count in counts.items():
            delta = count - before.get(agent, {}).get(resource, 0)
            if delta:
                of_process[resource] = of_process.get(resource, 0) + delta
    return {process: counts for process, counts in found.items() if counts}


async def _resync(kube: Kube, kubeconfig: Path, settle_seconds: float = 5,
                  timeout: float = 300) -> dict[str, Any]:
    """A second operator started on the converged datacenter reconciles every VM again (what
    a restarted operator does): its writes, until the operator writes nothing for
    `settle_seconds`. The first operator, idle, writes nothing (measured just before)."""
    from vdcos_up.command import free_port, wait_for_liveness

    before = await kube.request("GET", WRITE_COUNTS_PATH)
    started = time.perf_counter()
    port = free_port()
    second = subprocess.Popen([sys.executable, "-m", "controllers.cli", "run", "--kubeconfig",
                               str(kubeconfig), "--standalone", "--liveness",
                               f"http://127.0.0.1:{port}/healthz"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.wait_for(wait_for_liveness(port), 120)  # it runs: now count
        last, still_since = -1, time.perf_counter()
        while time.perf_counter() - started < timeout:
            await asyncio.sleep(1)
            now = await kube.request("GET", WRITE_COUNTS_PATH)
            writes = writes_by_process(before, now).get("operator", {})
            total = sum(n for what, n in writes.items()
                        if what != "total" and "priorityclasses" not in what)
            if total != last:
                last, still_since = total, time.perf_counter()
            elif time.perf_counter() - still_since >= settle_seconds and \
                    time.perf_counter() - started > 2 * settle_seconds:
                break
        if second.poll() is not None:
            raise RuntimeError(f"the second operator exited with code {second.returncode}")
        return {"resync_writes": last, "resync_writes_by_resource": writes,
                "resync_settled_seconds": round(still_since - started, 1)}
    finally:
        second.terminate()
        second.wait(60)


async def _measure(args: argparse.Namespace, resource: ResourceRef, objects: list[dict[str, Any]],
                   done: Callable[[dict[str, Any]], bool], label: str,
                   resync: bool = False) -> dict[str, Any]:
    count = len(objects)
    results: dict[str, Any] = {
        "vms": count,
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start",
    }
    with tempfile.TemporaryDirectory() as tmp:
        up = start_vdcos_up(Path(tmp), count)
        try:
            pids = up.pids()
            async with Kube.from_kubeconfig(up.kubeconfig, user_agent="bench",
                                            connections=64) as kube:
                await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": NAMESPACE}})
                idle = {name: process_figures(pid) for name, pid in pids.items()}
                before = await kube.request("GET", WRITE_COUNTS_PATH)
                started = time.perf_counter()
                await _create_all(kube, resource, objects)
                results["create_seconds"] = round(time.perf_counter() - started, 1)
                await _wait_for(kube, resource, done, count, timeout=args.timeout)
                results[f"all_{label}_seconds"] = round(time.perf_counter() - started, 1)
                after = await kube.request("GET", WRITE_COUNTS_PATH)
                writes = writes_by_process(before, after)
                for process in ("operator", "simulation"):
                    total = writes.get(process, {}).get("total", 0)
                    results[f"{process}_writes_per_vm"] = round(total / count, 2)
                results["writes_by_process"] = writes
                busy = {name: process_figures(pid) for name, pid in pids.items()}
                results["processes"] = {
                    name: {"cpu_seconds_while_converging": round(
                        busy[name]["cpu_seconds"] - idle[name]["cpu_seconds"], 1),
                           "rss_mb_idle": idle[name]["rss_mb"], "rss_mb": busy[name]["rss_mb"],
                           "peak_rss_mb": busy[name]["peak_rss_mb"]}
                    for name in pids}
                # The operator with nothing to do: writes in the next seconds (aim: none).
                await asyncio.sleep(args.idle_seconds)
                quiet = await kube.request("GET", WRITE_COUNTS_PATH)
                results[f"operator_writes_in_{args.idle_seconds:g}s_after"] = writes_by_process(
                    after, quiet).get("operator", {}).get("total", 0)
                if resync:
                    results.update(await _resync(kube, up.kubeconfig))
        finally:
            up.stop()
    return results


async def bench_kubevirt(args: argparse.Namespace) -> dict[str, Any]:
    vms = [{
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
        "metadata": {"name": f"kv-{i}", "namespace": NAMESPACE},
        "spec": {"runStrategy": "Always", "template": {"spec": {
            "domain": {"cpu": {"sockets": 1}, "memory": {"guest": "256Mi"}, "devices": {}}}}},
    } for i in range(int(args.vms))]
    return await _measure(args, VMS, vms, _running, "running")


async def bench_vms(args: argparse.Namespace) -> dict[str, Any]:
    vms = [{
        "apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
        "metadata": {"name": f"vm-{i}", "namespace": NAMESPACE},
        "spec": {"cpu": {"count": 1}, "memory": {"size": "256Mi"}},
    } for i in range(int(args.vms))]
    results = await _measure(args, VDC_VMS, vms, _ready, "ready", resync=True)
    if args.without_kubevirt:
        return results
    # The same count of bare KubeVirt VMs on an identical datacenter, in the same run: what
    # the operator adds on top of what KubeVirt costs (aim: at most 1.2x).
    bare = await bench_kubevirt(args)
    results["kubevirt_all_running_seconds"] = bare["all_running_seconds"]
    results["vdc_to_kubevirt_time_ratio"] = round(
        results["all_ready_seconds"] / bare["all_running_seconds"], 2)
    return results
