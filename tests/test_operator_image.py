"""The operator image's content is enough to run the operator (checked without docker).

The paths the Dockerfile's COPY lines name are copied into a scratch directory, installed
into a fresh venv with pip, and then: `vdcos run --help` works, every module of the copied
packages imports, and `vdcos up` (not part of the image) says so instead of crashing.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"

pytestmark = pytest.mark.slow


def copy_instructions(dockerfile: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from=stage)."""
    copies: list[tuple[list[str], str]] = []
    for line in dockerfile.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() != "COPY":
            continue
        arguments = [word for word in words[1:] if not word.startswith("--")]
        if any(word.startswith("--from") for word in words[1:]):
            continue
        copies.append((arguments[:-1], arguments[-1]))
    return copies


def test_the_dockerfile_copies_the_operator_and_not_the_embedded_datacenter() -> None:
    copied = {source for sources, _ in copy_instructions(DOCKERFILE) for source in sources}
    assert "controllers" in copied and "pyproject.toml" in copied
    assert "devcluster" not in copied and "vdcos_up" not in copied


def test_what_the_image_copies_installs_and_runs_the_operator(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for sources, destination in copy_instructions(DOCKERFILE):
        into_directory = destination.endswith("/") or len(sources) > 1
        for name in sources:
            target = source / destination / name if into_directory else source / destination
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]

    helped = subprocess.run([str(venv / "bin" / "vdcos"), "run", "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "--kubeconfig" in helped.stdout

    modules = sorted(
        ".".join(path.relative_to(source).with_suffix("").parts).removesuffix(".__init__")
        for package in ("controllers", "kubekit")
        for path in (source / package).rglob("*.py")
    )
    imported = subprocess.run(
        [str(python), "-c", "import importlib, sys\n"
         "for name in sys.argv[1:]: importlib.import_module(name)\n"
         "print(len(sys.argv) - 1)", *modules],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert int(imported.stdout) == len(modules) > 20

    up = subprocess.run([str(venv / "bin" / "vdcos"), "up"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=120)
    assert up.returncode != 0
    assert "not part of this installation" in (up.stdout + up.stderr)
