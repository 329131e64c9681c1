"""vNetwork benchmark for hack/bench.py, through `vdcos up` as a user starts it. Figures only.

bench_network: a ComputeCluster of N hosts (default 50) and a DistributedSwitch on it ->
               the switch Ready (Available on every host: nmstate enacted its policy on each,
               maxUnavailable 50% as upstream, --nmstate-apply-seconds per host); then M
               namespaces (default 100) and a DistributedPortGroup admitting them -> its
               NetworkAttachmentDefinition in all M. Reports both times and the operator's
               writes in each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hack.bench_vms import WRITE_COUNTS_PATH, UpProcess, start_up_with, writes_by_process
from kubekit.resources import NADS, NAMESPACES, NODES, ResourceRef
from kubekit.restclient import Kube

CLUSTERS = ResourceRef("vdcos.io", "v1alpha1", "computeclusters", False)
SWITCHES = ResourceRef("vdcos.io", "v1alpha1", "distributedswitches", False)
PORT_GROUPS = ResourceRef("vdcos.io", "v1alpha1", "distributedportgroups", False)
CLUSTER = "bench"
CLUSTER_LABEL = f"vdcos.io/cluster.{CLUSTER}"
NAMESPACE_LABEL = "bench.vdcos.io/network"
POLL_SECONDS = 0.1


def start_up(workdir: Path, hosts: int, apply_seconds: float, timeout: float = 180) -> UpProcess:
    return start_up_with(workdir, hosts, ["--nmstate-apply-seconds", str(apply_seconds)], timeout)


async def _until(check: Callable[[], Any], timeout: float, what: str) -> float:
    """Seconds until `await check()` is true (a benchmark may poll; the operator never)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if await check():
            return time.perf_counter() - started
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"{what} did not happen in {timeout}s")


def _ready(obj: dict[str, Any] | None) -> bool:
    return obj is not None and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or [])


async def bench_network(args: argparse.Namespace) -> dict[str, Any]:
    hosts, namespaces = int(args.hosts), int(args.namespaces)
    results: dict[str, Any] = {
        "hosts": hosts, "namespaces": namespaces,
        "nmstate_apply_seconds_per_host": args.nmstate_apply_seconds,
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start",
    }
    with tempfile.TemporaryDirectory() as tmp:
        up = start_up(Path(tmp), hosts, args.nmstate_apply_seconds)
        try:
            async with Kube.from_kubeconfig(up.kubeconfig, user_agent="bench",
                                            connections=64) as kube:
                async def labelled_hosts() -> bool:
                    nodes = (await kube.list(NODES)).get("items", [])
                    return sum(CLUSTER_LABEL in (n["metadata"].get("labels") or {})
                               for n in nodes) >= hosts

                await kube.create(CLUSTERS, {
                    "apiVersion": "vdcos.io/v1alpha1", "kind": "ComputeCluster",
                    "metadata": {"name": CLUSTER}, "spec": {"hostSelector": {}}})
                results["cluster_labels_hosts_seconds"] = round(
                    await _until(labelled_hosts, args.timeout, "the cluster label"), 1)

                before = await kube.request("GET", WRITE_COUNTS_PATH)
                await kube.create(SWITCHES, {
                    "apiVersion": "vdcos.io/v1alpha1", "kind": "DistributedSwitch",
                    "metadata": {"name": "dvs-bench"},
                    "spec": {"clusterName": CLUSTER, "uplinks": ["eth1", "eth2"], "mtu": 9000}})

                async def switch_available() -> bool:
                    switch = await kube.get(SWITCHES, None, "dvs-bench")
                    return _ready(switch) and (switch or {}).get("status", {}).get(
                        "availableHosts") == hosts

                results[f"switch_available_on_{hosts}_hosts_seconds"] = round(
                    await _until(switch_available, args.timeout, "the switch"), 1)
                after_switch = await kube.request("GET", WRITE_COUNTS_PATH)
                results["switch_operator_writes"] = writes_by_process(
                    before, after_switch).get("operator", {})

                for index in range(namespaces):
                    await kube.create(NAMESPACES, {
                        "apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": f"net-{index}", "labels": {NAMESPACE_LABEL: "yes"}}})
                before = await kube.request("GET", WRITE_COUNTS_PATH)
                created = time.perf_counter()
                await kube.create(PORT_GROUPS, {
                    "apiVersion": "vdcos.io/v1alpha1", "kind": "DistributedPortGroup",
                    "metadata": {"name": "vlan100"},
                    "spec": {"switchName": "dvs-bench", "vlan": {"id": 100},
                             "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "yes"}}}})

                async def nads_everywhere() -> bool:
                    nads: list[dict[str, Any]] = (await kube.list(NADS, None)).get("items", [])
                    return sum(1 for n in nads if n["metadata"]["name"] == "vlan100") >= namespaces

                await _until(nads_everywhere, args.timeout, "the NADs")
                results[f"port_group_nads_in_{namespaces}_namespaces_seconds"] = round(
                    time.perf_counter() - created, 1)

                async def port_group_ready() -> bool:
                    port_group = await kube.get(PORT_GROUPS, None, "vlan100")
                    return _ready(port_group) and len(
                        (port_group or {}).get("status", {}).get("namespaces") or []) == namespaces

                await _until(port_group_ready, args.timeout, "the port group")
                results[f"port_group_ready_in_{namespaces}_namespaces_seconds"] = round(
                    time.perf_counter() - created, 1)
                after = await kube.request("GET", WRITE_COUNTS_PATH)
                results["port_group_operator_writes"] = writes_by_process(
                    before, after).get("operator", {})
        finally:
            up.stop()
    return results
