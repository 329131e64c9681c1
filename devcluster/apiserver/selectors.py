"""Label and field selectors: kube's syntax, matching and error messages.

Label selectors follow k8s.io/apimachinery `pkg/labels/selector.go` (its lexer, grammar and
messages); field selectors `pkg/fields/selector.go`; the field labels each kind accepts come
from kube-apiserver's field label conversion functions (`pkg/apis/*/v1/conversion.go`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from devcluster.apiserver.errors import bad_request
from devcluster.apiserver.object_meta import label_key_errors, label_value_errors

# ---------------------------------------------------------------------------------------------
# Label selectors

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    operator: str  # one of the selection operators above
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (GREATER_THAN, LESS_THAN) and present and len(self.values) == 1:
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if self.operator == GREATER_THAN else have < want
        return False


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements; the empty selector matches everything."""

    requirements: tuple[LabelRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def requirement_for(self, key: str) -> str | None:
        """The value `key` must equal (for an index lookup), if the selector says so."""
        for requirement in self.requirements:
            if requirement.key != key:
                continue
            if requirement.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(requirement.values) == 1:
                return requirement.values[0]
        return None


class _Token(Enum):
    ERROR = "error"
    END = "end"
    CLOSED_PAR = ")"
    COMMA = ","
    DOES_NOT_EXIST = "!"
    DOUBLE_EQUALS = "=="
    EQUALS = "="
    GREATER_THAN = ">"
    IDENTIFIER = "identifier"
    IN = "in"
    LESS_THAN = "<"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    OPEN_PAR = "("


_LITERAL_TOKENS = {
    token.value: token
    for token in _Token
    if token not in (_Token.ERROR, _Token.END, _Token.IDENTIFIER)
}
_SPECIAL_SYMBOLS = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[_Token, str]]:
    """kube's label selector lexer: identifiers, keywords and greedy operator symbols."""
    items: list[tuple[_Token, str]] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _WHITESPACE:
            position += 1
        if position >= len(text):
            items.append((_Token.END, ""))
            return items
        if text[position] in _SPECIAL_SYMBOLS:
            symbol = text[position]  # every single special character is a token
            if position + 1 < len(text) and symbol + text[position + 1] in _LITERAL_TOKENS:
                symbol += text[position + 1]
            items.append((_LITERAL_TOKENS[symbol], symbol))
            position += len(symbol)
            continue
        start = position
        while (
            position < len(text)
            and text[position] not in _SPECIAL_SYMBOLS
            and text[position] not in _WHITESPACE
        ):
            position += 1
        word = text[start:position]
        items.append((_LITERAL_TOKENS.get(word, _Token.IDENTIFIER), word))


class _SelectorSyntaxError(Exception):
    pass


def _field_invalid(path: str, value: Any, detail: str) -> str:
    shown = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return f"{path}: Invalid value: {shown}: {detail}"


def _key_error(key: str) -> str | None:
    errors = label_key_errors(key)
    # The parser's field path is nil, which Go prints as "<nil>".
    return _field_invalid("<nil>", key, "; ".join(errors)) if errors else None


