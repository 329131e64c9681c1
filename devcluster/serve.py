"""`python -m devcluster`: the embedded API server, with or without the simulated hosts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from .apiserver.server import ApiServer
from .kubeconfig import write_kubeconfig

DEFAULT_STATE_DIR = Path(".vdcos")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0,
                        help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--kubeconfig", type=Path, default=DEFAULT_STATE_DIR / "kubeconfig",
                        help="where to write the kubeconfig (default: .vdcos/kubeconfig)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep objects in SQLite here (default: in memory)")
    parser.add_argument("--token", default=None, help="bearer token (default: random)")
    parser.add_argument("--watch-history", type=int, default=1000,
                        help="events kept per resource for watch replay before 410 Gone")


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-sim", action="store_true", help="serve the API only, no hosts")
    parser.add_argument("--hosts", type=int, default=3, help="simulated hosts (default 3)")
    parser.add_argument("--host-cpu", default="32", help="CPU cores per host (default 32)")
    parser.add_argument("--host-memory", default="128Gi", help="memory per host")
    parser.add_argument("--node-grace-seconds", type=float, default=50.0,
                        help="seconds without heartbeat before a host turns NotReady "
                             "(Kubernetes 1.32 default: 50)")
    parser.add_argument("--host-pods", type=int, default=110,
                        help="pods per host (kubelet maxPods, default 110)")
    parser.add_argument("--zones", type=int, default=1,
                        help="spread hosts over this many zones (zone-a, zone-b, ...)")
    parser.add_argument("--node-status-seconds", type=float, default=10.0,
                        help="kubelet lease renewal period (default 10)")
    parser.add_argument("--node-monitor-seconds", type=float, default=5.0,
                        help="node lifecycle controller check period (default 5)")
    parser.add_argument("--pod-gc-seconds", type=float, default=20.0,
                        help="PodGC period: force-delete pods of out-of-service hosts "
                             "(default 20)")
    parser.add_argument("--virt-handler-heartbeat-seconds", type=float, default=60.0,
                        help="virt-handler Node heartbeat period (KubeVirt default: 60)")
    parser.add_argument("--virt-handler-timeout-seconds", type=float, default=300.0,
                        help="heartbeat age after which virt-controller fails the VMIs of a "
                             "host whose launcher pods are gone (KubeVirt default: 300)")
    parser.add_argument("--vmi-start-seconds", type=float, default=0.5,
                        help="time a guest takes to boot once its pod runs (default 0.5)")
    parser.add_argument("--migration-seconds", type=float, default=2.0,
                        help="time a live migration takes (default 2)")
    parser.add_argument("--import-seconds", type=float, default=2.0,
                        help="time a DataVolume import or clone takes (default 2)")


Extra = Callable[[ApiServer, argparse.Namespace], Awaitable[Callable[[], Awaitable[None]]]]


async def serve(args: argparse.Namespace, extras: list[Extra] | None = None,
                announce: Callable[[ApiServer, argparse.Namespace], None] | None = None) -> None:
    """Run the API server (and whatever `extras` start beside it) until SIGINT/SIGTERM."""
    server = ApiServer(data_dir=args.data_dir, token=args.token,
                       history_size=args.watch_history)
    port = await server.start(port=args.port)
    url = f"https://127.0.0.1:{port}"
    write_kubeconfig(args.kubeconfig, url, server.token, server.certificate.ca_pem)
    print(f"API server listening on {url}", flush=True)
    print(f"kubeconfig written to {args.kubeconfig.resolve()}", flush=True)
    stoppers = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        for extra in extras or []:
            stoppers.append(await extra(server, args))
        if announce is not None:
            announce(server, args)
        await stop.wait()
    finally:
        print("Stopping...", flush=True)
        for stopper in reversed(stoppers):
            with contextlib.suppress(Exception):
                await stopper()
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster",
                                     description="The embedded Kubernetes datacenter.")
    add_server_arguments(parser)
    add_sim_arguments(parser)
    args = parser.parse_args(argv)
    extras: list[Extra] = []
    if not args.no_sim:
        from .sim.runner import start_simulation

        extras.append(start_simulation)
    with contextlib.suppress(KeyboardInterrupt), event_loop_runner() as runner:
        runner.run(serve(args, extras))
    return 0


def event_loop_runner() -> asyncio.Runner:
    """uvloop where available: its TLS and socket paths are several times faster."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


if __name__ == "__main__":
    sys.exit(main())
