"""Structural schemas applied to custom resources, the way kube-apiserver applies them.

The order of work on a write is kube's: `prune` (drop unknown fields and non-nullable nulls),
`apply_defaults`, then `validate`. Messages are worded as kube-openapi's validator words them
after apiextensions-apiserver has turned them into field errors (`Invalid value: 0: spec.size in
body should be greater than or equal to 1`). CEL rules (`x-kubernetes-validations`) are
evaluated separately, by `cel_rules.py`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import math
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from devcluster.apiserver.errors import Cause

JSON = Any
Schema = dict[str, Any]

INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
REQUIRED = "FieldValueRequired"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
FORBIDDEN = "FieldValueForbidden"

_META_FIELDS = ("apiVersion", "kind", "metadata")


# --- Go-compatible rendering of values in messages -------------------------------------------


def _decimal_digits(value: float) -> tuple[str, int]:
    """Shortest round-tripping digits of abs(value) and where the decimal point goes."""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    return digits.rstrip("0") or "0", len(digits) + exponent


def _format_float(value: float, use_exponent: Callable[[int], bool], exp_digits: int) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits, point = _decimal_digits(value)
    exponent = point - 1
    if use_exponent(exponent):
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp_sign = "-" if exponent < 0 else "+"
        return f"{sign}{mantissa}e{exp_sign}{abs(exponent):0{exp_digits}d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_float(value: float) -> str:
    """Go's `%v` of a float64: shortest digits, exponent form below 1e-4 and from 1e6 up."""
    return _format_float(value, lambda exponent: exponent < -4 or exponent >= 6, 2)


def go_number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else go_float(value)


def go_json(value: JSON) -> str:
    """Go's encoding/json.Marshal: compact, sorted keys, HTML-safe escapes, integral floats bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value, lambda exponent: exponent < -6 or exponent >= 21, 1)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escape)
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{go_json(str(k))}:{go_json(v)}" for k, v in sorted(value.items()))
        return "{" + ",".join(items) + "}"
    return json.dumps(value)


def go_quote(text: str) -> str:
    """Go's `%q` of a string (close enough: JSON quoting without HTML escapes)."""
    return json.dumps(text, ensure_ascii=False)


def render_bad_value(value: JSON) -> str:
    """How field.Error.ErrorBody prints a bad value."""
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    return go_json(value)


def invalid_cause(field: str, value: JSON, detail: str, reason: str = INVALID) -> Cause:
    message = f"Invalid value: {render_bad_value(value)}"
    return Cause(field=field, message=f"{message}: {detail}" if detail else message, reason=reason)


def required_cause(field: str, detail: str = "") -> Cause:
    message = f"Required value: {detail}" if detail else "Required value"
    return Cause(field=field, message=message, reason=REQUIRED)


def forbidden_cause(field: str, detail: str) -> Cause:
    return Cause(field=field, message=f"Forbidden: {detail}", reason=FORBIDDEN)


def not_supported_cause(field: str, value: JSON, supported: list[str]) -> Cause:
    message = f"Unsupported value: {render_bad_value(value)}"
    if supported:
        message += ": supported values: " + ", ".join(go_quote(s) for s in supported)
    return Cause(field=field, message=message, reason=NOT_SUPPORTED)


def too_many_cause(field: str, actual: int, maximum: int) -> Cause:
    noun = "item" if maximum == 1 else "items"
    detail = f"must have at most {maximum} {noun}" if maximum >= 0 else "has too many items"
    head = f"Too many: {actual}" if actual >= 0 else "Too many"
    return Cause(field=field, message=f"{head}: {detail}", reason=TOO_MANY)


def too_long_cause(field: str, maximum: int) -> Cause:
    noun = "byte" if maximum == 1 else "bytes"
    detail = f"may not be more than {maximum} {noun}" if maximum >= 0 else "value is too long"
    return Cause(field=field, message=f"Too long: {detail}", reason=TOO_LONG)


def duplicate_cause(field: str, value: JSON) -> Cause:
    return Cause(
        field=field, message=f"Duplicate value: {render_bad_value(value)}", reason=DUPLICATE
    )


# --- JSON types -------------------------------------------------------------------------------