def _new_requirement(key: str, operator: str, values: list[str]) -> LabelRequirement:
    """kube's NewRequirement: validates the key, the value count and every value."""
    errors = []
    if key_error := label_key_errors(key):
        errors.append(_field_invalid("key", key, "; ".join(key_error)))
    if operator in (IN, NOT_IN) and not values:
        errors.append(
            _field_invalid(
                "values", values, "for 'in', 'notin' operators, values set can't be empty"
            )
        )
    if operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        errors.append(
            _field_invalid("values", values, "exact-match compatibility requires one single value")
        )
    if operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errors.append(
                _field_invalid(
                    "values", values, "for 'Gt', 'Lt' operators, exactly one value is required"
                )
            )
        for index, value in enumerate(values):
            try:
                int(value)
            except ValueError:
                errors.append(
                    _field_invalid(
                        f"values[{index}]",
                        value,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    for index, value in enumerate(values):
        if value_errors := label_value_errors(value):
            errors.append(_field_invalid(f"values[{index}][{key}]", value, "; ".join(value_errors)))
    if errors:
        unique = list(dict.fromkeys(errors))
        raise _SelectorSyntaxError(unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]")
    return LabelRequirement(key, operator, tuple(values))


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def _peek(self, values_context: bool = True) -> tuple[_Token, str]:
        token, literal = self.items[self.position]
        if values_context and token in (_Token.IN, _Token.NOT_IN):
            token = _Token.IDENTIFIER  # "in"/"notin" are plain words where a value may stand
        return token, literal

    def _next(self, values_context: bool = True) -> tuple[_Token, str]:
        item = self._peek(values_context)
        self.position += 1
        return item

    def parse(self) -> tuple[LabelRequirement, ...]:
        requirements: list[LabelRequirement] = []
        while True:
            token, literal = self._peek()
            if token == _Token.END:
                return tuple(requirements)
            if token not in (_Token.IDENTIFIER, _Token.DOES_NOT_EXIST):
                raise _SelectorSyntaxError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            try:
                requirements.append(self._requirement())
            except _SelectorSyntaxError as error:
                raise _SelectorSyntaxError(f"unable to parse requirement: {error}") from None
            token, literal = self._next()
            if token == _Token.END:
                return tuple(requirements)
            if token != _Token.COMMA:
                raise _SelectorSyntaxError(f"found '{literal}', expected: ',' or 'end of string'")
            following, following_literal = self._peek()
            if following not in (_Token.IDENTIFIER, _Token.DOES_NOT_EXIST):
                raise _SelectorSyntaxError(
                    f"found '{following_literal}', expected: identifier after ','"
                )

    def _requirement(self) -> LabelRequirement:
        operator = ""
        token, literal = self._next()
        if token == _Token.DOES_NOT_EXIST:
            operator = DOES_NOT_EXIST
            token, literal = self._next()
        if token != _Token.IDENTIFIER:
            raise _SelectorSyntaxError(f"found '{literal}', expected: identifier")
        if key_error := _key_error(literal):
            raise _SelectorSyntaxError(key_error)
        key = literal
        if self._peek()[0] in (_Token.END, _Token.COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        if operator in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, operator, [])
        operator = self._operator()
        values = self._set_values() if operator in (IN, NOT_IN) else self._exact_value()
        return _new_requirement(key, operator, sorted(values))

    def _operator(self) -> str:
        token, literal = self._next(values_context=False)
        operators = {
            _Token.IN: IN,
            _Token.EQUALS: EQUALS,
            _Token.DOUBLE_EQUALS: DOUBLE_EQUALS,
            _Token.GREATER_THAN: GREATER_THAN,
            _Token.LESS_THAN: LESS_THAN,
            _Token.NOT_IN: NOT_IN,
            _Token.NOT_EQUALS: NOT_EQUALS,
        }
        if token not in operators:
            raise _SelectorSyntaxError(
                f"found '{literal}', expected: {', '.join(BINARY_OPERATORS)}"
            )
        return operators[token]

    def _set_values(self) -> set[str]:
        token, literal = self._next()
        if token != _Token.OPEN_PAR:
            raise _SelectorSyntaxError(f"found '{literal}' expected: '('")
        token, literal = self._peek()
        if token == _Token.CLOSED_PAR:  # "()" is the set of the empty string
            self._next()
            return {""}
        if token not in (_Token.IDENTIFIER, _Token.COMMA):
            raise _SelectorSyntaxError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._identifier_list()
        if self._next()[0] != _Token.CLOSED_PAR:
            raise _SelectorSyntaxError(f"found '{literal}', expected: ')'")
        return values

    def _identifier_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            token, literal = self._next()
            if token == _Token.IDENTIFIER:
                values.add(literal)
                following, following_literal = self._peek()
                if following == _Token.COMMA:
                    continue
                if following == _Token.CLOSED_PAR:
                    return values
                raise _SelectorSyntaxError(f"found '{following_literal}', expected: ',' or ')'")
            if token == _Token.COMMA:  # empty values around commas: "(,a)", "(a,)", "(a,,b)"
                if not values:
                    values.add("")
                following = self._peek()[0]
                if following == _Token.CLOSED_PAR:
                    values.add("")
                    return values
                if following == _Token.COMMA:
                    values.add("")
                continue
            raise _SelectorSyntaxError(f"found '{literal}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        token, literal = self._peek()
        if token in (_Token.END, _Token.COMMA):
            return {""}
        token, literal = self._next()
        if token == _Token.IDENTIFIER:
            return {literal}
        raise _SelectorSyntaxError(f"found '{literal}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parses `?labelSelector=`; a 400 with kube's message when it does not parse."""
    try:
        requirements = _LabelParser(text).parse()
    except _SelectorSyntaxError as error:
        raise bad_request(str(error)) from None
    return LabelSelector(tuple(sorted(requirements, key=lambda requirement: requirement.key)))


_SELECTOR_OPERATORS = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
}


def label_selector_from_dict(selector: Mapping[str, Any]) -> LabelSelector:
    """metav1.LabelSelector {matchLabels, matchExpressions} -> LabelSelector (kube's
    LabelSelectorAsSelector). An empty selector matches everything."""
    requirements: list[LabelRequirement] = []
    try:
        for key, value in (selector.get("matchLabels") or {}).items():
            requirements.append(_new_requirement(str(key), EQUALS, [str(value)]))
        for expression in selector.get("matchExpressions") or []:
            operator = _SELECTOR_OPERATORS.get(str(expression.get("operator")))
            if operator is None:
                raise _SelectorSyntaxError(
                    f'"{expression.get("operator")}" is not a valid label selector operator'
                )
            values = [str(v) for v in expression.get("values") or []]
            requirements.append(_new_requirement(str(expression.get("key", "")), operator, values))
    except _SelectorSyntaxError as error:
        raise bad_request(str(error)) from None
    return LabelSelector(tuple(sorted(requirements, key=lambda requirement: requirement.key)))


# ---------------------------------------------------------------------------------------------
# Field selectors


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negated: bool  # "!=" rather than "=" / "=="

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.field) == self.value) != self.negated


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(requirement.matches(obj) for requirement in self.requirements)

    def requirement_for(self, field: str) -> str | None:
        """The value `field` must equal, if the selector pins it (to look up by name)."""
        for requirement in self.requirements:
            if requirement.field == field and not requirement.negated:
                return requirement.value
        return None


_FIELD_OPERATORS = ("!=", "==", "=")  # "==" before "=" so no "=" stays on the value


def _split_terms(text: str) -> list[str]:
    """Splits on unescaped commas, keeping escapes for the value unescaping."""
    terms, start, escaped = [], 0, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _unescape_value(value: str) -> str:
    out, escaped = [], False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            # Go prints the rune with %v: its code point.
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            out.append(char)
    if escaped:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


# Old spellings kube still accepts and rewrites (pkg/apis/core/v1/conversion.go).
_FIELD_ALIASES = {"spec.host": "spec.nodeName"}


def parse_field_selector(text: str, supported: Collection[str]) -> FieldSelector:
    """Parses `?fieldSelector=`; 400 on bad syntax or `field label not supported: <f>`."""
    requirements = []
    for term in sorted(_split_terms(text)) if text else []:
        if not term:
            continue
        for position in range(len(term)):
            operator = next((op for op in _FIELD_OPERATORS if term.startswith(op, position)), None)
            if operator is not None:
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field, value = term[:position], _unescape_value(term[position + len(operator) :])
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        field = _FIELD_ALIASES.get(field, field)
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, value, negated=operator == "!="))
    return FieldSelector(tuple(requirements))


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def _as_field_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # spec.unschedulable, spec.hostNetwork
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The string a field selector compares, as kube's per-kind field sets compute it.

    Missing fields are "" (so `spec.nodeName=` finds unscheduled pods); Events' `source` is
    the source component, or the reporting controller when there is none.
    """
    if field == "source":
        for path in (
            "source.component",
            "deprecatedSource.component",
            "reportingComponent",
            "reportingController",
        ):
            if value := _as_field_string(_lookup(obj, path)):
                return value
        return ""
    return _as_field_string(_lookup(obj, field))


_METADATA_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
_CORE_EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)
_EVENTS_V1_FIELDS = frozenset(
    {
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reason",
        "reportingController",
        "type",
    }
)
_POD_FIELDS = frozenset(
    {
        "spec.nodeName",
        "spec.host",  # rewritten to spec.nodeName
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    }
)

# (group, kind) -> the field labels besides metadata.name/namespace. Cluster-scoped core
# kinds with their own conversion (Node, Namespace) do not accept metadata.namespace.
_KIND_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("", "Pod"): _POD_FIELDS,
    ("", "Event"): _CORE_EVENT_FIELDS,
    ("events.k8s.io", "Event"): _EVENTS_V1_FIELDS,
    ("", "Secret"): frozenset({"type"}),
    ("", "Service"): frozenset({"spec.clusterIP", "spec.type"}),
    ("", "ReplicationController"): frozenset({"status.replicas"}),
    ("apps", "ReplicaSet"): frozenset({"status.replicas"}),
    ("batch", "Job"): frozenset({"status.successful"}),
    ("certificates.k8s.io", "CertificateSigningRequest"): frozenset({"spec.signerName"}),
}
_WITHOUT_NAMESPACE_FIELD: dict[tuple[str, str], frozenset[str]] = {
    ("", "Node"): frozenset({"metadata.name", "spec.unschedulable"}),
    ("", "Namespace"): frozenset({"metadata.name", "status.phase"}),
}


def supported_field_labels(
    group: str, kind: str, selectable_fields: Collection[str] = ()
) -> frozenset[str]:
    """The field labels kube-apiserver accepts in a field selector for a kind.

    `selectable_fields` are a CRD version's `selectableFields[*].jsonPath` (a leading "." is
    dropped, as kube's field label is the path without it).
    """
    if (group, kind) in _WITHOUT_NAMESPACE_FIELD:
        return _WITHOUT_NAMESPACE_FIELD[(group, kind)]
    extra = {path.removeprefix(".") for path in selectable_fields}
    return _METADATA_FIELDS | _KIND_FIELDS.get((group, kind), frozenset()) | extra
