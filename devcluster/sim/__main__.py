"""`python -m devcluster.sim --kubeconfig FILE`: the simulated hosts against any API server.

Runs the same components as `python -m devcluster` does in-process, except the API
extensions that need the server's process (metrics.k8s.io).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from devcluster.serve import add_sim_arguments

from .kube import Kube
from .runner import run_components, settings_from_args
from .runtime import SimRuntime


async def run(args: argparse.Namespace) -> None:
    kube = Kube.from_kubeconfig(args.kubeconfig, user_agent="devcluster-sim/0.1")
    runtime = SimRuntime(kube, settings_from_args(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    components = await run_components(runtime, None)
    print(f"Simulation running against {kube.server}", flush=True)
    try:
        await stop.wait()
    finally:
        for component in reversed(components):
            with contextlib.suppress(Exception):
                await component.stop()
        await runtime.stop_informers()
        await kube.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.sim",
                                     description="Simulated hosts for any Kubernetes API.")
    parser.add_argument("--kubeconfig", type=Path, required=True,
                        help="kubeconfig of the API server to simulate hosts for")
    add_sim_arguments(parser)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
