"""ProductSection properties: their types, the values a user gives, and `${key}` macros.

A property's value is its default (`ovf:value`, or a `Value` child for the chosen
deployment option) unless the user gives one with `--property KEY=VALUE`; a user value is
refused for an unknown key, a property that is not `ovf:userConfigurable`, or a value that
does not fit the property's type and qualifiers (MinLen, MaxLen, ValueMap).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import OvfError
from .model import PropertyDeclaration, PropertyType, PropertyValue

_INTEGER_BITS: dict[str, tuple[bool, int]] = {
    "uint8": (False, 8), "sint8": (True, 8), "uint16": (False, 16), "sint16": (True, 16),
    "uint32": (False, 32), "sint32": (True, 32), "uint64": (False, 64), "sint64": (True, 64),
}
#: Names vCenter and older tools write for the CIM types.
_TYPE_ALIASES: dict[str, PropertyType] = {"int": "sint32", "real": "real64"}
_KNOWN_TYPES: tuple[PropertyType, ...] = (
    "string", "boolean", "uint8", "sint8", "uint16", "sint16", "uint32", "sint32",
    "uint64", "sint64", "real32", "real64",
)
_MACRO = re.compile(r"\$\{([^}]*)\}")
_MIN_LEN = re.compile(r"MinLen\(\s*(\d+)\s*\)")
_MAX_LEN = re.compile(r"MaxLen\(\s*(\d+)\s*\)")
_VALUE_MAP = re.compile(r"ValueMap\s*\{([^}]*)\}")


def property_type(name: str, key: str) -> PropertyType:
    """The type named by `ovf:type`, refused when OVF does not define it."""
    known = _TYPE_ALIASES.get(name) or next((t for t in _KNOWN_TYPES if t == name), None)
    if known is None:
        raise OvfError(f"property {key!r}: unknown ovf:type {name!r} (expected one of "
                       f"{', '.join(_KNOWN_TYPES)})")
    return known


def type_problem(declaration: PropertyDeclaration, value: str) -> str | None:
    """Why `value` does not fit the property; None when it does."""
    kind = declaration.type
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            return f"expected a boolean (true or false), got {value!r}"
    elif kind in _INTEGER_BITS:
        signed, bits = _INTEGER_BITS[kind]
        try:
            number = int(value, 10)
        except ValueError:
            return f"expected an integer ({kind}), got {value!r}"
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        if not low <= number <= high:
            return f"{value} is out of range for {kind} ({low}..{high})"
    elif kind in ("real32", "real64"):
        try:
            float(value)
        except ValueError:
            return f"expected a real number ({kind}), got {value!r}"
    return _qualifier_problem(declaration.qualifiers, value)


def _qualifier_problem(qualifiers: tuple[str, ...], value: str) -> str | None:
    for qualifier in qualifiers:
        if (found := _MIN_LEN.search(qualifier)) and len(value) < int(found[1]):
            return f"{value!r} is shorter than MinLen({found[1]})"
        if (found := _MAX_LEN.search(qualifier)) and len(value) > int(found[1]):
            return f"{value!r} is longer than MaxLen({found[1]})"
        if found := _VALUE_MAP.search(qualifier):
            allowed = [item.strip().strip('"') for item in found[1].split(",")]
            if value not in allowed:
                return f"{value!r} is not one of ValueMap {{{', '.join(allowed)}}}"
    return None


def check_overrides(declarations: list[PropertyDeclaration], overrides: Mapping[str, str]) -> None:
    """Refuse `--property` values before anything is built: unknown keys, properties the
    descriptor does not let the user configure, values of the wrong type."""
    by_key: dict[str, list[PropertyDeclaration]] = {}
    for declaration in declarations:
        by_key.setdefault(declaration.key, []).append(declaration)
    for key, value in overrides.items():
        found = by_key.get(key)
        if not found:
            known = ", ".join(sorted(by_key)) or "none"
            raise OvfError(f"--property {key}: the descriptor has no property {key!r} "
                           f"(its properties: {known})")
        for declaration in found:
            if not declaration.user_configurable:
                raise OvfError(f"--property {key}: the property is not userConfigurable in "
                               "the descriptor")
            problem = type_problem(declaration, value)
            if problem is not None:
                raise OvfError(f"--property {key}: {problem}")


def value_of(declaration: PropertyDeclaration, overrides: Mapping[str, str],
             default: str | None) -> PropertyValue:
    """The value the property takes: the user's, else the descriptor's (checked too)."""
    value = overrides.get(declaration.key, default)
    if value is None:
        value = ""
    elif declaration.key not in overrides:
        problem = type_problem(declaration, value)
        if problem is not None:
            raise OvfError(f"property {declaration.key!r}: its default value: {problem}")
    return PropertyValue(declaration=declaration, value=value)


def resolve_macros(text: str, values: Mapping[str, str], where: str) -> str:
    """`text` with every `${key}` replaced by the property's value."""

    def replace(match: re.Match[str]) -> str:
        key = match[1]
        if key not in values:
            raise OvfError(f"{where}: ${{{key}}} names no property of the descriptor")
        return values[key]

    return _MACRO.sub(replace, text)
