"""Quantities parse exactly and print in the API server's canonical form."""

from fractions import Fraction

import pytest

from kubekit.quantity import (
    QuantityError,
    format_bytes,
    format_decimal,
    format_millis,
    parse_quantity,
    to_bytes,
    to_millis,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100m", Fraction(1, 10)),
        ("0.1", Fraction(1, 10)),
        ("1e-1", Fraction(1, 10)),
        ("2Gi", 2 * 1024**3),
        ("1.5Gi", 1536 * 1024**2),
        ("50M", 50_000_000),
        ("1E", 10**18),
        ("1e3", 1000),
        (3, 3),
    ],
)
def test_parse_quantity_is_exact(text: str | int, expected: Fraction | int) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "1.2.3", "Gi", "5 Mi", "1iB"])
def test_parse_quantity_rejects_malformed_text(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_cpu_millicores_round_up_like_milli_value() -> None:
    assert to_millis("1.2") == 1200
    assert to_millis("0.0001") == 1


def test_memory_bytes_round_up_like_value() -> None:
    assert to_bytes("1.5") == 2
    assert to_bytes("288Mi") == 288 * 1024**2


@pytest.mark.parametrize(("millis", "text"), [(100, "100m"), (2000, "2"), (1200, "1200m")])
def test_format_cpu_millicores_is_canonical(millis: int, text: str) -> None:
    assert format_millis(millis) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2336 * 1024**2, "2336Mi"),
        (2 * 1024**3, "2Gi"),
        (1000, "1000"),
        (2_447_483_648, "2447483648"),
    ],
)
def test_format_binary_bytes_uses_largest_exact_suffix(value: int, text: str) -> None:
    assert format_bytes(value) == text


def test_format_decimal_uses_largest_exact_suffix() -> None:
    assert format_decimal(50_000_000) == "50M"
    assert format_decimal(11_422_785_362) == "11422785362"
