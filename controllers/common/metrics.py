"""The operator's Prometheus metrics: text exposition (format 0.0.4) on a small HTTP server.

Served apart from kopf's health endpoint because kopf's serves one path only. Few enough
metrics that a library would be more than the format: counters and gauges by resource.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable
from typing import Final

from aiohttp import web

from controllers.common.watch_health import WatchHealth

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, help_text: str,
            samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f'{name}{{resource="{_label(resource)}"}} {value:g}' for resource, value in samples]
    return lines


def exposition(health: WatchHealth) -> str:
    """The metrics as Prometheus scrapes them."""
    ever_failed = sorted(health.failures_total)
    lines = [
        *_family("vdcos_watch_failures_total", "counter",
                 "List and watch requests of the operator that failed, by resource.",
                 [(resource, health.failures_total[resource]) for resource in ever_failed]),
        *_family("vdcos_watch_failing", "gauge",
                 "1 while the operator's list or watch of a resource keeps failing.",
                 [(resource, 1 if resource in health.failing else 0)
                  for resource in ever_failed]),
    ]
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves `render()` at the path of `endpoint` (http://HOST:PORT/PATH)."""

    def __init__(self, endpoint: str, render: Callable[[], str]) -> None:
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme != "http" or parts.port is None:
            raise ValueError(f"--metrics: expected http://HOST:PORT/PATH, not {endpoint!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port
        self.path = parts.path or "/metrics"
        self._render = render
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(self.path, self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, _: web.Request) -> web.Response:
        response = web.Response(text=self._render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response
