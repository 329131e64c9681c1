"""Serving an aggregated API from the simulation's process, as an extension API server
does: HTTPS on 127.0.0.1, the Endpoints of a Service pointing here, and an APIService the
API server proxies the group/version (discovery included) to."""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from devcluster.apiserver.certs import create_serving_certificate
from devcluster.apiserver.errors import ApiError
from kubekit.resources import ResourceRef

from .runtime import SimRuntime

SERVICES = ResourceRef("", "v1", "services")
ENDPOINTS = ResourceRef("", "v1", "endpoints")
APISERVICES = ResourceRef("apiregistration.k8s.io", "v1", "apiservices", namespaced=False)


def apiservice_registration(group: str, version: str, namespace: str, service: str,
                            port: int, ca_pem: bytes, labels: dict[str, str],
                            ) -> list[tuple[ResourceRef, dict[str, Any]]]:
    """The Service, its Endpoints (this process, on `port`) and the APIService."""
    service_obj = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": service, "namespace": namespace, "labels": labels},
                   "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                       "targetPort": port}],
                            "selector": labels}}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": service, "namespace": namespace, "labels": labels},
                 "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                              "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    apiservice = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                  "metadata": {"name": f"{version}.{group}", "labels": labels},
                  "spec": {"group": group, "version": version,
                           "service": {"namespace": namespace, "name": service, "port": 443},
                           "caBundle": base64.b64encode(ca_pem).decode(),
                           "groupPriorityMinimum": 100, "versionPriority": 100}}
    return [(SERVICES, service_obj), (ENDPOINTS, endpoints), (APISERVICES, apiservice)]


async def serve_https(app: web.Application) -> tuple[web.AppRunner, int, bytes]:
    """Serve `app` with a fresh serving certificate on 127.0.0.1: (runner, port, CA)."""
    certificate = create_serving_certificate()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with tempfile.TemporaryDirectory(prefix="aggregated-api-") as directory:
        context = certificate.ssl_context(Path(directory))  # loaded: files not needed after
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    return runner, port, certificate.ca_pem


async def register(runtime: SimRuntime, field_manager: str,
                   objects: list[tuple[ResourceRef, dict[str, Any]]]) -> None:
    for resource, obj in objects:
        await runtime.kube.apply(resource, obj, field_manager)


@web.middleware
async def status_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """An ApiError raised by a handler answers as the API server would: a Status body."""
    try:
        return await handler(request)
    except ApiError as error:
        return web.Response(text=json.dumps(error.status()), status=error.code,
                            content_type="application/json")
