"""API aggregation: an APIService sends a group's requests to the Service's endpoint, as
kube-aggregator does for metrics-server. Driven with kubectl against a backend of the test's
own (metrics.k8s.io through the simulation is in tests/integration/sim/test_metrics.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from devcluster.apiserver.certs import create_serving_certificate
from tests.harness import DevCluster

pytestmark = pytest.mark.kubectl

GROUP, VERSION = "widgets.example.test", "v1"


class Backend:
    """An HTTPS server on 127.0.0.1 serving one aggregated group, in its own thread."""

    def __init__(self) -> None:
        self.certificate = create_serving_certificate()
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._started.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        with tempfile.TemporaryDirectory() as directory:
            context = self.certificate.ssl_context(Path(directory))
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append({"method": request.method, "path": request.path_qs,
                              "headers": dict(request.headers)})
        if request.path == f"/apis/{GROUP}/{VERSION}":
            return web.json_response({
                "kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{GROUP}/{VERSION}",
                "resources": [{"name": "widgets", "singularName": "widget", "namespaced": False,
                               "kind": "Widget", "verbs": ["get", "list"]}]})
        if request.path == f"/apis/{GROUP}/{VERSION}/widgets":
            return web.json_response({
                "kind": "WidgetList", "apiVersion": f"{GROUP}/{VERSION}", "metadata": {},
                "items": [{"kind": "Widget", "apiVersion": f"{GROUP}/{VERSION}",
                           "metadata": {"name": "sprocket"}}]})
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404}, status=404)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(30)

    def stop(self) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def registration(port: int, ca_pem: bytes) -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: widgets, namespace: kube-system}}
spec:
  ports: [{{name: https, port: 443, targetPort: {port}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: widgets, namespace: kube-system}}
subsets:
- addresses: [{{ip: 127.0.0.1}}]
  ports: [{{name: https, port: {port}}}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: {VERSION}.{GROUP}}}
spec:
  group: {GROUP}
  version: {VERSION}
  service: {{namespace: kube-system, name: widgets, port: 443}}
  caBundle: {base64.b64encode(ca_pem).decode()}
  groupPriorityMinimum: 100
  versionPriority: 100
"""


@pytest.fixture(scope="module")
def backend(apiserver: DevCluster) -> Iterator[Backend]:
    served = Backend()
    served.start()
    apiserver.kubectl("apply", "-f", "-", stdin=registration(served.port,
                                                             served.certificate.ca_pem))
    yield served


def test_discovery_lists_the_aggregated_group(apiserver: DevCluster, backend: Backend) -> None:
    assert f"{GROUP}/{VERSION}" in apiserver.kubectl("api-versions").stdout.split()
    resources = apiserver.kubectl("api-resources", f"--api-group={GROUP}", "--no-headers")
    assert resources.stdout.split()[0] == "widgets"
    group = json.loads(apiserver.kubectl("get", "--raw", f"/apis/{GROUP}").stdout)
    assert group["preferredVersion"]["groupVersion"] == f"{GROUP}/{VERSION}"


def test_requests_are_proxied_with_the_user_not_the_token(apiserver: DevCluster,
                                                          backend: Backend) -> None:
    listed = json.loads(apiserver.kubectl("get", "--raw",
                                          f"/apis/{GROUP}/{VERSION}/widgets").stdout)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["sprocket"]
    seen = next(r for r in reversed(backend.requests)
                if r["path"] == f"/apis/{GROUP}/{VERSION}/widgets")
    assert seen["headers"].get("X-Remote-User")
    assert "Authorization" not in seen["headers"]




def test_the_apiservice_says_it_is_available(apiserver: DevCluster, backend: Backend) -> None:
    apiserver.kubectl("wait", "--for=condition=Available", f"apiservice/{VERSION}.{GROUP}",
                      "--timeout=30s", timeout=40)
    row = apiserver.kubectl("get", "apiservice", f"{VERSION}.{GROUP}", "--no-headers").stdout
    assert row.split()[:3] == [f"{VERSION}.{GROUP}", "kube-system/widgets", "True"]


def test_a_stopped_backend_answers_503_and_is_not_available(apiserver: DevCluster,
                                                            backend: Backend) -> None:
    backend.stop()
    answer = apiserver.kubectl("get", "--raw", f"/apis/{GROUP}/{VERSION}/widgets", check=False)
    assert answer.returncode != 0
    assert "ServiceUnavailable" in answer.stderr or "503" in answer.stderr, answer.stderr
    apiserver.kubectl("wait", "--for=condition=Available=False",
                      f"apiservice/{VERSION}.{GROUP}", "--timeout=30s", timeout=40)
    reason = apiserver.kubectl("get", "apiservice", f"{VERSION}.{GROUP}", "-o",
                               "jsonpath={.status.conditions[0].reason}").stdout
    assert reason == "FailedDiscoveryCheck"
