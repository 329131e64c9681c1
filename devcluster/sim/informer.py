"""Informers and work queues: how the simulated components observe the cluster.

An Informer keeps a local copy of one collection (list, then watch; a 410 or a broken stream
means list again) and tells its listeners the keys that changed. A WorkQueue runs a reconcile
function per key, never twice at once for the same key, coalescing repeated notifications,
with retries after failures - the shape of client-go's controllers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from .kube import Kube, KubeError, Resource

log = structlog.get_logger("devcluster.sim")

Key = tuple[str, str]  # (namespace, name)
Listener = Callable[[str, dict[str, Any]], None]  # (event type, object)


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


class Informer:
    def __init__(self, kube: Kube, resource: Resource) -> None:
        self.kube = kube
        self.resource = resource
        self.objects: dict[Key, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))

    def values(self) -> list[dict[str, Any]]:
        return list(self.objects.values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notify(self, kind: str, obj: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener(kind, obj)

    async def _relist(self) -> str:
        listed = await self.kube.list(self.resource)
        fresh = {key_of(obj): obj for obj in listed.get("items", [])}
        for key, gone in list(self.objects.items()):
            if key not in fresh:
                del self.objects[key]
                self._notify("DELETED", gone)
        for key, obj in fresh.items():
            old = self.objects.get(key)
            self.objects[key] = obj
            if old is None or old["metadata"].get("resourceVersion") != obj["metadata"].get(
                    "resourceVersion"):
                self._notify("ADDED" if old is None else "MODIFIED", obj)
        self.synced.set()
        return str(listed.get("metadata", {}).get("resourceVersion", ""))

    async def _run(self) -> None:
        revision = ""
        while True:
            try:
                if not revision:
                    revision = await self._relist()
                async for event in self.kube.watch(self.resource, revision):
                    kind, obj = event.get("type"), event.get("object", {})
                    if kind == "ERROR":
                        revision = ""  # 410 Gone or worse: start over from a list
                        break
                    revision = obj.get("metadata", {}).get("resourceVersion", revision)
                    if kind == "BOOKMARK":
                        continue
                    key = key_of(obj)
                    if kind == "DELETED":
                        self.objects.pop(key, None)
                    else:
                        self.objects[key] = obj
                    self._notify(str(kind), obj)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, KubeError, OSError, ValueError) as error:
                if isinstance(error, KubeError) and error.status == 404:
                    await asyncio.sleep(0.5)  # the CRD is not established yet
                else:
                    log.debug("Watch broke, listing again", resource=self.resource.plural,
                              error=str(error))
                    await asyncio.sleep(0.2)
                revision = ""


Reconcile = Callable[[Key], Awaitable[float | None]]  # returns seconds to requeue after


class WorkQueue:
    """Runs `reconcile(key)` for dirty keys with a few workers; one run per key at a time."""

    def __init__(self, name: str, reconcile: Reconcile, workers: int = 4) -> None:
        self.name = name
        self._reconcile = reconcile
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._dirty: set[Key] = set()
        self._running: set[Key] = set()
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}

    def add(self, key: Key) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._running:
            self._queue.put_nowait(key)

    def add_after(self, key: Key, seconds: float) -> None:
        timer = self._timers.get(key)
        loop = asyncio.get_running_loop()
        when = loop.time() + seconds
        if timer is not None and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._dirty.discard(key)
            self._running.add(key)
            try:
                requeue = await self._reconcile(key)
                self._failures.pop(key, None)
                if requeue is not None:
                    self.add_after(key, requeue)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(0.05 * 2 ** failures, 10.0)
                if not (isinstance(error, KubeError) and error.status == 409):
                    log.warning("Reconcile failed, retrying", queue=self.name, key=str(key),
                                error=str(error), delay=delay)
                self.add_after(key, delay)
            finally:
                self._running.discard(key)
                if key in self._dirty:
                    self._queue.put_nowait(key)
