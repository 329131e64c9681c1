"""`vdcos up`: the embedded datacenter and the operator, three processes, one command.

  1. the API server (`python -m devcluster --no-sim --virt-api`), which writes the kubeconfig;
  2. the simulated hosts, KubeVirt, CDI and metrics-server (`python -m devcluster.sim`);
  3. the VDC CRDs applied, then the operator as it is deployed (`vdcos run --kubeconfig`);
  4. with `--apply DIR`, those manifests applied, and the VMs among them followed to Ready;
  5. what to try next, then wait: Ctrl-C (or SIGTERM) stops all three; a child that exits
     on its own is reported and stops the rest, and `vdcos up` exits non-zero.

Registered with the `vdcos` command through the `vdcos.commands` entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devcluster.options import add_server_arguments, add_sim_arguments

from .console import Console

OPERATOR_START_SECONDS = 120.0
READY_SECONDS = 600.0
OPERATOR_RUNNING = "Operator running"


def operator_argv(kubeconfig: Path, liveness_port: int, verbose: bool) -> list[str]:
    """`vdcos run`, the operator's deployed entry point (the console script's module)."""
    return [sys.executable, "-m", "controllers.cli", "run", "--kubeconfig", str(kubeconfig),
            "--liveness", f"http://127.0.0.1:{liveness_port}/healthz",
            *(["--verbose"] if verbose else [])]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for_liveness(port: int) -> None:
    """Until kopf's health endpoint answers 200: it serves once the operator runs."""
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)  # a just-spawned process's socket: nothing to watch


async def vdc_crds() -> list[dict[str, Any]]:
    """The VDC CRDs as `vdcos crds` prints them. Asked of a child process: importing the
    operator here would keep its memory (kopf, the models) in this idle supervisor."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controllers.cli", "crds", stdout=asyncio.subprocess.PIPE)
    printed, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"vdcos crds exited with code {child.returncode}")
    return [document for document in yaml.safe_load_all(printed) if document]


async def apply_crds(kubeconfig: Path) -> None:
    """The VDC CRDs, applied and served, before the operator watches them."""
    from kubekit.resources import ResourceRef
    from kubekit.restclient import Kube, wait_for_resource

    from .manifests import apply_documents

    crds = await vdc_crds()
    async with Kube.from_kubeconfig(kubeconfig, user_agent="vdcos-up") as kube:
        await apply_documents(kube, crds)
        for crd in crds:
            spec = crd["spec"]
            version = next(v["name"] for v in spec["versions"] if v.get("storage"))
            await wait_for_resource(kube, ResourceRef(spec["group"], version,
                                                   spec["names"]["plural"]))


async def apply_and_follow(console: Console, kubeconfig: Path,
                           objects: list[dict[str, Any]]) -> None:
    """Apply the manifests, then show the applied VDC VMs converging to Ready."""
    from kubekit.restclient import Kube

    from .hints import vdc_vm_names
    from .manifests import apply_documents
    from .readiness import Key, not_ready_reasons, wait_until_ready

    async with Kube.from_kubeconfig(kubeconfig, user_agent="vdcos-up") as kube:
        for line in await apply_documents(kube, objects):
            console.line(line)
        names = vdc_vm_names(objects)
        if not names:
            return
        wanted = [(str(o["metadata"].get("namespace") or "default"), str(o["metadata"]["name"]))
                  for o in objects if o.get("kind") == "VirtualMachine"
                  and str(o.get("apiVersion", "")).startswith("vdcos.io/")]
        started = time.monotonic()

        def report(ready: int, total: int) -> None:
            console.progress(f"VMs ready {ready}/{total} "
                             f"({time.monotonic() - started:.0f}s)")

        seen: dict[Key, Any] = {}
        try:
            await asyncio.wait_for(wait_until_ready(kube, wanted, report, seen),
                                   READY_SECONDS)
        except TimeoutError:
            console.end_progress(f"Not all VMs are Ready after {READY_SECONDS:.0f}s:")
            for line in not_ready_reasons(seen):
                console.line(f"  {line}")
            return
        console.end_progress(f"All {len(wanted)} VMs are Ready "
                             f"({time.monotonic() - started:.1f}s).")


async def up(args: argparse.Namespace, console: Console) -> int:
    from devcluster.serve import start_datacenter
    from devcluster.supervisor import Supervisor

    from .hints import next_steps
    from .manifests import documents, manifest_files

    objects = list(documents(manifest_files(args.apply))) if args.apply is not None else []
    shown = objects
    if args.apply is None and Path("examples").is_dir():
        shown = list(documents(manifest_files(Path("examples"))))
    supervisor = Supervisor(write=console.line)

    async def start() -> None:
        await start_datacenter(supervisor, args, simulation=not args.no_sim)
        await supervisor.until(apply_crds(args.kubeconfig), 60, "the VDC CRDs were not served")
        port = free_port()
        await supervisor.start("operator", operator_argv(args.kubeconfig, port, args.verbose))
        await supervisor.until(wait_for_liveness(port), OPERATOR_START_SECONDS,
                               f"the operator did not start in {OPERATOR_START_SECONDS:g}s")
        console.line(OPERATOR_RUNNING)
        if objects:
            await supervisor.until(apply_and_follow(console, args.kubeconfig, objects),
                                   READY_SECONDS + 60, "applying the manifests took too long")
        console.line(next_steps(args.kubeconfig, shown, applied_from=args.apply))

    return await supervisor.run(start)


def command_up(args: argparse.Namespace) -> int:
    from devcluster.serve import event_loop_runner

    with event_loop_runner() as runner:
        return runner.run(up(args, Console()))


def register(commands: Any) -> None:
    """Adds `up` to the `vdcos` subcommands, with the flags of `python -m devcluster`."""
    up_parser: argparse.ArgumentParser = commands.add_parser(
        "up", help="run the embedded datacenter and the operator (Ctrl-C stops all)",
        description="The embedded datacenter (API server, simulated hosts) and the operator, "
                    "each in its own process. Writes a kubeconfig; Ctrl-C stops all.")
    add_server_arguments(up_parser)
    add_sim_arguments(up_parser)
    up_parser.add_argument("--no-sim", action="store_true",
                           help="no simulated hosts: the API server and the operator only")
    up_parser.add_argument("--apply", type=Path, default=None, metavar="DIR",
                           help="apply these manifests once the operator runs (like kubectl "
                                "apply -f) and wait until their VMs are Ready")
    up_parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    up_parser.set_defaults(handler=command_up)
