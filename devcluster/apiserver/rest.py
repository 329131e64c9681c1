"""The verbs of the Kubernetes REST API over the store: what each request does to objects.

This module knows nothing of HTTP: it takes decoded bodies and query options and returns
objects or raises ApiError. `server.py` does the transport.
"""

from __future__ import annotations

import base64
import builtins
import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from . import errors
from .admission import ClusterIPAllocator, default_new_object
from .builtin import NAMESPACE_KEY, PODS_KEY
from .builtin_schemas import decode as decode_builtin
from .builtin_schemas import decoding_error_message
from .cel_rules import has_rules as has_cel_rules
from .cel_rules import validate_rules
from .errors import ApiError, Cause
from .managed_fields import (
    ListRules,
    list_rules_for_builtin,
    list_rules_from_schema,
    record_update,
    server_side_apply,
)
from .object_meta import generate_name, name_rule_for, validate_object_meta
from .patching import json_patch, merge_patch, strategic_merge_patch
from .resources import Registry, ResourceType
from .schema import prune_and_default, validate
from .selectors import parse_field_selector, parse_label_selector, supported_field_labels
from .store import Event, Store
from .typed_bodies import check_object_meta, decode_typed
from .wire_values import (
    MAX_NESTING_DEPTH,
    MAX_OBJECT_BYTES,
    depth_exceeded,
    may_be_too_deep,
    short_path,
)

# Fields the server owns: never taken from a client's body on update.
_SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation", "selfLink")
_IGNORED_FOR_NOOP = ("resourceVersion", "managedFields")
# A deletion grace period longer than this is waited as this (datetime cannot add 10**18 s).
_MAX_GRACE_SECONDS = 100 * 365 * 24 * 3600
# orjson refuses what JSON (and the store's encoder) cannot carry instead of converting it:
# dates, dataclasses, subclasses of str and int.
_STRICT_JSON = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                | orjson.OPT_PASSTHROUGH_SUBCLASS)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WriteOptions:
    """Query options common to writes."""

    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Strict"  # Strict | Warn | Ignore
    force: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""


@dataclass(frozen=True)
class DeleteOptions:
    propagation_policy: str = ""
    grace_period_seconds: int | None = None
    precondition_uid: str = ""
    precondition_resource_version: str = ""
    dry_run: bool = False
    orphan_dependents: bool | None = None


