"""The `vdcos` command: crds, and the flags `up` shares with `python -m devcluster`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from controllers.cli import build_parser, next_steps

CRDS = Path(__file__).resolve().parent.parent.parent / "crds"


def test_crds_command_prints_the_committed_crds() -> None:
    printed = subprocess.run([sys.executable, "-m", "controllers.cli", "crds"], check=True,
                             capture_output=True, text=True).stdout
    committed = [yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("*.yaml"))]
    assert [d for d in yaml.safe_load_all(printed) if d] == committed


def test_crds_command_writes_files(tmp_path: Path) -> None:
    args = build_parser().parse_args(["crds", "--output-dir", str(tmp_path)])
    assert args.handler(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in
                                                                CRDS.glob("*.yaml"))


def test_up_takes_the_devcluster_flags_and_apply() -> None:
    args = build_parser(with_up_flags=True).parse_args(
        ["up", "--hosts", "3", "--node-grace-seconds", "3", "--port", "0",
         "--kubeconfig", "kc", "--apply", "examples"])
    assert (args.hosts, args.node_grace_seconds, args.apply) == (3, 3.0, Path("examples"))


def test_next_steps_say_what_to_try(tmp_path: Path) -> None:
    text = next_steps(tmp_path / "kubeconfig")
    assert f"export KUBECONFIG={tmp_path / 'kubeconfig'}" in text
    for command in ("kubectl get vdc", "kubectl get vdcvm -o wide", "PoweredOff",
                    "sim.vdcos.io/power=off", '"count":4'):
        assert command in text
