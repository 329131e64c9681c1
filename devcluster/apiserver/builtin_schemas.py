"""Schemas of the built-in kinds, and decoding of built-in objects as kube-apiserver decodes them.

kube-apiserver has no schema validation for built-in kinds: it decodes the JSON body into Go
structs, and that decoding is what rejects `data: {a: 1}` in a ConfigMap (400, `json: cannot
unmarshal number into Go struct field ConfigMap.data of type string`) and what drops
`spec.replica` from a Deployment (or refuses it under `fieldValidation=Strict`). The Go types are
not available here; the official `kubernetes` client's models are, and they carry the same
shape: every model class has `openapi_types` (attribute -> type text such as `Dict[str, str]`,
`List[V1Container]`, `V1ObjectMeta`, `int`, `datetime`, `object`) and `attribute_map`
(attribute -> JSON name). What the models flatten is restored from a short list of facts: which
strings are resource quantities, which `object`s are IntOrString, which integers are 64-bit.

`schema_for` gives an openAPIV3Schema-like dict of a kind (what /openapi/v3 publishes and what
`schema.py` can prune and validate with); `decode` reproduces the Go decoder's outcome.
"""

from __future__ import annotations

import ast
import base64
import binascii
import functools
import importlib
import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The client's models, imported on first use (importing them takes a noticeable moment).
_MODELS_MODULE = "kubernetes.client.models"

# `object` attributes of the models that are intstr.IntOrString in Go (the rest are raw JSON).
_INT_OR_STRING_ATTRIBUTES = frozenset(
    {"port", "target_port", "max_surge", "max_unavailable", "min_available"}
)

# Attributes the models type as `str` (or a map of `str`) that are resource.Quantity in Go:
# a quantity decodes from a JSON string or number.
_QUANTITY_ATTRIBUTES: Mapping[str, frozenset[str]] = {
    "V1ResourceRequirements": frozenset({"limits", "requests"}),
    "V1VolumeResourceRequirements": frozenset({"limits", "requests"}),
    "V1ResourceQuotaSpec": frozenset({"hard"}),
    "V1ResourceQuotaStatus": frozenset({"hard", "used"}),
    "V1LimitRangeItem": frozenset(
        {"default", "default_request", "max", "min", "max_limit_request_ratio"}
    ),
    "V1NodeStatus": frozenset({"capacity", "allocatable"}),
    "V1PersistentVolumeSpec": frozenset({"capacity"}),
    "V1PersistentVolumeClaimStatus": frozenset({"capacity", "allocated_resources"}),
    "V1ContainerStatus": frozenset({"allocated_resources"}),
    "V1PodSpec": frozenset({"overhead"}),
    "V1Overhead": frozenset({"pod_fixed"}),
    "V1EmptyDirVolumeSource": frozenset({"size_limit"}),
    "V1ResourceFieldSelector": frozenset({"divisor"}),
    "V1CSIStorageCapacity": frozenset({"capacity", "maximum_volume_size"}),
    "V2MetricTarget": frozenset({"average_value", "value"}),
    "V2MetricValueStatus": frozenset({"average_value", "value"}),
}

# JSON names of the integer fields that are int64 in Go (the others are int32).
_INT64_FIELDS = frozenset(
    {
        "generation", "observedGeneration", "deletionGracePeriodSeconds",
        "terminationGracePeriodSeconds", "activeDeadlineSeconds", "expirationSeconds",
        "runAsUser", "runAsGroup", "fsGroup", "supplementalGroups", "startingDeadlineSeconds",
        "gracePeriodSeconds", "count", "revision", "seconds",
    }
)

_VERSION_PREFIX = re.compile(r"^([A-Z][a-z]+)?(V\d+(?:(?:alpha|beta)\d+)?)(\w+)$")
_LIST = re.compile(r"^(?:List\[(.+)\]|list\[(.+)\])$")
_MAP = re.compile(r"^(?:Dict\[str, (.+)\]|dict\(str, (.+)\))$")

# Go's decoding of resource.Quantity and time.RFC3339 (metav1.Time, metav1.MicroTime).
_QUANTITY_FORMAT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_LOOSE = re.compile(_QUANTITY_FORMAT)
_QUANTITY = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_RFC3339 = "2006-01-02T15:04:05Z07:00"
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


@dataclass(frozen=True)
class GoType:
    """How one field decodes: the JSON it takes and the Go type name decoding errors print."""

    kind: str  # string integer number boolean bytes time quantity int-or-string any struct map list
    go_name: str
    model: str = ""  # struct: the client's model class
    element: GoType | None = None  # map values, list items
    format: str = ""
    description: str = ""


@dataclass(frozen=True)
class StructField:
    json_name: str
    type: GoType