class Rest:
    """Create, read, update, patch and delete objects the way kube-apiserver does."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.cluster_ips = ClusterIPAllocator()
        self._list_rules_cache: dict[tuple[str, str, int], ListRules] = {}
        self._cel_rules_cache: dict[tuple[str, str, str, int], bool] = {}
        # Extra per-kind defaulting and checks (CRDs, ...) registered by other parts.
        self.defaulters: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.validators: dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]] = {}
        # Mutating admission on create (as webhooks registered for CREATE): they may edit
        # the object in place and return causes to reject it.
        self.create_mutators: dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]] = {}

    # ---- helpers -----------------------------------------------------------------------

    def in_version(self, resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The stored object as seen through `resource`'s version."""
        if obj.get("apiVersion") == resource.api_version:
            return obj
        return {**obj, "apiVersion": resource.api_version}

    def _storage_api_version(self, resource: ResourceType) -> str:
        stored = self.registry.storage_version(resource.group, resource.plural)
        return (stored or resource).api_version

    def _list_rules(self, resource: ResourceType) -> ListRules:
        key = (resource.group, resource.plural, self.registry.generation)
        rules = self._list_rules_cache.get(key)
        if rules is None:
            if resource.builtin:
                rules = list_rules_for_builtin(f"{resource.group}/{resource.kind}")
            else:
                rules = list_rules_from_schema(resource.schema)
            self._list_rules_cache = {key: rules, **self._list_rules_cache}
        return rules

    def get(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get_committed(resource.storage_key, namespace, name)
        if obj is None:
            raise errors.not_found(resource.plural, resource.group, name)
        return self.in_version(resource, obj)

    # ---- list --------------------------------------------------------------------------

    def list(
        self, resource: ResourceType, namespace: str | None, options: ListOptions
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Objects matching the selectors, a page of them, and the list metadata."""
        matches = self.matcher(resource, options)
        objects = self.store.list_committed(resource.storage_key, namespace)
        start = 0
        if options.continue_token:
            after = _decode_continue(options.continue_token)
            start = next(
                (i for i, obj in enumerate(objects) if _sort_key(obj) > after), len(objects)
            )
        selected: list[dict[str, Any]] = []
        metadata: dict[str, Any] = {"resourceVersion": str(self.store.committed_revision)}
        for index in range(start, len(objects)):
            obj = objects[index]
            if not matches(obj):
                continue
            if options.limit and len(selected) == options.limit:
                metadata["continue"] = _encode_continue(_sort_key(selected[-1]))
                metadata["remainingItemCount"] = sum(1 for o in objects[index:] if matches(o))
                break
            selected.append(self.in_version(resource, obj))
        return selected, metadata

    def matcher(
        self, resource: ResourceType, options: ListOptions
    ) -> Callable[[dict[str, Any]], bool]:
        labels = parse_label_selector(options.label_selector) if options.label_selector else None
        fields = (
            parse_field_selector(
                options.field_selector, supported_field_labels(resource.group, resource.kind)
            )
            if options.field_selector
            else None
        )

        def matches(obj: dict[str, Any]) -> bool:
            if labels is not None and not labels.matches(obj["metadata"].get("labels") or {}):
                return False
            return fields is None or fields.matches(obj)

        return matches

    # ---- create ------------------------------------------------------------------------

    def create(
        self, resource: ResourceType, namespace: str, body: Any, options: WriteOptions,
        subresource: str = "",
    ) -> dict[str, Any]:
        obj = self._checked_body(resource, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        self._validate_meta(resource, obj, is_create=True)
        if resource.namespaced:
            self._require_active_namespace(namespace)
        mutator = self.create_mutators.get((resource.group, resource.kind))
        if mutator is not None or resource.builtin:
            obj = copy.deepcopy(obj)  # both edit nested fields in place
        if mutator is not None:
            causes = mutator(obj)
            if causes:
                raise errors.invalid(resource.kind, resource.group, meta["name"], causes)
        obj = self._admit(resource, obj, None, options)
        if resource.builtin:
            obj = default_new_object(resource, obj, self.cluster_ips)
        elif resource.has_status:
            obj.pop("status", None)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        if self.store.get(resource.storage_key, namespace, meta["name"]) is not None:
            raise errors.already_exists(resource.plural, resource.group, meta["name"])
        obj["apiVersion"] = self._storage_api_version(resource)
        obj = self._track(resource, None, obj, options, "Update", subresource)
        check_storable(resource, obj)
        if options.dry_run:
            return self.in_version(resource, {**obj, "metadata": {**obj["metadata"],
                                                                  "resourceVersion": ""}})
        stored, _ = self.store.create(resource.storage_key, obj)
        return self.in_version(resource, stored)

    def _checked_body(self, resource: ResourceType, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request(
                f"the body of the request must be a JSON object, got {type(body).__name__}"
            )
        _refuse_oversized(body)
        # Only the top level and metadata are changed here, so those are all that is copied:
        # everything below is shared, never mutated (stored objects are immutable).
        obj = dict(body)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != resource.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({resource.api_version})"
            )
        if kind and kind != resource.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise errors.invalid(resource.kind, resource.group, "", [
                Cause("metadata", "Invalid value: metadata must be an object")])
        check_object_meta(meta, resource.kind, resource.version)
        meta = obj["metadata"] = dict(meta)
        if resource.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _validate_meta(
        self, resource: ResourceType, obj: dict[str, Any], is_create: bool,
        old: dict[str, Any] | None = None,
    ) -> None:
        causes = validate_object_meta(
            obj,
            namespaced=resource.namespaced,
            name_rule=name_rule_for(resource.group, resource.kind),
            is_create=is_create,
            old=old,
        )
        if causes:
            name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
            raise errors.invalid(resource.kind, resource.group, str(name), causes)

    def _require_active_namespace(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACE_KEY, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated"
            )

    def _admit(
        self, resource: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
        options: WriteOptions,
    ) -> dict[str, Any]:
        """Schema pruning, defaulting and validation (custom resources), extra validators."""
        name = obj["metadata"].get("name", "")
        if resource.builtin and resource.schema is None:
            obj = self._decode_builtin(resource, obj, options)
        if resource.schema is not None:
            pruned, unknown = prune_and_default(obj, resource.schema)
            if unknown and options.field_validation == "Strict":
                listed = ", ".join(f'unknown field "{path.lstrip(".")}"' for path in unknown)
                raise errors.bad_request(f"strict decoding error: {listed}")
            if unknown and options.field_validation == "Warn":
                options.warnings.extend(f'unknown field "{path.lstrip(".")}"' for path in unknown)
            obj = pruned
            causes = validate(obj, resource.schema)
            if not causes and self._has_cel_rules(resource):
                causes = validate_rules(obj, resource.schema, old)
            if causes:
                raise errors.invalid(resource.kind, resource.group, name, causes)
        defaulter = self.defaulters.get((resource.group, resource.kind))
        if defaulter is not None:
            obj = defaulter(obj)
        validator = self.validators.get((resource.group, resource.kind))
        if validator is not None:
            causes = validator(obj)
            if causes:
                raise errors.invalid(resource.kind, resource.group, name, causes)
        return obj

    def _has_cel_rules(self, resource: ResourceType) -> bool:
        """Whether the kind's schema has x-kubernetes-validations (asked once per schema)."""
        key = (resource.group, resource.version, resource.plural, self.registry.generation)
        found = self._cel_rules_cache.get(key)
        if found is None:
            found = has_cel_rules(resource.schema)
            self._cel_rules_cache = {key: found} | {
                k: v for k, v in self._cel_rules_cache.items() if k[3] == key[3]}
        return found

    @staticmethod
    def _decode_builtin(
        resource: ResourceType, obj: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        """What kube-apiserver's decoding does to a built-in object: a value of the wrong type
        is a 400, unknown fields are refused (Strict), warned about (Warn) or dropped."""
        decoded = decode_builtin(obj, resource.group, resource.version, resource.kind)
        if decoded is None:
            return obj  # a kind the client has no model of: stored as it comes
        if decoded.error:
            raise errors.bad_request(
                decoding_error_message(resource.kind, resource.version, decoded.error))
        unknown = [f'unknown field "{path}"' for path in decoded.unknown]
        if unknown and options.field_validation == "Strict":
            raise errors.bad_request(decoding_error_message(
                resource.kind, resource.version, "strict decoding error: " + ", ".join(unknown)))
        if options.field_validation == "Warn":
            options.warnings.extend(unknown)
        return decoded.obj

    def _track(
        self, resource: ResourceType, old: dict[str, Any] | None, new: dict[str, Any],
        options: WriteOptions, operation: str, subresource: str,
    ) -> dict[str, Any]:
        if not options.field_manager:
            return new
        return record_update(
            old, new, manager=options.field_manager, list_rules=self._list_rules(resource),
            now=now_rfc3339(), api_version=resource.api_version, subresource=subresource,
        )

    # ---- update ------------------------------------------------------------------------

    def update(
        self, resource: ResourceType, namespace: str, name: str, body: Any,
        options: WriteOptions, subresource: str = "",
    ) -> dict[str, Any]:
        obj = self._checked_body(resource, namespace, body)
        if obj["metadata"].get("name") not in (None, name):
            raise errors.bad_request(
                "the name of the object "
                f"({obj['metadata'].get('name')}) does not match the name on the URL ({name})"
            )
        obj["metadata"]["name"] = name
        old = self.store.get(resource.storage_key, namespace, name)
        if old is None:
            raise errors.not_found(resource.plural, resource.group, name)
        sent_version = obj["metadata"].get("resourceVersion")
        if not sent_version and not resource.builtin:
            raise errors.invalid(resource.kind, resource.group, name, [Cause(
                "metadata.resourceVersion",
                "Invalid value: 0: must be specified for an update")])
        if sent_version and sent_version != old["metadata"]["resourceVersion"]:
            raise errors.stale_resource_version(resource.plural, resource.group, name)
        return self._replace(resource, old, obj, options, subresource)

    def _replace(
        self, resource: ResourceType, old: dict[str, Any], obj: dict[str, Any],
        options: WriteOptions, subresource: str, managed_by_apply: bool = False,
    ) -> dict[str, Any]:
        """Store `obj` in place of `old` with the server's rules for what may change."""
        name = old["metadata"]["name"]
        if subresource == "status":
            # The status subresource changes status only (and nothing of metadata).
            merged = {**old, "status": obj.get("status")}
            if obj.get("status") is None:
                merged.pop("status", None)
            obj = merged
        elif subresource == "finalize" and resource.storage_key == NAMESPACE_KEY:
            obj = {**old, "spec": {**old.get("spec", {}),
                                   "finalizers": obj.get("spec", {}).get("finalizers", [])}}
        elif resource.has_status:
            if "status" in old:
                obj["status"] = old["status"]
            else:
                obj.pop("status", None)
        meta = obj["metadata"] = {**obj["metadata"]}
        for key in _SYSTEM_METADATA:
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        if "managedFields" not in meta and "managedFields" in old["metadata"]:
            meta["managedFields"] = old["metadata"]["managedFields"]
        # An unconditional update (no resourceVersion sent) is checked as if it sent the
        # current one, as kube-apiserver's store does.
        meta.setdefault("resourceVersion", old["metadata"].get("resourceVersion"))
        self._validate_meta(resource, obj, is_create=False, old=old)
        # Status writes are pruned and validated too: kube-apiserver checks the whole object
        # against the CRD schema on every endpoint.
        obj = self._admit(resource, obj, old, options)
        if _spec_changed(old, obj):
            meta = obj["metadata"]
            meta["generation"] = int(old["metadata"].get("generation", 0)) + 1
        if not managed_by_apply:
            obj = self._track(resource, old, obj, options, "Update", subresource)
        obj["apiVersion"] = old["apiVersion"]
        check_storable(resource, obj)
        if _same_object(old, obj):
            return self.in_version(resource, old)  # no-op: no new resourceVersion, no event
        if options.dry_run:
            return self.in_version(resource, obj)
        if _deletion_complete(resource, obj):
            final, _ = self.store.delete(resource.storage_key, meta.get("namespace", ""), name)
            return self.in_version(resource, final)
        stored, _ = self.store.update(resource.storage_key, obj)
        return self.in_version(resource, stored)

    # ---- patch -------------------------------------------------------------------------

    def patch(
        self, resource: ResourceType, namespace: str, name: str, content_type: str,
        patch: Any, options: WriteOptions, subresource: str = "",
    ) -> tuple[dict[str, Any], bool]:
        """Apply a patch; returns the object and whether it was created (apply only)."""
        old = self.store.get(resource.storage_key, namespace, name)
        kind = content_type.split(";")[0].strip()
        if kind == "application/apply-patch+yaml":
            return self._apply(resource, namespace, name, old, patch, options, subresource)
        if old is None:
            raise errors.not_found(resource.plural, resource.group, name)
        current = self.in_version(resource, old)
        if kind == "application/merge-patch+json":
            patched = merge_patch(current, patch)
        elif kind == "application/json-patch+json":
            patched = json_patch(current, patch)
        elif kind == "application/strategic-merge-patch+json":
            if not resource.builtin:
                raise errors.ApiError(
                    415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml",
                )
            patched = strategic_merge_patch(current, patch, f"{resource.group}/{resource.kind}")
        else:
            raise errors.unsupported_media_type(content_type)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch did not produce an object")
        # A JSON patch can put a deep value at a deep path: refused before it is walked.
        _check_depth(resource, name, patched)
        patched = self._checked_body(resource, namespace, patched)
        sent_version = patched["metadata"].get("resourceVersion")
        if sent_version and sent_version != old["metadata"]["resourceVersion"]:
            raise errors.stale_resource_version(resource.plural, resource.group, name)
        if patched["metadata"].get("name") != name:
            raise errors.bad_request("the name of the object may not be changed by a patch")
        return self._replace(resource, old, patched, options, subresource), False

    def _apply(
        self, resource: ResourceType, namespace: str, name: str, old: dict[str, Any] | None,
        applied: Any, options: WriteOptions, subresource: str,
    ) -> tuple[dict[str, Any], bool]:
        if not options.field_manager:
            raise errors.bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager to be set"
            )
        if not isinstance(applied, dict):
            raise errors.bad_request("the applied configuration must be an object")
        applied_meta = applied.get("metadata") or {}
        if applied_meta.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({applied_meta.get('name')}) does not match the name "
                f"on the URL ({name})"
            )
        result = server_side_apply(
            self.in_version(resource, old) if old is not None else None,
            applied, manager=options.field_manager, force=options.force,
            list_rules=self._list_rules(resource), now=now_rfc3339(),
            api_version=resource.api_version, subresource=subresource,
        )
        result.setdefault("metadata", {})["name"] = name
        if old is None:
            if subresource:
                raise errors.not_found(resource.plural, resource.group, name)
            created = self.create(resource, namespace, result, WriteOptions(
                dry_run=options.dry_run, field_manager="",
                field_validation=options.field_validation, warnings=options.warnings))
            return created, True
        checked = self._checked_body(resource, namespace, result)
        return self._replace(resource, old, checked, options, subresource, True), False

    # ---- scale subresource --------------------------------------------------------------

    def get_scale(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """The autoscaling/v1 Scale of an object (deployments/scale, a CRD's scale)."""
        return _scale_of(resource, self.get(resource, namespace, name))

    def patch_scale(
        self, resource: ResourceType, namespace: str, name: str, content_type: str,
        patch: Any, options: WriteOptions,
    ) -> dict[str, Any]:
        old = self.store.get(resource.storage_key, namespace, name)  # newest, as writers see
        if old is None:
            raise errors.not_found(resource.plural, resource.group, name)
        current = _scale_of(resource, self.in_version(resource, old))
        kind = content_type.split(";")[0].strip()
        if kind in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            patched = merge_patch(current, patch)  # Scale has no lists: strategic == merge
        elif kind == "application/json-patch+json":
            patched = json_patch(current, patch)
        else:
            raise errors.unsupported_media_type(content_type)
        return self.update_scale(resource, namespace, name, patched, options)

    def update_scale(
        self, resource: ResourceType, namespace: str, name: str, body: Any,
        options: WriteOptions,
    ) -> dict[str, Any]:
        """Write spec.replicas of a Scale back into its object (at the CRD's specReplicasPath)."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a Scale object")
        body = decode_typed(body, "autoscaling", "v1", "Scale")
        old = self.store.get(resource.storage_key, namespace, name)
        if old is None:
            raise errors.not_found(resource.plural, resource.group, name)
        sent_version = (body.get("metadata") or {}).get("resourceVersion")
        if sent_version and sent_version != old["metadata"]["resourceVersion"]:
            raise errors.stale_resource_version(resource.plural, resource.group, name)
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", name, [Cause(
                "spec.replicas",
                f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0")])
        spec_path, _, _ = _scale_paths(resource)
        scaled = _with_path(copy.deepcopy(old), spec_path, replicas)
        stored = self._replace(resource, old, scaled, options, "scale")
        return _scale_of(resource, stored)

    # ---- delete ------------------------------------------------------------------------

    def delete(
        self, resource: ResourceType, namespace: str, name: str, options: DeleteOptions
    ) -> tuple[dict[str, Any], bool]:
        """Delete or start deleting; returns the object and whether it is gone already."""
        old = self.store.get(resource.storage_key, namespace, name)
        if old is None:
            raise errors.not_found(resource.plural, resource.group, name)
        meta = old["metadata"]
        if options.precondition_uid and options.precondition_uid != meta.get("uid"):
            raise errors.conflict(
                resource.plural, resource.group, name,
                f"Precondition failed: UID in precondition: {options.precondition_uid}, UID in "
                f"object meta: {meta.get('uid')}",
            )
        if (options.precondition_resource_version
                and options.precondition_resource_version != meta.get("resourceVersion")):
            raise errors.conflict(
                resource.plural, resource.group, name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{options.precondition_resource_version}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion')}",
            )
        finalizers = list(meta.get("finalizers") or [])
        policy = options.propagation_policy
        if not policy and options.orphan_dependents is not None:
            policy = "Orphan" if options.orphan_dependents else "Background"
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        graceful_pod = (
            resource.storage_key == PODS_KEY
            and old.get("spec", {}).get("nodeName")
            and self._grace_seconds(old, options) > 0
            and old.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        )
        if resource.storage_key == NAMESPACE_KEY:
            finalizers = finalizers  # the namespace controller empties it, then spec.finalizers
        if finalizers or graceful_pod or resource.storage_key == NAMESPACE_KEY:
            if meta.get("deletionTimestamp"):
                if graceful_pod and options.grace_period_seconds == 0:
                    return self._delete_now(resource, old, options)
                if finalizers == list(meta.get("finalizers") or []):
                    return self.in_version(resource, old), False
            updated = {**old, "metadata": {**meta, "finalizers": finalizers}}
            if not finalizers:
                updated["metadata"].pop("finalizers")
            if not meta.get("deletionTimestamp"):
                grace = self._grace_seconds(old, options) if graceful_pod else 0
                when = datetime.now(UTC) + timedelta(seconds=min(grace, _MAX_GRACE_SECONDS))
                updated["metadata"]["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
                updated["metadata"]["deletionGracePeriodSeconds"] = grace
                updated["metadata"]["generation"] = int(meta.get("generation", 0)) + 1
            if resource.storage_key == NAMESPACE_KEY:
                updated["status"] = {**old.get("status", {}), "phase": "Terminating"}
            if options.dry_run:
                return self.in_version(resource, updated), False
            stored, _ = self.store.update(resource.storage_key, updated)
            return self.in_version(resource, stored), False
        return self._delete_now(resource, old, options)

    def _delete_now(
        self, resource: ResourceType, old: dict[str, Any], options: DeleteOptions
    ) -> tuple[dict[str, Any], bool]:
        if options.dry_run:
            return self.in_version(resource, old), True
        meta = old["metadata"]
        final, _ = self.store.delete(resource.storage_key, meta.get("namespace", ""),
                                     meta["name"])
        return self.in_version(resource, final), True

    @staticmethod
    def _grace_seconds(obj: dict[str, Any], options: DeleteOptions) -> int:
        if options.grace_period_seconds is not None:
            return options.grace_period_seconds
        return int(obj.get("spec", {}).get("terminationGracePeriodSeconds", 30))

    def delete_collection(
        self, resource: ResourceType, namespace: str | None, list_options: ListOptions,
        options: DeleteOptions,
    ) -> builtins.list[dict[str, Any]]:
        objects, _ = self.list(resource, namespace, ListOptions(
            label_selector=list_options.label_selector,
            field_selector=list_options.field_selector))
        deleted = []
        for obj in objects:
            meta = obj["metadata"]
            try:
                deleted.append(self.delete(resource, meta.get("namespace", ""), meta["name"],
                                           options)[0])
            except ApiError as error:
                if error.code != 404:
                    raise
        return deleted

    # ---- watch -------------------------------------------------------------------------

    def watch_filter(
        self, resource: ResourceType, options: ListOptions
    ) -> Callable[[Event], tuple[str, dict[str, Any]] | None]:
        """Turns store events into what a watcher with these selectors sees (or nothing)."""
        matches = self.matcher(resource, options)

        def view(event: Event) -> tuple[str, dict[str, Any]] | None:
            now = matches(event.obj)
            before = event.previous is not None and matches(event.previous)
            obj = self.in_version(resource, event.obj)
            if event.type == "MODIFIED":
                if now and before:
                    return "MODIFIED", obj
                if now:
                    return "ADDED", obj
                if before:
                    return "DELETED", obj
                return None
            return (event.type, obj) if now else None

        return view


def _scale_paths(resource: ResourceType) -> tuple[str, str, str]:
    """(specReplicasPath, statusReplicasPath, labelSelectorPath) of a kind with `/scale`."""
    if resource.builtin:
        return ".spec.replicas", ".status.replicas", ""
    scale = resource.extras.get("scale") or {}
    return (scale.get("specReplicasPath") or ".spec.replicas",
            scale.get("statusReplicasPath") or ".status.replicas",
            scale.get("labelSelectorPath") or "")


def _at_path(obj: Any, path: str) -> Any:
    for part in path.strip(".").split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _with_path(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    parts = path.strip(".").split(".")
    node = obj
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
    return obj


def _selector_string(selector: Any) -> str:
    """A metav1.LabelSelector in the text form Scale.status.selector carries."""
    if not isinstance(selector, dict):
        return ""
    terms = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(expression.get("values") or [])
        terms.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}.get(operator, ""))
    return ",".join(term for term in terms if term)


def _scale_of(resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    spec_path, status_path, selector_path = _scale_paths(resource)
    meta = obj["metadata"]
    status: dict[str, Any] = {"replicas": _at_path(obj, status_path) or 0}
    if selector_path:
        selector = _at_path(obj, selector_path)
    else:
        selector = _selector_string(_at_path(obj, ".spec.selector"))
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion",
                                               "creationTimestamp") if key in meta},
        "spec": {"replicas": _at_path(obj, spec_path) or 0},
        "status": status,
    }


def _deletion_complete(resource: ResourceType, obj: dict[str, Any]) -> bool:
    """An object being deleted goes once its last finalizer (and a namespace's) is gone."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if resource.storage_key == PODS_KEY and obj.get("spec", {}).get("nodeName"):
        # A scheduled pod goes when its kubelet deletes it with grace 0 (or someone forces it).
        return False
    return not (resource.storage_key == NAMESPACE_KEY and obj.get("spec", {}).get("finalizers"))


def _spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Generation follows changes of anything but metadata and status."""
    keys = (set(old) | set(new)) - {"metadata", "status", "apiVersion", "kind"}
    return any(old.get(key) != new.get(key) for key in keys)


def _same_object(old: dict[str, Any], new: dict[str, Any]) -> bool:
    if {k: v for k, v in old.items() if k != "metadata"} != {
        k: v for k, v in new.items() if k != "metadata"
    }:
        return False
    if _comparable_metadata(old) != _comparable_metadata(new):
        return False
    # managedFields timestamps alone do not make a change; their ownership does.
    return _ownership(old) == _ownership(new)


def _comparable_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj["metadata"].items() if k not in _IGNORED_FOR_NOOP}


def _ownership(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted(
        (str(e.get("manager")), str(e.get("operation")), json.dumps(e.get("fieldsV1"),
                                                                     sort_keys=True))
        for e in obj["metadata"].get("managedFields") or []
    )


def _sort_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _encode_continue(key: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "start": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    """The start key of a continue token; 400 "continue key is not valid" for any other
    text (orjson: a nested token is no recursion here)."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode("utf-8", "surrogateescape")))
    except ValueError as error:  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        raise errors.bad_request(f"continue key is not valid: {error}") from error
    if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
        raise errors.bad_request(
            "continue key is not valid: server does not recognize this encoded version")
    start = data.get("start")
    if (not isinstance(start, list) or len(start) != 2
            or not all(isinstance(part, str) for part in start)):
        raise errors.bad_request("continue key is not valid: incorrect encoded start key")
    return (start[0], start[1])


def _check_depth(resource: ResourceType, name: str, obj: dict[str, Any]) -> None:
    path = depth_exceeded(obj)
    if path is not None:
        raise errors.invalid(resource.kind, resource.group, name, [Cause(
            short_path(path), f"Invalid value: exceeded max depth of {MAX_NESTING_DEPTH}")])


def _refuse_oversized(obj: dict[str, Any]) -> None:
    """An object the store would refuse is refused before it is defaulted, validated and
    tracked (each a walk of the whole object, seconds for a few hundred thousand fields)."""
    try:
        size = len(orjson.dumps(obj))
    except TypeError:
        return  # check_storable says what it cannot encode, once the object is complete
    if size > MAX_OBJECT_BYTES:
        raise errors.ApiError(413, "RequestEntityTooLarge", "etcdserver: request is too large")


def check_storable(resource: ResourceType, obj: dict[str, Any]) -> None:
    """What the store takes must be what the wire can carry back: JSON values only, at most
    MAX_NESTING_DEPTH deep (managed fields included, so that a GET can be PUT back), and
    no larger than etcd takes (413 with etcd's words)."""
    name = str(obj.get("metadata", {}).get("name", ""))
    try:
        encoded = orjson.dumps(obj, option=_STRICT_JSON)
    except TypeError as error:  # orjson.JSONEncodeError is one
        if "Recursion limit" in str(error):
            _check_depth(resource, name, obj)
        raise errors.invalid(resource.kind, resource.group, name, [Cause(
            "", f"Invalid value: the object cannot be stored as JSON: {error}")]) from error
    if len(encoded) > MAX_OBJECT_BYTES:
        raise errors.ApiError(413, "RequestEntityTooLarge", "etcdserver: request is too large")
    if may_be_too_deep(encoded):
        _check_depth(resource, name, obj)
