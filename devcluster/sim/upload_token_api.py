"""`upload.cdi.kubevirt.io/v1beta1`: CDI's UploadTokenRequest, served as cdi-apiserver
serves it, an aggregated API (APIService v1beta1.upload.cdi.kubevirt.io, Service
cdi/cdi-api). POST namespaces/NS/uploadtokenrequests {spec: {pvcName}} answers the same
object with status.token, which the upload proxy (`uploadproxy.py`) accepts for that PVC.
The API server has authorized the caller before proxying (RBAC: create
uploadtokenrequests.upload.cdi.kubevirt.io)."""

from __future__ import annotations

import json
import re

from aiohttp import web

from devcluster.apiserver.discovery import api_resource_list
from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.resources import Registry, ResourceType

from .aggregated_api import apiservice_registration, register, serve_https, status_middleware
from .cdi_rbac import cdi_cluster_roles
from .cdi_upload import CDI_NAMESPACE, ensure_cdi_namespace
from .runtime import SimRuntime
from .upload_tokens import UploadTokens

GROUP, VERSION = "upload.cdi.kubevirt.io", "v1beta1"
SERVICE_NAME = "cdi-api"
FIELD_MANAGER = "cdi-apiserver"
UPLOAD_TOKEN_REQUESTS = ResourceType(GROUP, VERSION, "UploadTokenRequest", "uploadtokenrequests",
                                     "uploadtokenrequest", True, list_kind="UploadTokenRequestList",
                                     verbs=("create",), builtin=False)
_PATH = re.compile(r"^namespaces/([a-z0-9][a-z0-9-]*)/uploadtokenrequests/?$")


class UploadTokenApi:
    name = "cdi-apiserver"

    def __init__(self, runtime: SimRuntime, tokens: UploadTokens) -> None:
        self.runtime = runtime
        self.tokens = tokens
        self._runner: web.AppRunner | None = None
        registry = Registry()
        registry.add(UPLOAD_TOKEN_REQUESTS)
        self._discovery = api_resource_list(registry, GROUP, VERSION)

    async def start(self) -> None:
        app = web.Application(middlewares=[status_middleware])
        app.router.add_get(f"/apis/{GROUP}/{VERSION}", self._serve_discovery)
        app.router.add_route("*", f"/apis/{GROUP}/{VERSION}/{{tail:.+}}", self._serve)
        self._runner, port, ca_pem = await serve_https(app)
        await ensure_cdi_namespace(self.runtime.kube)
        await register(self.runtime, FIELD_MANAGER, cdi_cluster_roles())
        await register(self.runtime, FIELD_MANAGER, apiservice_registration(
            GROUP, VERSION, CDI_NAMESPACE, SERVICE_NAME, port, ca_pem,
            {"cdi.kubevirt.io": "cdi-apiserver"}))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve_discovery(self, _: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self._discovery), content_type="application/json")

    async def _serve(self, request: web.Request) -> web.Response:
        found = _PATH.match(request.match_info["tail"])
        if found is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        try:
            body = json.loads(await request.read())
        except ValueError as error:
            raise ApiError(400, "BadRequest", f"invalid UploadTokenRequest: {error}") from None
        pvc_name = ((body.get("spec") or {}) if isinstance(body, dict) else {}).get("pvcName")
        if not isinstance(pvc_name, str) or not pvc_name:
            raise ApiError(400, "BadRequest", "spec.pvcName: Required value")
        body["status"] = {"token": self.tokens.issue(found[1], pvc_name)}
        body.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        body.setdefault("kind", "UploadTokenRequest")
        return web.Response(text=json.dumps(body), content_type="application/json")
