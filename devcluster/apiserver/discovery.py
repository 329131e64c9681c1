"""API discovery documents (/api, /apis, /api/v1, /apis/<group>/<version>)."""

from __future__ import annotations

import re
from typing import Any

from .resources import Registry, ResourceType

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA before beta before alpha, higher numbers first."""
    match = _VERSION.match(version)
    if not match:
        return (3, 0, 0)
    major, stage, minor = match.groups()
    rank = {"": 0, "beta": 1, "alpha": 2}[stage or ""]
    return (rank, -int(major), -int(minor or 0))


def sorted_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=version_priority)


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = []
    for group, versions in sorted(registry.groups().items()):
        if not group:
            continue
        ordered = sorted_versions(versions)
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
        groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not versions:
        return None
    ordered = sorted_versions(versions)
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
            "preferredVersion": entries[0]}


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    entries: list[dict[str, Any]] = []
    for resource in sorted(resources, key=lambda r: r.plural):
        entries.append(_resource_entry(resource))
        for subresource in sorted(resource.subresources):
            entries.append(_subresource_entry(resource, subresource))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def _resource_entry(resource: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def _subresource_entry(resource: ResourceType, subresource: str) -> dict[str, Any]:
    verbs = {
        "status": ["get", "patch", "update"],
        "scale": ["get", "patch", "update"],
        "finalize": ["update"],
        "binding": ["create"],
        "eviction": ["create"],
        "token": ["create"],
    }.get(subresource, ["get", "update", "patch", "create"])
    kind = {"scale": "Scale", "binding": "Binding", "eviction": "Eviction",
            "token": "TokenRequest"}.get(
        subresource, resource.kind
    )
    entry: dict[str, Any] = {
        "name": f"{resource.plural}/{subresource}",
        "singularName": "",
        "namespaced": resource.namespaced,
        "kind": kind,
        "verbs": verbs,
    }
    if subresource == "scale":
        entry["group"], entry["version"] = "autoscaling", "v1"
    if subresource == "eviction":
        entry["group"], entry["version"] = "policy", "v1"
    if subresource == "token":
        entry["group"], entry["version"] = "authentication.k8s.io", "v1"
    return entry
