"""The parts of an API object the simulation's controllers read, never None.

An object from a watch or a list may lack metadata, spec or status (or hold null); these
give an empty mapping instead, so readers chain `.get` without guarding each level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = Mapping[str, Any]


def metadata_of(obj: Obj | None) -> Obj:
    meta: Obj = (obj or {}).get("metadata") or {}
    return meta


def spec_of(obj: Obj | None) -> Obj:
    spec: Obj = (obj or {}).get("spec") or {}
    return spec


def status_of(obj: Obj | None) -> Obj:
    status: Obj = (obj or {}).get("status") or {}
    return status
