"""OpenAPI documents served at /openapi/v3 and /openapi/v2: what kubectl reads.

Shaped after kube-apiserver (apiextensions' CRD OpenAPI builder): every resource gets its
paths with get/list/create/update/patch/delete operations carrying
`x-kubernetes-group-version-kind` and `x-kubernetes-action`, and the `dryRun`,
`fieldManager`, `fieldValidation` query parameters. Seeing `fieldValidation` on a kind's PATCH
operation makes kubectl leave validation to the server (`fieldValidation=Strict`).

Custom kinds publish their CRD schema (for `kubectl explain`). Built-in kinds publish the
schema `builtin_schemas` derives from the official client's models (in v3 only); their PATCH
operation does not list strategic merge patch and v2 leaves them out, so `kubectl apply`
computes strategic merge patches from its compiled-in types, not from ours.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from devcluster.apiserver.builtin_schemas import schema_for
from devcluster.apiserver.resources import Registry, ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"
STATUS = f"{META}.Status"
DELETE_OPTIONS = f"{META}.DeleteOptions"
PATCH = f"{META}.Patch"

API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers may "
    "infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
METADATA_DESCRIPTION = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

_KUBE_GROUP_SUFFIX = ".k8s.io"


def model_name(group: str, version: str, kind: str) -> str:
    """The definition name kube gives a kind: `io.k8s.api.apps.v1.Deployment`,
    `io.vdcos.v1alpha1.VirtualMachine` (reversed group) for everything else."""
    if group == "":
        return (
            f"io.k8s.api.core.v1.{kind}" if version == "v1" else f"io.k8s.api.core.{version}.{kind}"
        )
    if group == "apiextensions.k8s.io":
        return f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}.{kind}"
    if "." not in group or (group.endswith(_KUBE_GROUP_SUFFIX) and group.count(".") == 2):
        short = group.split(".")[0]
        return f"io.k8s.api.{short}.{version}.{kind}"
    return ".".join([*reversed(group.split(".")), version, kind])


def _ref(name: str, v2: bool) -> str:
    return f"#/definitions/{name}" if v2 else f"#/components/schemas/{name}"


def _gvk(resource: ResourceType, kind: str | None = None) -> dict[str, str]:
    return {"group": resource.group, "version": resource.version, "kind": kind or resource.kind}


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _meta_property(v2: bool) -> dict[str, Any]:
    if v2:
        return {"$ref": _ref(OBJECT_META, True), "description": METADATA_DESCRIPTION}
    return {"allOf": [{"$ref": _ref(OBJECT_META, False)}], "description": METADATA_DESCRIPTION}


def _meta_schemas(v2: bool) -> dict[str, Any]:
    """The apimachinery types the kind schemas and operations refer to (abridged)."""
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    object_meta = {
        "description": "ObjectMeta is metadata that all persisted resources must have, which "
        "includes all objects users must create.",
        "type": "object",
        "properties": {
            "name": _string("Name must be unique within a namespace."),
            "generateName": _string(
                "GenerateName is an optional prefix used by the server to generate a unique name."
            ),
            "namespace": _string(
                "Namespace defines the space within which each name must be unique."
            ),
            "uid": _string("UID is the unique in time and space value for this object."),
            "resourceVersion": _string(
                "An opaque value that represents the internal version of this object."
            ),
            "generation": {
                "type": "integer",
                "format": "int64",
                "description": "A sequence number representing a specific generation "
                "of the desired state.",
            },
            "creationTimestamp": {
                "type": "string",
                "format": "date-time",
                "description": "CreationTimestamp is a timestamp representing "
                "the server time when this object was created.",
            },
            "deletionTimestamp": {
                "type": "string",
                "format": "date-time",
                "description": "DeletionTimestamp is RFC 3339 date and time at "
                "which this resource will be deleted.",
            },
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
            "labels": {
                **string_map,
                "description": "Map of string keys and values that can be "
                "used to organize and categorize (scope and select) objects.",
            },
            "annotations": {
                **string_map,
                "description": "Annotations is an unstructured "
                "key value map stored with a resource.",
            },
            "finalizers": {
                "type": "array",
                "items": {"type": "string"},
                "x-kubernetes-list-type": "set",
                "description": "Must be empty before the object is deleted from the registry.",
            },
            "ownerReferences": {
                "type": "array",
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "description": "List of objects depended by this object.",
            },
            "managedFields": {
                "type": "array",
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "description": "ManagedFields maps workflow-id and version to the "
                "set of fields that are managed by that workflow.",
            },
        },
    }
    list_meta = {
        "description": "ListMeta describes metadata that synthetic resources must have.",
        "type": "object",
        "properties": {
            "resourceVersion": _string(
                "String that identifies the server's internal version of this object."
            ),
            "continue": _string(
                "continue may be set if the user set a limit on the number of items returned."
            ),
            "remainingItemCount": {"type": "integer", "format": "int64"},
        },
    }
    loose = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        OBJECT_META: object_meta,
        LIST_META: list_meta,
        STATUS: {
            **loose,
            "description": "Status is a return value for calls that don't return other objects.",
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}],
        },
        DELETE_OPTIONS: {
            **loose,
            "description": "DeleteOptions may be provided when deleting an API object.",
        },
        PATCH: {
            "type": "object",
            "description": "Patch is provided to give a concrete name and "
            "type to the Kubernetes PATCH request body.",
        },
    }


def _add_embedded_meta(schema: dict[str, Any], v2: bool) -> None:
    """Give embedded resources apiVersion/kind/metadata, as kube's builder does."""
    for sub in (schema.get("properties") or {}).values():
        if isinstance(sub, dict):
            _add_embedded_meta(sub, v2)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _add_embedded_meta(schema[key], v2)
    if schema.get("x-kubernetes-embedded-resource"):
        properties = schema.setdefault("properties", {})
        properties["apiVersion"] = _string(API_VERSION_DESCRIPTION)
        properties["kind"] = _string(KIND_DESCRIPTION)
        properties["metadata"] = _meta_property(v2)
        required = schema.setdefault("required", [])
        for name in ("kind", "apiVersion"):
            if name not in required:
                required.append(name)


