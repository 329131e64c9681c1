from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import DevCluster, start_devcluster


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One API server (no simulated hosts) per test module."""
    cluster = start_devcluster(tmp_path_factory.mktemp("apiserver"), "--no-sim")
    yield cluster
    cluster.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
