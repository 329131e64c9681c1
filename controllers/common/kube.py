"""The operator's requests: the official client's asyncio ApiClient (`kubernetes.aio`).

kopf watches and reads; the reconcilers write through `KubeClient`, so every write carries
one field manager (`vdcos-operator`), is retried when the server asks for it, and is counted
(the benchmark reports writes per VM). The login (kubeconfig, exec plugins, a rotating
ServiceAccount token) is `controllers.common.login`'s, shared with kopf.

The client speaks in paths and plain dicts (`ResourceRef`), not in generated model classes:
the operator handles custom kinds (ours, KubeVirt's, CDI's) as often as built-in ones.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson
from kubernetes.aio.client import ApiClient
from kubernetes.aio.utils.retry import Backoff, on_retry_after_error

from controllers.common.login import AUTHORIZATION, Login
from kubekit.resources import ResourceRef

FIELD_MANAGER: Final = "vdcos-operator"
PROXY_VARIABLES: Final = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                          "no_proxy", "NETRC")

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"

#: Retries of a request the server could not serve (429, 5xx, a dropped connection):
#: 5 attempts, 0.2 s doubling to at most 5 s, or longer when the server says Retry-After.
RETRY_BACKOFF: Final = Backoff(steps=5, duration=0.2, factor=2.0, jitter=0.1, cap=5.0)


class KubeError(Exception):
    """An error answer of the API server (a metav1.Status), with its headers."""

    def __init__(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        self.status = status
        self.reason = str(body.get("reason", ""))
        self.message = str(body.get("message", ""))
        self.headers = dict(headers or {})
        super().__init__(f"{status} {self.reason}: {self.message}")


def retriable(method: str, error: Exception) -> bool:
    """What client-go retries, and a little more for idempotent verbs.

    Any verb when the server says Retry-After on a 429 or 5xx (it did not act on the request);
    other 5xx answers and dropped connections only for verbs that are safe to repeat: a POST
    that reached the server may have created its object.
    """
    if isinstance(error, KubeError):
        if error.status != 429 and error.status < 500:
            return False
        if "retry-after" in {key.lower() for key in error.headers}:
            return True
        return method != "POST" and error.status != 501
    return isinstance(error, aiohttp.ClientConnectionError | TimeoutError) and method != "POST"




@dataclass
class WriteCounter:
    """API writes by verb and resource, e.g. ("PATCH", "virtualmachines/status")."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record(self, method: str, path: str) -> None:
        self.counts[(method, resource_of(path))] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_resource(self) -> dict[str, int]:
        return {f"{verb} {resource}": count for (verb, resource), count in self.counts.items()}


def resource_of(path: str) -> str:
    """ "/apis/g/v/namespaces/ns/plural/name/status" -> "plural/status" (for counting)."""
    parts = [part for part in path.split("?")[0].split("/") if part]
    if parts and parts[0] == "api":
        parts = parts[2:]
    elif parts and parts[0] == "apis":
        parts = parts[3:]
    if len(parts) >= 2 and parts[0] == "namespaces":
        parts = parts[2:]
    if not parts:
        return "namespaces" if "namespaces" in path else "?"
    return "/".join([parts[0], *parts[2:3]])


#: Called once per write that reaches the server: (method, path).
WriteHook = Callable[[str, str], None]


class KubeClient:
    """One ApiClient (one connection pool) to one API server, for every controller."""

    def __init__(
        self,
        login: Login,
        *,
        user_agent: str = "vdcos-operator",
        connections: int = 32,
        field_manager: str = FIELD_MANAGER,
        backoff: Backoff = RETRY_BACKOFF,
    ) -> None:
        self.login = login
        self.field_manager = field_manager
        self.writes = WriteCounter()
        self.write_hooks: list[WriteHook] = [self.writes.record]
        self._backoff = backoff
        configuration = login.configuration
        configuration.connection_pool_maxsize = connections
        if not any(variable in os.environ for variable in PROXY_VARIABLES):
            # aiohttp's trust_env reads ~/.netrc on every request (in a thread): a twentieth
            # of the operator's CPU. It is only needed to follow $HTTPS_PROXY and the like.
            configuration.client_session_kwargs = {"trust_env": False}
        self._api = ApiClient(configuration)
        self._api.user_agent = user_agent

    @property
    def server(self) -> str:
        return self.login.server

    async def close(self) -> None:
        await self._api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Sends one request (retried as `retriable` says); raises KubeError on an error."""
        query = dict(params or {})
        if method in ("POST", "PUT", "PATCH"):
            query.setdefault("fieldManager", self.field_manager)

        async def attempt() -> dict[str, Any]:
            return await self._send(method, path, body, query, content_type)

        return await on_retry_after_error(
            self._backoff, lambda error: retriable(method, error), attempt
        )

    async def _send(
        self,
        method: str,
        path: str,
        body: Any,
        query: Mapping[str, str],
        content_type: str,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        _, url, headers, serialized, _ = await self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query.items()) or None,
            header_params=headers,
            body=body,
            auth_settings=[AUTHORIZATION],
        )
        response = await self._api.call_api(method, url, header_params=headers, body=serialized)
        payload = await response.read()
        if method != "GET":
            for hook in self.write_hooks:
                hook(method, path)
        try:
            decoded = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            decoded = {"message": payload.decode(errors="replace")}
        if response.status >= 400:
            error_body = decoded if isinstance(decoded, dict) else {}
            raise KubeError(response.status, error_body, dict(response.headers))
        return decoded if isinstance(decoded, dict) else {"items": decoded}

    async def get(
        self, resource: ResourceRef, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.request("GET", resource.path(namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, resource: ResourceRef, namespace: str | None = None, **params: str
    ) -> list[dict[str, Any]]:
        """Every object of the kind (all namespaces unless one is given)."""
        answer = await self.request("GET", resource.path(namespace), params=params)
        items: list[dict[str, Any]] = answer.get("items") or []
        return items

    async def create(
        self, resource: ResourceRef, obj: Mapping[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace")
        return await self.request("POST", resource.path(namespace, "", subresource), body=obj)

    async def apply(
        self, resource: ResourceRef, obj: Mapping[str, Any], *, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply: creates the object or updates the fields we manage."""
        metadata = obj["metadata"]
        return await self.request(
            "PATCH",
            resource.path(metadata.get("namespace"), metadata["name"]),
            body=obj,
            params={"force": "true" if force else "false"},
            content_type=APPLY_PATCH,
        )

    async def patch(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str = "",
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            body=patch,
            content_type=content_type,
        )

    async def put(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        return await self.request("PUT", resource.path(namespace, name, subresource), body=body)

    async def delete(self, resource: ResourceRef, namespace: str | None, name: str) -> bool:
        """Deletes in the background (children follow); False when already gone."""
        try:
            await self.request(
                "DELETE",
                resource.path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True