def _strip_for_v2(schema: Any) -> Any:
    """OpenAPI v2 has no nullable/anyOf/oneOf/not; kube drops them (and value validations
    under them) from the v2 document."""
    if isinstance(schema, list):
        return [_strip_for_v2(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: _strip_for_v2(value)
        for key, value in schema.items()
        if key not in ("nullable", "anyOf", "oneOf", "not", "allOf", "x-kubernetes-validations")
    }


def kind_schema(resource: ResourceType, *, v2: bool = False) -> dict[str, Any]:
    """The definition of a kind: the CRD schema with TypeMeta/ObjectMeta, the schema derived
    from the official client's models for built-in kinds (`kubectl explain deployment.spec`),
    or a permissive object for a built-in kind the client has no model of."""
    builtin_schema = (
        schema_for(resource.group, resource.version, resource.kind)
        if resource.builtin and resource.schema is None
        else None
    )
    schema: dict[str, Any]
    if builtin_schema is not None:
        # No x-kubernetes-patch-* extensions: kubectl keeps its compiled-in merge keys.
        # Only the top level is changed below; the (large, cached) rest is shared, read-only.
        schema = {**builtin_schema, "properties": dict(builtin_schema.get("properties") or {})}
        if v2:
            schema = _strip_for_v2(schema)
    elif resource.schema is None:
        schema = {
            "description": f"{resource.kind} (schema not published; the server validates it).",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    else:
        schema = copy.deepcopy(resource.schema)
        if v2:
            schema = _strip_for_v2(schema)
        _add_embedded_meta(schema, v2)
        schema.setdefault("type", "object")
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = _string(API_VERSION_DESCRIPTION)
    properties["kind"] = _string(KIND_DESCRIPTION)
    properties["metadata"] = _meta_property(v2)
    schema["x-kubernetes-group-version-kind"] = [_gvk(resource)]
    return schema


def _list_kind(resource: ResourceType) -> str:
    return resource.list_kind or f"{resource.kind}List"


def list_schema(resource: ResourceType, *, v2: bool = False) -> dict[str, Any]:
    list_kind = _list_kind(resource)
    meta: dict[str, Any] = (
        {"$ref": _ref(LIST_META, True)} if v2 else {"allOf": [{"$ref": _ref(LIST_META, False)}]}
    )
    meta["description"] = (
        "Standard list metadata. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
    )
    return {
        "description": f"{list_kind} is a list of {resource.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": _string(API_VERSION_DESCRIPTION),
            "items": {
                "description": f"List of {resource.plural}.",
                "type": "array",
                "items": {
                    "$ref": _ref(model_name(resource.group, resource.version, resource.kind), v2)
                },
            },
            "kind": _string(KIND_DESCRIPTION),
            "metadata": meta,
        },
        "x-kubernetes-group-version-kind": [_gvk(resource, list_kind)],
    }


# --- paths ------------------------------------------------------------------------------------

_QUERY_DESCRIPTIONS = {
    "pretty": "If 'true', then the output is pretty printed.",
    "dryRun": "When present, indicates that modifications should not be persisted. An invalid or "
    "unrecognized dryRun directive will result in an error response and no further processing "
    "of the request. Valid values are: - All: all dry run stages will be processed",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making "
    "these changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the "
    "request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - "
    "Ignore: This will ignore any unknown fields that are silently dropped from the object, and "
    "will ignore all but the last duplicate field that the decoder encounters. - Warn: This "
    "will send a warning via the standard warning response header for each unknown field that "
    "is dropped from the object, and for each duplicate field that is encountered. - Strict: "
    "This will fail the request with a BadRequest error if any unknown fields would be dropped "
    "from the object, or if any duplicate fields are present. The error returned from the "
    "server will contain all unknown and duplicate fields encountered.",
    "force": 'Force is going to "force" Apply requests. It means user will re-acquire '
    "conflicting fields owned by other people.",
    "labelSelector": "A selector to restrict the list of returned objects by their labels.",
    "fieldSelector": "A selector to restrict the list of returned objects by their fields.",
    "limit": "limit is a maximum number of responses to return for a list call.",
    "continue": "The continue option should be set when retrieving more results from the server.",
    "resourceVersion": "resourceVersion sets a constraint on what resource versions a request "
    "may be served from.",
    "resourceVersionMatch": "resourceVersionMatch determines how resourceVersion is applied to "
    "list calls.",
    "timeoutSeconds": "Timeout for the list/watch call.",
    "watch": "Watch for changes to the described resources and return them as a stream of add, "
    "update, and remove notifications.",
    "allowWatchBookmarks": 'allowWatchBookmarks requests watch events with type "BOOKMARK".',
    "sendInitialEvents": "`sendInitialEvents=true` may be set together with `watch=true`.",
    "gracePeriodSeconds": "The duration in seconds before the object should be deleted.",
    "propagationPolicy": "Whether and how garbage collection will be performed.",
    "orphanDependents": "Deprecated: please use the PropagationPolicy.",
}
_QUERY_TYPES = {
    "limit": ("integer", ""),
    "timeoutSeconds": ("integer", ""),
    "gracePeriodSeconds": ("integer", ""),
    "watch": ("boolean", ""),
    "allowWatchBookmarks": ("boolean", ""),
    "sendInitialEvents": ("boolean", ""),
    "force": ("boolean", ""),
    "orphanDependents": ("boolean", ""),
}
_LIST_QUERY = [
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
]
_WRITE_QUERY = ["dryRun", "fieldManager", "fieldValidation"]
_DELETE_QUERY = ["dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"]
_ACTION_QUERY = {
    "get": [],
    "list": _LIST_QUERY,
    "post": _WRITE_QUERY,
    "put": _WRITE_QUERY,
    "patch": [*_WRITE_QUERY, "force"],
    "delete": _DELETE_QUERY,
    "deletecollection": [*_DELETE_QUERY, *_LIST_QUERY],
}
_PATCH_TYPES_CUSTOM = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
]


