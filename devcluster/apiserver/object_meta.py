"""ObjectMeta validation and the metadata chores of create/update, worded as kube-apiserver.

Rules and messages follow k8s.io/apimachinery v0.36: `pkg/api/validation/objectmeta.go`,
`pkg/api/validation/generic.go`, `pkg/util/validation/validation.go` (names: "... characters")
and `pkg/api/validate/content` (label keys and values: "... bytes" since 1.35).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any, Literal

from devcluster.apiserver.errors import Cause, bad_request

NameRule = Literal["dns1123-subdomain", "dns1123-label", "dns1035-label", "path-segment"]

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
LABEL_KEY_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT_BYTES = 256 * 1024

# The alphabet and length of kube's name generator (no vowels, no look-alike digits).
GENERATED_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LENGTH = 5
MAX_GENERATED_NAME_LENGTH = 63

FINALIZER_ORPHAN_DEPENDENTS = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"
# Finalizers kube itself uses without a domain; no warning for them.
STANDARD_FINALIZERS = frozenset(
    {"kubernetes", FINALIZER_ORPHAN_DEPENDENTS, FINALIZER_DELETE_DEPENDENTS}
)

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character"
)
_LABEL_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)


def _matches(pattern: str, value: str) -> bool:
    # Go anchors with ^...$ on the whole text; fullmatch does the same (no newline leniency).
    return re.fullmatch(pattern, value) is not None


def _byte_length(value: str) -> int:
    return len(value.encode("utf-8"))  # Go's len() counts bytes


def regex_error(message: str, pattern: str, *examples: str) -> str:
    """Go's validation.RegexError, double space before "or" included."""
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    listed = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {listed}regex used for validation is '{pattern}')"


def _max_length_error(length: int, unit: Literal["characters", "bytes"]) -> str:
    return f"must be no more than {length} {unit}"


def dns1123_label_errors(value: str) -> list[str]:
    errors = []
    if _byte_length(value) > DNS1123_LABEL_MAX_LENGTH:
        errors.append(_max_length_error(DNS1123_LABEL_MAX_LENGTH, "characters"))
    if not _matches(_DNS1123_LABEL_FMT, value):
        if _matches(_DNS1123_SUBDOMAIN_FMT, value):
            errors.append("must not contain dots")
        else:
            errors.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errors


