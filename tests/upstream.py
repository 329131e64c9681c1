"""Where the tests find the upstream oracles: the published schemas of KubeVirt, CDI, Multus,
nmstate and medik8s (`schemas/`) and the example manifests that ship with KubeVirt
(`conformance/kubevirt-examples/`).

One setting decides: the environment variable VDCOS_UPSTREAM names a folder holding
`schemas/` and `conformance/` (our CI points it at ../shared). Without it the tests look in
`.vdcos/upstream/` of the repository, which `hack/fetch-upstream.sh` fills from the upstream
repositories at the commits pinned in `hack/versions.env`. A test whose file is in neither
place is skipped with that hint. When VDCOS_UPSTREAM is set, a missing file fails the test
instead: a CI that names its oracles must not pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENT_VARIABLE = "VDCOS_UPSTREAM"
DEFAULT_FOLDER = REPO / ".vdcos" / "upstream"
HINT = (
    f"set {ENVIRONMENT_VARIABLE} to a folder holding schemas/ and conformance/ "
    "(e.g. ../shared), or run hack/fetch-upstream.sh (downloads them into .vdcos/upstream)"
)


def root() -> Path:
    """The folder the upstream files are read from (it may not exist)."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE, "")
    return Path(configured).expanduser().resolve() if configured else DEFAULT_FOLDER


def path(relative: str) -> Path:
    """An upstream file or folder by its path below the root, e.g.
    "schemas/kubevirt/swagger.json" (not checked: safe at import time)."""
    return root() / relative


def require(location: str | Path) -> Path:
    """The upstream file or folder, or the calling test skipped (failed when
    VDCOS_UPSTREAM is set) with the hint saying how to get it."""
    found = location if isinstance(location, Path) else path(location)
    if found.exists():
        return found
    if os.environ.get(ENVIRONMENT_VARIABLE):
        pytest.fail(f"{found} is absent, although {ENVIRONMENT_VARIABLE} is set")
    pytest.skip(f"upstream oracle {found} is absent: {HINT}")


def require_extra(relative: str) -> Path:
    """An oracle that ../shared does not carry (e.g. external-snapshotter's CRDs): read from
    VDCOS_UPSTREAM when it has it, else from .vdcos/upstream (hack/fetch-upstream.sh fetches
    it); absent from both, the calling test is skipped saying so, even with VDCOS_UPSTREAM
    set, since that folder is not expected to hold it."""
    for candidate in (path(relative), DEFAULT_FOLDER / relative):
        if candidate.exists():
            return candidate
    pytest.skip(f"upstream oracle {relative} is in neither {root()} nor {DEFAULT_FOLDER}: "
                "run hack/fetch-upstream.sh")


def describe() -> str:
    """One line for the pytest header: where the oracles come from."""
    where = root()
    source = ENVIRONMENT_VARIABLE if os.environ.get(ENVIRONMENT_VARIABLE) else "default"
    if (where / "schemas").is_dir():
        return f"upstream oracles: {where} ({source})"
    return f"upstream oracles: none at {where}; tests that need them skip: {HINT}"