def json_type(value: JSON) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _same_json(left: JSON, right: JSON) -> bool:
    """Deep equality that keeps booleans apart from numbers (Python's 1 == True is not JSON's)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same_json, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same_json(left[k], right[k]) for k in left)
    return type(left) is type(right) and bool(left == right)


def _schema_types(schema: Schema) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    kind = schema.get("type")
    return [kind] if isinstance(kind, str) and kind else []


# --- formats (kube-openapi strfmt, restricted to what apiextensions keeps) --------------------

_HOSTNAME = re.compile(
    r"^([a-zA-Z0-9\w]((-?[a-zA-Z0-9\w]{0,62})?)|([a-zA-Z0-9\w](([a-zA-Z0-9\-\w]{0,61}"
    r"[a-zA-Z0-9\w])?)(\.)){1,}([a-zA-Z\w]){2,63})$"
)
_UUID = {
    "uuid": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid3": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid4": re.compile(
        r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"
    ),
    "uuid5": re.compile(
        r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"
    ),
}
_TIME_OF_DAY = re.compile(
    r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"
)
_SHORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LONG_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_GO_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$|^[-+]?0$")
_SCALA_DURATION = re.compile(r"(\d+)\s*([A-Za-zµ]+)")
_DURATION_UNITS = (
    ("ns", "nano"),
    ("us", "µs", "micro"),
    ("ms", "milli"),
    ("s", "sec"),
    ("m", "min"),
    ("h", "hr", "hour"),
    ("d", "day"),
    ("w", "wk", "week"),
)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_MAC = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5,19}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{4}\.){2,9}[0-9A-Fa-f]{4}$"
)
_HEX_COLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGB_COLOR = re.compile(
    r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])"
    r"\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$"
)
_SSN = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$")


def _is_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_date_time(text: str) -> bool:
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not _is_date(parts[0]):
        return False
    match = _TIME_OF_DAY.match(parts[1])
    if match is None:
        return False
    return match[1] <= "23" and match[2] <= "59" and match[3] <= "59"


def _is_duration(text: str) -> bool:
    if _GO_DURATION.match(text):
        return True
    for _, unit_text in _SCALA_DURATION.findall(text):
        unit = unit_text.lower().strip()
        for variants in _DURATION_UNITS:
            last = len(variants) - 1
            for i, variant in enumerate(variants):
                if (i == last and unit.startswith(variant)) or variant.lower() == unit:
                    return True
    return False


def _is_hostname(text: str) -> bool:
    return (
        bool(_HOSTNAME.match(text))
        and len(text) <= 255
        and all(len(part) <= 63 for part in text.split("."))
    )


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "." in text


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_uri(text: str) -> bool:
    # Go's url.ParseRequestURI: an absolute URI, or an absolute path.
    return bool(re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:\S+|/\S*)$", text))


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        number = int(char)
        if i % 2 == 1:
            number = number * 2 - 9 if number * 2 > 9 else number * 2
        total += number
    return total % 10 == 0


def _is_isbn10(text: str) -> bool:
    clean = re.sub(r"[\s-]", "", text)
    if not re.fullmatch(r"[0-9]{9}[0-9X]", clean):
        return False
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(clean))
    return total % 11 == 0


def _is_isbn13(text: str) -> bool:
    clean = re.sub(r"[\s-]", "", text)
    if not re.fullmatch(r"[0-9]{13}", clean):
        return False
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(clean))
    return total % 10 == 0


def _is_credit_card(text: str) -> bool:
    digits = re.sub(r"[^0-9]", "", text)
    pattern = (
        r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|"
        r"27[01][0-9]|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|"
        r"3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14})$"
    )
    return bool(re.match(pattern, digits)) and _luhn(digits)


# Keyed by the normalised name (dashes removed), as go-openapi's registry keys them.
FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda s: bool(re.fullmatch(r"[0-9a-fA-F]{24}", s)),
    "uri": _is_uri,
    "email": lambda s: bool(_EMAIL.match(s)),
    "hostname": _is_hostname,
    "ipv4": _is_ipv4,
    "ipv6": _is_ipv6,
    "cidr": _is_cidr,
    "mac": lambda s: bool(_MAC.match(s)),
    "uuid": lambda s: bool(_UUID["uuid"].match(s)),
    "uuid3": lambda s: bool(_UUID["uuid3"].match(s)),
    "uuid4": lambda s: bool(_UUID["uuid4"].match(s)),
    "uuid5": lambda s: bool(_UUID["uuid5"].match(s)),
    "isbn": lambda s: _is_isbn10(s) or _is_isbn13(s),
    "isbn10": _is_isbn10,
    "isbn13": _is_isbn13,
    "creditcard": _is_credit_card,
    "ssn": lambda s: bool(_SSN.match(s)),
    "hexcolor": lambda s: bool(_HEX_COLOR.match(s)),
    "rgbcolor": lambda s: bool(_RGB_COLOR.match(s)),
    "byte": _is_base64,
    "password": lambda s: True,
    "date": _is_date,
    "duration": _is_duration,
    "datetime": _is_date_time,
    "k8sshortname": lambda s: len(s) <= 63 and bool(_SHORT_NAME.match(s)),
    "k8slongname": lambda s: len(s) <= 253 and bool(_LONG_NAME.match(s)),
}


def effective_format(schema: Schema) -> str:
    """The format after apiextensions strips those it does not support for the type."""
    fmt = schema.get("format")
    if not isinstance(fmt, str) or not fmt:
        return ""
    types = _schema_types(schema)
    schema_type = types[0] if len(types) == 1 else ""
    if schema_type in ("", "string"):
        return fmt if fmt.replace("-", "") in FORMAT_CHECKS else ""
    if schema_type == "integer":
        return fmt if fmt in ("int32", "int64") else ""
    if schema_type == "number":
        return fmt if fmt in ("float", "double") else ""
    return ""


# --- value validation (kube-openapi's SchemaValidator) ----------------------------------------


def _field_of(name: str) -> str:
    # apiextensions turns a validator's path into a field path by dropping one leading dot.
    return name[1:] if name.startswith(".") else name


class _Validator:
    """Walks a value and its schema; produces causes in kube-openapi's validator order."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def run(self, value: JSON, schema: Schema, path: str) -> list[Cause]:
        sub = _Validator()
        sub.value(value, schema, path)
        return sub.causes

    def value(self, value: JSON, schema: Schema, path: str) -> None:
        if value is None:
            self._type(value, schema, path)
            self._enum(value, schema, path)
            return
        self._type(value, schema, path)
        self._combinators(value, schema, path)
        if isinstance(value, str):
            self._string(value, schema, path)
            self._format(value, schema, path)
        if isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path)
        if isinstance(value, list):
            self._array(value, schema, path)
        self._enum(value, schema, path)
        if isinstance(value, dict):
            self._object(value, schema, path)

    def _invalid_type(self, path: str, type_name: str, shown: str) -> None:
        detail = f"{path} in body must be of type {type_name}: {go_quote(shown)}"
        self.causes.append(invalid_cause(_field_of(path), shown, detail, TYPE_INVALID))

    def _type(self, value: JSON, schema: Schema, path: str) -> None:
        types = _schema_types(schema)
        fmt = effective_format(schema)
        if not types and not fmt:
            return
        if value is None:
            if types and "null" not in types and not schema.get("nullable"):
                self._invalid_type(path, ",".join(types), "null")
            return
        actual = json_type(value)
        data_format = "int64" if actual == "integer" else "float64" if actual == "number" else ""
        float_int = actual == "number" and float(value).is_integer() and "integer" in types
        int_float = actual == "integer" and "number" in types
        if (
            not isinstance(value, str | list)
            and fmt
            and not (actual in types or data_format == fmt or float_int or int_float)
        ):
            self._invalid_type(path, fmt, data_format)
            return
        if (
            "number" not in types
            and "integer" not in types
            and fmt
            and isinstance(value, str | list)
        ):
            return
        if not (actual in types or float_int or int_float):
            self._invalid_type(path, ",".join(types), actual)

    def _combinators(self, value: JSON, schema: Schema, path: str) -> None:
        quoted = go_quote(path)
        any_of = schema.get("anyOf") or []
        if any_of:
            results = [self.run(value, sub, path) for sub in any_of]
            if not any(not r for r in results):
                self.causes.append(
                    invalid_cause("", "", f"{quoted} must validate at least one schema (anyOf)")
                )
                self.causes.extend(_fewest(results))
        one_of = schema.get("oneOf") or []
        if one_of:
            results = [self.run(value, sub, path) for sub in one_of]
            valid = sum(1 for r in results if not r)
            if valid != 1:
                found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
                detail = f"{quoted} must validate one and only one schema (oneOf). {found}"
                self.causes.append(invalid_cause("", "", detail))
                if valid == 0:
                    self.causes.extend(_fewest(results))
        all_of = schema.get("allOf") or []
        if all_of:
            results = [self.run(value, sub, path) for sub in all_of]
            for result in results:
                self.causes.extend(result)
            valid = sum(1 for r in results if not r)
            if valid != len(all_of):
                extra = ". None validated" if valid == 0 else ""
                detail = f"{quoted} must validate all the schemas (allOf){extra}"
                self.causes.append(invalid_cause("", "", detail))
        negated = schema.get("not")
        if isinstance(negated, dict) and not self.run(value, negated, path):
            self.causes.append(
                invalid_cause("", "", f"{quoted} must not validate the schema (not)")
            )

    def _string(self, value: str, schema: Schema, path: str) -> None:
        field = _field_of(path)
        max_length = schema.get("maxLength")
        if isinstance(max_length, int) and len(value) > max_length:
            self.causes.append(too_long_cause(field, max_length))
            return
        min_length = schema.get("minLength")
        if isinstance(min_length, int) and len(value) < min_length:
            detail = f"{path} in body should be at least {min_length} chars long"
            self.causes.append(invalid_cause(field, value, detail))
            return
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and pattern:
            try:
                matched = re.search(pattern, value) is not None
                shown = pattern
            except re.error as error:
                matched, shown = False, f"{pattern}, but pattern is invalid: {error}"
            if not matched:
                detail = f"{path} in body should match '{shown}'"
                self.causes.append(invalid_cause(field, value, detail))

    def _format(self, value: str, schema: Schema, path: str) -> None:
        fmt = effective_format(schema)
        check = FORMAT_CHECKS.get(fmt.replace("-", "")) if fmt else None
        if check is not None and not check(value):
            detail = f"{path} in body must be of type {fmt}: {go_quote(value)}"
            self.causes.append(invalid_cause(_field_of(path), value, detail, TYPE_INVALID))

    def _number(self, value: int | float, schema: Schema, path: str) -> None:
        types = _schema_types(schema)
        type_name = types[0] if len(types) == 1 and types[0] in ("integer", "number") else ""
        fmt = effective_format(schema) if type_name else ""
        range_error = _range_error(value, type_name, fmt, "Checked", path)
        if range_error:
            self.causes.append(invalid_cause("", "", range_error))
        field = _field_of(path)
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int | float) and not isinstance(multiple, bool):
            self._multiple_of(value, multiple, type_name, fmt, path, field)
        for key, exclusive_key, lower in (
            ("minimum", "exclusiveMinimum", True),
            ("maximum", "exclusiveMaximum", False),
        ):
            bound = schema.get(key)
            if not isinstance(bound, int | float) or isinstance(bound, bool):
                continue
            exclusive = bool(schema.get(exclusive_key))
            label = "Minimum boundary" if lower else "Maximum boundary"
            bound_error = _range_error(bound, type_name, fmt, label, path)
            if bound_error:
                self.causes.append(invalid_cause("", "", bound_error))
            native = isinstance(value, int) and not bound_error
            limit: int | float = int(bound) if native else float(bound)
            compared: int | float = value if native else float(value)
            if lower:
                failed = compared <= limit if exclusive else compared < limit
                words = "greater than" if exclusive else "greater than or equal to"
            else:
                failed = compared >= limit if exclusive else compared > limit
                words = "less than" if exclusive else "less than or equal to"
            if failed:
                detail = f"{path} in body should be {words} {go_number(limit)}"
                self.causes.append(invalid_cause(field, value, detail))

    def _multiple_of(
        self, value: int | float, factor: float, type_name: str, fmt: str, path: str, field: str
    ) -> None:
        native = isinstance(value, int) and not _range_error(factor, type_name, fmt, "", path)
        shown_factor: int | float = int(factor) if native else float(factor)
        if shown_factor <= 0:
            detail = f"factor MultipleOf declared for {path} must be positive: {go_number(factor)}"
            self.causes.append(invalid_cause(field, factor, detail))
            return
        if native:
            ok = int(value) % int(shown_factor) == 0
        else:
            ratio = (1 / factor * value) if factor < 1 else value / factor
            ok = float(ratio).is_integer() and abs(ratio) < 2**53
        if not ok:
            detail = f"{path} in body should be a multiple of {go_number(shown_factor)}"
            self.causes.append(invalid_cause(field, value, detail))

    def _array(self, value: list[JSON], schema: Schema, path: str) -> None:
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                self.value(item, items, f"{path}[{index}]")
        field = _field_of(path)
        min_items = schema.get("minItems")
        if isinstance(min_items, int) and len(value) < min_items:
            detail = f"{path} in body should have at least {min_items} items"
            self.causes.append(invalid_cause(field, len(value), detail))
        max_items = schema.get("maxItems")
        if isinstance(max_items, int) and len(value) > max_items:
            self.causes.append(too_many_cause(field, len(value), max_items))
        if schema.get("uniqueItems"):
            for index, item in enumerate(value):
                if any(_same_json(item, earlier) for earlier in value[:index]):
                    detail = f"{path} in body shouldn't contain duplicates"
                    self.causes.append(invalid_cause(field, "", detail))
                    break

    def _enum(self, value: JSON, schema: Schema, path: str) -> None:
        allowed = schema.get("enum")
        if not isinstance(allowed, list) or not allowed:
            return
        if value is not None and any(_same_json(value, option) for option in allowed):
            return
        shown = [o if isinstance(o, str) else go_json(o) for o in allowed]
        self.causes.append(not_supported_cause(_field_of(path), value, shown))

    def _object(self, value: dict[str, JSON], schema: Schema, path: str) -> None:
        field = _field_of(path)
        count = len(value)
        min_props = schema.get("minProperties")
        if isinstance(min_props, int) and count < min_props:
            detail = f"{path} in body should have at least {min_props} properties"
            self.causes.append(invalid_cause(field, count, detail))
        max_props = schema.get("maxProperties")
        if isinstance(max_props, int) and count > max_props:
            self.causes.append(too_many_cause(field, count, max_props))
        properties: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        if additional is False:
            for key in value:
                if key not in properties:
                    detail = f"{path}.{key} in body is a forbidden property"
                    self.causes.append(invalid_cause(field, key, detail))
        elif isinstance(additional, dict):
            for key, item in value.items():
                if key not in properties:
                    self.value(item, additional, f"{path}.{key}")
        for name, sub in properties.items():
            if name in value:
                self.value(value[name], sub, f"{path}.{name}" if path else name)
        for name in schema.get("required") or []:
            if name not in value:
                self.causes.append(required_cause(_field_of(f"{path}.{name}")))


