"""Informers: how the simulated components observe the cluster.

An Informer keeps a local copy of one collection (list, then watch; a 410 or a broken stream
means list again) and tells its listeners the keys that changed. The keys then go on a
`kubekit.workqueue.WorkQueue`, as client-go's controllers do it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from kubekit.resources import ResourceRef
from kubekit.restclient import Kube, KubeError
from kubekit.tasks import cancel_and_wait

log = structlog.get_logger("devcluster.sim")

Key = tuple[str, str]  # (namespace, name)
Listener = Callable[[str, dict[str, Any]], None]  # (event type, object)


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


class Informer:
    def __init__(self, kube: Kube, resource: ResourceRef) -> None:
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
        await cancel_and_wait(self._task)

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