@dataclass
class Decoded:
    """The outcome of decoding: the object as kube would keep it, the first decoding error
    (kube reports only that one), and the paths of the fields no Go struct has."""

    obj: dict[str, Any]
    error: str = ""
    unknown: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Model:
    """What a model class says of its type: attribute types, JSON names, descriptions."""

    openapi_types: Mapping[str, str]
    attribute_map: Mapping[str, str]
    doc: str
    descriptions: Mapping[str, str]


def _models() -> Any:
    return importlib.import_module(_MODELS_MODULE)


def _literal(node: ast.expr | None) -> Any:
    try:
        return ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None


def _model_from_source(name: str, path: str) -> _Model | None:
    """Read a model's class attributes from its source without importing it: importing the
    (pydantic) models costs tens of milliseconds each, seconds for a Pod's worth of them."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.name == name):
            continue
        literals: dict[str, Any] = {}
        descriptions: dict[str, str] = {}
        for statement in node.body:
            if not (isinstance(statement, ast.AnnAssign)
                    and isinstance(statement.target, ast.Name)):
                continue
            target = statement.target.id
            if target in ("openapi_types", "attribute_map"):
                literals[target] = _literal(statement.value)
            elif isinstance(statement.value, ast.Call):
                for keyword in statement.value.keywords:
                    text = _literal(keyword.value) if keyword.arg == "description" else None
                    if isinstance(text, str):
                        descriptions[target] = text
        types, names = literals.get("openapi_types"), literals.get("attribute_map")
        if isinstance(types, dict) and isinstance(names, dict):
            return _Model(types, names, ast.get_docstring(node) or "", descriptions)
    return None


def _model_from_class(cls: Any) -> _Model | None:
    types, names = getattr(cls, "openapi_types", None), getattr(cls, "attribute_map", None)
    if not (isinstance(types, dict) and isinstance(names, dict)):
        return None
    fields = getattr(cls, "model_fields", None)
    descriptions = {
        attribute: info.description
        for attribute, info in (fields.items() if isinstance(fields, dict) else ())
        if isinstance(getattr(info, "description", None), str)
    }
    return _Model(types, names, cls.__doc__ or "", descriptions)


@functools.cache
def _model_info(name: str) -> _Model | None:
    """A model of the client by class name (V1DeploymentSpec), or None."""
    models = _models()
    exports = getattr(models, "_exports", None)
    module = exports.get(name) if isinstance(exports, dict) else None
    if isinstance(module, str):
        spec = importlib.util.find_spec(module, _MODELS_MODULE)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            found = _model_from_source(name, spec.origin)
            if found is not None:
                return found
    return _model_from_class(getattr(models, name, None))


def _go_struct_name(model: str) -> tuple[str, str]:
    """(package, name) of a model's Go type: V1DeploymentSpec -> (v1, DeploymentSpec)."""
    match = _VERSION_PREFIX.match(model)
    if match is None:
        return "v1", model
    return match[2].lower(), match[3]


def _description(model: _Model, attribute: str = "") -> str:
    if attribute:
        return model.descriptions.get(attribute, "")
    head = model.doc.split("Attributes:")[0].split("NOTE: This class is auto generated")[0]
    return " ".join(head.split())


def _parse_type(text: str, model: str, attribute: str, json_name: str) -> GoType:
    text = text.strip()
    quantity = attribute in _QUANTITY_ATTRIBUTES.get(model, frozenset())
    if (match := _LIST.match(text)) is not None:
        item = _parse_type(match[1] or match[2], model, attribute, json_name)
        return GoType("list", f"[]{item.go_name}", element=item)
    if (match := _MAP.match(text)) is not None:
        value = _parse_type(match[1] or match[2], model, attribute, json_name)
        if quantity:
            return GoType("map", "v1.ResourceList", element=value)
        return GoType("map", f"map[string]{value.go_name}", element=value)
    if quantity:
        return GoType("quantity", "resource.Quantity")
    if text == "str":
        return GoType("string", "string")
    if text == "int":
        bits = "int64" if json_name in _INT64_FIELDS else "int32"
        return GoType("integer", bits, format=bits)
    if text == "float":
        return GoType("number", "float64", format="double")
    if text == "bool":
        return GoType("boolean", "bool")
    if text == "bytes":
        return GoType("bytes", "[]uint8", format="byte")
    if text == "datetime":
        return GoType("time", "string", format="date-time")
    if text == "date":
        return GoType("string", "string", format="date")
    if text == "object":
        if attribute in _INT_OR_STRING_ATTRIBUTES:
            return GoType("int-or-string", "int32", format="int-or-string")
        return GoType("any", "interface {}")
    if _model_info(text) is not None:
        package, name = _go_struct_name(text)
        return GoType("struct", f"{package}.{name}", model=text)
    return GoType("any", "interface {}")


