"""The object store: one global monotonic resourceVersion, watch fan-out and history.

Objects are JSON dicts, treated as immutable once stored: every write stores a new dict, so
readers and watch events can share them without copying.

A write is applied in memory at once (later requests see it, in order) and, with a
persistence backend, answered and announced to watchers only after its batch is durable.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .persistence import Change, SqlitePersistence, StorageKey

__all__ = ["Event", "Expired", "ObjectKey", "StorageKey", "Store", "Subscription"]

ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped


@dataclass(frozen=True)
class Event:
    """A change of one object, as watchers receive it."""

    type: str  # ADDED, MODIFIED, DELETED
    revision: int
    key: StorageKey
    obj: dict[str, Any]
    previous: dict[str, Any] | None = None

    @property
    def namespace(self) -> str:
        return str(self.obj.get("metadata", {}).get("namespace", ""))


class Expired(Exception):
    """The requested resourceVersion is older than the retained history."""


@dataclass(eq=False)
class Subscription:
    """A live feed of events of one collection, newer than `after`."""

    key: StorageKey
    namespace: str | None
    after: int
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False
    max_pending: int = 100_000

    def offer(self, event: Event) -> None:
        if event.revision <= self.after or self.overflowed:
            return
        if self.namespace is not None and event.namespace != self.namespace:
            return
        if self.queue.qsize() >= self.max_pending:
            # A watcher that cannot keep up is cut off, as kube-apiserver does; it re-lists.
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.after = event.revision
        self.queue.put_nowait(event)


Hook = Callable[[Event], None]


class Store:
    def __init__(self, persistence: SqlitePersistence | None = None, history_size: int = 1000):
        self.revision = 0
        self._objects: dict[StorageKey, dict[ObjectKey, dict[str, Any]]] = {}
        self._uids: dict[str, tuple[StorageKey, ObjectKey]] = {}
        self._history: dict[StorageKey, deque[Event]] = {}
        self._history_size = history_size
        # Per collection: events at or below this revision are no longer replayable.
        self._compacted: dict[StorageKey, int] = {}
        self._startup_revision = 0
        self._subscriptions: dict[StorageKey, set[Subscription]] = {}
        self._hooks: list[Hook] = []
        self._persistence = persistence
        self._pending: list[tuple[Change, Event]] = []
        self._pending_waiters: list[asyncio.Future[None]] = []
        self._committer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event() if persistence else None
        if persistence is not None:
            revision, rows = persistence.load()
            self.revision = revision
            for key, obj in rows:
                self._put(key, obj)
        self._startup_revision = self.revision

    # ---- reads -------------------------------------------------------------------------

    def get(self, key: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(key, {}).get((namespace, name))

    def list(self, key: StorageKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a collection sorted by (namespace, name): stable for paging."""
        collection = self._objects.get(key, {})
        if namespace is None:
            return [collection[k] for k in sorted(collection)]
        return [collection[k] for k in sorted(collection) if k[0] == namespace]

    def count(self, key: StorageKey) -> int:
        return len(self._objects.get(key, {}))

    def by_uid(self, uid: str) -> tuple[StorageKey, dict[str, Any]] | None:
        found = self._uids.get(uid)
        if found is None:
            return None
        key, object_key = found
        obj = self._objects.get(key, {}).get(object_key)
        return (key, obj) if obj is not None else None

    def collections(self) -> Iterator[StorageKey]:
        return iter(list(self._objects))

    # ---- writes ------------------------------------------------------------------------

    def create(self, key: StorageKey, obj: dict[str, Any]) -> tuple[dict[str, Any], Event]:
        return self._write(key, obj, "ADDED", None)

    def update(self, key: StorageKey, obj: dict[str, Any]) -> tuple[dict[str, Any], Event]:
        meta = obj["metadata"]
        previous = self.get(key, meta.get("namespace", ""), meta["name"])
        return self._write(key, obj, "MODIFIED", previous)

    def delete(self, key: StorageKey, namespace: str, name: str) -> tuple[dict[str, Any], Event]:
        previous = self._objects[key].pop((namespace, name))
        self._uids.pop(previous["metadata"].get("uid", ""), None)
        self.revision += 1
        final = _with_revision(previous, self.revision)
        event = Event("DELETED", self.revision, key, final, previous)
        self._record(Change(key, namespace, name, None), event)
        return final, event

    def _write(
        self, key: StorageKey, obj: dict[str, Any], kind: str, previous: dict[str, Any] | None
    ) -> tuple[dict[str, Any], Event]:
        self.revision += 1
        stored = _with_revision(obj, self.revision)
        self._put(key, stored)
        meta = stored["metadata"]
        event = Event(kind, self.revision, key, stored, previous)
        self._record(Change(key, meta.get("namespace", ""), meta["name"], stored), event)
        return stored, event

    def _put(self, key: StorageKey, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        object_key = (meta.get("namespace", ""), meta["name"])
        self._objects.setdefault(key, {})[object_key] = obj
        uid = meta.get("uid")
        if uid:
            self._uids[uid] = (key, object_key)

    def _record(self, change: Change, event: Event) -> None:
        if self._persistence is None:
            self._publish(event)
            return
        self._pending.append((change, event))
        assert self._wake is not None
        self._wake.set()
        self._ensure_committer()

    async def durable(self) -> None:
        """Wait until every write made so far is committed (no-op in memory)."""
        if self._persistence is None or not self._pending:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_waiters.append(waiter)
        self._ensure_committer()
        await waiter

    def _ensure_committer(self) -> None:
        if self._committer is None or self._committer.done():
            self._committer = asyncio.get_running_loop().create_task(self._commit_loop())

    async def _commit_loop(self) -> None:
        assert self._persistence is not None and self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                continue
            batch, self._pending = self._pending, []
            waiters, self._pending_waiters = self._pending_waiters, []
            revision = batch[-1][1].revision
            try:
                await loop.run_in_executor(
                    None, self._persistence.commit, [c for c, _ in batch], revision
                )
            except Exception as error:  # a failed commit fails its writers, loudly
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            for _, event in batch:
                self._publish(event)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _publish(self, event: Event) -> None:
        history = self._history.get(event.key)
        if history is None:
            history = self._history[event.key] = deque()
        if len(history) >= self._history_size:
            dropped = history.popleft()
            self._compacted[event.key] = dropped.revision
        history.append(event)
        for subscription in list(self._subscriptions.get(event.key, ())):
            subscription.offer(event)
        for hook in self._hooks:
            hook(event)

    def on_event(self, hook: Hook) -> None:
        """Call `hook` for every committed event (garbage collector, CRD registrar, ...)."""
        self._hooks.append(hook)

    def drop_collection(self, key: StorageKey) -> builtins.list[Event]:
        """Remove every object of a collection (a CRD was deleted): DELETED for each."""
        events = []
        for namespace, name in list(self._objects.get(key, {})):
            events.append(self.delete(key, namespace, name)[1])
        return events

    # ---- watch -------------------------------------------------------------------------

    def subscribe(
        self, key: StorageKey, namespace: str | None, after: int | None
    ) -> tuple[Subscription, builtins.list[Event]]:
        """A subscription to events newer than `after`, and the history to replay first.

        `after=None` means "from now". Raises Expired when `after` is older than what is
        retained for this collection (including anything before a restart).
        """
        start = self.revision if after is None else after
        if after is not None and after > self.revision:
            # A version this store never issued: the client saw another incarnation of the
            # server (an in-memory one that restarted). Silently waiting would drop every
            # event up to that number; 410 makes kopf and client-go re-list instead.
            raise Expired(f"too large resource version: {after}, current: {self.revision}")
        replay: builtins.list[Event] = []
        if after is not None and after < self.revision:
            floor = max(self._compacted.get(key, 0), self._startup_revision)
            history = self._history.get(key, ())
            if after < floor:
                raise Expired(f"too old resource version: {after} ({floor + 1})")
            replay = [
                e for e in history
                if e.revision > after and (namespace is None or e.namespace == namespace)
            ]
        subscription = Subscription(key, namespace, start)
        if replay:
            subscription.after = replay[-1].revision
        self._subscriptions.setdefault(key, set()).add(subscription)
        return subscription, replay

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.get(subscription.key, set()).discard(subscription)

    def close_subscriptions(self, key: StorageKey) -> None:
        """End the watches of a collection that stops being served."""
        for subscription in self._subscriptions.pop(key, set()):
            with contextlib.suppress(asyncio.QueueFull):
                subscription.queue.put_nowait(None)

    def compact(self) -> None:
        """Forget all history, as etcd compaction does: older watches get 410."""
        for key, history in self._history.items():
            if history:
                self._compacted[key] = history[-1].revision
            history.clear()
        self._startup_revision = self.revision

    def close(self) -> None:
        if self._committer is not None:
            self._committer.cancel()
        if self._persistence is not None:
            self._persistence.close()


def _with_revision(obj: dict[str, Any], revision: int) -> dict[str, Any]:
    stored = dict(obj)
    stored["metadata"] = {**obj["metadata"], "resourceVersion": str(revision)}
    return stored
