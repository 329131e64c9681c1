"""The registry of served resource types: built-in kinds and those that CRDs add."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class PrinterColumn:
    """A CRD additionalPrinterColumn (or a built-in kind's column)."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    """One served group/version/resource.

    A CRD with several served versions gives one ResourceType per version; they share
    `storage_key`, so an object is stored once and read back in whichever version is asked.
    """

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    list_kind: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: frozenset[str] = frozenset()  # "status", "scale", ...
    # The openAPIV3Schema of a CRD version; None for built-in kinds (stored as sent).
    schema: dict[str, Any] | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    builtin: bool = True
    # True when the storage version of a CRD: objects are stored with this apiVersion.
    storage: bool = True
    # Extra fields for discovery (e.g. "scale" details); kept opaque here.
    extras: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """(group, plural): the identity of the stored collection, version-independent."""
        return (self.group, self.plural)

    @property
    def resource_name(self) -> str:
        """`plural.group` as RBAC and error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


Listener = Callable[[], None]


class Registry:
    """Lookup of ResourceTypes by group/version/plural, kind and short name."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._listeners: list[Listener] = []
        self.generation = 0  # bumped on every change; discovery and OpenAPI caches key on it

    def add(self, resource: ResourceType) -> None:
        self._by_gvr[(resource.group, resource.version, resource.plural)] = resource
        self._changed()

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            del self._by_gvr[key]
        self._changed()

    def replace_group_resource(self, group: str, plural: str, versions: list[ResourceType]) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            del self._by_gvr[key]
        for resource in versions:
            self._by_gvr[(resource.group, resource.version, resource.plural)] = resource
        self._changed()

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        self.generation += 1
        for listener in self._listeners:
            listener()

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        for resource in self._by_gvr.values():
            if resource.group == group and resource.version == version and resource.kind == kind:
                return resource
        return None

    def storage_version(self, group: str, plural: str) -> ResourceType | None:
        """The ResourceType whose version objects of (group, plural) are stored in."""
        found = None
        for resource in self._by_gvr.values():
            if resource.group == group and resource.plural == plural:
                if resource.storage:
                    return resource
                found = found or resource
        return found

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_gvr.values()))

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions, the preferred (first registered) first."""
        result: dict[str, list[str]] = {}
        for resource in self._by_gvr.values():
            versions = result.setdefault(resource.group, [])
            if resource.version not in versions:
                versions.append(resource.version)
        return result

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self._by_gvr.values() if r.group == group and r.version == version]