@functools.cache
def struct_fields(model: str) -> dict[str, StructField]:
    """The fields of a model by JSON name (resolved per model, so recursive types are fine)."""
    model_info = _model_info(model)
    if model_info is None:
        return {}
    fields: dict[str, StructField] = {}
    for attribute, type_text in model_info.openapi_types.items():
        json_name = model_info.attribute_map.get(attribute, attribute)
        parsed = _parse_type(type_text, model, attribute, json_name)
        described = GoType(
            parsed.kind, parsed.go_name, parsed.model, parsed.element, parsed.format,
            _description(model_info, attribute),
        )
        fields[json_name] = StructField(json_name, described)
    return fields


def _group_prefix(group: str) -> str:
    return (group.split(".")[0] if group else "core").capitalize()


@functools.cache
def root_model(group: str, version: str, kind: str) -> str | None:
    """The client's model class of a kind: V1ConfigMap, V1Deployment, CoreV1Event, ..."""
    prefix = version[:1].upper() + version[1:]
    for name in (f"{_group_prefix(group)}{prefix}{kind}", f"{prefix}{kind}"):
        model_info = _model_info(name)
        if model_info is not None and "kind" in model_info.attribute_map:
            return name
    return None


# --- the schema (OpenAPI v3 / structural) ---------------------------------------------------


def _schema_of(go_type: GoType, seen: tuple[str, ...]) -> dict[str, Any]:
    schema: dict[str, Any]
    if go_type.kind == "struct":
        if go_type.model in seen:
            # A recursive type (JSONSchemaProps): below the first level anything goes.
            schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        else:
            schema = _struct_schema(go_type.model, (*seen, go_type.model))
    elif go_type.kind == "list":
        assert go_type.element is not None
        schema = {"type": "array", "items": _schema_of(go_type.element, seen)}
    elif go_type.kind == "map":
        assert go_type.element is not None
        schema = {"type": "object", "additionalProperties": _schema_of(go_type.element, seen)}
    elif go_type.kind in ("quantity", "int-or-string"):
        schema = {"x-kubernetes-int-or-string": True}
        if go_type.kind == "int-or-string":
            schema["format"] = "int-or-string"
        else:
            schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            schema["pattern"] = _QUANTITY_FORMAT
    elif go_type.kind == "any":
        schema = {"x-kubernetes-preserve-unknown-fields": True}
    else:
        json_type = {"bytes": "string", "time": "string"}.get(go_type.kind, go_type.kind)
        schema = {"type": json_type}
        if go_type.format:
            schema["format"] = go_type.format
    if go_type.description:
        schema["description"] = go_type.description
    return schema


def _struct_schema(model: str, seen: tuple[str, ...]) -> dict[str, Any]:
    model_info = _model_info(model)
    schema: dict[str, Any] = {"type": "object"}
    if model_info is not None and (description := _description(model_info)):
        schema["description"] = description
    schema["properties"] = {
        name: _schema_of(struct_field.type, seen)
        for name, struct_field in struct_fields(model).items()
    }
    return schema


@functools.cache
def _cached_schema(group: str, version: str, kind: str) -> dict[str, Any] | None:
    model = root_model(group, version, kind)
    return None if model is None else _struct_schema(model, (model,))


def schema_for(group: str, version: str, kind: str) -> dict[str, Any] | None:
    """The openAPIV3Schema of a built-in kind (None when the client has no model of it).

    Structural: every field typed, maps as additionalProperties, lists with items; quantities
    and IntOrString as `x-kubernetes-int-or-string`, raw JSON as preserve-unknown-fields.
    The result is shared (cached): copy it before changing it.
    """
    return _cached_schema(group, version, kind)


# --- decoding (what Go's encoding/json does with the body) -----------------------------------


def _json_kind(value: Any) -> str:
    """The word Go's UnmarshalTypeError uses for a JSON value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value)) if "e" not in repr(value) else repr(value)
    return repr(value) if isinstance(value, float) else str(value)


def _base64_error(text: str) -> str:
    """Go's base64.CorruptInputError for the standard (padded) encoding, roughly."""
    for index, char in enumerate(text):
        if char == "=":
            break
        if char not in _BASE64_ALPHABET and char not in "\r\n":
            return f"illegal base64 data at input byte {index}"
    try:
        base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return f"illegal base64 data at input byte {max(len(text.rstrip('=')) - 1, 0)}"
    return ""


def _quantity_error(value: Any) -> str:
    text = value if isinstance(value, str) else _go_number_text(value) if isinstance(
        value, int | float) and not isinstance(value, bool) else None
    if text is None:
        return f"quantities must match the regular expression '{_QUANTITY_FORMAT}'"
    text = text.strip()
    if _QUANTITY.match(text):
        return ""
    if text and _QUANTITY_LOOSE.match(text):
        return "unable to parse quantity's suffix"
    return f"quantities must match the regular expression '{_QUANTITY_FORMAT}'"


