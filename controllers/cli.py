"""The `vdcos` command.

  vdcos run   the operator alone, against the current kubeconfig or in-cluster (as deployed).
  vdcos crds  prints (or writes) the CRDs of the VDC API.
  vdcos drs   applies a ComputeCluster's DRS recommendations, or asks for a pass now.
  vdcos import ovf  imports an OVF/OVA as a VirtualMachine or VirtualApp (docs/ovf.md).
  vdcos vapp  scales a VirtualApp's member (`vdcos vapp scale APP MEMBER N`).
  vdcos backup run  asks a BackupPolicy for a run now.

Other commands come from the `vdcos.commands` entry points: `vdcos up` (the embedded
datacenter and the operator, for a workstation) is registered by the `vdcos_up` package. The
operator never imports it, nor devcluster: it speaks nothing but the Kubernetes API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from controllers.backuppolicy.command_backup import register as register_backup
from controllers.computecluster.command_drs import register as register_drs
from controllers.ovf.command import register as register_import
from controllers.virtualapp.command_scale import register as register_vapp

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


def command_run(args: argparse.Namespace) -> int:
    import kopf

    import controllers.operator  # registers the handlers
    from controllers.common.logging import configure_logging
    from controllers.common.settings import OperatorConfig

    configure_logging(json_lines=args.log_json, verbose=args.verbose)
    config = OperatorConfig(kubeconfig=args.kubeconfig)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            kopf.operator(
                clusterwide=True,
                liveness_endpoint=args.liveness,
                standalone=args.standalone or None,
                memo=kopf.Memo({
                    "config": config,
                    controllers.operator.METRICS_ENDPOINT_KEY: args.metrics,
                    controllers.operator.WATCH_PROBE_SECONDS_KEY: args.watch_probe_seconds,
                }),
            )
        )
    return 0


# --------------------------------------------------------------------------- parser


def build_parser(*, plugins: bool = True) -> argparse.ArgumentParser:
    """The parser: the operator's own commands, plus those other distributions register."""
    parser = argparse.ArgumentParser(prog="vdcos", description="A Virtual Datacenter OS.")
    commands = parser.add_subparsers(dest="command", required=True)

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
        help="serve kopf's health endpoint (it lists failing watches), e.g. "
             "http://0.0.0.0:8080/healthz",
    )
    run.add_argument(
        "--metrics",
        default=None,
        metavar="URL",
        help="serve Prometheus metrics (watch failures), e.g. http://0.0.0.0:8081/metrics",
    )
    run.add_argument(
        "--watch-probe-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how often to check that every watch still works, for the failures kopf does "
             "not log (default 30; 0: never)",
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
    register_drs(commands)
    register_import(commands)
    register_vapp(commands)
    register_backup(commands)
    if plugins:
        add_plugin_commands(commands)
    return parser


# --------------------------------------------------------------------------- plugins

PLUGIN_GROUP = "vdcos.commands"


def add_plugin_commands(commands: Any) -> None:
    """Subcommands found through the `vdcos.commands` entry points.

    Each entry point names a `register(commands)` callable that adds its subparser (with a
    `handler` default). This keeps the operator free of what only a workstation needs:
    `vdcos up` lives in `vdcos_up`, which the operator image does not hold; there the entry
    point stays in the metadata but its module is missing, and the command says so.
    """
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            register: Callable[[Any], None] = entry.load()
        except ImportError as error:
            missing = commands.add_parser(entry.name, help="(not part of this installation)",
                                          add_help=False)
            # Whatever flags follow belong to the missing command: accept them, then explain.
            missing.set_defaults(handler=functools.partial(_not_installed, entry, error),
                                 accepts_any_arguments=True)
            continue
        register(commands)


def _not_installed(entry: EntryPoint, error: ImportError, _: argparse.Namespace) -> int:
    print(f"vdcos {entry.name}: not part of this installation ({entry.value} cannot be "
          f"imported: {error}). It ships with the vdcos source distribution, not with the "
          "operator image.", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if unknown and not getattr(args, "accepts_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
