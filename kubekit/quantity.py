"""Kubernetes resource quantities ("4Gi", "500m", "1.5", "1e3"), parsed exactly.

Quantities are compared by value, never as strings: "1Gi" equals "1024Mi", and "1.5" equals
"1500m". Values are held as `fractions.Fraction`, so no float ever rounds one
(k8s.io/apimachinery `pkg/api/resource/quantity.go` is the model of the grammar).
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction
from typing import Final

_BINARY_SUFFIXES: Final[dict[str, int]] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL_SUFFIXES: Final[dict[str, Fraction]] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_SUFFIX = rf"(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?{_NUMBER})"

#: Any quantity the Kubernetes API accepts (the grammar in quantity.go), signed.
QUANTITY_PATTERN: Final[str] = rf"^[+-]?{_NUMBER}{_SUFFIX}?$"
#: A non-negative quantity; what the VDC API accepts for sizes ("4Gi", "512Mi").
SIZE_PATTERN: Final[str] = rf"^\+?{_NUMBER}{_SUFFIX}?$"

_QUANTITY_RE: Final = re.compile(rf"^(?P<sign>[+-]?)(?P<number>{_NUMBER})(?P<suffix>{_SUFFIX})?$")


Quantity = str | int | float


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse_quantity(value: Quantity) -> Fraction:
    """Returns the exact value of a quantity: "4Gi" -> 4294967296, "500m" -> 1/2.

    Numbers are accepted because YAML turns `cpu: 2` into an int (and JSON `1.5` a float).
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    return _parse_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> Fraction:
    """Cached: controllers and the scheduler read the same few quantity strings ("2Gi",
    "500m") of every pod and host on every pass. Fractions are immutable, so sharing is safe."""
    match = _QUANTITY_RE.match(value.strip())
    if match is None:
        raise QuantityError(f"{value!r} is not a quantity (e.g. '4Gi', '500m', '1.5')")
    number = Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIXES:
        magnitude = number * _BINARY_SUFFIXES[suffix]
    elif suffix in _DECIMAL_SUFFIXES:
        magnitude = number * _DECIMAL_SUFFIXES[suffix]
    else:  # decimal exponent, "1e3" or "2E-3"
        exponent = Fraction(suffix[1:])
        if exponent.denominator != 1:
            raise QuantityError(f"{value!r} has a fractional exponent")
        magnitude = number * Fraction(10) ** int(exponent)
    return -magnitude if match["sign"] == "-" else magnitude


def is_quantity(value: Quantity) -> bool:
    """True when `value` parses as a quantity."""
    try:
        parse_quantity(value)
    except QuantityError:
        return False
    return True


def compare_quantities(left: Quantity, right: Quantity) -> int:
    """-1, 0 or 1 as `left` is smaller than, equal to or larger than `right`."""
    difference = parse_quantity(left) - parse_quantity(right)
    return (difference > 0) - (difference < 0)


def quantities_equal(left: Quantity, right: Quantity) -> bool:
    """True when both name the same amount, however written ("1Gi" == "1024Mi")."""
    return compare_quantities(left, right) == 0


def to_bytes(value: Quantity) -> int:
    """The quantity as a whole number of bytes, rounded up as Kubernetes does."""
    return math.ceil(parse_quantity(value))


def to_millis(value: Quantity) -> int:
    """The quantity in thousandths, rounded up ("1.5" -> 1500, "250m" -> 250)."""
    return math.ceil(parse_quantity(value) * 1000)


def format_bytes(amount: int) -> str:
    """Bytes in the largest exact binary unit: 4294967296 -> "4Gi", 1536 -> "1536"."""
    if amount == 0:
        return "0"
    for suffix, factor in reversed(_BINARY_SUFFIXES.items()):
        if amount % factor == 0:
            return f"{amount // factor}{suffix}"
    return str(amount)


def format_millis(millis: int) -> str:
    """Thousandths as Kubernetes prints CPU: 2000 -> "2", 1500 -> "1500m"."""
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


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
