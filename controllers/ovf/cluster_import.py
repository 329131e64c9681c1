"""Creating the imported objects in a cluster (not written yet: --dry-run only)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .command import PreparedImport


def run_import(prepared: PreparedImport, *, kubeconfig: Path | None,
               uploadproxy_url: str | None, insecure: bool) -> int:
    print("Error: importing into a cluster is not available yet; use --dry-run",
          file=sys.stderr)
    return 1