def _query_parameter(name: str, v2: bool) -> dict[str, Any]:
    kind, fmt = _QUERY_TYPES.get(name, ("string", ""))
    parameter: dict[str, Any] = {
        "name": name,
        "in": "query",
        "description": _QUERY_DESCRIPTIONS.get(name, ""),
        "uniqueItems": True,
    }
    if v2:
        parameter["type"] = kind
    else:
        parameter["schema"] = {"type": kind, "uniqueItems": True}
    if fmt:
        parameter["format"] = fmt
    return parameter


def _path_parameter(name: str, description: str, v2: bool) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "path",
        "description": description,
        "required": True,
    }
    if v2:
        parameter["type"] = "string"
        parameter["uniqueItems"] = True
    else:
        parameter["schema"] = {"type": "string", "uniqueItems": True}
    return parameter


def _camel_group(resource: ResourceType) -> str:
    parts = [p for chunk in resource.group.split(".") for p in chunk.split("-") if p]
    group = "".join(p[:1].upper() + p[1:] for p in parts) if parts else "Core"
    return group + resource.version[:1].upper() + resource.version[1:]


def _operation(
    resource: ResourceType,
    action: str,
    verb_word: str,
    subresource: str,
    response: str,
    *,
    v2: bool,
    all_namespaces: bool = False,
    body: str | None = None,
) -> dict[str, Any]:
    scope = "Namespaced" if resource.namespaced and not all_namespaces else ""
    suffix = subresource[:1].upper() + subresource[1:]
    tail = "ForAllNamespaces" if all_namespaces else ""
    operation: dict[str, Any] = {
        "tags": [_camel_group(resource)[:1].lower() + _camel_group(resource)[1:]],
        "description": f"{verb_word} {resource.kind}{(' ' + subresource) if subresource else ''}",
        "operationId": f"{verb_word}{_camel_group(resource)}{scope}{resource.kind}{suffix}{tail}",
        "parameters": [_query_parameter(name, v2) for name in _ACTION_QUERY[action]],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(resource),
    }
    produces = ["application/json", "application/yaml"]
    if v2:
        operation["produces"] = produces
        operation["schemes"] = ["https"]
        operation["responses"] = {
            "200": {"description": "OK", "schema": {"$ref": _ref(response, True)}}
        }
        if action == "patch":
            operation["consumes"] = list(_PATCH_TYPES_CUSTOM)
        elif body is not None:
            operation["consumes"] = ["*/*"]
        if body is not None:
            operation["parameters"].append(
                {
                    "name": "body",
                    "in": "body",
                    "required": action != "delete",
                    "schema": {"$ref": _ref(body, True)},
                }
            )
    else:
        content = {t: {"schema": {"$ref": _ref(response, False)}} for t in produces}
        operation["responses"] = {
            "200": {"description": "OK", "content": content},
            "401": {"description": "Unauthorized"},
        }
        if body is not None:
            types = list(_PATCH_TYPES_CUSTOM) if action == "patch" else ["*/*"]
            operation["requestBody"] = {
                "content": {t: {"schema": {"$ref": _ref(body, False)}} for t in types},
                "required": action != "delete",
            }
    return operation


