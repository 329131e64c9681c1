#!/usr/bin/env python3
"""Benchmarks of vdcos on the embedded datacenter. Prints figures; asserts nothing.

  python hack/bench.py apiserver [--objects 10000]   creates/s (memory, --data-dir), watch latency
  python hack/bench.py kubevirt  [--vms 1000]        KubeVirt VMs applied directly to all Running
  python hack/bench.py vms       [--vms 1000]        VDC VirtualMachines to all Ready (operator),
                                                    then as many bare KubeVirt VMs (the ratio)

  python hack/bench.py network [--hosts 50 --namespaces 100]
                                                    a DistributedSwitch to Available on every
                                                    host, a port group to its NAD in every
                                                    namespace

  python hack/bench.py drs [--scales 64x1000,256x10000]
                                                    DRS: plan time, imbalance vs target and
                                                    optimum, moves (hack/bench_drs_plan.py);
                                                    end to end, 8 hosts / 200 VMs skewed:
                                                    seconds and migrations to the target
                                                    (hack/bench_drs_e2e.py)

  python hack/bench.py storage [--clones 50 --image-sizes 2Gi,20Gi]
                                                    50 linked clones of one template to all
                                                    Ready, vs 50 full clones, per image size
                                                    (hack/bench_storage_clones.py)
                              [--vmotion-size-gib 100 --volume-migration-mbps 2000]
                                                    Storage vMotion of a 100 Gi disk of a
                                                    running VM: seconds vs the configured
                                                    copy rate (hack/bench_storage_vmotion.py)

kubevirt, vms and network run `vdcos up` as a user starts it and report per process (API server,
simulation, operator): CPU seconds, RSS, writes per VM. `vms --vms 5000` gives the
operator's RSS at 5,000 VMs (processes.operator.rss_mb).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kubekit.resources import ResourceRef  # noqa: E402
from kubekit.restclient import Kube  # noqa: E402
from tests.harness import DevCluster, start_devcluster  # noqa: E402

CONFIGMAPS = ResourceRef("", "v1", "configmaps")


def _kube(cluster: DevCluster) -> Kube:
    return Kube.from_kubeconfig(cluster.kubeconfig, user_agent="bench", connections=256)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _create_many(kube: Kube, count: int, namespace: str, concurrency: int = 32,
                       prefix: str = "cm") -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            await kube.create(CONFIGMAPS, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": f"{prefix}-{index}", "namespace": namespace,
                             "labels": {"bench": "yes"}},
                "data": {"index": str(index), "payload": "x" * 200}})

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def _watch_latency(kube: Kube, watchers: int, events: int, namespace: str) -> list[float]:
    """Latency from just before a write is sent to its arrival at each watcher (ms)."""
    listed = await kube.list(CONFIGMAPS, namespace, limit="1")
    revision = listed["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    expected = watchers * events
    ready = 0
    all_ready = asyncio.Event()

    async def watch() -> None:
        nonlocal ready
        ready += 1
        if ready == watchers:
            all_ready.set()
        async for event in kube.watch(CONFIGMAPS, revision, namespace=namespace,
                                      timeout_seconds=120):
            name = event["object"]["metadata"].get("name", "")
            if name in sent:
                latencies.append((time.perf_counter() - sent[name]) * 1000)
                if len(latencies) >= expected:
                    done.set()
                    return

    tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
    await all_ready.wait()
    await asyncio.sleep(0.5)  # let the watch requests reach the server before writing
    for index in range(events):
        name = f"lat-{watchers}-{index}"
        sent[name] = time.perf_counter()
        await kube.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": name, "namespace": namespace}})
        await asyncio.sleep(0.02)
    await asyncio.wait_for(done.wait(), 60)
    for task in tasks:
        task.cancel()
    return latencies


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def bench_apiserver(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("memory", "durable"):
            extra = ["--no-sim", "--watch-history", "20000"]
            if mode == "durable":
                extra += ["--data-dir", str(Path(tmp) / "data")]
            cluster = start_devcluster(Path(tmp) / mode, *extra)
            try:
                async with _kube(cluster) as kube:
                    rate = await _create_many(kube, args.objects, "default")
                    results[f"creates_per_second_{mode}"] = round(rate)
                    results[f"server_rss_mb_{mode}_{args.objects}_objects"] = round(
                        _rss_mb(cluster.process.pid))
                    if mode == "memory":
                        for watchers in (1, 10, 100):
                            latencies = await _watch_latency(kube, watchers, 50, "default")
                            results[f"watch_latency_ms_{watchers}_watchers"] = {
                                "p50": round(statistics.median(latencies), 1),
                                "p99": round(_percentile(latencies, 0.99), 1)}
            finally:
                cluster.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="which", required=True)
    api = sub.add_parser("apiserver")
    api.add_argument("--objects", type=int, default=10_000)
    for name in ("kubevirt", "vms"):
        parser_vms = sub.add_parser(name)
        parser_vms.add_argument("--vms", type=int, default=1000)
        parser_vms.add_argument("--timeout", type=float, default=900,
                                help="seconds to wait for all VMs (default 900)")
        parser_vms.add_argument("--idle-seconds", type=float, default=10,
                                help="then count the operator's writes this long (default 10)")
        if name == "vms":
            parser_vms.add_argument("--without-kubevirt", action="store_true",
                                    help="skip the bare KubeVirt run (e.g. for the RSS at 5,000)")
    network = sub.add_parser("network")
    network.add_argument("--hosts", type=int, default=50)
    network.add_argument("--namespaces", type=int, default=100)
    network.add_argument("--nmstate-apply-seconds", type=float, default=1.0,
                         help="time the simulated nmstate takes per host (default 1)")
    network.add_argument("--timeout", type=float, default=300)
    from hack.bench_drs_e2e import add_arguments as add_drs_e2e_arguments
    from hack.bench_drs_plan import add_arguments as add_drs_plan_arguments

    drs = sub.add_parser("drs")
    add_drs_plan_arguments(drs)
    add_drs_e2e_arguments(drs)
    ha = sub.add_parser("ha", help="one host of 8 powered off: detection, fencing, restarts")
    ha.add_argument("--hosts", type=int, default=8)
    ha.add_argument("--vms", type=int, default=200)
    ha.add_argument("--detection-seconds", type=int, default=15)
    ha.add_argument("--timeout", type=float, default=600, help="for all VMs to start")
    ha.add_argument("--restart-timeout", type=float, default=120,
                    help="for the failed host's VMs to run elsewhere (then: not_restarted)")
    from hack.bench_storage_clones import add_arguments as add_clone_arguments
    from hack.bench_storage_vmotion import add_arguments as add_storage_vmotion_arguments

    storage = sub.add_parser("storage", help="template clones and Storage vMotion")
    add_clone_arguments(storage)
    add_storage_vmotion_arguments(storage)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from devcluster.serve import event_loop_runner

    with event_loop_runner() as loop:
        if args.which == "apiserver":
            results = loop.run(bench_apiserver(args))
        elif args.which == "drs":
            from hack.bench_drs_e2e import bench_drs_e2e
            from hack.bench_drs_plan import bench_drs_plan

            results = {"plan": bench_drs_plan(args)}
            if not args.skip_e2e:
                results["end_to_end"] = loop.run(bench_drs_e2e(args))
        elif args.which == "ha":
            from hack.bench_ha import bench_ha

            results = loop.run(bench_ha(args))
        elif args.which == "storage":
            from hack.bench_storage_clones import bench_storage_clones
            from hack.bench_storage_vmotion import run_storage_vmotion

            results = {"clones": loop.run(bench_storage_clones(args)),
                       "storage_vmotion": run_storage_vmotion(args)}
        elif args.which == "network":
            from hack.bench_network import bench_network

            results = loop.run(bench_network(args))
        else:
            from hack.bench_vms import bench_kubevirt, bench_vms

            runner = bench_kubevirt if args.which == "kubevirt" else bench_vms
            results = loop.run(runner(args))
    print(json.dumps({args.which: results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
