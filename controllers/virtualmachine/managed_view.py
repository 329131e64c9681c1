"""What of a live object one field manager manages: its `metadata.managedFields` projection.

Server-side apply records, per manager, the fields its last apply set (FieldsV1: `f:<name>`
for a field, `k:{...}` for an element of a keyed list, `v:<json>` for a member of a set,
`i:<n>` for an index, `.` for the element itself). Comparing the desired object with this
projection, rather than with the whole live object, tells "we applied it and no longer want
it" (a difference: the next apply removes it) from "KubeVirt defaulted it" (not ours).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def applied_fields(obj: Mapping[str, Any], manager: str) -> Mapping[str, Any] | None:
    """The FieldsV1 of `manager`'s server-side apply to the main resource; None when absent."""
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if (
            entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
        ):
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, Mapping) else {}
    return None


def _owns_whole(fields: Mapping[str, Any]) -> bool:
    """A leaf (or an atomic list or map): no member is listed below it."""
    return all(key == "." for key in fields)


def _element_matches(key: str, index: int, item: Any) -> bool:
    kind, _, payload = key.partition(":")
    if kind == "k":
        wanted = json.loads(payload)
        return isinstance(item, Mapping) and all(item.get(k) == v for k, v in wanted.items())
    if kind == "v":
        return bool(item == json.loads(payload))
    if kind == "i":
        return index == int(payload)
    return False


def managed_view(value: Any, fields: Mapping[str, Any]) -> Any:
    """The part of `value` that `fields` (a FieldsV1 tree) names, in the live order."""
    if isinstance(value, Mapping):
        view: dict[str, Any] = {}
        for key, below in fields.items():
            if not key.startswith("f:") or key[2:] not in value:
                continue
            child = value[key[2:]]
            view[key[2:]] = (
                child
                if not isinstance(below, Mapping) or _owns_whole(below)
                else managed_view(child, below)
            )
        return view
    if isinstance(value, list):
        kept: list[Any] = []
        for index, item in enumerate(value):
            for key, below in fields.items():
                if key != "." and _element_matches(key, index, item):
                    whole = not isinstance(below, Mapping) or _owns_whole(below)
                    kept.append(item if whole else managed_view(item, below))
                    break
        return kept
    return value
