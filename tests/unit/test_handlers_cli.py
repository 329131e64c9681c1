"""The `vdcos` command: crds (the `up` plugin is tested in tests/integration/test_up*.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from controllers.cli import build_parser

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
