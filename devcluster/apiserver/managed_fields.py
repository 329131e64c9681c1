"""Server-side apply and `metadata.managedFields`, as kube-apiserver keeps them.

A port of the behaviour of sigs.k8s.io/structured-merge-diff (merge, compare, prune) and of
the field manager chain of k8s.io/apimachinery `pkg/util/managedfields`: managers are keyed by
(manager, operation, apiVersion for updates, subresource); a non-apply write takes ownership of
every field it adds or changes and removes the fields it deletes from every set; an apply owns
exactly the fields of its configuration, removes the fields it applied last time and no longer
does (unless someone else owns them), and fails with a 409 listing the fields whose value it
would change that another manager owns, unless forced.

Differences from kube that are known and accepted: there is no typed schema beyond the list
and atomic-map rules, so every non-empty object is treated as a struct (its fields are tracked
one by one, the object itself is not a member); the client-side-apply upgrade path
(`lastAppliedManager`, which forgives conflicts with the kubectl-client-side-apply manager when
the configuration equals the last-applied annotation) is not reproduced.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from devcluster.apiserver.errors import ApiError, Cause, bad_request
from devcluster.apiserver.merge_keys import merge_key_for

# --------------------------------------------------------------------------- list rules


@dataclass(frozen=True)
class ListRule:
    """How apply treats the list (or map) at a path: x-kubernetes-list-type and map keys.

    `kind="atomic"` at the path of an object means x-kubernetes-map-type atomic.
    """

    kind: Literal["atomic", "set", "map"]
    keys: tuple[str, ...] = ()


# path without list indices -> rule; None means atomic for a list, granular for a map
ListRules = Callable[[tuple[str, ...]], ListRule | None]


def list_rules_for_builtin(type_key: str) -> ListRules:
    """The apply rules of a built-in kind ("/Pod", "apps/Deployment") from merge_keys.py."""

    def rules(path: tuple[str, ...]) -> ListRule | None:
        rule = merge_key_for(type_key, path)
        if rule is None:
            return None
        if rule.atomic_map:
            return ListRule("atomic")
        if rule.list_type == "map":
            return ListRule("map", rule.list_map_keys)
        if rule.list_type == "set":
            return ListRule("set")
        return None

    return rules


def list_rules_from_schema(schema: dict[str, Any] | None) -> ListRules:
    """The apply rules of a custom resource from its openAPIV3Schema.

    Reads x-kubernetes-list-type, x-kubernetes-list-map-keys and x-kubernetes-map-type.
    `metadata` is an ObjectMeta whatever the schema says, as it is for kube.
    """
    metadata_rules = list_rules_for_builtin("")

    def rules(path: tuple[str, ...]) -> ListRule | None:
        if path and path[0] == "metadata":
            return metadata_rules(path)
        node = _schema_at(schema, path)
        if node is None:
            return None
        if node.get("type") == "array":
            list_type = node.get("x-kubernetes-list-type", "atomic")
            if list_type == "set":
                return ListRule("set")
            if list_type == "map":
                keys = node.get("x-kubernetes-list-map-keys") or []
                return ListRule("map", tuple(str(k) for k in keys))
            return None
        if node.get("x-kubernetes-map-type") in ("atomic",):
            return ListRule("atomic")
        return None

    return rules


def _schema_at(schema: dict[str, Any] | None, path: tuple[str, ...]) -> dict[str, Any] | None:
    node = schema
    for name in path:
        if node is None:
            return None
        if node.get("type") == "array":
            items = node.get("items")
            node = items if isinstance(items, dict) else None
            if node is None:
                return None
        properties = node.get("properties") or {}
        if name in properties:
            node = properties[name]
            continue
        additional = node.get("additionalProperties")
        node = additional if isinstance(additional, dict) else None
    return node


# ---------------------------------------------------------------- field paths and sets

# One step of a field path: ("f", name) a field, ("k", keys) an item of a map-list keyed by
# ((key, canonical JSON of its value), ...), ("v", canonical JSON) an item of a set,
# ("i", index) an item of a list by position (only read back from FieldsV1).
PathElement = tuple[str, Any]
FieldPath = tuple[PathElement, ...]
FieldSet = frozenset[FieldPath]

_EMPTY: FieldSet = frozenset()


def _canonical(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _item_element(
    rule: ListRule, item: Any, schema_path: tuple[str, ...], index: int
) -> PathElement:
    if rule.kind == "map":
        if item is None:
            raise _invalid_list(
                schema_path, index, "associative list with keys may not have a null element"
            )
        if not isinstance(item, dict):
            raise _invalid_list(
                schema_path, index, "associative list with keys may not have non-map elements"
            )
        keys = tuple((name, _canonical(item[name])) for name in sorted(rule.keys) if name in item)
        if not keys:
            raise _invalid_list(
                schema_path,
                index,
                "associative list with keys has an element that omits all key fields "
                f"{_go_quoted_list(rule.keys)} (and doesn't have default values for any key "
                "fields)",
            )
        return ("k", keys)
    if isinstance(item, dict):
        raise _invalid_list(
            schema_path, index, "associative list without keys has an element that's a map type"
        )
    if isinstance(item, list):
        raise _invalid_list(
            schema_path, index, "not supported: associative list with lists as elements"
        )
    return ("v", _canonical(item))


def _go_quoted_list(names: Iterable[str]) -> str:
    return "[" + " ".join(json.dumps(name) for name in names) + "]"


def _invalid_list(schema_path: tuple[str, ...], index: int, why: str) -> ApiError:
    where = "".join(f".{name}" for name in schema_path)
    return bad_request(f"failed to create typed patch object: {where}: element {index}: {why}")


class _Walker:
    """Walks JSON values with the list rules of one kind."""

    def __init__(self, rules: ListRules) -> None:
        self.rules = rules

    def rule(self, schema_path: tuple[str, ...]) -> ListRule | None:
        return self.rules(schema_path) if schema_path else None

    def is_atomic_map(self, schema_path: tuple[str, ...]) -> bool:
        rule = self.rule(schema_path)
        return rule is not None and rule.kind == "atomic"

    def list_rule(self, schema_path: tuple[str, ...]) -> ListRule | None:
        """The rule of an associative list, or None for an atomic one."""
        rule = self.rule(schema_path)
        if rule is None or rule.kind == "atomic":
            return None
        return rule

    # ToFieldSet: the fields a configuration sets
    def field_set(self, value: Any) -> FieldSet:
        """Fields of an applied configuration; duplicate list keys are an error there."""
        found: set[FieldPath] = set()
        self._collect(value, (), (), found, strict=True)
        return frozenset(found)

    def field_set_lenient(self, value: Any) -> FieldSet:
        """Fields of a stored object, which may hold duplicate keys written by updates."""
        found: set[FieldPath] = set()
        self._collect(value, (), (), found, strict=False)
        return frozenset(found)

    def _collect(
        self,
        value: Any,
        path: FieldPath,
        schema_path: tuple[str, ...],
        found: set[FieldPath],
        strict: bool,
    ) -> None:
        if isinstance(value, dict):
            if self.is_atomic_map(schema_path):
                found.add(path)
                return
            for name, child in value.items():
                child_path = (*path, ("f", name))
                if child is None or (isinstance(child, dict) and not child):
                    found.add(child_path)
                else:
                    self._collect(child, child_path, (*schema_path, name), found, strict)
            return
        if isinstance(value, list):
            rule = self.list_rule(schema_path)
            if rule is None:
                found.add(path)
                return
            seen: set[PathElement] = set()
            for index, item in enumerate(value):
                element = _item_element(rule, item, schema_path, index)
                if strict and element in seen:
                    raise _invalid_list(
                        schema_path, index, f"duplicate entries for key {_element_text(element)}"
                    )
                seen.add(element)
                item_path = (*path, element)
                self._collect(item, item_path, schema_path, found, strict)
                found.add(item_path)
            return
        found.add(path)

    # Merge: the configuration over the live object
    def merge(self, live: Any, applied: Any, schema_path: tuple[str, ...]) -> Any:
        if isinstance(live, dict) and isinstance(applied, dict):
            if self.is_atomic_map(schema_path) or (not live and not applied):
                return copy.deepcopy(applied)
            merged: dict[str, Any] = {}
            for name in [*live, *(k for k in applied if k not in live)]:
                if name not in applied:
                    merged[name] = copy.deepcopy(live[name])
                elif applied[name] is None:
                    continue  # an applied null clears the field (the typed decoder drops it)
                elif name not in live:
                    merged[name] = _without_nulls(applied[name])
                else:
                    merged[name] = self.merge(live[name], applied[name], (*schema_path, name))
            return merged
        if isinstance(live, list) and isinstance(applied, list) and (live or applied):
            rule = self.list_rule(schema_path)
            if rule is not None:
                return self._merge_list(live, applied, rule, schema_path)
        return _without_nulls(applied)

    def _merge_list(
        self, live: list[Any], applied: list[Any], rule: ListRule, schema_path: tuple[str, ...]
    ) -> list[Any]:
        """The item order of structured-merge-diff: live order, shared items in applied order."""
        live_elements = [_item_element(rule, item, schema_path, i) for i, item in enumerate(live)]
        applied_elements: list[PathElement] = []
        applied_items: dict[PathElement, Any] = {}
        for index, item in enumerate(applied):
            element = _item_element(rule, item, schema_path, index)
            if element in applied_items:
                raise _invalid_list(
                    schema_path, index, f"duplicate entries for key {_element_text(element)}"
                )
            applied_items[element] = item
            applied_elements.append(element)
        live_items: dict[PathElement, Any] = {}
        for element, item in zip(live_elements, live, strict=True):
            live_items.setdefault(element, item)

        shared = [e for e in applied_elements if e in live_items]
        next_shared: PathElement | None = shared.pop(0) if shared else None
        done: set[PathElement] = set()
        merged: list[Any] = []
        left, right = 0, 0
        while left < len(live_elements) or right < len(applied_elements):
            if left < len(live_elements) and right < len(applied_elements):
                element = live_elements[left]
                if element == applied_elements[right]:
                    done.add(element)
                    merged.append(
                        self.merge(live_items[element], applied_items[element], schema_path)
                    )
                    left += 1
                    right += 1
                    next_shared = shared.pop(0) if shared else None
                    continue
                if element in applied_items and next_shared is not None and next_shared != element:
                    left += 1
                    continue
            if left < len(live_elements):
                element = live_elements[left]
                if element not in applied_items:
                    merged.append(copy.deepcopy(live[left]))
                    left += 1
                    continue
                if element in done:
                    left += 1
            if right < len(applied_elements):
                element = applied_elements[right]
                done.add(element)
                if element in live_items:
                    merged.append(
                        self.merge(live_items[element], applied_items[element], schema_path)
                    )
                else:
                    merged.append(_without_nulls(applied_items[element]))
                right += 1
                if next_shared == element:
                    next_shared = shared.pop(0) if shared else None
        return merged

    # Compare: which fields a write added, changed and removed
    def compare(self, old: Any, new: Any) -> _Comparison:
        comparison = _Comparison()
        self._compare(old, new, (), (), comparison, root=True)
        return comparison

    def _compare(
        self,
        old: Any,
        new: Any,
        path: FieldPath,
        schema_path: tuple[str, ...],
        result: _Comparison,
        root: bool = False,
    ) -> None:
        absent = _ABSENT
        if old is new or (type(old) is type(new) and old == new):
            return  # shared or equal subtrees: nothing added, changed or removed below
        if not root:
            if old is absent:
                result.added.add(path)
            elif new is absent:
                result.removed.add(path)
        both = new if old is absent else old
        if old is not absent and new is not absent and _json_type(old) != _json_type(new):
            # a change of type: everything below the old value went, the new value came
            self._compare(old, absent, path, schema_path, result, root=True)
            self._compare(absent, new, path, schema_path, result, root=True)
            if not root and path not in result.added and path not in result.removed:
                result.modified.add(path)
            return
        if isinstance(both, dict):
            old_map = old if isinstance(old, dict) else {}
            new_map = new if isinstance(new, dict) else {}
            if self.is_atomic_map(schema_path) or (not old_map and not new_map):
                self._leaf(old, new, path, result, root)
                return
            for name in [*old_map, *(k for k in new_map if k not in old_map)]:
                self._compare(
                    old_map.get(name, absent),
                    new_map.get(name, absent),
                    (*path, ("f", name)),
                    (*schema_path, name),
                    result,
                )
            return
        if isinstance(both, list):
            old_list = old if isinstance(old, list) else []
            new_list = new if isinstance(new, list) else []
            rule = self.list_rule(schema_path)
            if rule is None or (not old_list and not new_list):
                self._leaf(old, new, path, result, root)
                return
            old_items = self._index_items(rule, old_list, schema_path)
            new_items = self._index_items(rule, new_list, schema_path)
            for element in [*old_items, *(e for e in new_items if e not in old_items)]:
                self._compare(
                    old_items.get(element, absent),
                    new_items.get(element, absent),
                    (*path, element),
                    schema_path,
                    result,
                )
            return
        self._leaf(old, new, path, result, root)

    def _index_items(
        self, rule: ListRule, items: list[Any], schema_path: tuple[str, ...]
    ) -> dict[PathElement, Any]:
        indexed: dict[PathElement, Any] = {}
        for index, item in enumerate(items):
            indexed[_item_element(rule, item, schema_path, index)] = item
        return indexed

    @staticmethod
    def _leaf(old: Any, new: Any, path: FieldPath, result: _Comparison, root: bool) -> None:
        if root or old is _ABSENT or new is _ABSENT:
            return
        if _canonical(old) != _canonical(new):
            result.modified.add(path)

    # RemoveItems: drop the given member paths (and what is under them)
    def remove(self, value: Any, paths: FieldSet) -> Any:
        if not paths:
            return value
        return self._remove(value, paths, (), ())

    def _remove(
        self, value: Any, paths: FieldSet, path: FieldPath, schema_path: tuple[str, ...]
    ) -> Any:
        if isinstance(value, dict):
            if self.is_atomic_map(schema_path) or not value:
                return value
            kept: dict[str, Any] = {}
            for name, child in value.items():
                child_path = (*path, ("f", name))
                if child_path in paths:
                    continue
                if _has_prefix(paths, child_path):
                    child = self._remove(child, paths, child_path, (*schema_path, name))
                    if child == {} or child == []:
                        continue  # emptied by the removal
                kept[name] = child
            return kept
        if isinstance(value, list):
            rule = self.list_rule(schema_path)
            if rule is None or not value:
                return value
            items: list[Any] = []
            for index, item in enumerate(value):
                item_path = (*path, _item_element(rule, item, schema_path, index))
                if item_path in paths:
                    continue
                if _has_prefix(paths, item_path):
                    item = self._remove(item, paths, item_path, schema_path)
                items.append(item)
            return items
        return value


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


@dataclass
class _Comparison:
    added: set[FieldPath] = field(default_factory=set)
    modified: set[FieldPath] = field(default_factory=set)
    removed: set[FieldPath] = field(default_factory=set)


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _has_prefix(paths: FieldSet, prefix: FieldPath) -> bool:
    size = len(prefix)
    return any(len(p) > size and p[:size] == prefix for p in paths)


def _with_named_ancestors(paths: Iterable[FieldPath]) -> set[FieldPath]:
    """EnsureNamedFieldsAreMembers: each field-name ancestor of a path counts as a member."""
    result: set[FieldPath] = set()
    for path in paths:
        result.add(path)
        for end in range(1, len(path)):
            if path[end - 1][0] == "f":
                result.add(path[:end])
    return result


# ------------------------------------------------------------------------- FieldsV1


# Field sets change rarely compared with how often objects are written: most writes (status
# updates by the same manager) leave every entry as it was. Encodings and decodings are
# cached; stored objects are immutable, so a decoded FieldsV1 dict is keyed by identity (the
# cache holds a reference, so the id cannot be reused while the entry lives).
_CACHE_LIMIT = 8192
_encoded: dict[FieldSet, dict[str, Any]] = {}
_decoded: dict[int, tuple[dict[str, Any], FieldSet]] = {}


def fields_v1(paths: FieldSet) -> dict[str, Any]:
    """Encode a field set as the FieldsV1 JSON of a managedFields entry (cached; the result
    is shared and must not be mutated)."""
    cached = _encoded.get(paths)
    if cached is None:
        if len(_encoded) >= _CACHE_LIMIT:
            _encoded.clear()
        cached = _encoded[paths] = _fields_v1(paths)
        _decoded[id(cached)] = (cached, paths)
    return cached


def _fields_v1(paths: FieldSet) -> dict[str, Any]:
    tree: dict[PathElement, Any] = {}
    members: set[FieldPath] = set(paths)
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return _encode_tree(tree, (), members)


def _encode_tree(
    tree: dict[PathElement, Any], path: FieldPath, members: set[FieldPath]
) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    if tree and path in members and path:
        encoded["."] = {}
    for element in sorted(tree, key=_element_order):
        encoded[_element_key(element)] = _encode_tree(tree[element], (*path, element), members)
    return encoded


def _element_order(element: PathElement) -> tuple[int, str]:
    rank = {"f": 0, "k": 1, "v": 2, "i": 3}[element[0]]
    return (rank, _element_key(element))


def _element_key(element: PathElement) -> str:
    kind, payload = element
    if kind == "f":
        return f"f:{payload}"
    if kind == "k":
        return "k:{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in payload) + "}"
    if kind == "v":
        return f"v:{payload}"
    return f"i:{payload}"


def parse_fields_v1(encoded: dict[str, Any]) -> FieldSet:
    """Decode the FieldsV1 JSON of a managedFields entry into a field set (cached)."""
    cached = _decoded.get(id(encoded))
    if cached is not None and cached[0] is encoded:
        return cached[1]
    paths = _parse_fields_v1(encoded)
    if len(_decoded) >= _CACHE_LIMIT:
        _decoded.clear()
    _decoded[id(encoded)] = (encoded, paths)
    return paths


def _parse_fields_v1(encoded: dict[str, Any]) -> FieldSet:
    found: set[FieldPath] = set()
    _decode_tree(encoded, (), found)
    return frozenset(found)


def _decode_tree(node: dict[str, Any], path: FieldPath, found: set[FieldPath]) -> None:
    for key, child in node.items():
        if key == ".":
            if path:
                found.add(path)
            continue
        element = _parse_element(key)
        child_path = (*path, element)
        if isinstance(child, dict) and child:
            _decode_tree(child, child_path, found)
        else:
            found.add(child_path)


def _parse_element(key: str) -> PathElement:
    kind, _, payload = key.partition(":")
    if kind == "f":
        return ("f", payload)
    if kind == "k":
        keys = json.loads(payload)
        return ("k", tuple((name, _canonical(keys[name])) for name in sorted(keys)))
    if kind == "v":
        return ("v", _canonical(json.loads(payload)))
    if kind == "i":
        return ("i", int(payload))
    raise ValueError(f"unknown path element {key!r}")


def _element_text(element: PathElement) -> str:
    """fieldpath.PathElement.String(): `.name`, `[key="v",...]`, `[="v"]`, `[3]`."""
    kind, payload = element
    if kind == "f":
        return f".{payload}"
    if kind == "k":
        return "[" + ",".join(f"{name}={_go_value(value)}" for name, value in payload) + "]"
    if kind == "v":
        return f"[={_go_value(payload)}]"
    return f"[{payload}]"


def _go_value(canonical: str) -> str:
    value = json.loads(canonical)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return canonical


def path_text(path: FieldPath) -> str:
    """A field path as kube prints it in apply conflicts, e.g. `.spec.replicas`."""
    return "".join(_element_text(element) for element in path)


# ------------------------------------------------------------------------- managers

# (manager, operation, apiVersion ("" for Apply), subresource): kube's manager identifier
_Identity = tuple[str, str, str, str]

# Never tracked (stripMetaManager); members only, so metadata.labels etc. stay tracked.
_STRIPPED: FieldSet = frozenset(
    {
        (("f", "apiVersion"),),
        (("f", "kind"),),
        (("f", "metadata"),),
        *(
            (("f", "metadata"), ("f", name))
            for name in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            )
        ),
    }
)

_MAX_UPDATE_MANAGERS = 10
_BEFORE_FIRST_APPLY = "before-first-apply"
_ANCIENT_CHANGES = "ancient-changes"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# The one manager whose applies upgrade client-side apply's fields (kube hard-codes it too).
_KUBECTL = "kubectl"


@dataclass
class _Managed:
    fields: FieldSet
    api_version: str
    applied: bool
    time: str | None


def _identity(manager: str, operation: str, api_version: str, subresource: str) -> _Identity:
    return (
        manager or "unknown",
        operation,
        "" if operation == "Apply" else api_version,
        subresource,
    )


def _decode_managed(obj: dict[str, Any] | None) -> dict[_Identity, _Managed]:
    """DecodeManagedFields; an undecodable list counts as empty."""
    entries = ((obj or {}).get("metadata") or {}).get("managedFields")
    decoded: dict[_Identity, _Managed] = {}
    if not isinstance(entries, list):
        return decoded
    try:
        for entry in entries:
            operation = entry["operation"]
            api_version = entry["apiVersion"]
            if operation not in ("Apply", "Update") or not api_version:
                return {}
            if entry.get("fieldsType") != "FieldsV1":
                return {}
            key = _identity(
                entry.get("manager", ""), operation, api_version, entry.get("subresource", "")
            )
            decoded[key] = _Managed(
                fields=parse_fields_v1(entry.get("fieldsV1") or {}),
                api_version=api_version,
                applied=operation == "Apply",
                time=entry.get("time"),
            )
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}
    return decoded


def _encode_managed(managed: dict[_Identity, _Managed]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for (manager, operation, _, subresource), state in managed.items():
        entry: dict[str, Any] = {
            "manager": manager,
            "operation": "Apply" if state.applied else operation,
            "apiVersion": state.api_version,
        }
        if state.time is not None:
            entry["time"] = state.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = fields_v1(state.fields)
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
    entries.sort(
        key=lambda e: (
            e["operation"],
            e.get("time") or "",
            e["manager"],
            e["apiVersion"],
            e.get("subresource", ""),
        )
    )
    return entries


def _manager_text(identity: _Identity, state: _Managed) -> str:
    """printManager: `"name"`, plus ` with subresource "s"` and ` using v1` for updates."""
    manager, operation, _, subresource = identity
    text = json.dumps(manager)
    if subresource:
        text += f" with subresource {json.dumps(subresource)}"
    if operation == "Update" and not state.applied:
        text += f" using {state.api_version}"
    return text


def _strip_managed_fields(obj: dict[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {}
    result = dict(obj)
    metadata = result.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        result["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return result


def _with_live_managed_fields(obj: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    entries = ((live or {}).get("metadata") or {}).get("managedFields")
    if not entries:
        return obj
    return {**obj, "metadata": {**(obj.get("metadata") or {}), "managedFields": entries}}


def _with_managed_fields(obj: dict[str, Any], managed: dict[_Identity, _Managed]) -> dict[str, Any]:
    result = _strip_managed_fields(obj)
    entries = _encode_managed(managed)
    if entries:
        metadata = dict(result.get("metadata") or {})
        metadata["managedFields"] = entries
        result["metadata"] = metadata
    return result


def _take_ownership(
    walker: _Walker,
    old: dict[str, Any],
    new: dict[str, Any],
    managed: dict[_Identity, _Managed],
    owner: _Identity | None,
    force: bool,
    allowed_conflicts: FieldSet = frozenset(),
) -> tuple[dict[_Identity, _Managed], _Comparison]:
    """Updater.update: others lose what the write changed (or it conflicts) and what it removed.

    Conflicts on `allowed_conflicts` alone do not stop the write: it is then forced (kube's
    lastAppliedManager, which forces a kubectl apply whose every conflict is allowed)."""
    comparison = walker.compare(old, new)
    changed = comparison.modified | comparison.added
    conflicts: list[tuple[_Identity, FieldPath]] = []
    updated: dict[_Identity, _Managed] = {}
    for identity, state in managed.items():
        if identity == owner:
            updated[identity] = state
            continue
        taken = state.fields & changed
        conflicts.extend((identity, path) for path in taken)
        remaining = state.fields - taken - comparison.removed
        if remaining:
            updated[identity] = _Managed(remaining, state.api_version, state.applied, state.time)
    refused = [(identity, path) for identity, path in conflicts if path not in allowed_conflicts]
    if refused and not force:
        raise _conflict_error(refused, managed)
    return updated, comparison


def _conflict_error(
    conflicts: list[tuple[_Identity, FieldPath]], managed: dict[_Identity, _Managed]
) -> ApiError:
    ordered = sorted(conflicts, key=lambda c: (_manager_text(c[0], managed[c[0]]), _sort_key(c[1])))
    causes = [
        Cause(
            field=path_text(path),
            message=f"conflict with {_manager_text(identity, managed[identity])}",
            reason="FieldManagerConflict",
        )
        for identity, path in ordered
    ]
    if len(ordered) == 1:
        identity, path = ordered[0]
        message = (
            f"Apply failed with 1 conflict: conflict with "
            f"{_manager_text(identity, managed[identity])}: {path_text(path)}"
        )
    else:
        lines: list[str] = []
        current = ""
        for identity, path in ordered:
            text = _manager_text(identity, managed[identity])
            if text != current:
                lines.append(f"conflicts with {text}:")
                current = text
            lines.append(f"- {path_text(path)}")
        message = f"Apply failed with {len(ordered)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": [cause.to_dict() for cause in causes]})


def _sort_key(path: FieldPath) -> tuple[tuple[int, str], ...]:
    return tuple(_element_order(element) for element in path)


def _record(
    walker: _Walker,
    old: dict[str, Any],
    new: dict[str, Any],
    managed: dict[_Identity, _Managed],
    identity: _Identity,
    api_version: str,
    now: str,
) -> dict[_Identity, _Managed]:
    """managedFieldsUpdater + Updater.Update: the writer owns what it added or changed."""
    updated, comparison = _take_ownership(walker, old, new, managed, None, force=True)
    taken = frozenset(comparison.added | comparison.modified) - _STRIPPED
    if taken:
        previous = updated.get(identity)
        fields = taken | (previous.fields if previous else _EMPTY)
        updated[identity] = _Managed(fields, api_version, False, now)
    return updated


def _cap_update_managers(managed: dict[_Identity, _Managed]) -> dict[_Identity, _Managed]:
    """capManagersManager: fold the oldest Update entries into "ancient-changes"."""
    updaters = [i for i, s in managed.items() if not s.applied]
    if len(updaters) <= _MAX_UPDATE_MANAGERS:
        return managed
    updaters.sort(key=lambda i: (managed[i].time or "", json.dumps(i)))
    result = dict(managed)
    first_of_version: dict[str, _Identity] = {}
    count = len(updaters)
    for identity in updaters:
        if count <= _MAX_UPDATE_MANAGERS:
            break
        state = result[identity]
        version = state.api_version
        bucket = _identity(_ANCIENT_CHANGES, "Update", version, "")
        if version in first_of_version:
            if bucket not in result:
                result[bucket] = result.pop(first_of_version[version])
            merged = state.fields | result[bucket].fields
            result[bucket] = _Managed(merged, version, False, state.time)
            del result[identity]
            count -= 1
        else:
            first_of_version[version] = identity
    return result


# --------------------------------------------------------------------- public entry points


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    list_rules: ListRules,
    now: str,
    api_version: str,
    subresource: str = "",
) -> dict[str, Any]:
    """Track a create, update or non-apply patch: returns `new` with its managedFields.

    The writer (operation Update, keyed with `api_version` and `subresource`) owns every field
    it added or changed; other managers lose those and the fields it removed. Like kube:
    managedFields sent with the object replace the live ones (an empty list resets them), a
    subresource write always starts from the live ones, and an existing object without
    managedFields stays untracked until its first apply. `old=None` is a create, compared
    against an empty object.
    """
    live_managed = _decode_managed(old)
    sent = (new.get("metadata") or {}).get("managedFields")
    if subresource:
        managed = live_managed
    elif isinstance(sent, list) and (not sent or sent == [{}]):
        managed = {}
    else:
        managed = _decode_managed(new) or live_managed
    if not managed and old is not None:
        return _strip_managed_fields(new)

    walker = _Walker(list_rules)
    before = _strip_managed_fields(old)
    after = _strip_managed_fields(new)
    identity = _identity(manager, "Update", api_version, subresource)
    if managed is live_managed and before == after:
        return _with_live_managed_fields(after, old)  # a no-op write changes no ownership
    try:
        managed = _record(walker, before, after, managed, identity, api_version, now)
    except ApiError:
        # FieldManager.UpdateNoErrors: a write is never refused for its field tracking (e.g.
        # a map-list item without its keys); the live managedFields are kept as they were.
        return _with_managed_fields(after, live_managed)
    managed = _cap_update_managers(managed)
    return _with_managed_fields(after, managed)


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    list_rules: ListRules,
    now: str,
    api_version: str,
    subresource: str = "",
    kind: str = "",
) -> dict[str, Any]:
    """Apply a configuration (`application/apply-patch+yaml`) to `live` (None: create it).

    Returns the new object with its managedFields. Raises 400 when the configuration is not
    of `api_version`/`kind` or carries managedFields, and 409 Conflict naming every field
    another manager owns whose value the apply would change, unless `force`.
    """
    _check_applied(applied, api_version, kind or str((live or {}).get("kind") or ""))
    walker = _Walker(list_rules)
    before = _strip_managed_fields(live)
    managed = _decode_managed(live)
    if not managed and live is not None:
        # skipNonAppliedManager: what the object had before its first apply is owned by
        # "before-first-apply", so the first apply conflicts with what it would change.
        first = _identity(_BEFORE_FIRST_APPLY, "Update", api_version, subresource)
        managed = _record(walker, {}, before, {}, first, api_version, now)

    identity = _identity(manager, "Apply", api_version, subresource)
    merged = walker.merge(before, applied, ())
    previous = managed.get(identity)
    applied_fields = walker.field_set(applied)
    managed = dict(managed)
    managed[identity] = _Managed(
        applied_fields, api_version, True, previous.time if previous else None
    )
    if previous is not None and previous.fields:
        merged = _prune(walker, merged, managed, previous.fields)

    allowed = (
        _unchanged_since_client_side_apply(walker, before)
        if manager == _KUBECTL and not force
        else frozenset()
    )
    managed, _ = _take_ownership(walker, before, merged, managed, identity, force, allowed)
    own = managed[identity]
    own_fields = own.fields - _STRIPPED
    changed = _canonical(merged) != _canonical(before)
    if own_fields:
        managed[identity] = _Managed(own_fields, api_version, True, now if changed else own.time)
    else:
        del managed[identity]
    result = merged if changed else before
    if manager == _KUBECTL and _has_last_applied(result):
        result = _set_last_applied(result, applied)
    return _with_managed_fields(result, managed)


def _check_applied(applied: Any, api_version: str, kind: str) -> None:
    if not isinstance(applied, dict):
        raise bad_request("error decoding patch: the applied configuration is not an object")
    applied_version = str(applied.get("apiVersion") or "")
    applied_kind = str(applied.get("kind") or "")
    expected_kind = kind or applied_kind
    if not applied_kind or applied_version != api_version or applied_kind != expected_kind:
        group, _, version = applied_version.rpartition("/")
        raise bad_request(f"invalid object type: {group}/{version}, Kind={applied_kind}")
    metadata = applied.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")


def _prune(
    walker: _Walker,
    merged: dict[str, Any],
    managed: dict[_Identity, _Managed],
    last_applied: FieldSet,
) -> dict[str, Any]:
    """Remove what this manager applied before and no longer does, unless someone owns it."""
    last = _with_named_ancestors(last_applied)
    owned = _with_named_ancestors(path for state in managed.values() for path in state.fields)
    present = _with_named_ancestors(walker.field_set_lenient(merged))
    removable = frozenset(p for p in present if p in last and p not in owned)
    pruned = walker.remove(merged, removable)
    return pruned if isinstance(pruned, dict) else {}


def _unchanged_since_client_side_apply(walker: _Walker, live: dict[str, Any]) -> FieldSet:
    """lastAppliedManager: the fields of kubectl's last-applied-configuration annotation that
    still hold the values it recorded. A server-side apply by `kubectl` takes these over from
    client-side apply without conflict; fields changed since (by anyone) still conflict."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(_LAST_APPLIED) if isinstance(annotations, dict) else None
    if not isinstance(text, str) or not text:
        return frozenset()
    try:
        last_applied = json.loads(text)
        if not isinstance(last_applied, dict):
            return frozenset()
        recorded = walker.field_set(last_applied)
        comparison = walker.compare(last_applied, live)
    except (ValueError, ApiError):
        return frozenset()  # kube ignores an annotation it cannot decode or type
    return recorded - comparison.modified - comparison.added - comparison.removed


def _has_last_applied(obj: dict[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(_LAST_APPLIED))


def _set_last_applied(obj: dict[str, Any], applied: dict[str, Any]) -> dict[str, Any]:
    """lastAppliedUpdater: keep kubectl's client-side annotation in step with its applies."""
    config = copy.deepcopy(applied)
    config_annotations = (config.get("metadata") or {}).get("annotations")
    if isinstance(config_annotations, dict):
        config_annotations.pop(_LAST_APPLIED, None)
    text = json.dumps(config, sort_keys=True, separators=(",", ":")) + "\n"
    result = dict(obj)
    metadata = dict(result.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), _LAST_APPLIED: text}
    result["metadata"] = metadata
    return result
