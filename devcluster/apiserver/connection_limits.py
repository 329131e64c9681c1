"""Slow clients cannot hold the server: deadlines on reading a request, as kube's server has.

kube-apiserver's http.Server has ReadHeaderTimeout 32 s ("just shy of requestTimeoutUpperBound")
and IdleTimeout 90 s (secure_serving.go); its requests time out after 60 s
(--request-timeout). aiohttp has a keep-alive timeout but no deadline on headers or bodies,
so a connection that sends half its headers stays open for good. Here:

- request headers must be complete HEADER_SECONDS after the connection opened (first
  request) or after the first byte of the request arrived (later requests on it);
- a request body must be complete BODY_SECONDS after its headers;
- a connection idle between requests is closed after IDLE_SECONDS (aiohttp's keep-alive).

A connection over a deadline is closed without an answer, as Go's server does. Responses
are not limited: long watches and log streams run as long as the client reads them.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..options import BODY_SECONDS, HEADER_SECONDS, IDLE_SECONDS

log = structlog.get_logger("devcluster.apiserver.connections")


@dataclass(frozen=True)
class ConnectionLimits:
    header_seconds: float = HEADER_SECONDS
    body_seconds: float = BODY_SECONDS
    idle_seconds: float = IDLE_SECONDS


class LimitedRequestHandler(RequestHandler):
    """aiohttp's connection handler with deadlines on the headers and the body it reads.

    It watches what aiohttp's parser makes of each chunk: a new parsed message means the
    headers are complete; its payload reaching EOF means the body is."""

    __slots__ = ("_body", "_body_deadline", "_header_deadline", "_limits")

    def __init__(self, manager: web.Server, *, limits: ConnectionLimits, **options: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.idle_seconds, **options)
        self._limits = limits
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._body: Any = None  # the payload being received, if any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_header_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_deadlines()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        parsed_before = self._request_count
        super().data_received(data)
        if self._force_close or self._close or self._upgraded:
            self._cancel_deadlines()
            return
        if self._request_count != parsed_before:  # a request's headers are complete
            self._cancel(header=True)
            payload = self._messages[-1][1] if self._messages else None
            if payload is not None and not payload.is_eof():
                self._body = payload
                self._body_deadline = self._loop.call_later(
                    self._limits.body_seconds, self._expire, "body", self._limits.body_seconds)
        elif self._body is not None:
            if self._body.is_eof():
                self._cancel(body=True)
        elif data and self._header_deadline is None:
            self._start_header_deadline()  # the first bytes of the next request

    def _start_header_deadline(self) -> None:
        self._header_deadline = self._loop.call_later(
            self._limits.header_seconds, self._expire, "headers", self._limits.header_seconds)

    def _expire(self, what: str, seconds: float) -> None:
        self._header_deadline = self._body_deadline = None
        self._body = None
        log.info("Closed a connection that did not send its request in time", part=what,
                 seconds=seconds, peer=str(self.peername))
        self.force_close()

    def _cancel(self, *, header: bool = False, body: bool = False) -> None:
        if header and self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        if body:
            if self._body_deadline is not None:
                self._body_deadline.cancel()
            self._body_deadline = None
            self._body = None

    def _cancel_deadlines(self) -> None:
        self._cancel(header=True, body=True)


class LimitedTCPSite(web.BaseSite):
    """A TCP site whose connections are LimitedRequestHandlers."""

    __slots__ = ("_host", "_limits", "_options", "_port")

    def __init__(self, runner: web.AppRunner, host: str, port: int, *,
                 ssl_context: ssl.SSLContext | None, limits: ConnectionLimits,
                 **handler_options: Any) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port = host, port
        self._limits = limits
        self._options = handler_options

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        manager = self._runner.server
        assert manager is not None

        def connection() -> LimitedRequestHandler:
            return LimitedRequestHandler(manager, loop=loop, limits=self._limits,
                                         **self._options)

        self._server = await loop.create_server(connection, self._host, self._port,
                                                ssl=self._ssl_context, backlog=self._backlog)
