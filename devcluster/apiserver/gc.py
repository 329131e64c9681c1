"""The garbage collector and the namespace controller of kube-controller-manager.

- Dependents whose owners (by ownerReference uid) are all gone are deleted.
- An owner deleted with propagationPolicy Foreground keeps its `foregroundDeletion` finalizer
  until its dependents are gone; with Orphan, its dependents lose their ownerReference and
  then the `orphan` finalizer is removed.
- A namespace being deleted has its content deleted, then its `kubernetes` finalizer removed.

Work is driven by store events and done in a background task, like the real controllers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from kubekit.tasks import cancel_and_wait

from .builtin import NAMESPACE_KEY
from .resources import Registry
from .rest import DeleteOptions, Rest
from .store import Event, StorageKey, Store

log = structlog.get_logger("devcluster.gc")

ObjectRef = tuple[StorageKey, str, str]  # (collection, namespace, name)


class GarbageCollector:
    def __init__(self, store: Store, registry: Registry, rest: Rest) -> None:
        self.store = store
        self.registry = registry
        self.rest = rest
        self._dependents: dict[str, set[ObjectRef]] = {}  # owner uid -> dependents
        self._owners_of: dict[ObjectRef, set[str]] = {}
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        store.on_event(self._on_event)

    def start(self) -> None:
        for key in self.store.collections():
            for obj in self.store.list(key):
                self._index(key, obj)
                self._check_object(key, obj)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    def _index(self, key: StorageKey, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        ref: ObjectRef = (key, meta.get("namespace", ""), meta["name"])
        owners = {o.get("uid", "") for o in meta.get("ownerReferences") or []}
        old = self._owners_of.get(ref, set())
        for uid in old - owners:
            self._dependents.get(uid, set()).discard(ref)
        for uid in owners - old:
            self._dependents.setdefault(uid, set()).add(ref)
        if owners:
            self._owners_of[ref] = owners
        else:
            self._owners_of.pop(ref, None)

    def _on_event(self, event: Event) -> None:
        meta = event.obj["metadata"]
        ref: ObjectRef = (event.key, meta.get("namespace", ""), meta["name"])
        if event.type == "DELETED":
            for uid in self._owners_of.pop(ref, set()):
                self._dependents.get(uid, set()).discard(ref)
            uid = meta.get("uid", "")
            if self._dependents.get(uid):
                self._queue.put_nowait(("owner-gone", uid))
            # Owners waiting in the foreground for this dependent may now finish.
            for owner in meta.get("ownerReferences") or []:
                self._queue.put_nowait(("owner-check", owner.get("uid", "")))
            return
        self._index(event.key, event.obj)
        self._check_object(event.key, event.obj)
        if meta.get("ownerReferences"):
            # A dependent created after its owner vanished is collected too.
            self._queue.put_nowait(("dependent-check", ref))

    def _check_object(self, key: StorageKey, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        if key == NAMESPACE_KEY:
            self._queue.put_nowait(("namespace", meta["name"]))
        finalizers = meta.get("finalizers") or []
        if "foregroundDeletion" in finalizers or "orphan" in finalizers:
            self._queue.put_nowait(("owner-check", meta.get("uid", "")))

    async def _run(self) -> None:
        while True:
            kind, arg = await self._queue.get()
            try:
                if kind == "owner-gone":
                    self._collect_dependents_of(arg)
                elif kind == "owner-check":
                    self._finish_owner(arg)
                elif kind == "dependent-check":
                    self._collect_if_orphaned(arg)
                elif kind == "namespace":
                    self._finish_namespace(arg)
                await self.store.durable()
            except Exception:  # the collector must outlive any one bad object
                log.exception("Failed garbage collection step", step=kind, target=str(arg))

    def _resource(self, key: StorageKey) -> Any:
        return self.registry.storage_version(*key)

    def _delete(self, ref: ObjectRef, policy: str = "Background") -> None:
        resource = self._resource(ref[0])
        if resource is None or self.store.get(*ref) is None:
            return
        with contextlib.suppress(Exception):
            self.rest.delete(resource, ref[1], ref[2], DeleteOptions(propagation_policy=policy))

    def _owner_exists(self, uid: str) -> bool:
        found = self.store.by_uid(uid)
        return found is not None

    def _collect_if_orphaned(self, ref: ObjectRef) -> None:
        obj = self.store.get(*ref)
        if obj is None:
            return
        owners = obj["metadata"].get("ownerReferences") or []
        if owners and not any(self._owner_exists(o.get("uid", "")) for o in owners):
            self._delete(ref)

    def _collect_dependents_of(self, uid: str) -> None:
        for ref in list(self._dependents.get(uid, set())):
            self._collect_if_orphaned(ref)
        self._dependents.pop(uid, None)

    def _finish_owner(self, uid: str) -> None:
        found = self.store.by_uid(uid)
        if found is None:
            return
        key, owner = found
        meta = owner["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        finalizers = list(meta.get("finalizers") or [])
        dependents = [ref for ref in self._dependents.get(uid, set()) if self.store.get(*ref)]
        if "orphan" in finalizers:
            for ref in dependents:
                self._drop_owner_reference(ref, uid)
            finalizers.remove("orphan")
        elif "foregroundDeletion" in finalizers:
            blocking = [ref for ref in dependents if self._blocks(ref, uid)]
            if blocking:
                for ref in blocking:
                    self._delete(ref, "Foreground")
                return
            for ref in dependents:
                self._delete(ref)
            finalizers.remove("foregroundDeletion")
        else:
            return
        self._set_finalizers(key, owner, finalizers)

    def _blocks(self, ref: ObjectRef, uid: str) -> bool:
        obj = self.store.get(*ref)
        if obj is None:
            return False
        return any(o.get("uid") == uid and o.get("blockOwnerDeletion")
                   for o in obj["metadata"].get("ownerReferences") or [])

    def _drop_owner_reference(self, ref: ObjectRef, uid: str) -> None:
        obj = self.store.get(*ref)
        if obj is None:
            return
        kept = [o for o in obj["metadata"].get("ownerReferences") or [] if o.get("uid") != uid]
        meta = {**obj["metadata"], "ownerReferences": kept}
        if not kept:
            meta.pop("ownerReferences")
        self.store.update(ref[0], {**obj, "metadata": meta})

    def _set_finalizers(self, key: StorageKey, obj: dict[str, Any], finalizers: list[str]) -> None:
        meta = {**obj["metadata"], "finalizers": finalizers}
        if not finalizers:
            meta.pop("finalizers")
            self.store.delete(key, meta.get("namespace", ""), meta["name"])
            return
        self.store.update(key, {**obj, "metadata": meta})

    def _finish_namespace(self, name: str) -> None:
        namespace = self.store.get(NAMESPACE_KEY, "", name)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for resource in list(self.registry):
            if not resource.namespaced or not resource.storage:
                continue
            for obj in self.store.list(resource.storage_key, name):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete((resource.storage_key, name, obj["metadata"]["name"]))
        if remaining and any(
            self.store.list(r.storage_key, name) for r in self.registry if r.namespaced
        ):
            # Some objects wait on finalizers or grace periods: look again shortly.
            asyncio.get_running_loop().call_later(
                1.0, self._queue.put_nowait, ("namespace", name)
            )
            return
        spec_finalizers = [f for f in namespace.get("spec", {}).get("finalizers", [])
                           if f != "kubernetes"]
        updated = {**namespace, "spec": {**namespace.get("spec", {}),
                                         "finalizers": spec_finalizers}}
        if not spec_finalizers and not namespace["metadata"].get("finalizers"):
            self.store.delete(NAMESPACE_KEY, "", name)
        elif updated != namespace:
            self.store.update(NAMESPACE_KEY, updated)