def _fewest(results: list[list[Cause]]) -> list[Cause]:
    """The alternative that came closest (kube keeps the one with most passing checks)."""
    best = results[0]
    for result in results[1:]:
        if len(result) < len(best):
            best = result
    return best


def _range_error(value: int | float, type_name: str, fmt: str, prefix: str, path: str) -> str:
    """kube-openapi's IsValueValidAgainstRange: does the number fit the declared type/format?"""
    if type_name == "integer":
        bits = 32 if fmt == "int32" else 64
        integral = isinstance(value, int) or float(value).is_integer()
        fits = integral and -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
        if integral and isinstance(value, float) and abs(value) >= 1e21:
            fits = False  # Go formats such floats with an exponent, which ParseInt rejects
        if fits:
            return ""
    elif type_name == "number" and fmt == "float":
        if abs(float(value)) <= 3.4028234663852886e38:
            return ""
    else:
        return ""
    if fmt:
        return f"{prefix} value must be of type {type_name} with format {fmt} in {path}"
    return f"{prefix} value must be of type {type_name} (default format) in {path}"


# --- list-type and embedded-resource checks (apiextensions, after the schema) -----------------


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _list_key(value: JSON) -> str:
    return go_json(value) if isinstance(value, dict | list) else f"{json_type(value)}:{value!r}"


