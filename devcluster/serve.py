"""`python -m devcluster`: the embedded API server and the simulated hosts, two processes.

With the simulation (the default) this process supervises two children: the API server
(`python -m devcluster --no-sim --virt-api ...`) and the simulation (`python -m
devcluster.sim --kubeconfig ...`), so that each has a core. `--no-sim` runs the API server
alone, in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from devcluster.log_level import configure_log_level

from .kubeconfig import write_kubeconfig
from .options import add_server_arguments, add_sim_arguments, forward_arguments
from .supervisor import Supervisor

LISTENING_LINE = "API server listening on"
KUBECONFIG_LINE = "kubeconfig written to"
API_START_SECONDS = 60.0
SIM_START_SECONDS = 120.0


def add_process_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-sim", action="store_true",
                        help="serve the API only, in this process, no hosts")
    parser.add_argument("--virt-api", action="store_true",
                        help="load KubeVirt's virt-api into the API server (its subresource "
                             "API and admission); implied when the simulation runs")


async def serve_api(args: argparse.Namespace) -> None:
    """Run the API server in this process until SIGINT/SIGTERM."""
    from .apiserver.connection_limits import ConnectionLimits
    from .apiserver.faults import FaultFlags, describe, settings_from_flags
    from .apiserver.server import ApiServer

    faults = settings_from_flags(FaultFlags(
        conflict_share=args.fault_conflict_share, throttle_share=args.fault_throttle_share,
        retry_after_seconds=args.fault_retry_after_seconds, user_agent=args.fault_user_agent,
        watch_cut_seconds=args.fault_watch_cut_seconds,
        watch_cut_user_agent=args.fault_watch_cut_user_agent, seed=args.fault_seed))
    server = ApiServer(data_dir=args.data_dir, token=args.token,
                       history_size=args.watch_history, faults=faults)
    if args.virt_api:
        # Real virt-api is a webhook server; ours runs inside the API server as an admission
        # plugin, because its subresources read and write the store directly.
        from .sim.kubevirt import install_virt_api

        install_virt_api(server)
    limits = ConnectionLimits(header_seconds=args.request_header_seconds,
                              body_seconds=args.request_body_seconds,
                              idle_seconds=args.idle_connection_seconds)
    port = await server.start(port=args.port, connection_limits=limits)
    if args.fail_next_commits:
        server.store.fail_next_commits(args.fail_next_commits)
    url = f"https://127.0.0.1:{port}"
    write_kubeconfig(args.kubeconfig, url, server.token, server.certificate.ca_pem)
    print(f"{LISTENING_LINE} {url}", flush=True)
    print(f"{KUBECONFIG_LINE} {args.kubeconfig.resolve()}", flush=True)
    for line in describe(faults):
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        print("Stopping the API server...", flush=True)
        await server.stop()


def api_server_argv(args: argparse.Namespace, *, virt_api: bool = True) -> list[str]:
    return [sys.executable, "-m", "devcluster", "--no-sim",
            *(["--virt-api"] if virt_api else []),
            *forward_arguments(args, add_server_arguments)]


def sim_argv(args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "devcluster.sim", "--kubeconfig", str(args.kubeconfig),
            *forward_arguments(args, add_sim_arguments)]


async def start_datacenter(supervisor: Supervisor, args: argparse.Namespace, *,
                           simulation: bool = True) -> None:
    """The API server, then (once its kubeconfig is written) the simulation; each ready."""
    kubeconfig: Path = args.kubeconfig
    with contextlib.suppress(FileNotFoundError):
        kubeconfig.unlink()  # a stale one would point the simulation at a dead server
    api = await supervisor.start("API server", api_server_argv(args, virt_api=simulation),
                                 markers=(KUBECONFIG_LINE,))
    await supervisor.wait_for(api, KUBECONFIG_LINE, API_START_SECONDS)
    if not simulation:
        return
    from .sim.__main__ import READY_LINE

    sim = await supervisor.start("simulation", sim_argv(args), markers=(READY_LINE,))
    await supervisor.wait_for(sim, READY_LINE, SIM_START_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster",
                                     description="The embedded Kubernetes datacenter.")
    add_server_arguments(parser)
    add_sim_arguments(parser)
    add_process_arguments(parser)
    args = parser.parse_args(argv)
    configure_log_level()
    with event_loop_runner() as runner:
        if args.no_sim:
            with contextlib.suppress(KeyboardInterrupt):
                runner.run(serve_api(args))
            return 0
        supervisor = Supervisor()
        return runner.run(supervisor.run(lambda: start_datacenter(supervisor, args)))


def event_loop_runner() -> asyncio.Runner:
    """uvloop where available: its TLS and socket paths are several times faster."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


if __name__ == "__main__":
    sys.exit(main())
