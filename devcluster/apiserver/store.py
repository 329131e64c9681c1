"""The object store: one global monotonic resourceVersion, watch fan-out and history.

Objects are JSON dicts, treated as immutable once stored: every write stores a new dict, so
readers and watch events can share them without copying.

A write is encoded first (what cannot be encoded is refused before anything changes), then
applied to the newest state at once, which later writers see, in order. With a persistence
backend it is answered, announced to watchers and shown to readers only once committed;
a write whose commit fails is rolled back and fails alone (with the writes made on top of it).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import contextvars
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from . import errors
from .errors import ApiError
from .persistence import Change, SqlitePersistence, StorageKey

__all__ = ["Event", "Expired", "ObjectKey", "StorageKey", "Store", "Subscription"]

ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped

log = structlog.get_logger("devcluster.apiserver.store")

# The revisions of the writes the current task made since it last awaited `durable()`: a
# request is answered the failure of its own writes only.
_own_writes: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "devcluster_own_writes", default=None)
_KEPT_FAILURES = 10_000  # failed writes whose writers have not asked yet


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
        # The newest state, pending writes included: what writers read, so that optimistic
        # concurrency and AlreadyExists see every write made before theirs.
        self._objects: dict[StorageKey, dict[ObjectKey, dict[str, Any]]] = {}
        # With persistence, the state as committed: what clients read (GET, list, the
        # initial events of a watch), so that nobody sees a write that may yet be rolled
        # back. In memory, writes cannot fail after the fact and both are the same dicts.
        self._committed = self._objects if persistence is None else {}
        self._committed_revision = 0
        self._uids: dict[str, tuple[StorageKey, ObjectKey]] = {}
        self._history: dict[StorageKey, deque[Event]] = {}
        self._history_size = history_size
        # Per collection: events at or below this revision are no longer replayable.
        self._compacted: dict[StorageKey, int] = {}
        self._startup_revision = 0
        self._subscriptions: dict[StorageKey, set[Subscription]] = {}
        self._hooks: list[Hook] = []
        self._persistence = persistence
        self._pending: list[PendingWrite] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._failures: OrderedDict[int, ApiError] = OrderedDict()
        self._injected_faults = 0
        self._committer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event() if persistence else None
        if persistence is not None:
            revision, rows = persistence.load()
            self.revision = revision
            for key, obj in rows:
                self._put(key, obj)
                object_key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                self._committed.setdefault(key, {})[object_key] = obj
        self._committed_revision = self.revision
        self._startup_revision = self.revision

    # ---- reads -------------------------------------------------------------------------

    def get(self, key: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        """The newest version, pending writes included (for writers)."""
        return self._objects.get(key, {}).get((namespace, name))

    def list(self, key: StorageKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a collection sorted by (namespace, name), pending writes included."""
        return _sorted(self._objects.get(key, {}), namespace)

    def get_committed(self, key: StorageKey, namespace: str,
                      name: str) -> dict[str, Any] | None:
        """The version clients may see: committed (durable), never one being rolled back."""
        return self._committed.get(key, {}).get((namespace, name))

    def list_committed(self, key: StorageKey,
                       namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        """Committed objects of a collection sorted by (namespace, name): stable for paging."""
        return _sorted(self._committed.get(key, {}), namespace)

    @property
    def committed_revision(self) -> int:
        """Every write up to this revision is committed (or failed and rolled back) and
        published: the resourceVersion of a list of committed objects, and where a watch
        "from now" starts."""
        return self._committed_revision

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
        previous = self._objects[key][(namespace, name)]
        self._take_injected_fault_in_memory()
        del self._objects[key][(namespace, name)]
        self._uids.pop(previous["metadata"].get("uid", ""), None)
        self.revision += 1
        final = _with_revision(previous, self.revision)
        event = Event("DELETED", self.revision, key, final, previous)
        self._record(Change(key, namespace, name, None), event)
        return final, event

    def _write(
        self, key: StorageKey, obj: dict[str, Any], kind: str, previous: dict[str, Any] | None
    ) -> tuple[dict[str, Any], Event]:
        revision = self.revision + 1
        meta = obj["metadata"]
        stored = _with_revision(obj, revision)
        # Encoded now, with the encoder of the wire, and committed as encoded: an object
        # that cannot be served fails its own request before it touches anything. The
        # object itself is kept (not its decoding): unchanged subtrees stay shared with the
        # previous version, which the managed-fields caches rely on.
        body = encode_object(stored, key)
        self._take_injected_fault_in_memory()
        self.revision = revision
        self._put(key, stored)
        event = Event(kind, revision, key, stored, previous)
        self._record(Change(key, meta.get("namespace", ""), meta["name"], body), event)
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
            self._committed_revision = event.revision
            self._publish(event)
            return
        self._pending.append(PendingWrite(change, event))
        own = _own_writes.get()
        if own is None:
            own = set()
            _own_writes.set(own)
        own.add(event.revision)
        assert self._wake is not None
        self._wake.set()
        self._ensure_committer()

    # ---- durability --------------------------------------------------------------------

    async def durable(self) -> None:
        """Wait until every write made so far is committed or rolled back; raise the error
        of any write this task made that failed (no-op in memory). Writes of other tasks
        that failed are theirs to report."""
        own = _own_writes.get()
        _own_writes.set(None)
        if self._persistence is None:
            return
        target = self.revision
        if target > self._committed_revision:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((target, waiter))
            self._ensure_committer()
            await waiter
        failed = [self._failures.pop(r) for r in sorted(own or ()) if r in self._failures]
        if failed:
            raise failed[0]

    def fail_next_commits(self, count: int) -> None:
        """Fault injection: the next `count` writes fail as a failed commit would fail them.

        Each is answered 500 InternalError and leaves nothing behind: with persistence, the
        write is applied, its commit fails and it is rolled back (other writes of the same
        batch are committed); in memory, it fails before it is applied. `count=0` cancels.
        """
        if count < 0:
            raise ValueError(f"count: must be 0 or more, got {count}")
        self._injected_faults = count

    @property
    def injected_faults_left(self) -> int:
        return self._injected_faults

    def _take_injected_fault_in_memory(self) -> None:
        if self._persistence is None and self._injected_faults > 0:
            self._injected_faults -= 1
            raise _injected_fault()

    def _ensure_committer(self) -> None:
        if self._committer is None or self._committer.done():
            # An empty context: the loop must not share the first writer's set of own
            # writes with the hooks it runs.
            self._committer = asyncio.get_running_loop().create_task(
                self._commit_loop(), context=contextvars.Context())

    async def _commit_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending:
                batch, self._pending = self._pending, []
                await self._commit_batch(batch)
            self._settle()

    async def _commit_batch(self, batch: builtins.list[PendingWrite]) -> None:
        """Commit a batch in one transaction; on failure, write by write, so that only the
        writes that fail (and later writes to the same objects, made on top of them) fail.
        Then publish what was committed and roll back what was not."""
        assert self._persistence is not None
        persistence = self._persistence
        loop = asyncio.get_running_loop()
        failed: builtins.list[tuple[PendingWrite, ApiError]] = []
        broken: set[tuple[StorageKey, ObjectKey]] = set()
        candidates: builtins.list[PendingWrite] = []
        for write in batch:
            if self._injected_faults > 0:
                self._injected_faults -= 1
                failed.append((write, _injected_fault()))
                broken.add(write.target)
            elif write.target in broken:
                failed.append((write, _dependent_failure(write)))
            else:
                candidates.append(write)
        committed = candidates
        try:
            if candidates:
                await loop.run_in_executor(None, persistence.commit,
                                           [w.change for w in candidates], batch[-1].revision)
        except Exception as error:
            log.warning("Commit of a batch failed; committing its writes one by one",
                        writes=len(candidates), error=str(error))
            committed = []
            for write in candidates:
                if write.target in broken:
                    failed.append((write, _dependent_failure(write)))
                    continue
                try:
                    await loop.run_in_executor(None, persistence.commit, [write.change],
                                               write.revision)
                except Exception as write_error:
                    failed.append((write, errors.internal(
                        f"the write could not be committed: {write_error}")))
                    broken.add(write.target)
                else:
                    committed.append(write)
        for write in committed:
            self._apply_committed(write)
        if broken:
            self._roll_back(broken, failed)
        for write, failure in failed:
            self._fail(write, failure)
        for write in committed:
            self._publish(write.event)

    def _apply_committed(self, write: PendingWrite) -> None:
        key, object_key = write.target
        if write.change.body is None:
            self._committed.get(key, {}).pop(object_key, None)
        else:
            self._committed.setdefault(key, {})[object_key] = write.event.obj

    def _roll_back(self, broken: set[tuple[StorageKey, ObjectKey]],
                   failed: builtins.list[tuple[PendingWrite, ApiError]]) -> None:
        """Put the committed version of every object a failed write touched back, and fail
        the writes made since on top of the failed ones."""
        kept: builtins.list[PendingWrite] = []
        for write in self._pending:
            if write.target in broken:
                failed.append((write, _dependent_failure(write)))
            else:
                kept.append(write)
        self._pending = kept
        for key, object_key in broken:
            current = self._objects.get(key, {}).pop(object_key, None)
            if current is not None:
                uid = current["metadata"].get("uid")
                if uid and self._uids.get(uid) == (key, object_key):
                    del self._uids[uid]
            committed = self._committed.get(key, {}).get(object_key)
            if committed is not None:
                self._put(key, committed)

    def _fail(self, write: PendingWrite, error: ApiError) -> None:
        log.warning("Write rolled back: its commit failed", group=write.change.key[0],
                    resource=write.change.key[1], namespace=write.change.namespace,
                    name=write.change.name, revision=write.revision, error=error.message)
        self._failures[write.revision] = error
        while len(self._failures) > _KEPT_FAILURES:
            self._failures.popitem(last=False)

    def _settle(self) -> None:
        """Advance the committed revision past everything resolved; answer its waiters."""
        settled = self._pending[0].revision - 1 if self._pending else self.revision
        self._committed_revision = max(self._committed_revision, settled)
        waiting = []
        for target, waiter in self._waiters:
            if target <= self._committed_revision:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._waiters = waiting
        if self._pending and self._wake is not None:
            self._wake.set()

    # ---- events ------------------------------------------------------------------------

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

        `after=None` means "from now": after the committed revision, so that writes still
        being committed reach it once they are. Raises Expired when `after` is older than
        what is retained for this collection (including anything before a restart).
        """
        start = self._committed_revision if after is None else after
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


@dataclass(frozen=True)
class PendingWrite:
    """A write applied to the newest state, waiting for its commit."""

    change: Change
    event: Event

    @property
    def revision(self) -> int:
        return self.event.revision

    @property
    def target(self) -> tuple[StorageKey, ObjectKey]:
        return self.change.key, (self.change.namespace, self.change.name)


def encode_object(obj: dict[str, Any], key: StorageKey) -> bytes:
    """The object as the wire and the database carry it, or 500 naming why it cannot be."""
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError as error:
        meta = obj.get("metadata") or {}
        raise errors.internal(
            f"the {key[1]} object {meta.get('name', '')!r} cannot be stored: {error}"
        ) from error


def _injected_fault() -> ApiError:
    return errors.internal("the write could not be committed: injected fault "
                           "(devcluster fail_next_commits)")


def _dependent_failure(write: PendingWrite) -> ApiError:
    return errors.internal(
        f"the write could not be committed: an earlier write to {write.change.key[1]} "
        f"{write.change.namespace}/{write.change.name} failed, and this one was made on it")


def _sorted(collection: dict[ObjectKey, dict[str, Any]],
            namespace: str | None) -> builtins.list[dict[str, Any]]:
    if namespace is None:
        return [collection[k] for k in sorted(collection)]
    return [collection[k] for k in sorted(collection) if k[0] == namespace]


def _with_revision(obj: dict[str, Any], revision: int) -> dict[str, Any]:
    stored = dict(obj)
    stored["metadata"] = {**obj["metadata"], "resourceVersion": str(revision)}
    return stored