def _duplicates(items: list[JSON]) -> list[int]:
    seen: dict[str, int] = {}
    repeated: list[int] = []
    for index, item in enumerate(items):
        key = _list_key(item)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            repeated.append(index)
    return repeated


def _list_types(value: JSON, schema: Schema | None, path: str) -> list[Cause]:
    if schema is None:
        return []
    causes: list[Cause] = []
    if isinstance(value, dict):
        additional = schema.get("additionalProperties")
        properties: dict[str, Schema] = schema.get("properties") or {}
        for key, item in value.items():
            if isinstance(additional, dict):
                causes += _list_types(item, additional, f"{path}[{key}]")
            if key in properties:
                causes += _list_types(item, properties[key], _child(path, key))
    elif isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set":
            causes += [duplicate_cause(f"{path}[{i}]", value[i]) for i in _duplicates(value)]
        elif list_type == "map":
            causes += _list_map_duplicates(value, schema.get("x-kubernetes-list-map-keys"), path)
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                causes += _list_types(item, items, f"{path}[{index}]")
    return causes


def _list_map_duplicates(value: list[JSON], map_keys: JSON, path: str) -> list[Cause]:
    for index, item in enumerate(value):
        if item is not None and not isinstance(item, dict):
            detail = "must be an object for an array of list-type map"
            return [invalid_cause(f"{path}[{index}]", item, detail)]
    names = [k for k in map_keys or [] if isinstance(k, str)]
    keys: list[dict[str, JSON]] = []
    for item in value:
        entry = item or {}
        keys.append({name: entry[name] for name in names if name in entry})
    return [duplicate_cause(f"{path}[{i}]", keys[i]) for i in _duplicates(keys)]


