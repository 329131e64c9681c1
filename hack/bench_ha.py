"""HA benchmark for hack/bench.py (`hack/bench.py ha`): one host of an HA cluster powered off.

8 hosts, 200 VMs in three priority tiers (High, Medium, Low) spread over them, FenceAgents-
Remediation fencing (the simulation's fence_ipmilan, action off), the simulation's default
timings (Lease renewed every 10 s, 0.5 s from a launcher pod to a Running VMI). Printed:
seconds from the failed host's last heartbeat to declared failed, to fenced, and to all of its
protected VMs Running elsewhere, per tier; and the share of restarts that kept priority order
(a VM's new instance created no earlier than every instance of the tiers above). Figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubekit.resources import NAMESPACES, NODES, VMIS, ResourceRef
from kubekit.restclient import Kube

VDC_VMS = ResourceRef("vdcos.io", "v1alpha1", "virtualmachines")
CLUSTERS = ResourceRef("vdcos.io", "v1alpha1", "computeclusters", False)
NAMESPACE = "bench"
UP_READY = "Ctrl-C stops the datacenter."
TIERS = ("High", "Medium", "Low")
FAILED = "host-1"


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _start_up(workdir: Path, hosts: int) -> tuple[subprocess.Popen[bytes], Path, Path]:
    kubeconfig, log_path = workdir / "kubeconfig", workdir / "vdcos-up.log"
    vdcos = Path(sys.executable).parent / "vdcos"
    args = [str(vdcos), "up", "--kubeconfig", str(kubeconfig), "--hosts", str(hosts),
            "--import-seconds", "0.5"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 180
    while UP_READY not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"vdcos up did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)  # a child process's log: nothing to watch
    return process, kubeconfig, log_path


def _cluster(detection: int) -> dict[str, Any]:
    return {
        "apiVersion": "vdcos.io/v1alpha1", "kind": "ComputeCluster",
        "metadata": {"name": "bench"},
        "spec": {"hostSelector": {}, "ha": {
            "enabled": True, "failureDetectionSeconds": detection,
            "admissionControl": {"policy": "Disabled"},
            "fencing": {"method": "FenceAgentsRemediation", "namespace": "default",
                        "fenceAgent": {"agent": "fence_ipmilan", "sharedParameters": {
                            "--ip": "{{.NodeName}}-bmc", "--username": "admin",
                            "--password": "calvin", "--lanplus": "", "--action": "off"}}},
        }},
    }


async def _until(check: Any, timeout: float, what: str) -> Any:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise TimeoutError(what)


async def bench_ha(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "hosts": args.hosts, "vms": args.vms,
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start",
    }
    with tempfile.TemporaryDirectory() as tmp:
        process, kubeconfig, _ = _start_up(Path(tmp), args.hosts)
        try:
            async with Kube.from_kubeconfig(kubeconfig, user_agent="bench",
                                            connections=64) as kube:
                await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": NAMESPACE}})
                await kube.create(CLUSTERS, _cluster(args.detection_seconds))
                priority = {f"vm-{i}": TIERS[i % len(TIERS)] for i in range(args.vms)}
                queue = list(priority.items())

                async def create() -> None:
                    while queue:
                        name, tier = queue.pop()
                        await kube.create(VDC_VMS, {
                            "apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
                            "metadata": {"name": name, "namespace": NAMESPACE},
                            "spec": {"clusterName": "bench", "restartPriority": tier,
                                     "cpu": {"count": 1}, "memory": {"size": "256Mi"}}})

                await asyncio.gather(*(create() for _ in range(16)))

                async def all_running() -> list[dict[str, Any]] | None:
                    items = (await kube.list(VMIS, NAMESPACE)).get("items", [])
                    running = [i for i in items if i.get("status", {}).get("phase") == "Running"]
                    return running if len(running) == args.vms else None

                vmis = await _until(all_running, args.timeout, "all VMs running")
                on_failed = {v["metadata"]["name"]: v["metadata"]["uid"] for v in vmis
                             if v["status"].get("nodeName") == FAILED}
                results["vms_on_failed_host"] = len(on_failed)
                results["vms_on_failed_host_by_tier"] = {
                    tier: sum(1 for n in on_failed if priority[n] == tier) for tier in TIERS}
                await kube.patch(NODES, None, FAILED, {"metadata": {"annotations": {
                    "sim.vdcos.io/power": "off"}}})
                first_seen: dict[str, float] = {}
                created: dict[str, datetime] = {}

                async def restarted() -> bool:
                    items = (await kube.list(VMIS, NAMESPACE)).get("items", [])
                    for item in items:
                        name = item["metadata"]["name"]
                        if (name in on_failed and name not in first_seen
                                and item["metadata"]["uid"] != on_failed[name]
                                and item.get("status", {}).get("phase") == "Running"
                                and item["status"].get("nodeName") != FAILED):
                            first_seen[name] = time.time()
                            created[name] = _time(item["metadata"]["creationTimestamp"]) \
                                or datetime.now(UTC)
                    return len(first_seen) == len(on_failed)

                try:
                    await _until(restarted, args.restart_timeout,
                                 "all VMs of the failed host restarted")
                except TimeoutError:
                    results["not_restarted"] = sorted(set(on_failed) - set(first_seen))
                cluster = await kube.get(CLUSTERS, None, "bench") or {}
                failover = cluster.get("status", {}).get("ha", {}).get("lastFailover") or {}
                heartbeat = _time(failover.get("lastHeartbeat"))
                declared = _time(failover.get("declaredFailedAt"))
                fenced = _time(failover.get("fencedAt"))
                if heartbeat and declared and fenced:
                    results["heartbeat_to_declared_failed_seconds"] = round(
                        (declared - heartbeat).total_seconds(), 1)
                    results["heartbeat_to_fenced_seconds"] = round(
                        (fenced - heartbeat).total_seconds(), 1)
                    results["fenced_to_all_running_seconds_by_tier"] = {
                        tier: round(max((first_seen[n] for n in first_seen
                                         if priority[n] == tier), default=fenced.timestamp())
                                    - fenced.timestamp(), 1) for tier in TIERS}
                    results["heartbeat_to_all_running_seconds"] = round(
                        max(first_seen.values(), default=0.0) - heartbeat.timestamp(), 1)
                rank = {tier: index for index, tier in enumerate(TIERS)}
                kept = sum(1 for name in created if all(
                    created[name] >= created[other] for other in created
                    if rank[priority[other]] < rank[priority[name]]))
                results["priority_order_kept_percent"] = round(100 * kept / max(1, len(created)))
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    return results
