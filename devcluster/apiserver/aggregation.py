"""API aggregation: groups served by another process, found through APIService objects.

As kube-aggregator does for metrics-server: an `apiregistration.k8s.io/v1` APIService
`<version>.<group>` names a Service; requests under `/apis/<group>/<version>` (discovery
included) are proxied to that Service's endpoint, and `/apis` lists the group. We route to
the Endpoints object directly (kube-apiserver's `--enable-aggregator-routing=true`): there is
no cluster network here to carry a ClusterIP.

What kube-aggregator does and this does not: authenticate itself to the backend with the
front-proxy client certificate. The user is authenticated and authorized here, and passed on
in the X-Remote-User / X-Remote-Group headers; the backends we run listen on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from .authn import UserInfo
from .discovery import sorted_versions
from .errors import ApiError
from .store import Store

APISERVICES_KEY = ("apiregistration.k8s.io", "apiservices")
SERVICES_KEY = ("", "services")
ENDPOINTS_KEY = ("", "endpoints")
# Request headers not passed to a backend: hop-by-hop ones, and the user's credential
# (kube-aggregator never forwards it; the backend learns the user from X-Remote-*).
_DROPPED_REQUEST_HEADERS = frozenset({"authorization", "host", "connection", "keep-alive",
                                      "transfer-encoding", "te", "upgrade",
                                      "proxy-authorization", "content-length"})
_DROPPED_RESPONSE_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding",
                                       "content-length", "content-encoding"})


@dataclass(frozen=True)
class Backend:
    """Where an aggregated group/version is served, and how to trust it."""

    url: str
    ca_bundle: bytes | None
    insecure: bool


def apiservice_name(group: str, version: str) -> str:
    return f"{version}.{group}"


def remote_group_versions(apiservices: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(group, version) of every APIService served elsewhere (spec.service set)."""
    found = []
    for apiservice in apiservices:
        spec = apiservice.get("spec") or {}
        if spec.get("service") and spec.get("group") and spec.get("version"):
            found.append((str(spec["group"]), str(spec["version"])))
    return sorted(found)


def endpoint_url(endpoints: dict[str, Any] | None, port: int) -> str | None:
    """https://ip:port of the first ready address of an Endpoints object.

    `port` is the Service port the APIService names; the Endpoints port of the same
    position in the Service is meant, but with one port per Service (metrics-server's
    case) the first endpoint port is it.
    """
    for subset in (endpoints or {}).get("subsets") or []:
        addresses = subset.get("addresses") or []
        ports = subset.get("ports") or []
        if addresses and ports:
            target = next((p for p in ports if p.get("port") == port), ports[0])
            return f"https://{addresses[0]['ip']}:{target['port']}"
    return None


class Aggregator:
    """Finds the backend of a group/version in the store and proxies requests to it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[bytes | None, ssl.SSLContext | bool] = {}

    def remote_groups(self) -> list[tuple[str, str]]:
        return remote_group_versions(self.store.list(APISERVICES_KEY, None))

    def is_remote(self, group: str, version: str) -> bool:
        apiservice = self.store.get(APISERVICES_KEY, "", apiservice_name(group, version))
        return bool(apiservice and (apiservice.get("spec") or {}).get("service"))

    def backend(self, group: str, version: str) -> Backend:
        """The backend, or 503 as kube-aggregator answers when it has no endpoint."""
        name = apiservice_name(group, version)
        apiservice = self.store.get(APISERVICES_KEY, "", name) or {}
        spec = apiservice.get("spec") or {}
        service = spec.get("service") or {}
        namespace, service_name = service.get("namespace", ""), service.get("name", "")
        endpoints = self.store.get(ENDPOINTS_KEY, namespace, service_name)
        url = endpoint_url(endpoints, int(service.get("port") or 443))
        if url is None:
            raise ApiError(503, "ServiceUnavailable",
                           f'no endpoints available for service "{namespace}/{service_name}"')
        ca = spec.get("caBundle")
        return Backend(url, base64.b64decode(ca) if ca else None,
                       bool(spec.get("insecureSkipTLSVerify")))

    def group_list(self, local: dict[str, Any]) -> dict[str, Any]:
        """`/apis` with the aggregated groups added (kube-aggregator serves `/apis`)."""
        groups = {g["name"]: g for g in local["groups"]}
        for group, versions in _by_group(self.remote_groups()).items():
            entry = group_entry(group, [*_local_versions(groups.get(group)), *versions])
            groups[group] = entry
        return {**local, "groups": [groups[name] for name in sorted(groups)]}

    def group(self, group: str, local: dict[str, Any] | None) -> dict[str, Any] | None:
        """`/apis/<group>` when any version of it is aggregated, else None."""
        versions = _by_group(self.remote_groups()).get(group)
        if not versions:
            return None
        entry = group_entry(group, [*_local_versions(local), *versions])
        return {"kind": "APIGroup", "apiVersion": "v1", **entry}

    async def proxy(self, request: web.Request, group: str, version: str, user: UserInfo
                    ) -> web.StreamResponse:
        backend = self.backend(group, version)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in _DROPPED_REQUEST_HEADERS}
        headers["X-Remote-User"] = user.name
        groups = list(user.groups)
        body = await request.read() if request.can_read_body else None
        try:
            async with self._client().request(
                request.method, backend.url + request.rel_url.path_qs, data=body,
                headers=[*headers.items(), *(("X-Remote-Group", g) for g in groups)],
                ssl=self.ssl_for(backend),
            ) as answer:
                response = web.StreamResponse(status=answer.status)
                for key, value in answer.headers.items():
                    if key.lower() not in _DROPPED_RESPONSE_HEADERS:
                        response.headers.add(key, value)
                await response.prepare(request)
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientConnectionError, TimeoutError) as error:
            raise ApiError(503, "ServiceUnavailable",
                           f"error trying to reach service: {error}") from error

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
                auto_decompress=False)
        return self._session

    def ssl_for(self, backend: Backend) -> ssl.SSLContext | bool:
        if backend.insecure:
            return False
        context = self._contexts.get(backend.ca_bundle)
        if context is None:
            context = ssl.create_default_context()
            if backend.ca_bundle:
                with tempfile.NamedTemporaryFile(suffix=".crt") as ca_file:
                    ca_file.write(backend.ca_bundle)
                    ca_file.flush()
                    context.load_verify_locations(ca_file.name)
            self._contexts[backend.ca_bundle] = context
        return context

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()


def group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    ordered = sorted_versions(sorted(set(versions)))
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def _by_group(group_versions: list[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for group, version in group_versions:
        found.setdefault(group, []).append(version)
    return found


def _local_versions(entry: dict[str, Any] | None) -> list[str]:
    return [str(v["version"]) for v in (entry or {}).get("versions") or []]
