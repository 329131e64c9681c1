"""A coalescing work queue of object keys, as client-go's workqueue does it (one for the
operator's controllers and the simulated components alike).

Watch events of several kinds (a VDC VM, its KubeVirt VM, its VMI) all ask for the same
reconcile. The queue keeps a key at most once, runs at most one reconcile per key at a time,
and runs a key again once more if it was asked for while it ran: so a burst of events costs
one reconcile, and the latest state is always looked at after the last event.
A delay lets bursts of status changes coalesce into one status write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Final, Generic, TypeVar

import structlog

KeyT = TypeVar("KeyT", bound=Hashable)

log = structlog.get_logger("vdcos.workqueue")

#: Retry delays after a failed reconcile (seconds), the last one repeated.
RETRY_DELAYS: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class RetryLater(Exception):
    """Raised by a reconcile that cannot finish yet; the key is retried after `delay`."""

    def __init__(self, message: str, delay: float = 2.0) -> None:
        super().__init__(message)
        self.delay = delay


class WorkQueue(Generic[KeyT]):
    """Keys waiting for `reconcile`, run by `workers` concurrent tasks."""

    def __init__(
        self,
        name: str,
        reconcile: Callable[[KeyT], Awaitable[float | None]],
        *,
        workers: int = 8,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self._retry_delays = tuple(retry_delays)
        self._ready: asyncio.Queue[KeyT] = asyncio.Queue()
        self._queued: set[KeyT] = set()  # in _ready, not yet taken
        self._timers: dict[KeyT, asyncio.TimerHandle] = {}
        self._running: set[KeyT] = set()
        self._again: dict[KeyT, float] = {}  # asked for while running: the shortest delay
        self._failures: dict[KeyT, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.reconciles = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"{self.name}-worker-{index}")
            for index in range(self._workers)
        ]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def enqueue(self, key: KeyT, delay: float = 0.0) -> None:
        """Asks for a reconcile of `key` within `delay` seconds (sooner if already asked)."""
        if key in self._running:
            self._again[key] = min(delay, self._again.get(key, delay))
            return
        if key in self._queued:
            return
        if delay <= 0:
            self._make_ready(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= deadline:
                return  # an earlier or equal deadline is already set: coalesce into it
            timer.cancel()  # a sooner deadline wins (a backoff must not delay a new event)
        self._timers[key] = loop.call_at(deadline, self._make_ready, key)

    def pending(self) -> int:
        """Keys waiting or running (benchmarks wait for zero)."""
        return len(self._queued) + len(self._timers) + len(self._running)

    def _make_ready(self, key: KeyT) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key in self._queued:
            return
        if key in self._running:
            self._again[key] = 0.0
            return
        self._queued.add(key)
        self._ready.put_nowait(key)

    async def _work(self) -> None:
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            self._running.add(key)
            retry_after: float | None = None
            try:
                self.reconciles += 1
                retry_after = await self._reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except RetryLater as wait:
                retry_after = wait.delay
                log.info("Postponed reconcile", queue=self.name, key=str(key), why=str(wait))
            except Exception as error:  # a failed reconcile is retried, never fatal
                failures = self._failures.get(key, 0)
                self._failures[key] = failures + 1
                retry_after = self._retry_delays[min(failures, len(self._retry_delays) - 1)]
                # A conflict is optimistic concurrency working: the next pass reads anew.
                report = log.debug if getattr(error, "status", None) == 409 else log.warning
                report(
                    "Failed reconcile",
                    queue=self.name,
                    key=str(key),
                    error=f"{type(error).__name__}: {error}",
                    retry_in=retry_after,
                )
            finally:
                self._running.discard(key)
            again = self._again.pop(key, None)
            if retry_after is not None:
                again = retry_after if again is None else min(again, retry_after)
            if again is not None:
                self.enqueue(key, again)
