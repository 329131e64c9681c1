"""`x-kubernetes-validations` (CEL rules) of CRD schemas, evaluated as kube-apiserver does.

Rules are evaluated with cel-python (`celpy`), plus the parts of Kubernetes' CEL libraries that
CRDs commonly use: `format.<name>().validate(s)` (and `format.named(n)`), optionals'
`hasValue`/`value`/`orValue`, the strings extension (`lowerAscii`, `upperAscii`, `trim`,
`split`, `join`, `replace`, `indexOf`, `lastIndexOf`, `substring`, `charAt`), lists' `isSorted`
and `sum`, and `isQuantity`. A rule that does not compile here (syntax celpy lacks, such as
`self.?field`) is skipped rather than guessed at.

Errors are worded as apiextensions words them: `spec.nodeSelector: Invalid value: "object":
nodeSelector keys must be valid qualified names` (the value shown is the schema type).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import celpy
import celpy.celtypes as cel
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from devcluster.apiserver.errors import Cause

JSON = Any
Schema = dict[str, Any]

_VALIDATIONS = "x-kubernetes-validations"


# --- Kubernetes' CEL libraries ----------------------------------------------------------------


@dataclass(frozen=True)
class _Optional:
    """CEL's optional<T>: `format.x().validate(s)` answers one."""

    value: Any = None
    present: bool = False


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_QUANTITY = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")


def _dns1123_label(text: str) -> list[str]:
    found = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not _DNS1123_LABEL.match(text):
        found.append("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                     "characters or '-', and must start and end with an alphanumeric character")
    return found


def _dns1123_subdomain(text: str) -> list[str]:
    found = [] if len(text) <= 253 else ["must be no more than 253 characters"]
    if not _DNS1123_SUBDOMAIN.match(text):
        found.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                     "characters, '-' or '.', and must start and end with an alphanumeric "
                     "character")
    return found


def _dns1035_label(text: str) -> list[str]:
    found = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not _DNS1035_LABEL.match(text):
        found.append("a DNS-1035 label must consist of lower case alphanumeric characters or "
                     "'-', start with an alphabetic character, and end with an alphanumeric "
                     "character")
    return found


