"""Programmatic units of OVF and CIM (DSP0004 annex C.1): `byte * 2^20`, `MegaBytes`."""

from __future__ import annotations

import re

from .errors import OvfError

_PROGRAMMATIC = re.compile(
    r"^\s*(?:byte|bytes)\s*(?:\*\s*(\d+)\s*(?:\^\s*(-?\d+))?\s*)?$", re.IGNORECASE)
#: Unit names some writers use instead; VirtualBox writes MegaBytes and means MiB.
_NAMED = {
    "byte": 1, "bytes": 1, "b": 1,
    "kilobytes": 2**10, "kilobyte": 2**10, "kb": 2**10, "kib": 2**10,
    "megabytes": 2**20, "megabyte": 2**20, "mb": 2**20, "mib": 2**20,
    "gigabytes": 2**30, "gigabyte": 2**30, "gb": 2**30, "gib": 2**30,
    "terabytes": 2**40, "terabyte": 2**40, "tb": 2**40, "tib": 2**40,
}


def bytes_per_unit(units: str, where: str) -> int:
    """How many bytes one `units` is."""
    named = _NAMED.get(units.strip().lower())
    if named is not None:
        return named
    found = _PROGRAMMATIC.match(units)
    if found is None:
        raise OvfError(f"{where}: unknown allocation units {units!r} (expected e.g. "
                       "'byte * 2^20' or 'MegaBytes')")
    base = int(found[1]) if found[1] else 1
    exponent = int(found[2]) if found[2] else 1
    if exponent < 0:
        raise OvfError(f"{where}: allocation units {units!r} are smaller than a byte")
    return int(base**exponent) if found[1] else 1


def to_bytes(quantity: str, units: str | None, default_units: str, where: str) -> int:
    """`quantity` (a whole number) of `units` in bytes."""
    try:
        amount = int(quantity.strip())
    except ValueError:
        raise OvfError(f"{where}: {quantity!r} is not a whole number") from None
    if amount < 0:
        raise OvfError(f"{where}: {quantity!r} is negative")
    return amount * bytes_per_unit(units or default_units, where)


def quantity(size_bytes: int) -> str:
    """A Kubernetes quantity for a size, in the largest binary unit that holds it whole."""
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size_bytes and size_bytes % factor == 0:
            return f"{size_bytes // factor}{suffix}"
    return str(size_bytes)
