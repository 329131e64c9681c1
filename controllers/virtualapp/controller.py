"""The VirtualApp controller (being built)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from controllers.common.controller import CacheSpec, Controller, OperatorContext, Watch, WatchEvent
from controllers.virtualapp.kind import VIRTUAL_APP, VIRTUAL_APP_CACHE
from controllers.virtualmachine.observed import Key


class VirtualAppController(Controller[Key]):
    name = "virtualapps"
    kind = VIRTUAL_APP
    caches: ClassVar[tuple[CacheSpec[Any], ...]] = (VIRTUAL_APP_CACHE,)

    def __init__(self, context: OperatorContext) -> None:
        self.apps = context.cache(VIRTUAL_APP_CACHE)
        super().__init__(context)

    async def reconcile(self, key: Key) -> None:
        return None

    def app_changed(self, event: WatchEvent) -> None:
        self.queue.enqueue((event.namespace, event.name))

    @classmethod
    def watches(cls) -> Sequence[Watch]:
        return (Watch(VIRTUAL_APP.resource, cls.app_changed),)
