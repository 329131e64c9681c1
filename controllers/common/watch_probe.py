"""A second look at kopf's watches, for the failures kopf does not report at all.

When a watch stream breaks after its headers (the server failed mid-replay, a proxy cut it),
kopf (kopf/_cogs/clients/watching.py `watch_objs`) swallows aiohttp's error without a log
line at any level and watches again at once from the same resourceVersion: a replay that
always breaks leaves the operator blind (and spinning) for as long as it lasts. kopf has no
hook there, so every `period` seconds the probe watches each resource the operator watches,
from the last resourceVersion the operator saw of it, for a second, and tells WatchHealth
what the stream did: a failure (HTTP error, ERROR event other than 410 Gone, a stream cut
short), or a clean end (the watch works).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import orjson
from kubernetes.aio.client import ApiClient

from controllers.common.login import AUTHORIZATION, Login
from controllers.common.watch_health import WatchFailure, WatchHealth
from kubekit.resources import ResourceRef

PROBE_SECONDS: Final = 30.0
#: The server ends each probe's watch after this long (it only replays and listens briefly).
PROBE_WATCH_SECONDS: Final = 1
USER_AGENT: Final = "vdcos-operator-watch-probe"


class WatchProbe:
    """Probes the watches of `resources` (by WatchHealth label) every `period` seconds."""

    def __init__(self, login: Login, health: WatchHealth,
                 resources: Mapping[str, ResourceRef], period: float = PROBE_SECONDS) -> None:
        self.login = login
        self.health = health
        self.resources = dict(resources)
        self.period = period
        #: the newest resourceVersion the operator saw of each resource (from kopf's events)
        self.seen: dict[str, str] = {}
        self._api: ApiClient | None = None
        self._task: asyncio.Task[None] | None = None

    def saw(self, label: str, body: Mapping[str, Any]) -> None:
        version = (body.get("metadata") or {}).get("resourceVersion")
        if version:
            self.seen[label] = str(version)

    def start(self) -> None:
        self._api = ApiClient(self.login.configuration)
        self._api.user_agent = USER_AGENT
        self._task = asyncio.get_running_loop().create_task(self._run(), name="watch probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._api is not None:
            await self._api.close()  # type: ignore[no-untyped-call]
            self._api = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            for label, resource in self.resources.items():
                version = self.seen.get(label)
                if version is None:
                    continue  # nothing seen yet: kopf is listing it (and logs its failures)
                failure = await self.probe(label, resource, version)
                if failure is None:
                    self.health.record_success(label, source="probe")
                else:
                    self.health.record_failure(failure)

    async def probe(self, label: str, resource: ResourceRef,
                    version: str) -> WatchFailure | None:
        """What one watch from `version` did; None: it worked."""
        assert self._api is not None
        params = [("watch", "true"), ("resourceVersion", version),
                  ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(PROBE_WATCH_SECONDS))]
        _, url, headers, _, _ = await self._api.param_serialize(
            method="GET", resource_path=resource.path(), query_params=params,
            header_params={"Accept": "application/json"}, auth_settings=[AUTHORIZATION])
        try:
            response = await self._api.call_api("GET", url, header_params=headers,
                                                _request_timeout=PROBE_WATCH_SECONDS + 30)
            async with response.response as stream:
                if stream.status >= 400:
                    status = _decoded(await stream.read())
                    return _failure(label, str(status.get("message") or stream.reason),
                                    stream.status)
                async for line in stream.content:
                    event = _decoded(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        if status.get("code") == 410:
                            return None  # too old: kopf lists again, as it should
                        return _failure(label, str(status.get("message", "")),
                                        status.get("code"))
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError,
                TimeoutError) as error:
            return _failure(label, f"the watch stream broke before its end: {error}", None)
        return None


def _failure(label: str, message: str, code: int | None) -> WatchFailure:
    return WatchFailure(label, message, code, final=False, source="probe")


def _decoded(raw: bytes) -> dict[str, Any]:
    try:
        decoded = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return {"message": raw.decode(errors="replace")[:500]}
    return decoded if isinstance(decoded, dict) else {}
