"""Registers `vdcos up` with the `vdcos` command (entry point group `vdcos.commands`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any


class OperatorThread:
    """kopf in its own thread and event loop (moved from controllers/cli.py unchanged)."""

    def __init__(self) -> None:
        self.ready_flag = threading.Event()
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vdcos-operator", daemon=True)

    def _run(self) -> None:
        import kopf

        import controllers.operator  # noqa: F401 - registers the handlers

        try:
            asyncio.run(kopf.operator(clusterwide=True, ready_flag=self.ready_flag,
                                      stop_flag=self.stop_flag))
        except BaseException as error:  # reported by the thread that started us
            self.error = error
            self.ready_flag.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self.stop_flag.set()
        self._thread.join(timeout)


async def _apply_crds(kubeconfig: Path) -> None:
    import yaml

    from controllers.cli import crd_documents
    from controllers.common.apply_files import apply_documents, wait_for_crds_established
    from controllers.common.kube import KubeClient, discover_credentials

    kube = KubeClient(discover_credentials(kubeconfig), field_manager="vdcos-up")
    try:
        crds = [yaml.safe_load(text) for text in crd_documents().values()]
        await apply_documents(kube, crds)
        await wait_for_crds_established(kube, [crd["metadata"]["name"] for crd in crds])
    finally:
        await kube.close()


async def _apply_directory(kubeconfig: Path, path: Path) -> list[str]:
    from controllers.common.apply_files import apply_path
    from controllers.common.kube import KubeClient, discover_credentials

    kube = KubeClient(discover_credentials(kubeconfig), field_manager="vdcos-up")
    try:
        return await apply_path(kube, path)
    finally:
        await kube.close()


def command_up(args: argparse.Namespace) -> int:
    from controllers.common.logging import configure_logging
    from devcluster.serve import serve

    configure_logging(verbose=args.verbose)
    extras: list[Any] = []
    if not args.no_sim:
        from devcluster.sim.runner import start_simulation

        extras.append(start_simulation)

    async def operator(_: Any, __: argparse.Namespace) -> Any:
        from controllers.common import settings

        settings.CONFIG.kubeconfig = args.kubeconfig
        await _apply_crds(args.kubeconfig)
        thread = OperatorThread()
        thread.start()
        await asyncio.to_thread(thread.ready_flag.wait, 120)
        if thread.error is not None:
            raise RuntimeError(f"the operator failed to start: {thread.error}")
        print("Operator running", flush=True)
        if args.apply is not None:
            for line in await _apply_directory(args.kubeconfig, args.apply):
                print(line, flush=True)

        async def stop() -> None:
            await asyncio.to_thread(thread.stop)

        return stop

    extras.append(operator)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args, extras))
    return 0


def register(commands: Any) -> None:
    """Adds `up` to the `vdcos` subcommands, with the flags of `python -m devcluster`."""
    from devcluster.serve import add_server_arguments, add_sim_arguments

    up: argparse.ArgumentParser = commands.add_parser(
        "up", help="run the embedded datacenter and the operator (Ctrl-C stops all)")
    add_server_arguments(up)
    add_sim_arguments(up)
    up.add_argument("--apply", type=Path, default=None, metavar="DIR",
                    help="apply these manifests once the operator runs (like kubectl apply -f)")
    up.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    up.set_defaults(handler=command_up)
