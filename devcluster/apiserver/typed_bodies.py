"""The bodies kube-apiserver decodes into one Go type: DeleteOptions, Binding, Eviction,
TokenRequest and Scale, refused with the Go decoder's 400 when a field has the wrong type.

Their handlers then read plain values: an int is an int, a string a string.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .builtin_schemas import decode, decoding_error_message
from .errors import Cause

_GO_VALUE_TYPES = {"DeleteOptions": "v1.DeleteOptions", "Binding": "v1.Binding",
                   "Eviction": "v1.Eviction", "TokenRequest": "v1.TokenRequest",
                   "Scale": "v1.Scale"}


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else "object"


def decode_typed(body: Any, group: str, version: str, kind: str) -> dict[str, Any]:
    """`body` decoded as kube decodes it into its Go type (unknown fields dropped)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise errors.bad_request(decoding_error_message(
            kind, version, f"json: cannot unmarshal {_json_kind(body)} into Go value of type "
                           f"{_GO_VALUE_TYPES.get(kind, kind)}"))
    decoded = decode(body, group, version, kind)
    if decoded is None:  # no model of the kind: nothing to check against
        return body
    if decoded.error:
        raise errors.bad_request(decoding_error_message(kind, version, decoded.error))
    return decoded.obj


def check_object_meta(meta: dict[str, Any], kind: str, version: str) -> None:
    """metadata of any kind, built-in or custom, is a metav1.ObjectMeta to kube: a field of
    the wrong type (`labels: [a]`) is the Go decoder's 400 before anything reads it."""
    # Any kind with metadata names the field the same way (ObjectMeta.metadata.labels).
    decoded = decode({"metadata": meta}, "", "v1", "ConfigMap")
    if decoded is not None and decoded.error:
        raise errors.bad_request(decoding_error_message(kind, version, decoded.error))


_PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")


def check_delete_options(options: dict[str, Any]) -> None:
    """kube's ValidateDeleteOptions: 422 naming the field."""
    causes: list[Cause] = []
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in _PROPAGATION_POLICIES:
        causes.append(Cause("propagationPolicy", f'Unsupported value: "{policy}": supported '
                            'values: "Foreground", "Background", "Orphan", "nil"',
                            "FieldValueNotSupported"))
    if policy is not None and options.get("orphanDependents") is not None:
        causes.append(Cause("propagationPolicy", f'Invalid value: "{policy}": orphanDependents '
                            "and deletionPropagation cannot be both set"))
    for value in options.get("dryRun") or []:
        if value != "All":
            causes.append(Cause("dryRun", f'Unsupported value: "{value}": supported values: '
                                '"All"', "FieldValueNotSupported"))
    if causes:
        raise errors.invalid("DeleteOptions", "meta.k8s.io", "", causes)


__all__ = ["check_delete_options", "check_object_meta", "decode_typed"]
