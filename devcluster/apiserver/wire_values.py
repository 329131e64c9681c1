"""What a stored object may hold: the values JSON carries, nested no deeper than we can serve.

kube-apiserver stores what its JSON decoder produced, so every stored value is one the wire
can carry again. A YAML body can hold more (integer, boolean and float map keys, timestamps,
`!!binary`, sets, non-finite floats), and so can a nesting that Python cannot walk. Each is
turned into what kube's YAML-to-JSON conversion (sigs.k8s.io/yaml over go-yaml v2) makes of
it, or refused with a 400 naming where it is, before anything else sees the body.

Nesting. kube-apiserver's decoders accept 10,000 levels (encoding/json's and go-yaml's
`exceeded max depth of 10000`). This server cannot: CPython stops at 1,000 frames and the
code that walks an object (copy.deepcopy, the merge patches, managed fields, schema
validation, the table printer) takes two to four frames per level, and orjson refuses to
encode more than 254 levels (a list wraps an object in two more, a watch event of a table in
four). So a body, and every object stored, holds at most MAX_NESTING_DEPTH nested arrays and
objects: more than any real object needs (the deepest CRD here, a whole openAPIV3Schema with
its managedFields, is about 30), well inside both limits. A test creates, patches, applies,
lists, watches and restarts with an object at the limit.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

MAX_NESTING_DEPTH = 100
# kube-apiserver's request body limit; a YAML body whose aliases expand past it is refused
# with the same 413 (go-yaml would expand it, then etcd refuse it).
MAX_REQUEST_BYTES = 3 * 1024 * 1024
# etcd's default --max-request-bytes: what one stored object may weigh.
MAX_OBJECT_BYTES = 1536 * 1024

_INT64_MIN, _UINT64_MAX = -(1 << 63), (1 << 64) - 1


class WireValueError(ValueError):
    """A value that JSON cannot carry; `path` says where (`data.a[0]`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{message} at {path or '<root>'}" if path else message)
        self.path = path
        self.message = message


class TooDeep(WireValueError):
    pass


class TooLarge(ValueError):
    pass


def child_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def short_path(path: str, segments: int = 6) -> str:
    """The first segments of a path (a path 100 levels deep says nothing more)."""
    parts = path.replace("[", ".[").split(".")
    if len(parts) <= segments:
        return path
    return ".".join(parts[:segments]).replace(".[", "[") + "..."


def depth_exceeded(value: Any, limit: int = MAX_NESTING_DEPTH) -> str | None:
    """The path of the first array or object nested deeper than `limit`, else None.

    Iterative: this is what keeps recursion out of the check itself."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict):
            children: Iterator[tuple[str | int, Any]] = iter(node.items())
        elif isinstance(node, list):
            children = enumerate(node)
        else:
            continue
        if depth > limit:
            return path
        for key, child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, child_path(path, key)))
    return None


def may_be_too_deep(encoded: bytes, limit: int = MAX_NESTING_DEPTH) -> bool:
    """False when the JSON text cannot nest deeper than `limit` (a count done in C: most
    objects have fewer brackets than the limit, and then need no walk)."""
    return encoded.count(b"[") + encoded.count(b"{") > limit


def go_float32_text(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32): how sigs.k8s.io/yaml writes a float map key."""
    if math.isnan(value):
        return ".nan"
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    sign = "-" if single < 0 else ""
    magnitude = abs(single)
    for precision in range(1, 10):  # the shortest digits that read back as the same float32
        text = f"{magnitude:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == magnitude:
            break
    mantissa, exponent_text = text.split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    exponent = int(exponent_text)
    if exponent < -4 or exponent >= 6:  # Go's %e threshold for the shortest form
        fraction = "." + digits[1:] if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{fraction}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    point = exponent + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def json_key(key: Any, path: str) -> str:
    """A YAML map key as sigs.k8s.io/yaml's YAML-to-JSON conversion writes it."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        if _INT64_MIN <= key <= _UINT64_MAX:
            return str(key)
        return go_float32_text(float(key))  # go-yaml resolves it as a float64
    if isinstance(key, float):
        return go_float32_text(key)
    if isinstance(key, (date, datetime)):
        return rfc3339(key)
    shown = "null" if key is None else type(key).__name__
    raise WireValueError(path, f"unsupported map key of type {shown}")


def rfc3339(value: date | datetime) -> str:
    """A time as Go's JSON writes a time.Time (RFC 3339, nanoseconds trimmed)."""
    if not isinstance(value, datetime):
        return f"{value.isoformat()}T00:00:00Z"
    text = value.isoformat()
    if value.utcoffset() is not None and not value.utcoffset():
        text = text[: -len("+00:00")] + "Z"
    elif value.tzinfo is None:
        text += "Z"
    if value.microsecond:
        head, _, rest = text.partition(".")
        fraction = "".join(c for c in rest if c.isdigit())
        zone = rest[len(fraction):]
        text = f"{head}.{fraction.rstrip('0')}{zone}"
    return text


def _scalar(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
        return float(value)  # as Go decodes a number beyond 64 bits into interface{}
    if isinstance(value, float):
        if math.isnan(value):
            raise WireValueError(path, "json: unsupported value: NaN")
        if math.isinf(value):
            raise WireValueError(path, f"json: unsupported value: {'+' if value > 0 else '-'}Inf")
        return value
    if isinstance(value, bytes):
        # go-yaml decodes !!binary into interface{} as a string of the bytes; Go's JSON
        # encoder then replaces invalid UTF-8 with U+FFFD.
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (date, datetime)):
        return rfc3339(value)
    raise WireValueError(path, f"json: unsupported type: {type(value).__name__}")


def _string_cost(text: str) -> int:
    return len(text) + 3


def to_wire(value: Any, limit: int = MAX_NESTING_DEPTH,
            max_bytes: int = MAX_REQUEST_BYTES) -> Any:
    """A copy of a decoded YAML (or other non-JSON) value holding only JSON values.

    Raises WireValueError naming the path of what cannot be carried, TooDeep past `limit`
    levels, and TooLarge when the value would encode to more than `max_bytes` (aliases
    can make a small document large: each expansion is counted)."""
    budget = max_bytes
    result: list[Any] = [None]
    # (value, depth, path, where to put the converted value: container and key)
    stack: list[tuple[Any, int, str, Any, Any]] = [(value, 1, "", result, 0)]
    while stack:
        node, depth, path, into, slot = stack.pop()
        if isinstance(node, (dict, list, set, tuple)) and depth > limit:
            raise TooDeep(path, f"exceeded max depth of {limit}")
        converted: Any
        if isinstance(node, dict):
            converted = {}
            for key, child in node.items():
                name = json_key(key, path)
                budget -= _string_cost(name)
                converted[name] = None
                stack.append((child, depth + 1, child_path(path, name), converted, name))
        elif isinstance(node, set):  # go-yaml reads a !!set as a map of nulls
            converted = {}
            for key in node:
                name = json_key(key, path)
                budget -= _string_cost(name) + 4
                converted[name] = None
        elif isinstance(node, (list, tuple)):
            if isinstance(node, tuple) and len(node) == 2:  # a pair of !!omap or !!pairs
                converted = {}
                name = json_key(node[0], path)
                budget -= _string_cost(name)
                converted[name] = None
                stack.append((node[1], depth + 1, child_path(path, name), converted, name))
            else:
                converted = [None] * len(node)
                for index, child in enumerate(node):
                    stack.append((child, depth + 1, child_path(path, index), converted, index))
        else:
            converted = _scalar(node, path)
            budget -= _string_cost(converted) if isinstance(converted, str) else 5
        budget -= 2
        if budget < 0:
            raise TooLarge(f"limit is {max_bytes}")
        into[slot] = converted
    return result[0]


__all__ = ["MAX_NESTING_DEPTH", "MAX_OBJECT_BYTES", "MAX_REQUEST_BYTES", "TooDeep",
           "TooLarge", "WireValueError", "depth_exceeded", "go_float32_text", "json_key",
           "may_be_too_deep", "rfc3339", "short_path", "to_wire"]
