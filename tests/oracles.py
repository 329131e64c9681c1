"""Upstream API schemas as test oracles.

`validate_against_swagger(obj, swagger_path, definition_name)` checks an object against a
definition of an upstream OpenAPI v2 document (KubeVirt's or CDI's swagger.json), resolving
its `$ref`s. Swagger definitions allow unknown fields; the oracle does not: an object with a
property its definition does not declare fails, so a misspelt field cannot pass.

The schemas are read where `tests/upstream.py` finds them (VDCOS_UPSTREAM, else
.vdcos/upstream from hack/fetch-upstream.sh), never copied; without them a check skips.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from tests import upstream

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = upstream.path("schemas")
KUBEVIRT_SWAGGER = SCHEMAS / "kubevirt" / "swagger.json"
CDI_SWAGGER = SCHEMAS / "cdi" / "swagger.json"


def _closed(node: Any) -> Any:
    """Every object schema that lists properties rejects the ones it does not list."""
    if isinstance(node, dict):
        closed = {key: _closed(value) for key, value in node.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


@functools.cache
def _definitions(swagger_path: str) -> dict[str, Any]:
    document = json.loads(Path(swagger_path).read_text(encoding="utf-8"))
    definitions: dict[str, Any] = _closed(document["definitions"])
    return definitions


def swagger_errors(
    obj: Mapping[str, Any], swagger_path: Path | str, definition_name: str
) -> list[str]:
    """Every violation of `definition_name` by `obj`, as "path: message" lines (the test is
    skipped with a hint where the upstream document is absent)."""
    definitions = _definitions(str(upstream.require(Path(swagger_path))))
    if definition_name not in definitions:
        raise KeyError(f"{definition_name} is not defined in {swagger_path}")
    schema = {"$ref": f"#/definitions/{definition_name}", "definitions": definitions}
    validator = jsonschema.Draft4Validator(schema)
    return sorted(
        f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(copy.deepcopy(dict(obj)))
    )


def validate_against_swagger(
    obj: Mapping[str, Any], swagger_path: Path | str, definition_name: str
) -> None:
    """Raises AssertionError listing every violation of the upstream definition."""
    errors = swagger_errors(obj, swagger_path, definition_name)
    if errors:
        raise AssertionError(
            f"not a valid {definition_name} per {swagger_path}:\n  " + "\n  ".join(errors)
        )


def crd_schema_errors(obj: Mapping[str, Any], crd: Mapping[str, Any]) -> list[str]:
    """Violations of a CRD's openAPIV3Schema (first version) by `obj`, via jsonschema."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft4Validator(_without_nullable(schema))
    return sorted(
        f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(dict(obj))
    )


def _without_nullable(node: Any) -> Any:
    """OpenAPI's `nullable: true` expressed in JSON Schema (type also admits null)."""
    if isinstance(node, dict):
        converted = {key: _without_nullable(value) for key, value in node.items()}
        if converted.pop("nullable", False) and "type" in converted:
            converted["type"] = [converted["type"], "null"]
        return converted
    if isinstance(node, list):
        return [_without_nullable(item) for item in node]
    return node