def dns1123_subdomain_errors(
    value: str, unit: Literal["characters", "bytes"] = "characters"
) -> list[str]:
    errors = []
    if _byte_length(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(_max_length_error(DNS1123_SUBDOMAIN_MAX_LENGTH, unit))
    if not _matches(_DNS1123_SUBDOMAIN_FMT, value):
        errors.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def dns1035_label_errors(value: str) -> list[str]:
    errors = []
    if _byte_length(value) > DNS1123_LABEL_MAX_LENGTH:
        errors.append(_max_length_error(DNS1123_LABEL_MAX_LENGTH, "characters"))
    if not _matches(_DNS1035_LABEL_FMT, value):
        errors.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errors


def path_segment_errors(value: str, *, prefix: bool = False) -> list[str]:
    """Names that must be safe as one URL path segment (RBAC kinds)."""
    if not prefix and value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{part}'" for part in ("/", "%") if part in value]


def label_key_errors(value: str) -> list[str]:
    """content.IsLabelKey: `[prefix/]name`, also the rule for annotation keys and finalizers."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix, "bytes"))
    else:
        return [
            "a valid label key "
            + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif _byte_length(name) > LABEL_KEY_NAME_MAX_LENGTH:
        errors.append("name part " + _max_length_error(LABEL_KEY_NAME_MAX_LENGTH, "bytes"))
    if not _matches(_LABEL_KEY_FMT, name):
        errors.append(
            "name part "
            + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def label_value_errors(value: str) -> list[str]:
    errors = []
    if _byte_length(value) > LABEL_VALUE_MAX_LENGTH:
        errors.append(_max_length_error(LABEL_VALUE_MAX_LENGTH, "bytes"))
    if not _matches(_LABEL_VALUE_FMT, value):
        errors.append(
            regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errors


def _mask_trailing_dash(name: str) -> str:
    # kube's maskTrailingDash, quirk included: it drops the last two characters, adds "a".
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def validate_name(name: str, *, rule: NameRule, prefix: bool = False) -> list[str]:
    """kube's ValidateNameFunc for `rule`; `prefix` for a generateName (trailing '-' allowed)."""
    if rule == "path-segment":
        return path_segment_errors(name, prefix=prefix)
    if prefix:
        name = _mask_trailing_dash(name)
    if rule == "dns1123-label":
        return dns1123_label_errors(name)
    if rule == "dns1035-label":
        return dns1035_label_errors(name)
    return dns1123_subdomain_errors(name)


_DNS1123_LABEL_NAMED_KINDS = frozenset({("", "Namespace")})
_DNS1035_LABEL_NAMED_KINDS = frozenset({("", "Service")})
_PATH_SEGMENT_NAMED_KINDS = frozenset(
    ("rbac.authorization.k8s.io", kind)
    for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
)


def name_rule_for(group: str, kind: str) -> NameRule:
    """The name rule kube-apiserver applies to a kind.

    Namespaces are RFC 1123 labels, Services RFC 1035 labels (ValidateServiceName =
    NameIsDNS1035Label), RBAC kinds path segments (ValidateRBACName); everything else,
    custom resources included (customResourceValidator uses NameIsDNSSubdomain), is an
    RFC 1123 subdomain.
    """
    if (group, kind) in _DNS1123_LABEL_NAMED_KINDS:
        return "dns1123-label"
    if (group, kind) in _DNS1035_LABEL_NAMED_KINDS:
        return "dns1035-label"
    if (group, kind) in _PATH_SEGMENT_NAMED_KINDS:
        return "path-segment"
    return "dns1123-subdomain"


def _go_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # close enough to Go's %q for API values


def invalid_cause(field: str, value: Any, detail: str) -> Cause:
    """field.Invalid: `Invalid value: "v": detail` (strings quoted, others as JSON)."""
    shown = _go_quote(value) if isinstance(value, str) else _go_json(value)
    return Cause(field, f"Invalid value: {shown}: {detail}", "FieldValueInvalid")


def required_cause(field: str, detail: str = "") -> Cause:
    return Cause(
        field, f"Required value: {detail}" if detail else "Required value", "FieldValueRequired"
    )


def forbidden_cause(field: str, detail: str) -> Cause:
    return Cause(field, f"Forbidden: {detail}", "FieldValueForbidden")


def too_long_cause(field: str, max_bytes: int) -> Cause:
    return Cause(field, f"Too long: may not be more than {max_bytes} bytes", "FieldValueTooLong")


def _string_map(meta: Mapping[str, Any], key: str) -> dict[str, str]:
    value = meta.get(key) or {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _validate_labels(labels: Mapping[str, str]) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in labels.items():
        causes.extend(invalid_cause("metadata.labels", key, m) for m in label_key_errors(key))
        causes.extend(invalid_cause("metadata.labels", value, m) for m in label_value_errors(value))
    return causes


def _validate_annotations(annotations: Mapping[str, str]) -> list[Cause]:
    causes: list[Cause] = []
    for key in annotations:
        # Annotation keys are qualified names in which case does not matter.
        causes.extend(
            invalid_cause("metadata.annotations", key, m) for m in label_key_errors(key.lower())
        )
    total = sum(_byte_length(k) + _byte_length(v) for k, v in annotations.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES:
        causes.append(too_long_cause("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT_BYTES))
    return causes


_OWNER_REFERENCE_FIELD_ORDER = (
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
)


def _validate_owner_references(references: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    first_controller = ""
    for index, reference in enumerate(references):
        path = f"metadata.ownerReferences[{index}]"
        reference = reference if isinstance(reference, Mapping) else {}
        api_version = str(reference.get("apiVersion") or "")
        if not api_version:
            causes.append(required_cause(f"{path}.apiVersion", "must not be empty"))
        elif api_version.count("/") > 1 or api_version.endswith("/"):  # no version part
            causes.append(
                invalid_cause(
                    f"{path}.apiVersion", api_version, "must be <group>/<version> or <version>"
                )
            )
        for required in ("kind", "name", "uid"):
            if not reference.get(required):
                causes.append(required_cause(f"{path}.{required}", "must not be empty"))
        if api_version == "v1" and reference.get("kind") == "Event":
            ordered = {k: reference[k] for k in _OWNER_REFERENCE_FIELD_ORDER if k in reference}
            causes.append(
                invalid_cause(path, ordered, "/v1, Kind=Event is disallowed from being an owner")
            )
        if reference.get("controller") is True:
            current = f"{reference.get('kind', '')}/{reference.get('name', '')}"
            if first_controller:
                shown = [
                    {k: r[k] for k in _OWNER_REFERENCE_FIELD_ORDER if k in r}
                    for r in references
                    if isinstance(r, Mapping)
                ]
                causes.append(
                    invalid_cause(
                        "metadata.ownerReferences",
                        shown,
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return causes


def _validate_finalizers(finalizers: list[str]) -> list[Cause]:
    causes: list[Cause] = []
    for finalizer in finalizers:
        causes.extend(
            invalid_cause("metadata.finalizers", finalizer, m) for m in label_key_errors(finalizer)
        )
    if FINALIZER_ORPHAN_DEPENDENTS in finalizers and FINALIZER_DELETE_DEPENDENTS in finalizers:
        causes.append(
            invalid_cause(
                "metadata.finalizers",
                finalizers,
                f"finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} "
                "cannot be both set",
            )
        )
    return causes


def _validate_update(meta: Mapping[str, Any], old_meta: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    if old_meta.get("deletionTimestamp"):
        added = sorted(set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or []))
        if added:
            listed = ", ".join(_go_quote(f) for f in added)
            causes.append(
                forbidden_cause(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers []string{{{listed}}}",
                )
            )
    if not meta.get("resourceVersion"):
        causes.append(
            invalid_cause("metadata.resourceVersion", "", "must be specified for an update")
        )
    generation = int(meta.get("generation") or 0)
    if generation < int(old_meta.get("generation") or 0):
        causes.append(invalid_cause("metadata.generation", generation, "must not be decremented"))
    for immutable in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
        new_value, old_value = meta.get(immutable), old_meta.get(immutable)
        if (new_value or None) != (old_value or None):
            causes.append(
                invalid_cause(f"metadata.{immutable}", new_value or "", "field is immutable")
            )
    return causes


def validate_object_meta(
    obj: Mapping[str, Any],
    *,
    namespaced: bool,
    name_rule: NameRule,
    is_create: bool,
    old: Mapping[str, Any] | None = None,
) -> list[Cause]:
    """kube's ValidateObjectMeta (create) or ValidateObjectMetaUpdate (update, against `old`).

    On create, call it after the namespace is settled and ideally after generate_name: a
    missing name with a generateName is accepted here (the generated name is valid when the
    prefix is).
    """
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    causes: list[Cause] = []
    name = str(meta.get("name") or "")
    if is_create:
        generate_prefix = str(meta.get("generateName") or "")
        if generate_prefix:
            causes.extend(
                invalid_cause("metadata.generateName", generate_prefix, m)
                for m in validate_name(generate_prefix, rule=name_rule, prefix=True)
            )
        if not name and not generate_prefix:
            causes.append(required_cause("metadata.name", "name or generateName is required"))
        elif name:
            causes.extend(
                invalid_cause("metadata.name", name, m) for m in validate_name(name, rule=name_rule)
            )
        namespace = str(meta.get("namespace") or "")
        if namespaced:
            if not namespace:
                causes.append(required_cause("metadata.namespace"))
            else:
                causes.extend(
                    invalid_cause("metadata.namespace", namespace, m)
                    for m in validate_name(namespace, rule="dns1123-label")
                )
        elif namespace:
            causes.append(forbidden_cause("metadata.namespace", "not allowed on this type"))
    elif old is not None:
        causes.extend(_validate_update(meta, old.get("metadata") or {}))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        causes.append(
            invalid_cause("metadata.generation", generation, "must be greater than or equal to 0")
        )
    causes.extend(_validate_labels(_string_map(meta, "labels")))
    causes.extend(_validate_annotations(_string_map(meta, "annotations")))
    causes.extend(_validate_owner_references(list(meta.get("ownerReferences") or [])))
    if is_create:  # ValidateObjectMetaUpdate does not re-check finalizer names
        causes.extend(_validate_finalizers([str(f) for f in meta.get("finalizers") or []]))
    return causes


def finalizer_warnings(obj: Mapping[str, Any]) -> list[str]:
    """The `Warning:` texts kube-apiserver sends for finalizers that are not `domain/path`."""
    warnings = []
    for finalizer in (obj.get("metadata") or {}).get("finalizers") or []:
        if finalizer in STANDARD_FINALIZERS or _is_domain_prefixed_path(finalizer):
            continue
        warnings.append(
            f"metadata.finalizers: {_go_quote(finalizer)}: prefer a domain-qualified finalizer "
            "name including a path (/) to avoid accidental conflicts with other finalizer writers"
        )
    return warnings


def _is_domain_prefixed_path(value: str) -> bool:
    host, slash, path = value.partition("/")
    if not slash or not host or not path:
        return False
    return not dns1123_subdomain_errors(host) and _matches(_HTTP_PATH_FMT, path)


def generate_name(prefix: str) -> str:
    """kube's SimpleNameGenerator: prefix (cut to keep 63 chars) + 5 random characters."""
    keep = MAX_GENERATED_NAME_LENGTH - GENERATED_SUFFIX_LENGTH
    suffix = "".join(
        secrets.choice(GENERATED_SUFFIX_ALPHABET) for _ in range(GENERATED_SUFFIX_LENGTH)
    )
    return prefix[:keep] + suffix


def ensure_namespace_matches(obj: dict[str, Any], request_namespace: str, namespaced: bool) -> None:
    """kube's EnsureObjectNamespaceMatchesRequestNamespace, applied in place before validation.

    An object without a namespace takes the request's; a cluster-scoped object loses any
    namespace it carries; a different namespace is a 400.
    """
    expected = request_namespace if namespaced else ""
    meta = obj.setdefault("metadata", {})
    current = meta.get("namespace") or ""
    if current == expected:
        return
    if not current or not expected:
        if expected:
            meta["namespace"] = expected
        else:
            meta.pop("namespace", None)
        return
    raise bad_request(
        "the namespace of the provided object does not match the namespace sent on the request"
    )
