"""PATCH bodies applied the way kube-apiserver applies them.

Three patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
patch (k8s.io/apimachinery `pkg/util/strategicpatch`, server side). Each function takes the
current object and the decoded patch body and returns a new object; inputs are never changed.
Failures are `ApiError`s with the status code, reason and wording kube-apiserver answers with.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from devcluster.apiserver.errors import ApiError, bad_request
from devcluster.apiserver.merge_keys import MergeRule, merge_key_for

# What jsonpatch/jsonpointer raise for a failed test, a bad path or a malformed operation.
_JSON_PATCH_FAILURES = (
    jsonpatch.JsonPatchException,
    jsonpatch.JsonPointerException,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
)

# kube-apiserver refuses JSON patches with more operations than this.
MAX_JSON_PATCH_OPERATIONS = 10000

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
_SET_ELEMENT_ORDER = "$setElementOrder"

# mergepatch error texts, answered 400 or 422 as apiserver's interpretStrategicMergePatchError
_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
_LIST_OF_LISTS = "lists of lists are not supported"


def _rejected() -> ApiError:
    """apimachinery's NewGenericServerResponse(422): the underlying reason is not sent."""
    return ApiError(
        422, "Invalid", "the server rejected our request due to an error in our request"
    )


def _unconverted(message: str) -> ApiError:
    """An error the apiserver does not map to a Status: 500 with reason Unknown ("")."""
    return ApiError(500, "", message)


# --------------------------------------------------------------------------- merge patch


def merge_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        # evanphx/json-patch's ErrBadJSONPatch, answered 400 by the apiserver
        raise bad_request("Invalid JSON Patch")
    return _merge_object(target, patch)


