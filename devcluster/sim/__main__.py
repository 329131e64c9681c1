"""`python -m devcluster.sim --kubeconfig FILE`: the simulated hosts against any API server.

What `python -m devcluster` runs as its second process. Everything here speaks the
Kubernetes API only (metrics.k8s.io is served from here and aggregated by the API server);
virt-api's subresources and admission live in the API server's process (`--virt-api`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from devcluster.log_level import configure_log_level
from devcluster.options import add_sim_arguments
from kubekit.restclient import Kube

from .runner import run_components, settings_from_args
from .runtime import SimRuntime

USER_AGENT = "devcluster-sim/0.1"
READY_LINE = "Simulation running against"


async def run(args: argparse.Namespace) -> None:
    kube = Kube.from_kubeconfig(args.kubeconfig, user_agent=USER_AGENT)
    runtime = SimRuntime(kube, settings_from_args(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    components = await run_components(runtime)
    print(f"{READY_LINE} {kube.server}", flush=True)
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
    configure_log_level()
    from devcluster.serve import event_loop_runner

    with contextlib.suppress(KeyboardInterrupt), event_loop_runner() as runner:
        runner.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
