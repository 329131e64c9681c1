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
        from .sim.runner import start_simulation  # noqa: PLC0415 - only when hosts are wanted

        extras.append(start_simulation)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args, extras))
    return 0


if __name__ == "__main__":
    sys.exit(main())
