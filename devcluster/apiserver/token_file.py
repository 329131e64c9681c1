"""The admin bearer token, kept with the data so that clients outlive a restart."""

from __future__ import annotations

import secrets
from pathlib import Path

from ..private_files import private_directory, tighten, write_private

TOKEN_FILE = "token"


def load_or_create_token(data_dir: Path | None) -> str:
    """The token kept in `data_dir` (tightened to 0600 if an older run left it looser), or a
    new random one, written 0600 from its first byte; in memory without a data dir."""
    if data_dir is None:
        return secrets.token_urlsafe(32)
    path = data_dir / TOKEN_FILE
    private_directory(data_dir)
    if path.exists():
        tighten(path)
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    write_private(path, token.encode())
    return token
