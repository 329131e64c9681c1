"""Query parameters read as kube-apiserver's parameter codec reads them, with its 400s.

kube converts url.Values into ListOptions, DeleteOptions, ... with apimachinery's
conversions: an integer is strconv.ParseInt of the first value (`strconv.ParseInt: parsing
"abc": invalid syntax`), a boolean is true unless the first value is "0" or "false" (any case),
so that `?watch` alone is a watch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import errors
from .errors import Cause

_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_RESOURCE_VERSION_MATCHES = ("NotOlderThan", "Exact")


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def parse_int64(text: str) -> int:
    """strconv.ParseInt(text, 10, 64), raising ValueError with Go's message."""
    if not _INT.fullmatch(text):
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: value out of range")
    return value


def int64_param(query: Mapping[str, str], name: str) -> int | None:
    """An int64 query parameter; None when absent or empty; ApiError 400 when not one."""
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        return parse_int64(text)
    except ValueError as error:
        raise errors.bad_request(str(error)) from error


def flag(value: str | None) -> bool:
    """A boolean query parameter as kube converts it (Convert_Slice_string_To_bool)."""
    if value is None:
        return False
    return value != "0" and value.lower() != "false"


def resource_version_param(query: Mapping[str, str]) -> int | None:
    """resourceVersion as the storage parses it (a uint64); None when absent or empty."""
    text = query.get("resourceVersion", "")
    if text == "":
        return None
    if not text.isascii() or not text.isdigit() or int(text) >= 1 << 64:
        raise errors.bad_request(f"invalid resource version: {text}")
    return int(text)


@dataclass(frozen=True)
class ListParams:
    limit: int
    timeout_seconds: int | None
    resource_version: int | None


def list_params(query: Mapping[str, str], watch: bool) -> ListParams:
    """The checked ListOptions parameters (kube's ValidateListOptions for the match)."""
    limit = int64_param(query, "limit")
    timeout = int64_param(query, "timeoutSeconds")
    version = resource_version_param(query)
    match = query.get("resourceVersionMatch", "")
    causes = _watch_match_causes(query, match) if watch else _list_match_causes(query, match)
    if causes:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", causes)
    return ListParams(limit=max(limit or 0, 0), timeout_seconds=timeout,
                      resource_version=version)


def _not_supported(match: str, supported: str) -> Cause:
    return Cause("resourceVersionMatch", f'Unsupported value: "{match}": supported values: '
                 f"{supported}", "FieldValueNotSupported")


def _forbidden(why: str) -> Cause:
    return Cause("resourceVersionMatch", f"Forbidden: {why}", "FieldValueForbidden")


def _list_match_causes(query: Mapping[str, str], match: str) -> list[Cause]:
    if not match:
        return []
    causes = []
    version = query.get("resourceVersion", "")
    if not version:
        causes.append(_forbidden("resourceVersionMatch is forbidden unless resourceVersion is "
                                 "provided"))
    if query.get("continue"):
        causes.append(_forbidden("resourceVersionMatch is forbidden when continue is provided"))
    if match not in _RESOURCE_VERSION_MATCHES:
        causes.append(_not_supported(match, '"Exact", "NotOlderThan", ""'))
    if match == "Exact" and version == "0":
        causes.append(_forbidden('resourceVersionMatch "exact" is forbidden for '
                                 'resourceVersion "0"'))
    return causes


def _watch_match_causes(query: Mapping[str, str], match: str) -> list[Cause]:
    if not match:
        return []
    causes = []
    if "sendInitialEvents" not in query:
        causes.append(_forbidden("resourceVersionMatch is forbidden for watch unless "
                                 "sendInitialEvents is provided"))
    if match != "NotOlderThan":
        causes.append(_not_supported(match, '"NotOlderThan"'))
    return causes


_MAX_FIELD_MANAGER_BYTES = 128


def check_field_manager(manager: str, options_kind: str) -> None:
    """kube's ValidateFieldManager: at most 128 bytes of printable characters."""
    if len(manager.encode("utf-8", "surrogateescape")) > _MAX_FIELD_MANAGER_BYTES:
        raise errors.invalid(options_kind, "meta.k8s.io", "", [Cause(
            "fieldManager", f"Too long: may not be more than {_MAX_FIELD_MANAGER_BYTES} bytes",
            "FieldValueTooLong")])
    if not manager.isprintable():
        raise errors.invalid(options_kind, "meta.k8s.io", "", [Cause(
            "fieldManager", f"Invalid value: {_go_quote(manager)}: must only contain "
            "printable characters")])


__all__ = ["ListParams", "check_field_manager", "flag", "int64_param", "list_params",
           "parse_int64", "resource_version_param"]
