"""`vdcos backup run POLICY -n NAMESPACE`: its arguments, and a login that fails is an error
rather than a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from controllers.backuppolicy.command_backup import command_backup
from controllers.cli import build_parser


def test_backup_run_takes_a_policy_and_a_namespace() -> None:
    args = build_parser(plugins=False).parse_args(["backup", "run", "nightly", "-n", "team-a"])
    assert (args.policy, args.namespace, args.handler) == ("nightly", "team-a", command_backup)
    assert build_parser(plugins=False).parse_args(["backup", "run", "x"]).namespace == "default"


def test_backup_run_without_a_kubeconfig_says_so(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser(plugins=False).parse_args(
        ["backup", "run", "nightly", "--kubeconfig", str(tmp_path / "missing")])
    assert command_backup(args) == 1
    assert capsys.readouterr().err.startswith("Error: ")
