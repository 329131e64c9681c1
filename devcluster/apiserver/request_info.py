"""What an HTTP request asks to do, in authorization terms (kube's RequestInfoFactory).

Computed from the URL alone, before the server knows whether the resource exists, so that a
caller without permission gets 403 rather than learning what is served.
"""

from __future__ import annotations

from collections.abc import Mapping

from .authn import UserInfo
from .rbac import Attributes
from .request_params import flag

_API_PREFIXES = ("api", "apis")
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update",
                 "PATCH": "patch", "DELETE": "delete"}


def request_attributes(user: UserInfo, method: str, path: str,
                       query: Mapping[str, str]) -> Attributes:
    parts = [part for part in path.split("/") if part]
    if len(parts) < 3 or parts[0] not in _API_PREFIXES or (parts[0] == "apis" and len(parts) < 4):
        return Attributes(user, method.lower(), resource_request=False, path=path)
    if parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        group, rest = "", parts[2:]
    verb = _METHOD_VERBS.get(method, "")
    if rest[0] == "watch":  # the legacy /watch/ prefix
        verb, rest = "watch", rest[1:]
        if not rest:
            return Attributes(user, verb, group=group)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        # As the server reads it: authorized as a watch exactly when served as one.
        verb = "watch" if flag(query.get("watch")) else "list"
        # A list or watch of one object by field selector is authorized as that object.
        name = _name_from_field_selector(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, group=group, resource=resource, subresource=subresource,
                      namespace=namespace, name=name)


def _name_from_field_selector(selector: str) -> str:
    for term in selector.split(","):
        for operator in ("==", "="):
            key, found, value = term.partition(operator)
            if found and key.strip() == "metadata.name" and not value.startswith("="):
                value = value.strip()
                return value if value and "/" not in value and value not in (".", "..") else ""
    return ""