_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def dns1035_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1035.match(value):
        errors.append(DNS1035_MESSAGE)
    return errors


def _embedded(value: JSON, schema: Schema | None, path: str) -> list[Cause]:
    if schema is None:
        return []
    causes: list[Cause] = []
    if isinstance(value, dict):
        if schema.get("x-kubernetes-embedded-resource"):
            causes += _embedded_resource(value, path)
        properties: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                causes += _embedded(item, properties[key], _child(path, key))
            elif isinstance(additional, dict):
                causes += _embedded(item, additional, f"{path}[{key}]")
    elif isinstance(value, list):
        items = schema.get("items")
        for index, item in enumerate(value):
            causes += _embedded(
                item, items if isinstance(items, dict) else None, f"{path}[{index}]"
            )
    return causes


def _embedded_resource(value: dict[str, JSON], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for name in ("apiVersion", "kind"):
        if name not in value:
            causes.append(required_cause(_child(path, name)))
    api_version = value.get("apiVersion")
    if "apiVersion" in value:
        field = _child(path, "apiVersion")
        if not isinstance(api_version, str):
            causes.append(invalid_cause(field, api_version, "must be a string"))
        elif not api_version:
            causes.append(invalid_cause(field, api_version, "must not be empty"))
        elif api_version.count("/") > 1:
            detail = f"unexpected GroupVersion string: {api_version}"
            causes.append(invalid_cause(field, api_version, detail))
    kind = value.get("kind")
    if "kind" in value:
        field = _child(path, "kind")
        if not isinstance(kind, str):
            causes.append(invalid_cause(field, kind, "must be a string"))
        elif not kind:
            causes.append(invalid_cause(field, kind, "must not be empty"))
        elif errors := dns1035_errors(kind.lower()):
            detail = "may have mixed case, but should otherwise match: " + ",".join(errors)
            causes.append(invalid_cause(field, kind, detail))
    if "metadata" in value and not isinstance(value["metadata"], dict):
        causes.append(
            invalid_cause(_child(path, "metadata"), value["metadata"], "must be an object")
        )
    return causes


def validate(obj: dict[str, Any], schema: dict[str, Any]) -> list[Cause]:
    """Validate a custom object against its version's openAPIV3Schema.

    Root `metadata` is checked only against what the schema says of it (name/generateName
    limits): the rest of ObjectMeta is the server's job. CEL rules are cel_rules.py's job.
    """
    checker = _Validator()
    checker.value(obj, schema, "")
    return checker.causes + _embedded(obj, schema, "") + _list_types(obj, schema, "")


# --- pruning and defaulting ------------------------------------------------------------------


def _shallow(value: JSON) -> JSON:
    return dict(value) if isinstance(value, dict) else value


def _prune_into(value: JSON, schema: Schema | None, path: str, unknown: list[str]) -> JSON:
    """Copy of `value` without the fields `schema` does not know, recording their paths.

    Containers the schema describes are new; subtrees kept without a schema (preserved
    unknown fields) are shared with `value`, which callers never mutate.
    """
    if schema is not None and schema.get("x-kubernetes-preserve-unknown-fields"):
        return _prune_preserving(value, schema, path, unknown)
    if isinstance(value, dict):
        if schema is None:
            unknown.extend(_child(path, key) for key in value)
            return {}
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        properties: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        kept: dict[str, JSON] = {}
        for key, item in value.items():
            if embedded and key in _META_FIELDS:
                kept[key] = _shallow(item)
            elif key in properties:
                kept[key] = _prune_into(item, properties[key], _child(path, key), unknown)
            elif additional is not None and additional is not False:
                sub = additional if isinstance(additional, dict) else {}
                # additionalProperties: true keeps everything under it, like an empty structural.
                if additional is True:
                    kept[key] = item
                else:
                    kept[key] = _prune_into(item, sub, _child(path, key), unknown)
            else:
                unknown.append(_child(path, key))
        return kept
    if isinstance(value, list):
        items = schema.get("items") if schema is not None else None
        sub_schema = items if isinstance(items, dict) else None
        return [
            _prune_into(item, sub_schema, f"{path}[{index}]", unknown)
            for index, item in enumerate(value)
        ]
    return value


def _prune_preserving(value: JSON, schema: Schema, path: str, unknown: list[str]) -> JSON:
    if isinstance(value, dict):
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        properties: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        kept: dict[str, JSON] = {}
        for key, item in value.items():
            if embedded and key in _META_FIELDS:
                kept[key] = _shallow(item)
            elif key in properties:
                kept[key] = _prune_into(item, properties[key], _child(path, key), unknown)
            elif isinstance(additional, dict):
                kept[key] = _prune_into(item, additional, _child(path, key), unknown)
            else:
                kept[key] = item
        return kept
    if isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return value
        return [
            _prune_preserving(item, items, f"{path}[{index}]", unknown)
            for index, item in enumerate(value)
        ]
    return value


def _schema_for_key(schema: Schema | None, key: str) -> Schema | None:
    if schema is None:
        return None
    properties: dict[str, Schema] = schema.get("properties") or {}
    if key in properties:
        return properties[key]
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def _drop_non_nullable_nulls(value: JSON, schema: Schema | None) -> None:
    """Remove nulls where the schema neither allows nor defaults them (in place on a copy).

    Below a subtree without schema nothing can be dropped, so it is not walked: such
    subtrees may be shared with the caller's object.
    """
    if schema is None:
        return
    if isinstance(value, dict):
        for key in list(value):
            sub = _schema_for_key(schema, key)
            if (
                value[key] is None
                and sub is not None
                and not sub.get("nullable")
                and "default" not in sub
            ):
                del value[key]
            else:
                _drop_non_nullable_nulls(value[key], sub)
    elif isinstance(value, list):
        items = schema.get("items") if schema is not None else None
        for item in value:
            _drop_non_nullable_nulls(item, items if isinstance(items, dict) else None)


def prune(obj: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Pruned copy of a custom object and the sorted paths of what was dropped ("spec.foo").

    Paths are worded as kube reports them in `unknown field "spec.foo"` (no leading dot).
    Root apiVersion/kind/metadata are always kept; so are nulls only where the schema allows
    or defaults them (kube drops the others before defaulting).
    """
    unknown: list[str] = []
    root = dict(schema)
    root["x-kubernetes-embedded-resource"] = True
    pruned = _prune_into(obj, root, "", unknown)
    result: dict[str, Any] = pruned if isinstance(pruned, dict) else {}
    _drop_non_nullable_nulls(result, schema)
    return result, sorted(unknown)


def _pruned_default(schema: Schema) -> JSON:
    default = copy.deepcopy(schema["default"])
    return _prune_into(default, schema, "", [])


def _is_non_nullable_null(value: JSON, schema: Schema | None) -> bool:
    return value is None and schema is not None and not schema.get("nullable")


def _default_into(value: JSON, schema: Schema | None) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        properties: dict[str, Schema] = schema.get("properties") or {}
        for key, sub in properties.items():
            if "default" not in sub or sub["default"] is None:
                continue
            if key not in value or _is_non_nullable_null(value[key], sub):
                value[key] = _pruned_default(sub)
        additional = schema.get("additionalProperties")
        for key in list(value):
            if key in properties:
                _default_into(value[key], properties[key])
            elif isinstance(additional, dict):
                if _is_non_nullable_null(value[key], additional) and "default" in additional:
                    value[key] = _pruned_default(additional)
                _default_into(value[key], additional)
    elif isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return
        for index in range(len(value)):
            if _is_non_nullable_null(value[index], items) and "default" in items:
                value[index] = _pruned_default(items)
            _default_into(value[index], items)


def prune_and_default(
    obj: dict[str, Any], schema: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """`prune` then `apply_defaults`, without copying twice: defaults go straight into the
    pruned copy, whose schema-described containers are all new."""
    pruned, unknown = prune(obj, schema)
    _default_into(pruned, schema)
    return pruned, unknown


def apply_defaults(obj: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Copy of `obj` with the schema's defaults filled in where fields are absent (or null
    without being nullable), in properties, additionalProperties and array items alike.
    Defaults are pruned against their own schema first, as kube prunes them at CRD creation."""
    result = copy.deepcopy(obj)
    _default_into(result, schema)
    return result


# --- CustomResourceDefinition checks ---------------------------------------------------------

_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_OPENAPI_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_COLUMN_TYPES = "boolean,date,integer,number,string"
_COLUMN_FORMATS = "byte,date,date-time,double,float,int32,int64,password"


def dns1123_subdomain_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errors.append(DNS1123_SUBDOMAIN_MESSAGE)
    return errors


def _key(path: str, key: str) -> str:
    return f"{path}[{key}]"


def _check_structural(schema: Schema, path: str, level: str) -> list[Cause]:
    """apiextensions' structural-schema invariants (the common ones)."""
    causes: list[Cause] = []
    kind = schema.get("type")
    items = schema.get("items")
    if kind == "array" and items is None:
        causes.append(required_cause(f"{path}.items", "must be specified"))
    if isinstance(items, dict):
        causes += _check_structural(items, f"{path}.items", "item")
    elif isinstance(items, list):
        causes.append(
            forbidden_cause(f"{path}.items", "items must be a schema object and not an array")
        )
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            causes += _check_structural(sub, _key(f"{path}.properties", name), "field")
    additional = schema.get("additionalProperties")
    if additional is not None:
        if level == "root":
            causes.append(
                forbidden_cause(f"{path}.additionalProperties", "must not be used at the root")
            )
        if schema.get("properties") and (additional is False or isinstance(additional, dict)):
            detail = "additionalProperties and properties are mutual exclusive"
            causes.append(forbidden_cause(f"{path}.additionalProperties", detail))
        if isinstance(additional, dict):
            causes += _check_structural(additional, f"{path}.additionalProperties", "field")
    if isinstance(kind, str) and kind and kind not in _OPENAPI_TYPES:
        causes.append(not_supported_cause(f"{path}.type", kind, _OPENAPI_TYPES))
    int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if preserve is False:
        detail = "must be true or undefined"
        causes.append(invalid_cause(f"{path}.x-kubernetes-preserve-unknown-fields", False, detail))
    if int_or_string and preserve:
        detail = "must be false if x-kubernetes-int-or-string is true"
        causes.append(invalid_cause(f"{path}.x-kubernetes-preserve-unknown-fields", True, detail))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    if embedded and kind != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        causes.append(
            invalid_cause(f"{path}.type", kind, detail)
            if kind
            else required_cause(f"{path}.type", detail)
        )
    elif not kind and not int_or_string and not preserve:
        where = {
            "root": "at the root",
            "item": "for specified array items",
            "field": "for specified object fields",
        }[level]
        causes.append(required_cause(f"{path}.type", f"must not be empty {where}"))
    if level == "root" and kind and kind != "object":
        causes.append(invalid_cause(f"{path}.type", kind, "must be object at the root"))
    if level == "root" and schema.get("nullable"):
        causes.append(forbidden_cause(f"{path}.nullable", "nullable cannot be true at the root"))
    if embedded and not preserve and not schema.get("properties"):
        detail = (
            "must not be empty if x-kubernetes-embedded-resource is true without "
            "x-kubernetes-preserve-unknown-fields"
        )
        causes.append(required_cause(f"{path}.properties", detail))
    if schema.get("uniqueItems"):
        detail = "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        causes.append(forbidden_cause(f"{path}.uniqueItems", detail))
    for unsupported in ("patternProperties", "definitions", "dependencies", "additionalItems"):
        if schema.get(unsupported):
            causes.append(
                forbidden_cause(f"{path}.{unsupported}", f"{unsupported} is not supported")
            )
    if "$ref" in schema:
        causes.append(forbidden_cause(f"{path}.$ref", "$ref is not supported"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as error:
            detail = f"must be a valid regular expression, but isn't: {error}"
            causes.append(invalid_cause(f"{path}.pattern", pattern, detail))
    list_type = schema.get("x-kubernetes-list-type")
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        causes.append(
            not_supported_cause(
                f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"]
            )
        )
    if list_type == "map" and not schema.get("x-kubernetes-list-map-keys"):
        detail = "must not be empty if x-kubernetes-list-type is map"
        causes.append(required_cause(f"{path}.x-kubernetes-list-map-keys", detail))
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator == "anyOf" and int_or_string and _is_int_or_string_any_of(schema):
            continue  # the one anyOf with types that structural schemas allow
        for index, sub in enumerate(schema.get(combinator) or []):
            if isinstance(sub, dict):
                causes += _check_nested(sub, f"{path}.{combinator}[{index}]")
    if isinstance(schema.get("not"), dict):
        causes += _check_nested(schema["not"], f"{path}.not")
    return causes


def _is_int_or_string_any_of(schema: Schema) -> bool:
    """`anyOf: [{type: integer}, {type: string}]` beside x-kubernetes-int-or-string."""
    return schema.get("anyOf") == [{"type": "integer"}, {"type": "string"}]


def _check_nested(schema: Schema, path: str) -> list[Cause]:
    """Inside allOf/anyOf/oneOf/not only value validations may appear."""
    causes: list[Cause] = []
    for key, rule in (
        ("type", "must be empty to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("nullable", "must be false to be structural"),
        ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
        ("x-kubernetes-embedded-resource", "must be false to be structural"),
        ("x-kubernetes-int-or-string", "must be false to be structural"),
        ("x-kubernetes-list-type", "must be undefined to be structural"),
    ):
        if schema.get(key):
            causes.append(forbidden_cause(f"{path}.{key}", rule))
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            causes += _check_nested(sub, _key(f"{path}.properties", name))
    if isinstance(schema.get("items"), dict):
        causes += _check_nested(schema["items"], f"{path}.items")
    return causes


def _check_names(names: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            causes.append(required_cause(f"{path}.{key}"))
    for key in ("plural", "singular"):
        value = names.get(key)
        if isinstance(value, str) and value and (errors := dns1035_errors(value)):
            causes.append(invalid_cause(f"{path}.{key}", value, ",".join(errors)))
    for key in ("kind", "listKind"):
        value = names.get(key)
        if isinstance(value, str) and value and (errors := dns1035_errors(value.lower())):
            detail = "may have mixed case, but should otherwise match: " + ",".join(errors)
            causes.append(invalid_cause(f"{path}.{key}", value, detail))
    for list_key in ("shortNames", "categories"):
        for index, value in enumerate(names.get(list_key) or []):
            if isinstance(value, str) and (errors := dns1035_errors(value)):
                causes.append(invalid_cause(f"{path}.{list_key}[{index}]", value, ",".join(errors)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        detail = "kind and listKind may not be the same"
        causes.append(invalid_cause(f"{path}.listKind", names["listKind"], detail))
    return causes


def _check_columns(columns: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for index, column in enumerate(columns):
        at = f"{path}[{index}]"
        column = column if isinstance(column, dict) else {}
        if not column.get("name"):
            causes.append(required_cause(f"{at}.name"))
        col_type = column.get("type")
        if not col_type:
            causes.append(required_cause(f"{at}.type", f"must be one of {_COLUMN_TYPES}"))
        elif col_type not in _COLUMN_TYPES.split(","):
            causes.append(invalid_cause(f"{at}.type", col_type, f"must be one of {_COLUMN_TYPES}"))
        col_format = column.get("format")
        if col_format and col_format not in _COLUMN_FORMATS.split(","):
            causes.append(
                invalid_cause(f"{at}.format", col_format, f"must be one of {_COLUMN_FORMATS}")
            )
        json_path = column.get("jsonPath")
        if not json_path:
            causes.append(required_cause(f"{at}.JSONPath"))
        elif not str(json_path).startswith("."):
            detail = "must be a simple json path starting with ."
            causes.append(invalid_cause(f"{at}.JSONPath", json_path, detail))
    return causes


def _all_identical(versions: list[dict[str, Any]], key: str) -> bool:
    return len(versions) > 0 and all(v.get(key) == versions[0].get(key) for v in versions)


def check_crd(crd: dict[str, Any]) -> list[Cause]:
    """Validate an apiextensions.k8s.io/v1 CustomResourceDefinition as kube-apiserver does.

    Like kube, per-version schemas (and printer columns) that are identical in every version
    are reported under `spec.validation.openAPIV3Schema` (`spec.additionalPrinterColumns`),
    because kube validates the internal form where they are hoisted to the top level.
    """
    causes: list[Cause] = []
    metadata = crd.get("metadata") or {}
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    name = metadata.get("name") or ""
    if name:
        name_errors = dns1123_subdomain_errors(name)
        if name != f"{names.get('plural', '')}.{group}":
            name_errors.append('must be spec.names.plural+"."+spec.group')
        causes += [invalid_cause("metadata.name", name, error) for error in name_errors]
    if not group:
        causes.append(required_cause("spec.group"))
    elif errors := dns1123_subdomain_errors(group):
        causes.append(invalid_cause("spec.group", group, ",".join(errors)))
    elif len(group.split(".")) < 2:
        causes.append(
            invalid_cause("spec.group", group, "should be a domain with at least one dot")
        )
    scope = spec.get("scope") or ""
    if not scope:
        causes.append(required_cause("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        causes.append(not_supported_cause("spec.scope", scope, ["Cluster", "Namespaced"]))

    versions: list[dict[str, Any]] = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    hoisted_schema = _all_identical(versions, "schema")
    hoisted_columns = _all_identical(versions, "additionalPrinterColumns")
    for index, version in enumerate(versions):
        at = f"spec.versions[{index}]"
        version_name = version.get("name") or ""
        if errors := dns1035_errors(version_name):
            causes.append(invalid_cause(f"{at}.name", version_name, ",".join(errors)))
        if not (version.get("schema") or {}).get("openAPIV3Schema"):
            causes.append(required_cause(f"{at}.schema.openAPIV3Schema"))
        elif not hoisted_schema:
            root = version["schema"]["openAPIV3Schema"]
            causes += _check_structural(root, f"{at}.schema.openAPIV3Schema", "root")
        if not hoisted_columns:
            columns = version.get("additionalPrinterColumns") or []
            causes += _check_columns(columns, f"{at}.additionalPrinterColumns")
    names_seen = [v.get("name") for v in versions]
    if len(set(names_seen)) != len(names_seen):
        causes.append(invalid_cause("spec.versions", versions, "must contain unique version names"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        detail = "must have exactly one version marked as storage version"
        causes.append(invalid_cause("spec.versions", versions, detail))
    causes += _check_names(names, "spec.names")
    if hoisted_schema and (versions[0].get("schema") or {}).get("openAPIV3Schema"):
        root = versions[0]["schema"]["openAPIV3Schema"]
        causes += _check_structural(root, "spec.validation.openAPIV3Schema", "root")
    if hoisted_columns:
        columns = versions[0].get("additionalPrinterColumns") or []
        causes += _check_columns(columns, "spec.additionalPrinterColumns")
    return causes
