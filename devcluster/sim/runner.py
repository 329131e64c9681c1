"""Starts the simulated hosts and the emulated KubeVirt, CDI, Multus, nmstate and medik8s
Fence Agents Remediation against an API server, and the ground-truth guests API."""

from __future__ import annotations

import argparse

from .runtime import Component, SimRuntime, SimSettings


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    return SimSettings(hosts=args.hosts, host_cpu=args.host_cpu, host_memory=args.host_memory,
                       host_pods=args.host_pods, zones=args.zones,
                       node_grace_seconds=args.node_grace_seconds,
                       node_status_seconds=args.node_status_seconds,
                       node_monitor_seconds=args.node_monitor_seconds,
                       pod_gc_seconds=args.pod_gc_seconds,
                       virt_handler_heartbeat_seconds=args.virt_handler_heartbeat_seconds,
                       virt_handler_timeout_seconds=args.virt_handler_timeout_seconds,
                       start_seconds=args.vmi_start_seconds,
                       migration_seconds=args.migration_seconds,
                       migration_bandwidth_gbps=args.migration_bandwidth_gbps,
                       import_seconds=args.import_seconds,
                       nmstate_apply_seconds=args.nmstate_apply_seconds,
                       nmstate_retry_seconds=args.nmstate_retry_seconds)


async def run_components(runtime: SimRuntime) -> list[Component]:
    """Start every component, in order. The simulation runs in its own process and speaks
    only the API; virt-api's admission is the one part loaded into the API server's process
    (see devcluster/serve.py)."""
    from .data_protection import data_protection_components
    from .fencing import fencing_components
    from .guests_api import GuestsApi
    from .hosts import Hosts
    from .infrastructure import infrastructure_components
    from .kubevirt import kubevirt_components
    from .network import network_components

    infrastructure = infrastructure_components(runtime)
    hosts = next(c for c in infrastructure if isinstance(c, Hosts))
    components = [*infrastructure, GuestsApi(runtime, hosts.guests),
                  *kubevirt_components(runtime), *data_protection_components(runtime),
                  *network_components(runtime),
                  *fencing_components(runtime)]
    for component in components:
        await component.start()
    return components