class _Decoder:
    """Walks a body along the Go types; keeps the first error, records unknown fields."""

    def __init__(self) -> None:
        self.error = ""
        self.unknown: list[str] = []

    def _type_error(self, what: str, go_name: str, struct: str, stack: tuple[str, ...]) -> None:
        if self.error:
            return
        if struct or stack:
            self.error = (
                f"json: cannot unmarshal {what} into Go struct field {struct}."
                f"{'.'.join(stack)} of type {go_name}"
            )
        else:
            self.error = f"json: cannot unmarshal {what} into Go value of type {go_name}"

    def _fail(self, message: str) -> None:
        if not self.error:
            self.error = message

    def value(
        self, value: Any, go_type: GoType, path: str, struct: str, stack: tuple[str, ...]
    ) -> Any:
        """The decoded value (None: leave the field out, as a Go zero value is omitted)."""
        if value is None:
            return None
        kind = go_type.kind
        if kind == "any":
            return value
        if kind == "struct":
            if not isinstance(value, dict):
                self._type_error(_json_kind(value), go_type.go_name, struct, stack)
                return None
            return self.struct(value, go_type.model, path, stack)
        if kind == "list":
            if not isinstance(value, list):
                self._type_error(_json_kind(value), go_type.go_name, struct, stack)
                return None
            assert go_type.element is not None
            items = [
                self.value(item, go_type.element, f"{path}[{index}]", struct, stack)
                for index, item in enumerate(value)
            ]
            return [item for item in items if item is not None] if go_type.element.kind in (
                "struct", "map", "list") else items
        if kind == "map":
            if not isinstance(value, dict):
                self._type_error(_json_kind(value), go_type.go_name, struct, stack)
                return None
            assert go_type.element is not None
            decoded: dict[str, Any] = {}
            for key, item in value.items():
                kept = self.value(item, go_type.element, f"{path}[{key}]", struct, stack)
                decoded[key] = kept if kept is not None or item is None else item
            return decoded
        return self.scalar(value, go_type, struct, stack)

    def scalar(self, value: Any, go_type: GoType, struct: str, stack: tuple[str, ...]) -> Any:
        kind = go_type.kind
        what = _json_kind(value)
        if kind == "quantity":
            if message := _quantity_error(value):
                self._fail(message)
            return value
        if kind == "int-or-string":
            if isinstance(value, str):
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, float):
                what = f"number {_go_number_text(value)}"
            self._type_error(what, "int32", struct, stack)
            return value
        if kind in ("string", "time", "bytes"):
            if not isinstance(value, str):
                self._type_error(what, go_type.go_name, struct, stack)
                return value
            if kind == "time" and not _TIME.match(value):
                self._fail(f'parsing time "{value}" as "{_RFC3339}": cannot parse '
                           f'"{value}" as "2006"')
            if kind == "bytes" and (message := _base64_error(value)):
                self._fail(message)
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                self._type_error(what, "bool", struct, stack)
            return value
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self._type_error(what, go_type.go_name, struct, stack)
                return value
            bits = 64 if go_type.go_name == "int64" else 32
            integral = isinstance(value, int) or value.is_integer()
            if not integral or not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                self._type_error(f"number {_go_number_text(value)}", go_type.go_name, struct,
                                 stack)
                return value
            return int(value)
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self._type_error(what, go_type.go_name, struct, stack)
            return value
        return value

    def struct(
        self, value: dict[str, Any], model: str, path: str, stack: tuple[str, ...]
    ) -> dict[str, Any]:
        fields = struct_fields(model)
        _, struct = _go_struct_name(model)
        decoded: dict[str, Any] = {}
        for key, item in value.items():
            child_path = f"{path}.{key}" if path else key
            known = fields.get(key)
            if known is None:
                self.unknown.append(child_path)
                continue
            kept = self.value(item, known.type, child_path, struct, (*stack, key))
            if kept is not None:
                decoded[key] = kept
        return decoded


def decode(obj: dict[str, Any], group: str, version: str, kind: str) -> Decoded | None:
    """Decode a built-in object as kube-apiserver's JSON decoder would (None: no model).

    The decoded object has no unknown fields and no nulls (Go leaves zero values out); `error`
    is the first decoding error, worded as Go's encoding/json words it.
    """
    model = root_model(group, version, kind)
    if model is None:
        return None
    decoder = _Decoder()
    decoded = decoder.struct(obj, model, "", ())
    return Decoded(decoded, decoder.error, decoder.unknown)


def decoding_error_message(kind: str, version: str, error: str) -> str:
    """The message of kube's 400 for a body that does not decode."""
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {error}'
