"""The slot every controller fits: the caches it reads, what it watches, how it starts.

A controller is a class that declares, as data:
- `caches`: the kopf indexes it reads (`CacheSpec`: one resource, each object reduced to what
  is read). Two controllers that declare the same CacheSpec share one index; a controller gets
  its caches as `Cache` objects from the `OperatorContext`, never by an index's name;
- `watches()`: which watch events ask it for work (`Watch`: a resource and a function of the
  controller and the event, usually "put these keys on the queue");
- `kind`: the custom resource kind it serves (its CRD is generated from it), if any;
and, built at start-up with the context: a work queue and a reconcile of one key.

`controllers/operator.py` lists the controllers and registers their caches and watches with
kopf; the instances live in kopf's memo, not in module globals. docs/operator.md says why
the controllers keep their own work queues beside kopf.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from controllers.common.crd_generator import CustomResourceKind
from controllers.common.kube import KubeClient
from controllers.common.settings import OperatorConfig
from kubekit.resources import ResourceRef
from kubekit.workqueue import WorkQueue

ValueT = TypeVar("ValueT")
KeyT = TypeVar("KeyT", bound=Hashable)


@dataclass(frozen=True)
class CacheSpec(Generic[ValueT]):
    """A kopf index of one resource: every object reduced to `entries(body)`.

    `entries` returns {key: value} (empty: the object is not indexed); several objects may
    share a key (pods by node). Keep values small: the operator holds one per object.
    """

    id: str  # the kopf handler id; a Python identifier, unique in the operator
    resource: ResourceRef
    entries: Callable[[Mapping[str, Any]], Mapping[Hashable, ValueT]]
    labels: Mapping[str, Any] | None = None


class Cache(Generic[ValueT]):
    """What controllers read of a CacheSpec's index (kopf's `Index`: key -> values)."""

    def __init__(self, spec: CacheSpec[ValueT], index: Mapping[Hashable, Any]) -> None:
        self.spec = spec
        self._index = index

    def get(self, key: Hashable) -> ValueT | None:
        """The value of the one object under `key`, or None."""
        values = self._index.get(key)
        if not values:
            return None
        return next(iter(values), None)

    def values_of(self, key: Hashable) -> list[ValueT]:
        """Every value under `key` (several objects may share one)."""
        return list(self._index.get(key) or ())

    def items(self) -> list[tuple[Hashable, ValueT]]:
        """(key, value) with one value per key."""
        return [(key, next(iter(values))) for key, values in self._index.items() if values]

    def values(self) -> list[ValueT]:
        """One value per key."""
        return [next(iter(values)) for values in self._index.values() if values]

    def keys(self) -> list[Hashable]:
        return [key for key, values in self._index.items() if values]

    def __contains__(self, key: object) -> bool:
        return bool(self._index.get(key))

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())


@dataclass(frozen=True)
class WatchEvent:
    """One watch event as a controller sees it (type None: the initial listing)."""

    type: str | None
    namespace: str
    name: str
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Watch:
    """Events of `resource` (optionally only objects with `labels`) go to `on_event`."""

    resource: ResourceRef
    on_event: Callable[[Any, WatchEvent], None]  # (the controller, the event)
    labels: Mapping[str, Any] | None = None


@dataclass
class OperatorContext:
    """What the start-up handler builds once and every controller receives."""

    kube: KubeClient
    config: OperatorConfig
    caches: Mapping[str, Cache[Any]] = field(default_factory=dict)

    def cache(self, spec: CacheSpec[ValueT]) -> Cache[ValueT]:
        """The live cache of `spec` (declared by the asking controller's `caches`)."""
        cache: Cache[ValueT] = self.caches[spec.id]
        return cache


class Controller(ABC, Generic[KeyT]):
    """One kind's controller: declared caches and watches, a work queue, a reconcile per key."""

    #: Unique: the queue's name in log lines, part of kopf handler ids.
    name: ClassVar[str]
    #: The custom resource kind it serves (its CRD is generated from it), if any.
    kind: ClassVar[CustomResourceKind | None] = None
    #: The caches it reads; the context holds them when the controller is built.
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = ()
    #: Concurrent reconciles (of different keys; one key never runs twice at once).
    workers: ClassVar[int] = 2

    def __init__(self, context: OperatorContext) -> None:
        self.context = context
        self.kube = context.kube
        self.config = context.config
        self.queue: WorkQueue[KeyT] = WorkQueue(
            self.name, self.reconcile, workers=self.worker_count()
        )

    @classmethod
    @abstractmethod
    def watches(cls) -> Sequence[Watch]:
        """The watch events that ask this controller for work."""

    @abstractmethod
    async def reconcile(self, key: KeyT) -> None:
        """One level-triggered pass over one object: observe, decide, write the difference."""

    def worker_count(self) -> int:
        return self.workers

    def enqueue_all(self, keys: Iterable[Any], delay: float = 0.0) -> None:
        """Asks for a pass over each key (within `delay` seconds, bursts gathered)."""
        for key in keys:
            self.queue.enqueue(key, delay)

    def start(self) -> None:
        """Starts the work queue (kopf calls start-up handlers once every cache is listed)."""
        self.queue.start()

    async def stop(self) -> None:
        """Stops the work queue; a reconcile in flight is cancelled and runs again next time."""
        await self.queue.stop()

    def pending(self) -> int:
        """Keys waiting or being reconciled (benchmarks wait for zero)."""
        return self.queue.pending()
