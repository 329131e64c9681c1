"""Pydantic models -> `apiextensions.k8s.io/v1` CustomResourceDefinitions.

A pydantic JSON schema is not a Kubernetes *structural* schema. Like kube-rs, we rewrite it:
`$defs`/`$ref` are inlined, `anyOf [X, null]` becomes `X` with `nullable: true`, titles go,
`const` becomes a one-value `enum`, draft-2020 exclusive bounds become OpenAPI v3 booleans,
`additionalProperties` is kept only for maps, and `default: null` is dropped. Enums, bounds,
patterns, descriptions and `x-kubernetes-*` extensions declared with `json_schema_extra`
are kept. `oneOf`/`anyOf`/`allOf` survive only as value validations (e.g. "exactly one of
these fields": `oneOf: [{required: [a]}, {required: [b]}]`), which structural schemas allow;
anything else raises `StructuralSchemaError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from kubekit.resources import ResourceRef

# Keys a structural schema may carry that we copy verbatim (the rest are dropped or rewritten).
_KEPT_KEYS = frozenset(
    {
        "description",
        "type",
        "format",
        "enum",
        "default",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "required",
        "multipleOf",
        "nullable",
    }
)
# Keys inside oneOf/anyOf/allOf/not branches that are pure value validation.
_VALUE_VALIDATION_KEYS = frozenset(
    {
        "required",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "not",
        "oneOf",
        "anyOf",
        "allOf",
        "properties",
    }
)
_JUNCTORS = ("oneOf", "anyOf", "allOf")
# Handled separately (properties, items, additionalProperties) or meaningless to Kubernetes.
_DROPPED_KEYS = frozenset(
    {
        "title",
        "$defs",
        "properties",
        "items",
        "additionalProperties",
        "discriminator",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
    }
)


class StructuralSchemaError(ValueError):
    """The pydantic schema cannot be expressed as a Kubernetes structural schema."""


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry: what `kubectl get` shows."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0

    def to_api(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
READY_COLUMN = PrinterColumn(
    "Ready",
    '.status.conditions[?(@.type=="Ready")].status',
    description="Whether the object reached the state its spec asks for",
)


@dataclass(frozen=True)
class CustomResourceKind:
    """Everything a CRD says about one kind, besides the schema derived from the models."""

    group: str
    version: str
    kind: str
    plural: str
    scope: Literal["Namespaced", "Cluster"]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    short_names: Sequence[str] = ()
    categories: Sequence[str] = ()
    printer_columns: Sequence[PrinterColumn] = field(default_factory=tuple)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def resource(self) -> ResourceRef:
        """Where the kind's objects are served, for the operator's client."""
        return ResourceRef(self.group, self.version, self.plural, self.scope == "Namespaced")


def _resolve_ref(ref: str, definitions: Mapping[str, Any]) -> Mapping[str, Any]:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in definitions:
        raise StructuralSchemaError(f"cannot resolve $ref {ref!r}")
    resolved: Mapping[str, Any] = definitions[ref[len(prefix) :]]
    return resolved


def _without_null_branch(node: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """`anyOf: [X, {type: null}]` -> (X plus the node's own keys, nullable)."""
    branches = node.get("anyOf")
    if not isinstance(branches, list):
        return node, False
    non_null = [branch for branch in branches if branch.get("type") != "null"]
    if len(non_null) == len(branches) or len(non_null) != 1:
        return node, False
    merged = {key: value for key, value in node.items() if key != "anyOf"}
    return {**non_null[0], **merged}, True


def _value_validation(node: Any, path: str) -> Any:
    """A junctor branch: only value validation may appear there in a structural schema."""
    if not isinstance(node, Mapping):
        raise StructuralSchemaError(f"{path}: junctor branch must be an object")
    unexpected = set(node) - _VALUE_VALIDATION_KEYS
    if unexpected:
        raise StructuralSchemaError(
            f"{path}: {sorted(unexpected)} not allowed inside oneOf/anyOf/allOf/not"
        )
    return {key: node[key] for key in sorted(node)}


def to_structural(
    node: Mapping[str, Any],
    definitions: Mapping[str, Any],
    path: str = "",
    seen: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One pydantic JSON-schema node rewritten as a structural OpenAPI v3 node."""
    node, nullable = _without_null_branch(node)
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise StructuralSchemaError(f"{path}: recursive type {ref} cannot be inlined")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        node = {**_resolve_ref(ref, definitions), **siblings}
        seen = (*seen, ref)
    if "allOf" in node and len(node["allOf"]) == 1 and "$ref" in node["allOf"][0]:
        # Older pydantic wraps a described $ref in a single-branch allOf.
        siblings = {key: value for key, value in node.items() if key != "allOf"}
        return to_structural({**node["allOf"][0], **siblings}, definitions, path, seen)

    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _KEPT_KEYS or key.startswith("x-kubernetes-"):
            result[key] = value
        elif key == "const":
            result["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            result[bound] = value
            result[key] = True
        elif key in _JUNCTORS:
            result[key] = [_value_validation(branch, f"{path}.{key}") for branch in value]
        elif key == "not":
            result[key] = _value_validation(value, f"{path}.not")
        elif key in _DROPPED_KEYS:
            continue
        else:
            raise StructuralSchemaError(f"{path}: unsupported schema keyword {key!r}")

    if "properties" in node:
        result["properties"] = {
            name: to_structural(child, definitions, f"{path}.{name}", seen)
            for name, child in node["properties"].items()
        }
    elif isinstance(node.get("additionalProperties"), Mapping):
        result["additionalProperties"] = to_structural(
            node["additionalProperties"], definitions, f"{path}.*", seen
        )
    if "items" in node:
        result["items"] = to_structural(node["items"], definitions, f"{path}[]", seen)

    if result.get("default", 0) is None:
        del result["default"]
    if nullable:
        result["nullable"] = True
    untyped_allowed = result.get("x-kubernetes-int-or-string") or result.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if "type" not in result and not untyped_allowed:
        raise StructuralSchemaError(f"{path or '<root>'}: no type (structural schemas need one)")
    if (
        result.get("type") == "object"
        and "properties" not in result
        and (
            "additionalProperties" not in result
            and not result.get("x-kubernetes-preserve-unknown-fields")
        )
    ):
        result["properties"] = {}
    return result


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural openAPIV3Schema of a pydantic model (camelCase aliases)."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return to_structural(schema, schema.get("$defs", {}))


def structural_violations(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """What keeps `schema` from being structural; empty when the API server would accept it.

    Checks the rules of apiextensions `structuralschema`: every node has a type (unless it is
    int-or-string or preserves unknown fields), no $ref, no titles, no
    properties together with additionalProperties, junctor branches carry value validation only.
    """
    problems: list[str] = []
    where = path or "<root>"
    if "$ref" in schema:
        problems.append(f"{where}: $ref")
    if "title" in schema:
        problems.append(f"{where}: title")
    if "type" not in schema and not (
        schema.get("x-kubernetes-int-or-string")
        or schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        problems.append(f"{where}: missing type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{where}: properties and additionalProperties together")
    if schema.get("additionalProperties") is False:
        problems.append(f"{where}: additionalProperties: false")
    for junctor in _JUNCTORS:
        for index, branch in enumerate(schema.get(junctor, [])):
            unexpected = set(branch) - _VALUE_VALIDATION_KEYS
            if unexpected:
                problems.append(f"{where}.{junctor}[{index}]: {sorted(unexpected)}")
    for name, child in schema.get("properties", {}).items():
        problems.extend(structural_violations(child, f"{path}.{name}"))
    if isinstance(schema.get("items"), Mapping):
        problems.extend(structural_violations(schema["items"], f"{path}[]"))
    if isinstance(schema.get("additionalProperties"), Mapping):
        problems.extend(structural_violations(schema["additionalProperties"], f"{path}.*"))
    return problems


def resource_schema(kind: CustomResourceKind) -> dict[str, Any]:
    """The whole object's schema: apiVersion, kind, metadata, spec and status."""
    spec = model_schema(kind.spec_model)
    status = model_schema(kind.status_model)
    return {
        "description": kind.description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this object.",
                "type": "string",
            },
            "kind": {
                "description": "Kind is the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def build_crd(kind: CustomResourceKind) -> dict[str, Any]:
    """The `apiextensions.k8s.io/v1` CustomResourceDefinition of one kind."""
    names: dict[str, Any] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular,
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    if kind.categories:
        names["categories"] = list(kind.categories)
    version: dict[str, Any] = {
        "name": kind.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": resource_schema(kind)},
        "subresources": {"status": {}},
    }
    if kind.printer_columns:
        version["additionalPrinterColumns"] = [column.to_api() for column in kind.printer_columns]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": kind.group,
            "names": names,
            "scope": kind.scope,
            "versions": [version],
        },
    }


def crd_filename(kind: CustomResourceKind) -> str:
    """Where the CRD of `kind` lives in crds/, e.g. `vdcos.io_virtualmachines.yaml`."""
    return f"{kind.group}_{kind.plural}.yaml"


def render_yaml(document: Mapping[str, Any]) -> str:
    """Deterministic YAML: sorted keys (as kubebuilder writes CRDs), no anchors."""

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    header = "# Generated by hack/gen-crds.py from the pydantic models. Do not edit.\n"
    body = yaml.dump(
        dict(document), Dumper=_NoAliases, sort_keys=True, default_flow_style=False, width=100
    )
    return header + "---\n" + body
