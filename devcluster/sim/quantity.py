"""Kubernetes resource quantities as exact numbers (k8s.io/apimachinery resource.Quantity).

Quantities are parsed into `Fraction`s so that "0.1", "100m" and "1e-1" compare equal and
nothing is lost to floating point. CPU is handled in millicores and memory in bytes, the
units the scheduler and kubelet use; both round up, as `MilliValue()`/`Value()` do.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY_SUFFIXES: dict[str, int] = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
}
_DECIMAL_SUFFIXES: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Same grammar as apimachinery: a signed decimal number followed by a binary suffix, a
# decimal suffix, or a decimal exponent ("1e3"). "E" alone is exa, "E3" is an exponent.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>[KMGTPE]i|[eE][+-]?[0-9]+|[numkMGTPE]?)$"
)

Quantity = str | int | float


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse_quantity(value: Quantity) -> Fraction:
    """Parse a quantity ("100m", "2Gi", "1.5", 3) into its exact value in base units."""
    if isinstance(value, bool):
        raise QuantityError(f"quantities must match the regular expression: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise QuantityError(
            "quantities must match the regular expression "
            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {value!r}"
        )
    number = Fraction(match["number"])
    suffix = match["suffix"]
    if suffix in _BINARY_SUFFIXES:
        return number * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return number * _DECIMAL_SUFFIXES[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def cpu_millicores(value: Quantity) -> int:
    """CPU quantity in millicores, rounded up like Quantity.MilliValue()."""
    return math.ceil(parse_quantity(value) * 1000)


def memory_bytes(value: Quantity) -> int:
    """Memory (or any integer resource) quantity in base units, rounded up like Value()."""
    return math.ceil(parse_quantity(value))


def format_cpu_millicores(millicores: int) -> str:
    """Canonical DecimalSI form the API server serialises: 2000 -> "2", 1200 -> "1200m"."""
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_binary_bytes(value: int) -> str:
    """Canonical BinarySI form: the largest power-of-1024 suffix that divides exactly.

    Values that are not a multiple of 1024 (or below 1024) print as plain bytes, as
    apimachinery falls back to DecimalSI rather than lose precision.
    """
    if -1024 < value < 1024:
        return str(value)
    suffix = ""
    for candidate in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"):
        if value % 1024 != 0:
            break
        value //= 1024
        suffix = candidate
    return f"{value}{suffix}"


def format_decimal(value: int) -> str:
    """Canonical DecimalSI form of an integer: the largest power-of-1000 suffix that divides."""
    if value == 0:
        return "0"
    suffix = ""
    for candidate in ("k", "M", "G", "T", "P", "E"):
        if value % 1000 != 0:
            break
        value //= 1000
        suffix = candidate
    return f"{value}{suffix}"
