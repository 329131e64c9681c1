"""Files only their owner can read, from the first byte: the data directory, the database,
the token, the kubeconfig and the TLS keys carry cluster-admin credentials and Secrets.

A file is written to a temporary name created 0600 (os.open with the mode, so no umask
and no window where it is readable), flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger("devcluster.private_files")

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700


def private_directory(path: Path) -> None:
    """Create `path` (and missing parents) 0700, or tighten it to 0700 if it is looser."""
    path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    tighten(path)


def tighten(path: Path) -> None:
    """Take group and other permissions off an existing file or directory (a data
    directory from an older run); a missing one is left alone."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        path.chmod(mode & 0o700)
        log.info("Tightened the permissions of a private file", path=str(path),
                 mode=oct(mode), now=oct(mode & 0o700))


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only from the first byte."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a process of the same pid that died mid-write
    # O_EXCL and O_NOFOLLOW: a file or link planted under the temporary name is refused.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         PRIVATE_FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
