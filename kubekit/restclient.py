"""A thin asyncio Kubernetes client over aiohttp: the simulated hosts' and `vdcos up`'s.

The simulation talks to the API server the way KubeVirt's and the kubelet's components do:
list, watch, create, patch, delete, through the REST API only. It reads a kubeconfig with a
bearer token and a CA (what `python -m devcluster` writes, and what kind writes).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from kubekit.resources import ResourceRef


class KubeError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.reason = str(body.get("reason", ""))
        super().__init__(f"{status} {self.reason}: {body.get('message', '')}")


class Kube:
    """One HTTP session to one API server."""

    def __init__(self, server: str, token: str, ca_pem: bytes | None, user_agent: str,
                 connections: int = 32) -> None:
        self.server = server.rstrip("/")
        self._connections = connections
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": user_agent,
            "Accept": "application/json",
        }
        context: ssl.SSLContext | bool = False
        if ca_pem:
            context = ssl.create_default_context()
            with tempfile.NamedTemporaryFile(suffix=".crt") as ca_file:
                ca_file.write(ca_pem)
                ca_file.flush()
                context.load_verify_locations(ca_file.name)
        self._ssl = context
        self._session: aiohttp.ClientSession | None = None
        self.writes = 0  # API writes made by this client (benchmarks read it)

    @classmethod
    def from_kubeconfig(cls, path: Path, user_agent: str, connections: int = 32) -> Kube:
        config = yaml.safe_load(path.read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        ca = cluster.get("certificate-authority-data")
        ca_pem = base64.b64decode(ca) if ca else None
        if ca_pem is None and cluster.get("certificate-authority"):
            ca_pem = Path(cluster["certificate-authority"]).read_bytes()
        return cls(cluster["server"], user.get("token", ""), ca_pem, user_agent, connections)

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        if method != "GET":
            self.writes += 1
        async with self._client().request(
            method, self.server + path, data=data, params=params, headers=headers
        ) as response:
            payload = await response.read()
            try:
                decoded = orjson.loads(payload) if payload else {}
            except ValueError:
                decoded = {"message": payload.decode(errors="replace")}
            if response.status >= 400:
                raise KubeError(response.status, decoded)
            return decoded if isinstance(decoded, dict) else {"items": decoded}

    async def get(
        self, resource: ResourceRef, namespace: str | None, name: str, subresource: str = ""
    ) -> dict[str, Any] | None:
        try:
            return await self.request("GET", resource.path(namespace, name, subresource))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, resource: ResourceRef, namespace: str | None = None, **params: str
    ) -> dict[str, Any]:
        return await self.request("GET", resource.path(namespace), params=params or None)

    async def create(
        self,
        resource: ResourceRef,
        obj: dict[str, Any],
        namespace: str | None = None,
        subresource: str = "",
        name: str = "",
    ) -> dict[str, Any]:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return await self.request("POST", resource.path(ns, name, subresource), body=obj)

    async def patch(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str = "",
        kind: str = "merge",
    ) -> dict[str, Any]:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[kind]
        return await self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            body=patch,
            content_type=content_type,
        )

    async def apply(
        self,
        resource: ResourceRef,
        obj: dict[str, Any],
        manager: str,
        *,
        subresource: str = "",
        force: bool = True,
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        return await self.request(
            "PATCH",
            resource.path(meta.get("namespace"), meta["name"], subresource),
            body=obj,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": manager, "force": "true" if force else "false"},
        )

    async def delete(
        self,
        resource: ResourceRef,
        namespace: str | None,
        name: str,
        *,
        grace_seconds: int | None = None,
        uid: str = "",
        propagation: str = "Background",
    ) -> bool:
        body: dict[str, Any] = {"propagationPolicy": propagation}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", resource.path(namespace, name), body=body)
            return True
        except KubeError as error:
            if error.status in (404, 409):
                return False
            raise

    async def watch(
        self,
        resource: ResourceRef,
        resource_version: str,
        namespace: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """Events from `resource_version` until the server ends the stream."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        async with self._client().get(
            self.server + resource.path(namespace), params=params
        ) as response:
            if response.status >= 400:
                raise KubeError(response.status, await response.json())
            while True:
                line = await response.content.readline()
                if not line:
                    return
                if line.strip():
                    yield orjson.loads(line)


async def wait_for_resource(kube: Kube, resource: ResourceRef, attempts: int = 600) -> None:
    """Wait until the API serves `resource` (its CRD established), reading discovery."""
    for _ in range(attempts):
        try:
            await kube.request("GET", resource.path())
            return
        except KubeError as error:
            if error.status != 404:
                raise
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{resource.plural}.{resource.group} is not served")
