"""Kubernetes quantities are compared by value, exactly."""

from fractions import Fraction

import pytest

from kubekit.quantity import (
    QUANTITY_PATTERN,
    SIZE_PATTERN,
    QuantityError,
    compare_quantities,
    format_bytes,
    format_millis,
    parse_quantity,
    quantities_equal,
    to_bytes,
    to_millis,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4Gi", 4 * 2**30),
        ("512Mi", 512 * 2**20),
        ("500m", Fraction(1, 2)),
        ("1.5", Fraction(3, 2)),
        ("1.5Gi", 1536 * 2**20),
        ("1e3", 1000),
        ("2E-3", Fraction(2, 1000)),
        ("10k", 10_000),
        ("1M", 10**6),
        (".5", Fraction(1, 2)),
        ("-1", -1),
        (3, 3),
    ],
)
def test_parses_the_kubernetes_grammar(text: str | int, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "4GB", "4 Gi", "1.2.3", "4gi", "abc", "1e1.5"])
def test_rejects_what_kubernetes_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_same_amount_written_differently_is_equal() -> None:
    assert quantities_equal("1Gi", "1024Mi")
    assert quantities_equal("1.5", "1500m")
    assert quantities_equal("1k", "1000")
    assert not quantities_equal("1G", "1Gi")


def test_compares_by_value_not_text() -> None:
    assert compare_quantities("900Mi", "1Gi") == -1
    assert compare_quantities("2", "1500m") == 1
    assert compare_quantities("4096Mi", "4Gi") == 0


def test_rounds_up_to_whole_units() -> None:
    assert to_bytes("1.5") == 2
    assert to_bytes("1Ki") == 1024
    assert to_millis("0.1m") == 1
    assert to_millis("2") == 2000


def test_formats_in_the_largest_exact_unit() -> None:
    assert format_bytes(4 * 2**30) == "4Gi"
    assert format_bytes(1536 * 2**20) == "1536Mi"
    assert format_bytes(1000) == "1000"
    assert format_bytes(0) == "0"
    assert format_millis(2000) == "2"
    assert format_millis(1500) == "1500m"


def test_patterns_agree_with_the_parser() -> None:
    import re

    for text in ["4Gi", "500m", "1.5", "1e3", "+2"]:
        assert re.match(SIZE_PATTERN, text), text
        assert re.match(QUANTITY_PATTERN, text), text
    assert re.match(QUANTITY_PATTERN, "-1")
    assert not re.match(SIZE_PATTERN, "-1Gi")
    assert not re.match(SIZE_PATTERN, "4GB")