def _paths_for(resource: ResourceType, *, v2: bool) -> dict[str, Any]:
    prefix = (
        f"/apis/{resource.group}/{resource.version}"
        if resource.group
        else f"/api/{resource.version}"
    )
    kind_model = model_name(resource.group, resource.version, resource.kind)
    list_model = model_name(resource.group, resource.version, _list_kind(resource))
    verbs = set(resource.verbs)
    paths: dict[str, Any] = {}
    pretty = _query_parameter("pretty", v2)
    name_parameter = _path_parameter("name", f"name of the {resource.kind}", v2)
    namespace_parameter = _path_parameter(
        "namespace", "object name and auth scope, such as for teams and projects", v2
    )
    scope_parameters = [namespace_parameter] if resource.namespaced else []
    if resource.namespaced:
        collection = f"{prefix}/namespaces/{{namespace}}/{resource.plural}"
        if "list" in verbs:
            paths[f"{prefix}/{resource.plural}"] = {
                "get": _operation(
                    resource, "list", "list", "", list_model, v2=v2, all_namespaces=True
                ),
                "parameters": [pretty],
            }
    else:
        collection = f"{prefix}/{resource.plural}"
    collection_item: dict[str, Any] = {"parameters": [*scope_parameters, pretty]}
    if "list" in verbs:
        collection_item["get"] = _operation(resource, "list", "list", "", list_model, v2=v2)
    if "create" in verbs:
        collection_item["post"] = _operation(
            resource, "post", "create", "", kind_model, v2=v2, body=kind_model
        )
    if "deletecollection" in verbs:
        collection_item["delete"] = _operation(
            resource, "deletecollection", "deletecollection", "", STATUS, v2=v2, body=DELETE_OPTIONS
        )
    paths[collection] = collection_item
    subresources = ["", *sorted(s for s in resource.subresources if s in ("status", "scale"))]
    for subresource in subresources:
        path = f"{collection}/{{name}}" + (f"/{subresource}" if subresource else "")
        item: dict[str, Any] = {"parameters": [name_parameter, *scope_parameters, pretty]}
        if "get" in verbs:
            item["get"] = _operation(resource, "get", "read", subresource, kind_model, v2=v2)
        if "update" in verbs:
            item["put"] = _operation(
                resource, "put", "replace", subresource, kind_model, v2=v2, body=kind_model
            )
        if "patch" in verbs:
            item["patch"] = _operation(
                resource, "patch", "patch", subresource, kind_model, v2=v2, body=PATCH
            )
        if "delete" in verbs and not subresource:
            item["delete"] = _operation(
                resource, "delete", "delete", "", STATUS, v2=v2, body=DELETE_OPTIONS
            )
        paths[path] = item
    return paths


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _document_hash(document: dict[str, Any]) -> str:
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha512(encoded).hexdigest()[:128].upper()