def _qualified_name(text: str) -> list[str]:
    """IsQualifiedName: an optional DNS subdomain prefix and '/', then a name of <= 63."""
    parts = text.split("/")
    if len(parts) > 2:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character with an optional DNS "
                "subdomain prefix and '/'"]
    found: list[str] = []
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            found.append("prefix part must be non-empty")
        else:
            found += [f"prefix part {error}" for error in _dns1123_subdomain(prefix)]
    else:
        name = parts[0]
    if not name:
        found.append("name part must be non-empty")
    elif len(name) > 63:
        found.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME.match(name):
        found.append("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                     "must start and end with an alphanumeric character")
    return found


def _label_value(text: str) -> list[str]:
    found = [] if len(text) <= 63 else ["must be no more than 63 characters"]
    if not _LABEL_VALUE.match(text):
        found.append("a valid label must be an empty string or consist of alphanumeric "
                     "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                     "character")
    return found


def _prefixed(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """The *Prefix formats: the name may end with '-' (a generateName prefix)."""
    return lambda text: check(text[:-1] if text.endswith("-") else text)


_FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": _dns1123_label,
    "dns1123Subdomain": _dns1123_subdomain,
    "dns1035Label": _dns1035_label,
    "qualifiedName": _qualified_name,
    "dns1123LabelPrefix": _prefixed(_dns1123_label),
    "dns1123SubdomainPrefix": _prefixed(_dns1123_subdomain),
    "dns1035LabelPrefix": _prefixed(_dns1035_label),
    "labelValue": _label_value,
    "uuid": lambda text: [] if _UUID.match(text) else ["does not match the UUID format"],
}


@dataclass(frozen=True)
class _Format:
    name: str


class _FormatLibrary:
    """The value bound to `format`: `format.qualifiedName()` is a call on it."""


def _format_getter(name: str) -> Callable[..., Any]:
    def get(target: Any) -> Any:
        if not isinstance(target, _FormatLibrary):
            raise TypeError(f"no such overload: {name}")
        return _Format(name)

    return get


def _named(target: Any, name: Any) -> _Optional:
    if not isinstance(target, _FormatLibrary):
        raise TypeError("no such overload: named")
    known = str(name) in _FORMATS
    return _Optional(_Format(str(name)) if known else None, known)


def _validate(target: Any, text: Any) -> _Optional:
    if not isinstance(target, _Format) or not isinstance(text, str):
        raise TypeError("no such overload: validate")
    found = _FORMATS[target.name](str(text))
    if not found:
        return _Optional()
    return _Optional(cel.ListType([cel.StringType(message) for message in found]), True)


def _has_value(target: Any) -> cel.BoolType:
    if not isinstance(target, _Optional):
        raise TypeError("no such overload: hasValue")
    return cel.BoolType(target.present)


def _value(target: Any) -> Any:
    if not isinstance(target, _Optional):
        raise TypeError("no such overload: value")
    if not target.present:
        raise ValueError("optional.none() dereference")
    return target.value


def _or_value(target: Any, default: Any) -> Any:
    if not isinstance(target, _Optional):
        raise TypeError("no such overload: orValue")
    return target.value if target.present else default


def _text(target: Any, name: str) -> str:
    if not isinstance(target, str):
        raise TypeError(f"no such overload: {name}")
    return str(target)


def _split(target: Any, separator: Any, limit: Any = -1) -> cel.ListType:
    text, sep = _text(target, "split"), str(separator)
    count = int(limit)
    if count == 0:
        return cel.ListType([])
    parts = text.split(sep, count - 1) if count > 0 else text.split(sep) if sep else list(text)
    return cel.ListType([cel.StringType(part) for part in parts])


def _join(target: Any, separator: Any = "") -> cel.StringType:
    if not isinstance(target, list):
        raise TypeError("no such overload: join")
    return cel.StringType(str(separator).join(str(item) for item in target))


def _index_of(target: Any, needle: Any, start: Any = 0) -> cel.IntType:
    if isinstance(target, list):
        for index, item in enumerate(target):
            if item == needle:
                return cel.IntType(index)
        return cel.IntType(-1)
    return cel.IntType(_text(target, "indexOf").find(str(needle), int(start)))


def _last_index_of(target: Any, needle: Any) -> cel.IntType:
    if isinstance(target, list):
        for index in range(len(target) - 1, -1, -1):
            if target[index] == needle:
                return cel.IntType(index)
        return cel.IntType(-1)
    return cel.IntType(_text(target, "lastIndexOf").rfind(str(needle)))


def _substring(target: Any, start: Any, end: Any = None) -> cel.StringType:
    text = _text(target, "substring")
    stop = len(text) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(text):
        raise ValueError(f"index out of range: {int(start)}")
    return cel.StringType(text[int(start):stop])


def _is_sorted(target: Any) -> cel.BoolType:
    if not isinstance(target, list):
        raise TypeError("no such overload: isSorted")
    return cel.BoolType(all(a <= b for a, b in itertools.pairwise(target)))


def _sum(target: Any) -> Any:
    if not isinstance(target, list):
        raise TypeError("no such overload: sum")
    total: Any = cel.IntType(0)
    for item in target:
        total = total + item
    return total


def _is_quantity(target: Any) -> cel.BoolType:
    return cel.BoolType(bool(_QUANTITY.match(_text(target, "isQuantity"))))


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{name: _format_getter(name) for name in _FORMATS},
    "named": _named,
    "validate": _validate,
    "hasValue": _has_value,
    "value": _value,
    "orValue": _or_value,
    "lowerAscii": lambda target: cel.StringType(_text(target, "lowerAscii").lower()),
    "upperAscii": lambda target: cel.StringType(_text(target, "upperAscii").upper()),
    "trim": lambda target: cel.StringType(_text(target, "trim").strip()),
    "replace": lambda target, old, new, limit=-1: cel.StringType(
        _text(target, "replace").replace(str(old), str(new), int(limit))),
    "split": _split,
    "join": _join,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "substring": _substring,
    "charAt": lambda target, index: cel.StringType(
        _text(target, "charAt")[int(index):int(index) + 1]),
    "isSorted": _is_sorted,
    "sum": _sum,
    "isQuantity": _is_quantity,
}
_FORMAT_LIBRARY = _FormatLibrary()


# --- compiling and evaluating -----------------------------------------------------------------


@functools.cache
def _environment() -> celpy.Environment:
    return celpy.Environment()


@functools.cache
def compile_rule(rule: str) -> celpy.Runner | None:
    """The compiled program of a rule (cached by its text), None when it does not compile."""
    environment = _environment()
    try:
        return environment.program(environment.compile(rule), functions=_FUNCTIONS)
    except (CELParseError, CELEvalError, ValueError, TypeError):
        return None


def _is_transition_rule(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


#: CEL's reserved words: a property so named is `__word__` in a rule (Kubernetes' escaping,
#: e.g. external-snapshotter's `has(self.__namespace__)`).
_RESERVED_WORDS = frozenset({
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
    "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
    "void", "while"})


def _escaped(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {f"__{key}__" if key in _RESERVED_WORDS else key: _escaped(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


def evaluate(rule: str, value: JSON, old_value: JSON = None) -> Any:
    """The result of a rule on `self` = value (and `oldSelf`); raises CELEvalError on a
    runtime error, ValueError when the rule does not compile."""
    program = compile_rule(rule)
    if program is None:
        raise ValueError(f"the rule does not compile: {rule}")
    activation: dict[str, Any] = {"self": json_to_cel(_escaped(value)),
                                  "format": _FORMAT_LIBRARY}
    if old_value is not None:
        activation["oldSelf"] = json_to_cel(_escaped(old_value))
    return program.evaluate(activation)


def _type_name(value: JSON, schema: Schema) -> str:
    """What kube shows as the bad value: the schema's type of the node."""
    kind = schema.get("type")
    if isinstance(kind, str) and kind:
        return kind
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "integer" if isinstance(value, int) else "any"


def _field_path(path: str, extra: Any) -> str:
    if not isinstance(extra, str) or not extra:
        return path
    return f"{path}{extra}" if path else extra.lstrip(".")


def _message(rule: dict[str, Any], value: JSON, old_value: JSON) -> str:
    expression = rule.get("messageExpression")
    if isinstance(expression, str) and expression:
        try:
            result = evaluate(expression, value, old_value)
        except (CELEvalError, ValueError, TypeError):
            result = None
        if isinstance(result, str) and result.strip():
            return str(result)
    message = rule.get("message")
    if isinstance(message, str) and message:
        return message
    return f"failed rule: {rule.get('rule', '')}"


def _cause(rule: dict[str, Any], path: str, value: JSON, schema: Schema, detail: str) -> Cause:
    field = _field_path(path, rule.get("fieldPath"))
    reason = rule.get("reason")
    if reason == "FieldValueForbidden":
        return Cause(field=field, message=f"Forbidden: {detail}", reason=reason)
    if reason == "FieldValueRequired":
        return Cause(field=field, message=f"Required value: {detail}", reason=reason)
    if reason == "FieldValueDuplicate":
        return Cause(field=field, message=f"Duplicate value: {detail}", reason=reason)
    shown = _type_name(value, schema)
    return Cause(field=field, message=f'Invalid value: "{shown}": {detail}',
                 reason="FieldValueInvalid")


def _rule_causes(value: JSON, old_value: JSON, has_old: bool, schema: Schema,
                 path: str) -> list[Cause]:
    causes: list[Cause] = []
    for rule in schema.get(_VALIDATIONS) or []:
        text = rule.get("rule") if isinstance(rule, dict) else None
        if not isinstance(text, str) or compile_rule(text) is None:
            continue
        transition = _is_transition_rule(text)
        if transition and not has_old:
            continue  # transition rules apply to updates of an existing value only
        try:
            result = evaluate(text, value, old_value if transition else None)
        except CELEvalError as error:
            causes.append(_cause(rule, path, value, schema, f"rule evaluation error: {error}"))
            continue
        if isinstance(result, CELEvalError):
            causes.append(_cause(rule, path, value, schema, f"rule evaluation error: {result}"))
        elif result is not True and not (isinstance(result, cel.BoolType) and bool(result)):
            causes.append(_cause(rule, path, value, schema, _message(rule, value, old_value)))
    return causes


_ABSENT = object()


def _walk(value: JSON, old_value: Any, schema: Schema, path: str) -> list[Cause]:
    if value is None:
        return []
    has_old = old_value is not _ABSENT and old_value is not None
    causes = _rule_causes(value, old_value if has_old else None, has_old, schema, path)
    if isinstance(value, dict):
        properties: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        old_map = old_value if isinstance(old_value, dict) else {}
        for key, item in value.items():
            sub = properties.get(key)
            child = f"{path}.{key}" if path else key
            if sub is None and isinstance(additional, dict):
                sub, child = additional, f"{path}[{key}]"
            if isinstance(sub, dict):
                causes += _walk(item, old_map.get(key, _ABSENT), sub, child)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            # Items are correlated with the old list only by map keys; not done here, so
            # transition rules under lists are not evaluated.
            for index, item in enumerate(value):
                causes += _walk(item, _ABSENT, items, f"{path}[{index}]")
    return causes


def has_rules(schema: Schema | None) -> bool:
    """Whether a schema carries any x-kubernetes-validations (cheap to ask again: cache it)."""
    if not isinstance(schema, dict):
        return False
    if schema.get(_VALIDATIONS):
        return True
    children = [*(schema.get("properties") or {}).values(), schema.get("items"),
                schema.get("additionalProperties")]
    return any(has_rules(child) for child in children if isinstance(child, dict))


def validate_rules(obj: dict[str, Any], schema: Schema,
                   old: dict[str, Any] | None = None) -> list[Cause]:
    """The causes of every failing x-kubernetes-validations rule of `obj` (with `old`, the
    stored object, transition rules that use `oldSelf` are evaluated too)."""
    return _walk(obj, old if old is not None else _ABSENT, schema, "")
