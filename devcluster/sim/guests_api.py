"""`sim.vdcos.io/v1` guests: the ground truth of which guests the simulated hosts run.

`kubectl get --raw /apis/sim.vdcos.io/v1/guests` returns a GuestList whose items are
{host, namespace, name, vmiUID, since}, read from each host's own guest table
(`guest_table.py`), not from the API: a powered-off host runs none, an isolated one still
runs its own even when their pods and VMIs are gone from the API. Served as an aggregated
API (`aggregated_api.py`), as metrics-server serves metrics.k8s.io. `?host=` narrows the
list to one host.
"""

from __future__ import annotations

import json

from aiohttp import web

from devcluster.apiserver.discovery import api_resource_list
from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.resources import Registry, ResourceType
from kubekit.resources import NODES

from .aggregated_api import apiservice_registration, register, serve_https, status_middleware
from .guest_table import Guest, GuestTable
from .hosts import is_powered_on
from .runtime import SimRuntime

GROUP, VERSION = "sim.vdcos.io", "v1"
SERVICE_NAMESPACE, SERVICE_NAME = "kube-system", "sim-guests"
FIELD_MANAGER = "sim-guests"
GUESTS = ResourceType(GROUP, VERSION, "Guest", "guests", "guest", False,
                      list_kind="GuestList", verbs=("get", "list"), builtin=False)


def guest_list(guests: list[Guest], host: str | None = None) -> dict[str, object]:
    return {"kind": "GuestList", "apiVersion": f"{GROUP}/{VERSION}", "metadata": {},
            "items": [g.as_item() for g in guests if host is None or g.host == host]}


class GuestsApi:
    """The HTTPS server behind the APIService `v1.sim.vdcos.io`."""

    name = "guests-api"

    def __init__(self, runtime: SimRuntime, table: GuestTable) -> None:
        self.runtime = runtime
        self.table = table
        self._runner: web.AppRunner | None = None
        registry = Registry()
        registry.add(GUESTS)
        self._discovery = api_resource_list(registry, GROUP, VERSION)

    async def start(self) -> None:
        self.runtime.informer(NODES)
        await self.runtime.wait_synced(NODES)
        app = web.Application(middlewares=[status_middleware])
        app.router.add_get(f"/apis/{GROUP}/{VERSION}", self._serve_discovery)
        app.router.add_route("*", f"/apis/{GROUP}/{VERSION}/{{tail:.+}}", self._serve)
        self._runner, port, ca_pem = await serve_https(app)
        await register(self.runtime, FIELD_MANAGER, apiservice_registration(
            GROUP, VERSION, SERVICE_NAMESPACE, SERVICE_NAME, port, ca_pem,
            {"app.kubernetes.io/name": "sim-guests"}))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve_discovery(self, _: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self._discovery), content_type="application/json")

    async def _serve(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        if request.match_info["tail"].strip("/") != "guests":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        nodes = self.runtime.informer(NODES)
        # The power cut wins at once, before the host's own bookkeeping has caught up.
        running = [g for g in self.table.running()
                   if is_powered_on(nodes.get("", g.host) or {})]
        body = guest_list(running, request.query.get("host") or None)
        return web.Response(text=json.dumps(body), content_type="application/json")
