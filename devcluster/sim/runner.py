"""Starts the simulated hosts and the emulated KubeVirt, CDI and Multus against an API server."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from .kube import Kube
from .runtime import Component, SimRuntime, SimSettings

if TYPE_CHECKING:
    from devcluster.apiserver.server import ApiServer

log = structlog.get_logger("devcluster.sim")


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
                       import_seconds=args.import_seconds)


async def run_components(runtime: SimRuntime, server: ApiServer | None) -> list[Component]:
    from .infrastructure import infrastructure_components
    from .kubevirt import kubevirt_components

    components = [*infrastructure_components(runtime, server),
                  *kubevirt_components(runtime, server)]
    for component in components:
        await component.start()
    return components


async def start_simulation(
    server: ApiServer, args: argparse.Namespace
) -> Callable[[], Awaitable[None]]:
    """Start the simulation in the API server's process (`python -m devcluster`)."""
    kube = Kube(f"https://{server.address}", server.token, server.certificate.ca_pem,
                user_agent="devcluster-sim/0.1")
    runtime = SimRuntime(kube, settings_from_args(args))
    components = await run_components(runtime, server)

    async def stop() -> None:
        for component in reversed(components):
            await component.stop()
        await runtime.stop_informers()
        await kube.close()

    return stop
