"""What a simulated component last wrote, per object, ahead of its informer.

A component that writes an object twice in a row (a spec patch, then a status patch) gets
the watch event of the first write while the second is already stored: a reconcile run
from that event must not redo the work from the older version (a second bind, a second
status write, a 409 on a PUT). `latest` returns whichever of the informer's copy and our
own last write is newer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubekit.informer import Informer, Key
from kubekit.resources import ResourceRef

Obj = Mapping[str, Any]


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _key(obj: Obj) -> Key:
    return (str(_meta(obj).get("namespace", "")), str(_meta(obj)["name"]))


def _revision(obj: Obj | None) -> int:
    """The devcluster store's resourceVersions are increasing integers."""
    try:
        return int(str(_meta(obj or {}).get("resourceVersion") or 0))
    except ValueError:
        return 0


class WrittenCache:
    """Our last write of each object, until the informer has caught up with it."""

    def __init__(self) -> None:
        self._written: dict[tuple[str, Key], dict[str, Any]] = {}

    def remember(self, resource: ResourceRef, written: dict[str, Any]) -> None:
        meta = _meta(written)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # This write removed the last finalizer: the object is gone. Its DELETED event
            # may have been handled before this answer, so remembering it would bring it
            # back for good (a VMI resurrected this way kept its VM from ever restarting).
            self.forget(resource, _key(written))
            return
        if meta.get("name") and meta.get("resourceVersion"):
            self._written[(resource.plural, _key(written))] = written

    def latest(self, resource: ResourceRef, informer: Informer, key: Key) -> dict[str, Any] | None:
        cached = informer.get(*key)
        written = self._written.get((resource.plural, key))
        if written is None:
            return cached
        if cached is not None and _revision(cached) >= _revision(written):
            del self._written[(resource.plural, key)]  # the informer caught up
            return cached
        return written

    def forget(self, resource: ResourceRef, key: Key) -> None:
        """The object was deleted: what we wrote before is history."""
        self._written.pop((resource.plural, key), None)