def openapi_v3_group_version(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version (None when nothing is served there)."""
    resources = sorted(registry.in_group_version(group, version), key=lambda r: r.plural)
    if not resources:
        return None
    paths: dict[str, Any] = {}
    schemas = _meta_schemas(v2=False)
    for resource in resources:
        paths.update(_paths_for(resource, v2=False))
        schemas[model_name(group, version, resource.kind)] = kind_schema(resource)
        schemas[model_name(group, version, _list_kind(resource))] = list_schema(resource)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                }
            },
        },
    }


def openapi_v3_index(registry: Registry) -> dict[str, Any]:
    """GET /openapi/v3: one entry per served group-version, its URL carrying a content hash
    so kubectl's cache notices changes."""
    paths: dict[str, Any] = {}
    for group, versions in sorted(registry.groups().items()):
        for version in versions:
            document = openapi_v3_group_version(registry, group, version)
            if document is None:
                continue
            key = _gv_key(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={_document_hash(document)}"}
    return {"paths": paths}


def openapi_v2(registry: Registry) -> dict[str, Any]:
    """GET /openapi/v2 (Swagger 2.0, JSON) of the custom kinds. Built-in kinds are left out, so
    kubectl's client-side apply falls back to its compiled-in strategic-merge metadata."""
    paths: dict[str, Any] = {}
    definitions = _meta_schemas(v2=True)
    for resource in sorted(registry, key=lambda r: (r.group, r.version, r.plural)):
        if resource.builtin:
            continue
        paths.update(_paths_for(resource, v2=True))
        definitions[model_name(resource.group, resource.version, resource.kind)] = kind_schema(
            resource, v2=True
        )
        definitions[model_name(resource.group, resource.version, _list_kind(resource))] = (
            list_schema(resource, v2=True)
        )
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
                "description": "Bearer Token authentication",
            }
        },
        "security": [{"BearerToken": []}],
    }