def _merge_object(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            result[key] = _merge_object(current if isinstance(current, dict) else {}, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# ---------------------------------------------------------------------------- JSON patch


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 JSON patch.

    A body that is not a list of operation objects is a 400 (it fails to decode); every failure
    while applying (a failed `test`, a missing path, an unknown op) is the apiserver's generic
    422, which kopf relies on for its `test /metadata/resourceVersion` guard.
    """
    if not isinstance(operations, list):
        kind = _json_kind(operations)
        raise bad_request(f"json: cannot unmarshal {kind} into Go value of type jsonpatch.Patch")
    for operation in operations:
        if not isinstance(operation, dict):
            kind = _json_kind(operation)
            raise bad_request(
                f"json: cannot unmarshal {kind} into Go value of type jsonpatch.Operation"
            )
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise ApiError(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}",
        )
    try:
        result = jsonpatch.JsonPatch(operations).apply(target, in_place=False)
    except _JSON_PATCH_FAILURES:
        raise _rejected() from None
    if not isinstance(result, dict):
        raise _rejected()
    return result


def _json_kind(value: Any) -> str:
    """The word encoding/json uses for a JSON value in its unmarshal errors."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    return "number"


# ---------------------------------------------------------------- strategic merge patch


def strategic_merge_patch(
    target: dict[str, Any], patch: dict[str, Any], type_key: str
) -> dict[str, Any]:
    """Apply a strategic merge patch to an object of the built-in kind `type_key`.

    `type_key` is "<group>/<Kind>" ("/Pod", "apps/Deployment"); list merge keys come from
    `merge_keys.py`. Honours `$patch: replace|delete|merge`, `$retainKeys`,
    `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`; null deletes a key.
    """
    if not isinstance(patch, dict):
        kind = _json_kind(patch)
        raise bad_request(
            f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
        )
    merger = _StrategicMerger(type_key)
    return merger.merge_map(copy.deepcopy(target), copy.deepcopy(patch), ())


class _StrategicMerger:
    """The server side of strategicpatch (MergeParallelList and IgnoreUnmatchedNulls on).

    It works on private deep copies, so mutating them in place is safe.
    """

    def __init__(self, type_key: str) -> None:
        self.type_key = type_key

    def rule(self, path: tuple[str, ...]) -> MergeRule | None:
        return merge_key_for(self.type_key, path)

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> dict[str, Any]:
        if _DIRECTIVE in patch:
            directive = patch[_DIRECTIVE]
            if directive == "replace":
                del patch[_DIRECTIVE]
                return _clean(patch)
            if directive == "delete":
                return {}
            raise _unconverted(f"unknown patch type: {_go(directive)} in map: {_go(patch)}")

        _apply_retain_keys(original, patch)
        self.merge_set_element_orders(original, patch, path)

        for raw_key, patch_value in list(patch.items()):
            key = raw_key
            is_delete_list = raw_key.startswith(_DELETE_FROM_PRIMITIVE_LIST)
            if is_delete_list:
                key = _extract_key(raw_key, _DELETE_FROM_PRIMITIVE_LIST, _BAD_PRIMITIVE_LIST)

            if patch_value is None:
                original.pop(key, None)
                continue
            if key not in original or not _same_shape(original[key], patch_value):
                if not is_delete_list:
                    _store_clean(original, key, patch_value)
                continue

            field_path = (*path, key)
            current = original[key]
            rule = self.rule(field_path)
            if isinstance(current, dict):
                if rule is not None and rule.patch_strategy == "replace":
                    original[key] = _clean(patch_value)
                else:
                    original[key] = self.merge_map(current, patch_value, field_path)
            elif isinstance(current, list):
                original[key] = self.merge_list_field(
                    current, patch_value, field_path, rule, is_delete_list
                )
            else:
                _store_clean(original, key, patch_value)
        return original

    def merge_list_field(
        self,
        original: list[Any],
        patch: list[Any],
        path: tuple[str, ...],
        rule: MergeRule | None,
        is_delete_list: bool,
    ) -> list[Any]:
        """mergeSliceHandler: merge lists with strategy merge (and delete lists), else replace."""
        if is_delete_list or (rule is not None and rule.merges_in_patch):
            merge_key = rule.patch_merge_key if rule is not None else ""
            return self.merge_list(original, patch, path, merge_key, is_delete_list)
        return _clean_list(patch)

    def merge_list(
        self,
        original: list[Any],
        patch: list[Any],
        path: tuple[str, ...],
        merge_key: str,
        is_delete_list: bool,
    ) -> list[Any]:
        if not original and not patch:
            return original
        element_shape = _element_shape(original, patch)
        server_order = list(original)
        if element_shape != "map":
            if is_delete_list:
                return [item for item in original if not _contains(patch, item)]
            merged = _deduplicate([*original, *patch])
            ordering = patch
            merge_key = ""
        else:
            if not merge_key:
                raise _unconverted(f"cannot merge lists without merge key for {'.'.join(path)}")
            original, patch = _apply_list_item_directives(original, patch, merge_key)
            server_order = list(original)
            merged = self.merge_list_items(original, patch, merge_key, path)
            ordering = patch
        patch_items, server_only = _partition(merged, ordering, merge_key)
        return _normalize_element_order(
            patch_items, server_only, ordering, server_order, merge_key, element_shape
        )

    def merge_list_items(
        self,
        original: list[Any],
        patch: list[Any],
        merge_key: str,
        path: tuple[str, ...],
    ) -> list[Any]:
        """mergeSliceWithoutSpecialElements: merge items with equal keys, append the others."""
        merged = list(original)
        for item in patch:
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            index = _find_by_key(merged, merge_key, item[merge_key])
            if index >= 0:
                merged[index] = self.merge_map(merged[index], item, path)
            else:
                merged.append(_clean(item))
        return merged

    def merge_set_element_orders(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        """mergePatchIntoOriginal: `$setElementOrder/<field>` fixes the order of a merged list."""
        for directive_key in [k for k in patch if k.startswith(_SET_ELEMENT_ORDER)]:
            order = patch.pop(directive_key)
            if not isinstance(order, list):
                raise _bad_arg_type([], order)
            key = _extract_key(directive_key, _SET_ELEMENT_ORDER, _BAD_SET_ELEMENT_ORDER)
            found_original = key in original
            found_patch = key in patch
            original_list: list[Any] = []
            patch_list: list[Any] = []
            if found_original:
                if not isinstance(original[key], list):
                    raise _bad_arg_type([], original[key])
                original_list = original[key]
            if found_patch:
                if not isinstance(patch[key], list):
                    raise _bad_arg_type([], patch[key])
                patch_list = patch[key]
            field_path = (*path, key)
            rule = self.rule(field_path)
            merge_key = rule.patch_merge_key if rule is not None else ""
            _validate_set_element_order(patch_list, order, merge_key)

            if found_original and not found_patch:
                merged = original_list
            elif found_patch and not found_original:
                merged = _clean_list(patch_list)
            elif found_original and found_patch:
                merged = self.merge_list_field(original_list, patch_list, field_path, rule, False)
            else:
                continue
            patch_items, server_only = _partition(merged, order, merge_key)
            element_shape = _element_shape(original_list, patch_list)
            original[key] = _normalize_element_order(
                patch_items, server_only, order, original_list, merge_key, element_shape
            )
            patch.pop(key, None)


# ----------------------------------------------------------------- SMP helper functions


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys`: drop from original every key the list does not name."""
    if _RETAIN_KEYS not in patch:
        return
    retained = patch.pop(_RETAIN_KEYS)
    if not isinstance(retained, list) or not all(isinstance(k, str) for k in retained):
        raise bad_request(_BAD_RETAIN_KEYS)
    allowed = set(retained)
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM_PRIMITIVE_LIST, _SET_ELEMENT_ORDER)):
            continue
        if key not in allowed:
            raise bad_request(_BAD_RETAIN_KEYS)
    for key in [k for k in original if k not in allowed]:
        del original[key]


def _extract_key(directive_key: str, prefix: str, error_text: str) -> str:
    head, slash, rest = directive_key.partition("/")
    if head != prefix or not slash:
        raise bad_request(error_text)
    return rest


def _apply_list_item_directives(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """mergeSliceWithSpecialElements: `$patch: delete` and `$patch: replace` list items."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            original = [
                kept
                for kept in original
                if not _go_equal(_as_map(kept).get(merge_key), item[merge_key])
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _unconverted("merging lists cannot yet be specified in the patch")
        else:
            raise _unconverted(f"unknown patch type: {_go(directive)} in map: {_go(item)}")
    if replace:
        return [_clean(item) for item in plain], []
    return original, plain


def _as_map(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _unconverted("value for key is not a map")
    return item


def _find_by_key(items: list[Any], merge_key: str, value: Any) -> int:
    for index, item in enumerate(items):
        if merge_key in _as_map(item) and _go_equal(item[merge_key], value):
            return index
    return -1


def _partition(
    merged: list[Any], present: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Split merged items into those named in `present` and those only the server has."""
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for item in merged:
        if merge_key:
            if merge_key not in _as_map(item):
                raise _no_merge_key(item, merge_key)
            found = _find_by_key(
                [p for p in present if isinstance(p, dict)], merge_key, item[merge_key]
            )
            (in_patch if found >= 0 else server_only).append(item)
        else:
            (in_patch if _contains(present, item) else server_only).append(item)
    return in_patch, server_only


def _normalize_element_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    element_shape: str,
) -> list[Any]:
    """Patch items in patch order, server-only items in live order, interleaved by live order.

    The order of precedence is the patch's over the live object's, as strategicpatch does.
    """
    patch_items = _sort_by(patch_items, patch_order, merge_key, element_shape)
    server_only = _sort_by(server_only, server_order, merge_key, element_shape)
    result: list[Any] = []
    left, right = 0, 0
    while left < len(server_only) or right < len(patch_items):
        if left >= len(server_only):
            result.append(patch_items[right])
            right += 1
        elif right >= len(patch_items):
            result.append(server_only[left])
            left += 1
        else:
            left_index = _index(server_order, server_only[left], merge_key, element_shape)
            right_index = _index(server_order, patch_items[right], merge_key, element_shape)
            if 0 <= left_index < right_index:
                result.append(server_only[left])
                left += 1
            else:
                result.append(patch_items[right])
                right += 1
    return result


def _sort_by(items: list[Any], order: list[Any], merge_key: str, shape: str) -> list[Any]:
    if shape == "map":
        deleted = [i for i in items if isinstance(i, dict) and i.get(_DIRECTIVE) == "delete"]
        kept = [i for i in items if not (isinstance(i, dict) and i.get(_DIRECTIVE) == "delete")]
    else:
        deleted, kept = [], list(items)
    positions = [_index(order, item, merge_key, shape) for item in kept]
    if all(p >= 0 for p in positions):
        kept = [item for _, item in sorted(zip(positions, kept, strict=True), key=lambda p: p[0])]
    return kept + deleted


def _index(items: list[Any], wanted: Any, merge_key: str, shape: str) -> int:
    if shape == "map":
        wanted_key = wanted.get(merge_key) if isinstance(wanted, dict) else None
        for index, item in enumerate(items):
            value = item.get(merge_key) if isinstance(item, dict) else None
            if _go_equal(value, wanted_key):
                return index
        return -1
    for index, item in enumerate(items):
        if _go_equal(item, wanted):
            return index
    return -1


def _validate_set_element_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch list must be a subsequence of the `$setElementOrder` list."""
    if not order or not patch_list:
        return
    items = patch_list
    if merge_key:
        for item in patch_list:
            if not isinstance(item, dict):
                raise _bad_arg_type({}, item)
        items = [i for i in patch_list if i.get(_DIRECTIVE) != "delete"]
    patch_index, order_index = 0, 0
    while patch_index < len(items) and order_index < len(order):
        item = items[patch_index]
        if isinstance(item, dict) and _DIRECTIVE in item:
            patch_index += 1
            continue
        if _key_equal(item, order[order_index], merge_key):
            patch_index += 1
        order_index += 1
    if patch_index < len(items) and order_index >= len(order):
        raise _unconverted(
            f"The order in patch list:\n{_go(patch_list)}\n doesn't match "
            f"{_SET_ELEMENT_ORDER} list:\n{_go(order)}\n"
        )


def _key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _go_equal(left, right)
    if not isinstance(left, dict):
        raise _bad_arg_type({}, left)
    if not isinstance(right, dict):
        raise _bad_arg_type({}, right)
    if merge_key not in left:
        raise _no_merge_key(left, merge_key)
    if merge_key not in right:
        raise _no_merge_key(right, merge_key)
    return _go_equal(left[merge_key], right[merge_key])


def _element_shape(*lists: list[Any]) -> str:
    """sliceElementType: every element of every list must have the same JSON type."""
    shape = ""
    for items in lists:
        for item in items:
            current = _shape(item)
            if current == "list":
                raise _rejected()  # ErrNoListOfLists
            if shape and current != shape:
                raise _unconverted(
                    "list element types are not identical: " + _go([list(items) for items in lists])
                )
            shape = current
    if not shape:
        raise _unconverted("no elements in any of the given slices")
    return shape


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _same_shape(left: Any, right: Any) -> bool:
    return type(left) is type(right)


def _deduplicate(items: list[Any]) -> list[Any]:
    result: list[Any] = []
    for item in items:
        if not _contains(result, item):
            result.append(item)
    return result


def _contains(items: list[Any], wanted: Any) -> bool:
    return any(_go_equal(item, wanted) for item in items)


def _go_equal(left: Any, right: Any) -> bool:
    """Go interface equality: same dynamic type and value (so 1 != 1.0 and 1 != true)."""
    return type(left) is type(right) and bool(left == right)


def _store_clean(target: dict[str, Any], key: str, value: Any) -> None:
    cleaned, keep = _without_directives(value)
    if keep:
        target[key] = cleaned
    else:
        target.pop(key, None)


def _clean(value: dict[str, Any]) -> dict[str, Any]:
    cleaned, keep = _without_directives(value)
    return cleaned if keep and isinstance(cleaned, dict) else {}


def _clean_list(value: list[Any]) -> list[Any]:
    cleaned, _ = _without_directives(value)
    return cleaned if isinstance(cleaned, list) else []


def _without_directives(value: Any) -> tuple[Any, bool]:
    """New content from a patch: nulls dropped, `$patch` maps dropped, `$...` keys removed.

    strategicpatch leaves the `$`-keys for the typed decoder to discard; objects here are stored
    as JSON, so they are removed now (no Kubernetes field name starts with `$`).
    """
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            if item is None or key.startswith("$"):
                continue
            item_clean, keep = _without_directives(item)
            if keep:
                cleaned[key] = item_clean
        return cleaned, True
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            item_clean, keep = _without_directives(item)
            if keep:
                items.append(item_clean)
        return items, True
    return value, True


def _no_merge_key(item: Any, merge_key: str) -> ApiError:
    return _unconverted(f"map: {_go(item)} does not contain declared merge key: {merge_key}")


def _bad_arg_type(expected: Any, actual: Any) -> ApiError:
    return _unconverted(f"expected a {_go_type(expected)}, but received a {_go_type(actual)}")


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return "<nil>"


def _go(value: Any) -> str:
    """A value printed the way Go's %v prints decoded JSON, for error messages."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)
