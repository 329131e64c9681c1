"""DRS end to end for `hack/bench.py drs` (the cluster part). Figures only.

`vdcos up` with --e2e-hosts hosts (8) and --e2e-vms VDC VirtualMachines (200) in one
FullyAutomated ComputeCluster (threshold 3, intervalSeconds 15, the minimum). Once every VM
is Ready the VMs of the first quarter of the hosts get a heavy load (the
`sim.vdcos.io/cpu-usage` / `memory-usage` annotations metrics.k8s.io reports), and a pass is
asked for. Reported: seconds from the skew to Balanced=True, DRS passes, migrations made, the
imbalance before and after and the target; and the migrations' own durations.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from hack.bench_network import start_up
from kubekit.resources import NAMESPACES, VMIS, ResourceRef
from kubekit.restclient import Kube

CLUSTERS = ResourceRef("vdcos.io", "v1alpha1", "computeclusters", False)
VDC_VMS = ResourceRef("vdcos.io", "v1alpha1", "virtualmachines")
MIGRATIONS = ResourceRef("vdcos.io", "v1alpha1", "virtualmachinemigrations")
CLUSTER = "bench-drs"
NAMESPACE = "bench-drs"
POLL_SECONDS = 0.5
HEAVY_CPU, HEAVY_MEMORY = "1", "4Gi"
#: Seconds to wait for every VM before balancing those that run.
READY_TIMEOUT = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--e2e-hosts", type=int, default=8, help="hosts (default 8)")
    parser.add_argument("--e2e-vms", type=int, default=200, help="VMs (default 200)")
    parser.add_argument("--e2e-timeout", type=float, default=900,
                        help="seconds to wait for the target (default 900)")
    parser.add_argument("--skip-e2e", action="store_true", help="the plan part only")


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Seconds until `await check()` holds (a benchmark may poll; the operator never does)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if await check():
            return time.perf_counter() - started
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"{what} did not happen in {timeout:g}s")


def _condition(obj: dict[str, Any] | None, kind: str) -> str | None:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


async def bench_drs_e2e(args: argparse.Namespace) -> dict[str, Any]:
    hosts, vm_count = args.e2e_hosts, args.e2e_vms
    with tempfile.TemporaryDirectory(prefix="bench-drs-") as tmp:
        up = start_up(Path(tmp), hosts, 1.0)
        try:
            async with Kube.from_kubeconfig(up.kubeconfig, user_agent="bench",
                                            connections=64) as kube:
                return await _run(kube, hosts, vm_count, args.e2e_timeout)
        except Exception:
            print(up.log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            up.stop()


async def _run(kube: Kube, hosts: int, vm_count: int, timeout: float) -> dict[str, Any]:
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": NAMESPACE}})
    await kube.create(CLUSTERS, {
        "apiVersion": "vdcos.io/v1alpha1", "kind": "ComputeCluster",
        "metadata": {"name": CLUSTER},
        "spec": {"hostSelector": {"matchLabels": {"kubernetes.io/os": "linux"}},
                 "drs": {"enabled": True, "automationLevel": "FullyAutomated",
                         "migrationThreshold": 3, "intervalSeconds": 15}}})
    semaphore = asyncio.Semaphore(32)

    async def create_vm(index: int) -> None:
        async with semaphore:
            await kube.create(VDC_VMS, {
                "apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
                "metadata": {"name": f"vm-{index:04d}", "namespace": NAMESPACE},
                "spec": {"clusterName": CLUSTER, "cpu": {"count": 1},
                         "memory": {"size": "1Gi"}}})

    started = time.perf_counter()
    await asyncio.gather(*(create_vm(index) for index in range(vm_count)))

    ready_count = 0

    async def all_ready() -> bool:
        nonlocal ready_count
        vms = (await kube.list(VDC_VMS, NAMESPACE))["items"]
        ready_count = sum(_condition(vm, "Ready") == "True" for vm in vms)
        return ready_count == vm_count

    # Balance the VMs that run, should some not start; the figures say how many did.
    with contextlib.suppress(TimeoutError):
        await _until(all_ready, READY_TIMEOUT, f"{vm_count} VMs Ready")
    ready_seconds = time.perf_counter() - started

    vmis = (await kube.list(VMIS, NAMESPACE))["items"]
    hot_hosts = {f"host-{index}" for index in range(1, max(1, hosts // 4) + 1)}
    heavy = [vmi for vmi in vmis if vmi["status"].get("nodeName") in hot_hosts]

    async def load(vmi: dict[str, Any]) -> None:
        async with semaphore:
            await kube.patch(VMIS, NAMESPACE, vmi["metadata"]["name"], {"metadata": {
                "annotations": {"sim.vdcos.io/cpu-usage": HEAVY_CPU,
                                "sim.vdcos.io/memory-usage": HEAVY_MEMORY}}})

    await asyncio.gather(*(load(vmi) for vmi in heavy))
    skewed = time.perf_counter()
    token = str(int(time.time() * 1000))
    await kube.patch(CLUSTERS, None, CLUSTER, {"metadata": {"annotations": {
        "vdcos.io/drs-pass-requested": token}}})

    passes: list[str] = []
    first: dict[str, Any] = {}

    async def balanced() -> bool:
        cluster = await kube.get(CLUSTERS, None, CLUSTER) or {}
        drs = (cluster.get("status") or {}).get("drs") or {}
        if drs.get("lastRequest") != token:
            return False
        if not first:
            first.update(drs)
        stamp = str(drs.get("lastPassTime"))
        if not passes or passes[-1] != stamp:
            passes.append(stamp)
        return _condition(cluster, "Balanced") == "True"

    await _until(balanced, timeout, "Balanced=True")
    balance_seconds = time.perf_counter() - skewed
    final = ((await kube.get(CLUSTERS, None, CLUSTER) or {}).get("status") or {}).get("drs", {})
    migrations = (await kube.list(MIGRATIONS, NAMESPACE))["items"]
    durations = sorted(
        d for d in (_seconds(m["status"].get("startTime"), m["status"].get("completionTime"))
                    for m in migrations) if d is not None)
    return {
        "hosts": hosts,
        "vms": vm_count,
        "heavy_vms": len(heavy),
        "heavy_load": {"cpu": HEAVY_CPU, "memory": HEAVY_MEMORY},
        "vms_ready": ready_count,
        "seconds_to_ready": round(ready_seconds, 1),
        "seconds_to_target": round(balance_seconds, 1),
        "passes": len(passes),
        "migrations": len(migrations),
        "migrations_succeeded": sum(m["status"].get("phase") == "Succeeded" for m in migrations),
        "imbalance_before": first.get("imbalance"),
        "imbalance_after": final.get("imbalance"),
        "target_imbalance": final.get("targetImbalance"),
        "migration_seconds_median": durations[len(durations) // 2] if durations else None,
    }
