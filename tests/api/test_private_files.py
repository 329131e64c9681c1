"""Files are private from the first byte: the data directory 0700, the database, its -wal
and -shm, the token, the signing key, the TLS files and the kubeconfig 0600, and an older
data directory with loose modes tightened on start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.api import wire
from tests.harness import restart, start_devcluster


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loose_files(directory: Path) -> dict[str, str]:
    """Every file or directory under `directory` (itself included) readable by others."""
    found = {}
    for path in [directory, *directory.rglob("*")]:
        expected = 0o700 if path.is_dir() else 0o600
        if mode(path) & ~expected & 0o777 or mode(path) & 0o077:
            found[str(path.relative_to(directory.parent))] = oct(mode(path))
    return found


def test_every_file_of_the_server_is_private_even_with_a_permissive_umask(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    previous = os.umask(0o000)  # the server process inherits it: the worst a user may have
    try:
        cluster = start_devcluster(tmp_path / "server", "--no-sim", "--port",
                                   str(wire.free_port()), "--data-dir", str(data))
    finally:
        os.umask(previous)
    try:
        assert wire.request(cluster, "POST", "/api/v1/namespaces/default/secrets",
                            {"metadata": {"name": "s"}, "stringData": {"k": "v"}}).status == 201
        names = {p.name for p in data.rglob("*")}
        assert {"store.sqlite", "store.sqlite-wal", "token", "sa-signing-key", "serving.key",
                "ca.crt", "serving.crt"} <= names, names
        assert loose_files(data) == {}
        assert mode(data) == 0o700
        assert mode(cluster.kubeconfig) == 0o600
    finally:
        cluster.stop()


def test_a_data_directory_left_loose_by_an_older_run_is_tightened_on_start(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    cluster = start_devcluster(tmp_path / "server", "--no-sim", "--port",
                               str(wire.free_port()), "--data-dir", str(data))
    cluster.stop()
    data.chmod(0o755)
    for path in data.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert loose_files(data)
    cluster = restart(cluster, kill=False)
    try:
        assert wire.request(cluster, "GET", "/api/v1/namespaces").status == 200
        assert loose_files(data) == {}
    finally:
        cluster.stop()
