"""VM benchmarks for hack/bench.py: figures only, no assertions.

bench_kubevirt: KubeVirt VMs applied straight to the embedded datacenter -> all Running
                (what the simulated KubeVirt costs, without the operator).
bench_vms:      VDC VirtualMachines -> all Ready through the operator: time to converge,
                operator API writes per VM, writes on a no-op resync, operator memory.

The datacenter (API server and simulated hosts, one process) runs as `python -m devcluster`;
the operator runs in this process so its write counter and memory can be read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from controllers.common.apply_files import apply_documents, wait_for_crds_established
from controllers.common.kube import (
    KUBEVIRT_VMS,
    VDC_VIRTUAL_MACHINES,
    KubeClient,
    ResourceRef,
    discover_credentials,
)
from controllers.common.logging import configure_logging
from tests.harness import DevCluster, start_devcluster

NAMESPACES = ResourceRef("", "v1", "namespaces", namespaced=False)
NAMESPACE = "bench"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _start_datacenter(workdir: Path, vms: int) -> DevCluster:
    hosts = max(3, vms // 150 + 1)
    return start_devcluster(
        workdir, "--hosts", str(hosts), "--host-pods", "250", "--host-cpu", "256",
        "--host-memory", "1Ti", "--watch-history", str(max(20_000, vms * 20)),
        "--import-seconds", "0.5", timeout=120,
    )


async def _create_all(kube: KubeClient, resource: ResourceRef, objects: list[dict[str, Any]],
                      concurrency: int = 32) -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for obj in objects:
        queue.put_nowait(obj)

    async def worker() -> None:
        while not queue.empty():
            await kube.create(resource, queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _wait_for(kube: KubeClient, resource: ResourceRef, done: Callable[[dict[str, Any]],
                    bool], count: int, timeout: float) -> float:
    """Seconds until `count` objects satisfy `done` (a benchmark may poll; the operator never)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        items = await kube.list(resource, NAMESPACE)
        if sum(1 for item in items if done(item)) >= count:
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    raise TimeoutError(f"not all {count} {resource.plural} converged in {timeout}s")


def _ready(vm: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in vm.get("status", {}).get("conditions") or [])


async def bench_kubevirt(args: argparse.Namespace) -> dict[str, Any]:
    count = int(args.vms)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = _start_datacenter(Path(tmp), count)
        kube = KubeClient(discover_credentials(cluster.kubeconfig), connections=64)
        try:
            await kube.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
            vms = [{
                "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                "metadata": {"name": f"kv-{i}", "namespace": NAMESPACE},
                "spec": {"runStrategy": "Always", "template": {"spec": {
                    "domain": {"cpu": {"sockets": 1}, "memory": {"guest": "256Mi"},
                               "devices": {}}}}},
            } for i in range(count)]
            started = time.perf_counter()
            await _create_all(kube, KUBEVIRT_VMS, vms)
            created = time.perf_counter() - started
            await _wait_for(kube, KUBEVIRT_VMS,
                            lambda vm: vm.get("status", {}).get("printableStatus") == "Running",
                            count, timeout=600)
            return {"vms": count, "create_seconds": round(created, 1),
                    "all_running_seconds": round(time.perf_counter() - started, 1),
                    "server_rss_mb": round(_server_rss(cluster))}
        finally:
            await kube.close()
            cluster.stop()


def _server_rss(cluster: DevCluster) -> float:
    for line in Path(f"/proc/{cluster.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _run_operator(kubeconfig: Path) -> tuple[asyncio.Task[None], asyncio.Event]:
    import kopf

    import controllers.operator  # noqa: F401 - registers the handlers
    from controllers.common import settings

    settings.CONFIG.kubeconfig = kubeconfig
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(clusterwide=True, ready_flag=ready,
                                             stop_flag=stop))
    await asyncio.wait_for(ready.wait(), 120)
    return task, stop


async def _stop_operator(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 60)


async def _quiet(expected_reconciles: int, timeout: float = 300) -> None:
    """Until the VM controller has looked at every VM and has nothing left to do."""
    from controllers.virtualmachine import handlers

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        controller = handlers.CONTROLLER
        if (controller is not None and controller.queue.reconciles >= expected_reconciles
                and controller.queue.pending() == 0):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the operator did not settle")


async def bench_vms(args: argparse.Namespace) -> dict[str, Any]:
    from controllers import operator
    from controllers.crds import generate_all

    configure_logging()  # to stderr: stdout carries the figures
    count = int(args.vms)
    results: dict[str, Any] = {"vms": count}
    with tempfile.TemporaryDirectory() as tmp:
        cluster = _start_datacenter(Path(tmp), count)
        client = KubeClient(discover_credentials(cluster.kubeconfig), field_manager="bench",
                            connections=64)
        try:
            crds = [yaml.safe_load(text) for text in generate_all().values()]
            await apply_documents(client, crds)
            await wait_for_crds_established(client, [c["metadata"]["name"] for c in crds])
            await client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
            rss_before = _rss_mb()
            task, stop = await _run_operator(cluster.kubeconfig)
            assert operator.KUBE is not None

            vms = [{
                "apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
                "metadata": {"name": f"vm-{i}", "namespace": NAMESPACE},
                "spec": {"cpu": {"count": 1}, "memory": {"size": "256Mi"}},
            } for i in range(count)]
            started = time.perf_counter()
            await _create_all(client, VDC_VIRTUAL_MACHINES, vms)
            results["create_seconds"] = round(time.perf_counter() - started, 1)
            await _wait_for(client, VDC_VIRTUAL_MACHINES, _ready, count, timeout=900)
            results["all_ready_seconds"] = round(time.perf_counter() - started, 1)
            await _quiet(count)
            by_resource = operator.KUBE.writes.by_resource()
            writes = sum(n for what, n in by_resource.items() if "priorityclasses" not in what)
            results["operator_writes"] = writes
            results["operator_writes_per_vm"] = round(writes / count, 2)
            results["operator_writes_by_resource"] = by_resource
            results["operator_rss_mb"] = round(_rss_mb())
            results["operator_rss_growth_mb"] = round(_rss_mb() - rss_before)
            results["server_rss_mb"] = round(_server_rss(cluster))
            await _stop_operator(task, stop)

            # A restarted operator resyncs every VM and, all being converged, writes nothing.
            task, stop = await _run_operator(cluster.kubeconfig)
            assert operator.KUBE is not None
            startup_writes = operator.KUBE.writes.total
            resync_started = time.perf_counter()
            await _quiet(count)
            results["resync_seconds"] = round(time.perf_counter() - resync_started, 1)
            results["resync_writes"] = operator.KUBE.writes.total - startup_writes
            await _stop_operator(task, stop)
        finally:
            await client.close()
            cluster.stop()
    return results
