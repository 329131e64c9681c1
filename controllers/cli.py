"""The `vdcos` command.

  vdcos up    the embedded datacenter (API server, simulated hosts) and the operator, in one
              process; writes a kubeconfig and prints what to try with kubectl. Ctrl-C stops.
  vdcos run   the operator alone, against the current kubeconfig or in-cluster (as deployed).
  vdcos crds  prints (or writes) the CRDs of the VDC API.

Only `vdcos up` imports devcluster: the operator itself speaks nothing but the Kubernetes API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devcluster.apiserver.server import ApiServer

REPO_CRDS = Path(__file__).resolve().parent.parent / "crds"


# --------------------------------------------------------------------------- crds


def crd_documents() -> dict[str, str]:
    """CRD YAML by file name, generated from the models (identical to crds/)."""
    from controllers.crds import generate_all

    return generate_all()


def command_crds(args: argparse.Namespace) -> int:
    documents = crd_documents()
    if args.output_dir is None:
        sys.stdout.write("---\n".join(documents[name] for name in sorted(documents)))
        return 0
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(documents.items()):
        (args.output_dir / name).write_text(text)
        print(f"wrote {args.output_dir / name}")
    return 0


# --------------------------------------------------------------------------- the operator


class OperatorThread:
    """kopf in its own thread and event loop.

    kopf takes over SIGINT/SIGTERM in the main thread; in `vdcos up` those belong to the
    API server, which then stops the operator through `stop_flag`.
    """

    def __init__(self) -> None:
        self.ready_flag = threading.Event()
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vdcos-operator", daemon=True)

    def _run(self) -> None:
        import kopf

        import controllers.operator  # noqa: F401 - registers the handlers

        try:
            asyncio.run(
                kopf.operator(
                    clusterwide=True,
                    ready_flag=self.ready_flag,
                    stop_flag=self.stop_flag,
                )
            )
        except BaseException as error:  # reported by the thread that started us
            self.error = error
            self.ready_flag.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self.stop_flag.set()
        self._thread.join(timeout)


async def apply_crds(kubeconfig: Path) -> None:
    """Applies the VDC CRDs through the API and waits until they are served."""
    import yaml

    from controllers.common.apply_files import (
        apply_documents,
        wait_for_crds_established,
    )
    from controllers.common.kube import KubeClient, discover_credentials

    kube = KubeClient(discover_credentials(kubeconfig), field_manager="vdcos-up")
    try:
        crds = [yaml.safe_load(text) for text in crd_documents().values()]
        await apply_documents(kube, crds)
        await wait_for_crds_established(kube, [crd["metadata"]["name"] for crd in crds])
    finally:
        await kube.close()


async def apply_directory(kubeconfig: Path, path: Path) -> list[str]:
    from controllers.common.apply_files import apply_path
    from controllers.common.kube import KubeClient, discover_credentials

    kube = KubeClient(discover_credentials(kubeconfig), field_manager="vdcos-up")
    try:
        return await apply_path(kube, path)
    finally:
        await kube.close()


def next_steps(kubeconfig: Path) -> str:
    """What to try once the datacenter is up."""
    config = kubeconfig.resolve()
    patch = "kubectl patch vdcvm web-01 --type merge -p"
    return f"""
The virtual datacenter is up. In another terminal:

  export KUBECONFIG={config}
  kubectl apply -f examples/                      # a cluster, storage policies and VMs
  kubectl get vdc                                 # everything in the datacenter
  kubectl wait --for=condition=Ready vdcvm --all --timeout=120s
  kubectl get vdcvm -o wide                       # power, host, IP, CPU, memory
  {patch} '{{"spec":{{"powerState":"PoweredOff"}}}}'   # power off
  {patch} '{{"spec":{{"powerState":"PoweredOn"}}}}'    # power on
  {patch} '{{"spec":{{"cpu":{{"count":4}}}}}}'          # hot-add CPU (hotAdd: true)
  kubectl describe vdcvm web-01                   # conditions and events
  kubectl get vm,vmi,dv,pvc,pods                  # what KubeVirt and CDI run
  kubectl annotate node host-1 sim.vdcos.io/power=off   # fail a host
  kubectl get cc production -o yaml               # hosts, capacity and allocation

Ctrl-C stops the datacenter."""


def _operator_extra(
    args: argparse.Namespace,
) -> Callable[[ApiServer, argparse.Namespace], Awaitable[Callable[[], Awaitable[None]]]]:
    async def start(_: ApiServer, __: argparse.Namespace) -> Callable[[], Awaitable[None]]:
        from controllers.common import settings

        settings.CONFIG.kubeconfig = args.kubeconfig
        await apply_crds(args.kubeconfig)
        operator = OperatorThread()
        operator.start()
        await asyncio.to_thread(operator.ready_flag.wait, 120)
        if operator.error is not None:
            raise RuntimeError(f"the operator failed to start: {operator.error}")
        print("Operator running", flush=True)
        if args.apply is not None:
            for line in await apply_directory(args.kubeconfig, args.apply):
                print(line, flush=True)

        async def stop() -> None:
            await asyncio.to_thread(operator.stop)

        return stop

    return start


def command_up(args: argparse.Namespace) -> int:
    from controllers.common.logging import configure_logging
    from devcluster.serve import serve

    configure_logging(verbose=args.verbose)
    extras: list[Any] = []
    if not args.no_sim:
        from devcluster.sim.runner import start_simulation

        extras.append(start_simulation)
    extras.append(_operator_extra(args))

    def announce(_: ApiServer, __: argparse.Namespace) -> None:
        print(next_steps(args.kubeconfig), flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args, extras, announce))
    return 0


def command_run(args: argparse.Namespace) -> int:
    import kopf

    import controllers.operator  # noqa: F401 - registers the handlers
    from controllers.common import settings
    from controllers.common.logging import configure_logging

    configure_logging(json_lines=args.log_json, verbose=args.verbose)
    settings.CONFIG.kubeconfig = args.kubeconfig
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            kopf.operator(
                clusterwide=True,
                liveness_endpoint=args.liveness,
                standalone=args.standalone or None,
            )
        )
    return 0


# --------------------------------------------------------------------------- parser


def build_parser(*, with_up_flags: bool = False) -> argparse.ArgumentParser:
    """The parser; the flags of `up` come from devcluster, imported only when `up` runs."""
    parser = argparse.ArgumentParser(prog="vdcos", description="A Virtual Datacenter OS.")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser(
        "up", help="run the embedded datacenter and the operator in this process"
    )
    if with_up_flags:
        # The flags of `python -m devcluster`, so both commands take the same ones.
        from devcluster.serve import add_server_arguments, add_sim_arguments

        add_server_arguments(up)
        add_sim_arguments(up)
    up.add_argument(
        "--apply",
        type=Path,
        default=None,
        metavar="DIR",
        help="apply these manifests once the operator runs (like kubectl apply -f)",
    )
    up.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    up.set_defaults(handler=command_up)

    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)",
    )
    run.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="serve kopf's health endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    run.add_argument(
        "--standalone",
        action="store_true",
        help="never take part in kopf peering, even if its CRDs exist",
    )
    run.add_argument("--log-json", action="store_true", help="JSON log lines")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(handler=command_run)

    crds = commands.add_parser("crds", help="print the CRDs, or write them to a directory")
    crds.add_argument("--output-dir", type=Path, default=None, metavar="DIR")
    crds.set_defaults(handler=command_crds)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = build_parser(with_up_flags=bool(arguments) and arguments[0] == "up").parse_args(
        arguments
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
