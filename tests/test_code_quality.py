"""The code stays mypy-strict and ruff clean: the checks run as part of the suite."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import REPO


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _imported_packages(package: str) -> set[str]:
    """Top-level packages named by any import in `package` (lazy imports included)."""
    import ast

    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_the_operator_imports_neither_the_embedded_datacenter_nor_vdcos_up() -> None:
    assert not _imported_packages("controllers") & {"devcluster", "vdcos_up", "tests"}


def test_the_neutral_package_imports_neither_side() -> None:
    assert not _imported_packages("kubekit") & {"controllers", "devcluster", "vdcos_up"}
