"""Template clone benchmark for `hack/bench.py storage`, through `vdcos up`. Figures only.

bench_storage_clones: for each image size (default 2Gi and 20Gi), a VirtualMachineTemplate
with an image of that size on the shared storage (CSI clones), then N VMs (default 50) made
from it as linked clones -> time until all are Ready; then N full clones (cloneMode Full,
CDI's host-assisted copy at --clone-copy-mbps) -> time until all are Ready. Linked clones
should take the same time whatever the image size; full clones grow with it. Also reports
which clone strategy each VM's status shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hack.bench_vms import WRITE_COUNTS_PATH, start_up_with, writes_by_process
from kubekit.resources import NAMESPACES, ResourceRef
from kubekit.restclient import Kube

POLICIES = ResourceRef("vdcos.io", "v1alpha1", "storagepolicies", False)
TEMPLATES = ResourceRef("vdcos.io", "v1alpha1", "virtualmachinetemplates")
VMS = ResourceRef("vdcos.io", "v1alpha1", "virtualmachines")
POLL_SECONDS = 0.5
POLICY = "bench-shared"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clones", type=int, default=50, help="VMs per run (default 50)")
    parser.add_argument("--image-sizes", default="2Gi,20Gi",
                        help="template image sizes, comma-separated (default 2Gi,20Gi)")
    parser.add_argument("--clone-copy-mbps", type=float, default=200.0,
                        help="the simulation's host-assisted copy rate (default 200 MB/s)")
    parser.add_argument("--clone-csi-seconds", type=float, default=3.0,
                        help="the simulation's CSI clone time (default 3 s)")
    parser.add_argument("--clone-hosts", type=int, default=4)
    parser.add_argument("--clone-timeout", type=float, default=900)


def _ready(obj: dict[str, Any] | None) -> bool:
    return obj is not None and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or [])


async def _until_all_ready(kube: Kube, resource: ResourceRef, namespace: str, count: int,
                           timeout: float) -> tuple[float, list[dict[str, Any]]]:
    """Seconds until `count` objects in the namespace are Ready (a benchmark may poll)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        items: list[dict[str, Any]] = (await kube.list(resource, namespace)).get("items", [])
        if sum(_ready(item) for item in items) >= count:
            return time.perf_counter() - started, items
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"{count} {resource.plural} in {namespace} not Ready in {timeout}s")


async def _clone_run(kube: Kube, namespace: str, template: str, count: int, mode: str,
                     timeout: float) -> dict[str, Any]:
    before = await kube.request("GET", WRITE_COUNTS_PATH)
    started = time.perf_counter()
    for index in range(count):
        await kube.create(VMS, {
            "apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
            "metadata": {"name": f"{mode.lower()}-{index}", "namespace": namespace},
            "spec": {"templateName": template, "cloneMode": mode}}, )
    created = time.perf_counter() - started
    seconds, vms = await _until_all_ready(kube, VMS, namespace, count, timeout)
    after = await kube.request("GET", WRITE_COUNTS_PATH)
    strategies = Counter(str((vm.get("status") or {}).get("cloneStrategy")) for vm in vms)
    return {
        "vms": count,
        "all_ready_seconds": round(created + seconds, 1),
        "create_seconds": round(created, 1),
        "clone_strategies": dict(strategies),
        "operator_writes": writes_by_process(before, after).get("operator", {}).get("total"),
    }


async def bench_storage_clones(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [size.strip() for size in str(args.image_sizes).split(",") if size.strip()]
    results: dict[str, Any] = {
        "clones": args.clones, "clone_copy_mbps": args.clone_copy_mbps,
        "clone_csi_seconds": args.clone_csi_seconds,
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start",
    }
    flags = ["--clone-copy-mbps", str(args.clone_copy_mbps),
             "--clone-csi-seconds", str(args.clone_csi_seconds)]
    with tempfile.TemporaryDirectory() as tmp:
        up = start_up_with(Path(tmp), args.clone_hosts, flags)
        try:
            async with Kube.from_kubeconfig(up.kubeconfig, user_agent="bench",
                                            connections=64) as kube:
                await kube.create(POLICIES, {
                    "apiVersion": "vdcos.io/v1alpha1", "kind": "StoragePolicy",
                    "metadata": {"name": POLICY}, "spec": {"storageClassName": "shared"}})
                for size in sizes:
                    run: dict[str, Any] = {}
                    for mode in ("Linked", "Full"):
                        namespace = f"clones-{size.lower()}-{mode.lower()}"
                        await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": namespace}})
                        await kube.create(TEMPLATES, {
                            "apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachineTemplate",
                            "metadata": {"name": "golden", "namespace": namespace},
                            "spec": {"source": {"http": {"url": "https://example.com/os.img"}},
                                     "size": size, "storagePolicyName": POLICY,
                                     "vmDefaults": {"cpu": {"count": 1},
                                                    "memory": {"size": "512Mi"}}}})
                        template_seconds, _ = await _until_all_ready(
                            kube, TEMPLATES, namespace, 1, args.clone_timeout)
                        run["template_ready_seconds"] = round(template_seconds, 1)
                        run[mode.lower()] = await _clone_run(
                            kube, namespace, "golden", args.clones, mode, args.clone_timeout)
                    results[f"image_{size}"] = run
        finally:
            up.stop()
    return results
