"""Serves the kinds that CustomResourceDefinitions declare, as apiextensions-apiserver does.

A CRD that is created or changed registers its versions at once (so a custom object can be
created right after the CRD), then gets NamesAccepted and Established conditions; a CRD that
is deleted takes its objects with it.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from .builtin import CRD_KEY
from .resources import PrinterColumn, Registry, ResourceType
from .rest import now_rfc3339
from .store import Event, Store


def resource_types_of(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CRD."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    group = spec.get("group", "")
    types = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        subresources = set((version.get("subresources") or {}).keys())
        columns = tuple(
            PrinterColumn(
                name=column.get("name", ""),
                type=column.get("type", "string"),
                json_path=column.get("jsonPath", ""),
                description=column.get("description", ""),
                priority=int(column.get("priority", 0)),
                format=column.get("format", ""),
            )
            for column in version.get("additionalPrinterColumns") or []
        )
        types.append(
            ResourceType(
                group=group,
                version=version["name"],
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                singular=names.get("singular") or names.get("kind", "").lower(),
                namespaced=spec.get("scope") == "Namespaced",
                list_kind=names.get("listKind") or f"{names.get('kind', '')}List",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(subresources),
                schema=schema,
                printer_columns=columns,
                builtin=False,
                storage=bool(version.get("storage")),
                extras={"scale": (version.get("subresources") or {}).get("scale")},
            )
        )
    return types


def default_crd(crd: dict[str, Any]) -> dict[str, Any]:
    """The defaults apiextensions-apiserver fills in before validating a CRD (on a copy)."""
    crd = copy.deepcopy(crd)
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = names.get("kind", "")
    if kind:
        names.setdefault("singular", kind.lower())
        names.setdefault("listKind", f"{kind}List")
    spec.setdefault("conversion", {"strategy": "None"})
    for version in spec.get("versions") or []:
        if isinstance(version, dict):
            version.setdefault("served", True)
            version.setdefault("storage", False)
    return crd


def _condition(
    kind: str, reason: str, message: str, previous: list[dict[str, Any]]
) -> dict[str, Any]:
    for old in previous:
        if old.get("type") == kind and old.get("status") == "True":
            return {**old, "reason": reason, "message": message}
    return {"type": kind, "status": "True", "lastTransitionTime": now_rfc3339(),
            "reason": reason, "message": message}


def established_status(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd.get("spec", {})
    previous = (crd.get("status") or {}).get("conditions") or []
    names = dict(spec.get("names", {}))
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    stored = [v["name"] for v in spec.get("versions", []) if v.get("storage")]
    old_stored = (crd.get("status") or {}).get("storedVersions") or []
    return {
        "acceptedNames": names,
        "storedVersions": sorted(set(old_stored) | set(stored)),
        "conditions": [
            _condition("NamesAccepted", "NoConflicts", "no conflicts found", previous),
            _condition("Established", "InitialNamesAccepted",
                       "the initial names have been accepted", previous),
        ],
    }


class CrdRegistrar:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._pending_status: set[str] = set()
        store.on_event(self._on_event)

    def register_existing(self) -> None:
        """After loading a data directory: serve every stored CRD again."""
        for crd in self.store.list(CRD_KEY):
            self._register(crd)

    def _register(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec", {})
        group, plural = spec.get("group", ""), spec.get("names", {}).get("plural", "")
        self.registry.replace_group_resource(group, plural, resource_types_of(crd))

    def _on_event(self, event: Event) -> None:
        if event.key != CRD_KEY:
            return
        crd = event.obj
        spec = crd.get("spec", {})
        group, plural = spec.get("group", ""), spec.get("names", {}).get("plural", "")
        if event.type == "DELETED":
            self.registry.remove_group_resource(group, plural)
            self.store.close_subscriptions((group, plural))
            self.store.drop_collection((group, plural))
            return
        if crd["metadata"].get("deletionTimestamp"):
            return
        self._register(crd)
        name = crd["metadata"]["name"]
        if name not in self._pending_status:
            self._pending_status.add(name)
            asyncio.get_running_loop().call_soon(self._write_status, name)

    def _write_status(self, name: str) -> None:
        self._pending_status.discard(name)
        crd = self.store.get(CRD_KEY, "", name)
        if crd is None:
            return
        status = established_status(crd)
        if crd.get("status") == status:
            return
        self.store.update(CRD_KEY, {**crd, "status": status})
