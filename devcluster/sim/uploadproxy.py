"""CDI's upload proxy (cdi-uploadproxy, `pkg/uploadproxy`) and the upload server behind it.

Served over HTTPS from the simulation's process on 127.0.0.1 (Service cdi/cdi-uploadproxy
names it); its URL and CA are published where clients look for them, the CDIConfig
`config`'s status.uploadProxyURL and status.uploadProxyCA (virtctl image-upload and
`vdcos import ovf` read them; both also take `--uploadproxy-url`).

POST /v1beta1/upload (or upload-async, or the v1alpha1 paths) with `Authorization: Bearer
<token>` from an UploadTokenRequest, as upstream answers:
- no or malformed Authorization: 400; a token that does not verify: 401;
- the PVC missing, not an upload target, already uploaded, or its upload server not ready
  within 10 s: 503 with upstream's message;
- an image whose virtual size (read from its VMDK/qcow2 header, else its length: qemu-img
  info's answer) exceeds the volume's usable space: 400 "Saving stream failed: effective
  image size is larger than the reported available storage: ...";
- else 200; the bytes are counted, not kept, and the PVC is marked as CDI's upload server
  leaves it (pod phase Succeeded), so the DataVolume turns Succeeded ("UploadSucceeded").
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from kubekit.quantity import to_bytes
from kubekit.resources import PVCS, ResourceRef
from kubekit.restclient import KubeError, wait_for_resource

from .aggregated_api import apiservice_registration, register, serve_https
from .cdi_upload import CDI_NAMESPACE, ensure_cdi_namespace
from .datavolume import ALIGN_BLOCK_SIZE, ANN_POD_PHASE, DEFAULT_FILESYSTEM_OVERHEAD
from .disk_images import HEADER_BYTES, virtual_size
from .runtime import SimRuntime
from .upload_datavolume import ANN_POD_READY, ANN_UPLOAD_TARGET, upload_finished
from .upload_tokens import InvalidToken, UploadTokens

log = structlog.get_logger("devcluster.sim.uploadproxy")

Obj = Mapping[str, Any]

CRDS = ResourceRef("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
CDI_CONFIGS = ResourceRef("cdi.kubevirt.io", "v1beta1", "cdiconfigs", namespaced=False)
CDI_CONFIG_NAME = "config"
SERVICE_NAME = "cdi-uploadproxy"
FIELD_MANAGER = "cdi-uploadproxy"
#: common.ProxyPaths: what the proxy forwards to the PVC's upload server.
UPLOAD_PATHS = ("/v1beta1/upload", "/v1beta1/upload-async", "/v1alpha1/upload",
                "/v1alpha1/upload-async")
WAIT_READY_SECONDS = 10.0
_BEARER = re.compile(r"(?i)^Bearer\s+([A-Za-z0-9\-\._~\+\/]+)$")


def cdi_config_crd() -> dict[str, Any]:
    """CDIConfig (cluster-scoped, CDI 1.66), its status as the swagger declares it."""
    status = {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {
        "uploadProxyURL": {"type": "string"}, "uploadProxyCA": {"type": "string"},
        "scratchSpaceStorageClass": {"type": "string"},
        "filesystemOverhead": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    schema = {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": status}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "cdiconfigs.cdi.kubevirt.io",
                         "labels": {"operator.cdi.kubevirt.io": ""}},
            "spec": {"group": "cdi.kubevirt.io", "scope": "Cluster",
                     "names": {"kind": "CDIConfig", "listKind": "CDIConfigList",
                               "plural": "cdiconfigs", "singular": "cdiconfig"},
                     "versions": [{"name": "v1beta1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema},
                                   "subresources": {"status": {}}}]}}


def usable_bytes(pvc: Obj) -> int:
    """The space an image may fill: the claim less CDI's filesystem overhead (Filesystem
    volumes), down to whole MiB."""
    spec = pvc.get("spec") or {}
    requested = to_bytes(str(((spec.get("resources") or {}).get("requests") or {})
                             .get("storage", "0")))
    if (spec.get("volumeMode") or "Filesystem") == "Filesystem":
        requested = math.floor(requested * (1 - DEFAULT_FILESYSTEM_OVERHEAD))
    return requested // ALIGN_BLOCK_SIZE * ALIGN_BLOCK_SIZE


class _Unavailable(Exception):
    pass


class UploadProxy:
    name = "cdi-uploadproxy"

    def __init__(self, runtime: SimRuntime, tokens: UploadTokens) -> None:
        self.runtime = runtime
        self.tokens = tokens
        self.pvcs = runtime.informer(PVCS)
        self._runner: web.AppRunner | None = None
        self._uploading: set[tuple[str, str]] = set()
        self.url = ""

    async def start(self) -> None:
        await self.runtime.wait_synced(PVCS)
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        for path in UPLOAD_PATHS:
            app.router.add_route("*", path, self._upload)
        self._runner, port, ca_pem = await serve_https(app)
        self.url = f"https://127.0.0.1:{port}"
        await ensure_cdi_namespace(self.runtime.kube)
        service, endpoints, _ = apiservice_registration(
            "", "", CDI_NAMESPACE, SERVICE_NAME, port, ca_pem,
            {"cdi.kubevirt.io": "cdi-uploadproxy"})
        await register(self.runtime, FIELD_MANAGER, [service, endpoints])
        await self._publish(ca_pem.decode())

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _publish(self, ca_pem: str) -> None:
        """The CDIConfig `config` with this proxy's URL and CA in its status."""
        kube = self.runtime.kube
        try:
            await kube.create(CRDS, cdi_config_crd())
        except KubeError as error:
            if error.status != 409:
                raise
        await wait_for_resource(kube, CDI_CONFIGS)
        config = await kube.get(CDI_CONFIGS, None, CDI_CONFIG_NAME)
        if config is None:
            try:
                config = await kube.create(CDI_CONFIGS, {
                    "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "CDIConfig",
                    "metadata": {"name": CDI_CONFIG_NAME}, "spec": {}})
            except KubeError as error:
                if error.status != 409:
                    raise
                config = await kube.get(CDI_CONFIGS, None, CDI_CONFIG_NAME)
        assert config is not None
        status = {**(config.get("status") or {}), "uploadProxyURL": self.url,
                  "uploadProxyCA": ca_pem}
        await kube.patch(CDI_CONFIGS, None, CDI_CONFIG_NAME, {"status": status},
                         subresource="status")

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _ready_claim(self, namespace: str, name: str) -> Obj:
        """`uploadReady`: the PVC once its upload server is ready (10 s at most)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_READY_SECONDS
        while True:
            pvc = self.pvcs.get(namespace, name)
            if pvc is None:
                raise _Unavailable(f"rejecting Upload Request for PVC {name} that doesn't exist")
            annotations = (pvc.get("metadata") or {}).get("annotations") or {}
            if ANN_UPLOAD_TARGET not in annotations:
                raise _Unavailable(f"PVC {name} is not an upload target")
            if annotations.get(ANN_POD_PHASE) == "Succeeded":
                raise _Unavailable(f"rejecting Upload Request for PVC {name} that already "
                                   "finished uploading")
            if annotations.get(ANN_POD_READY) == "true":
                return pvc
            if loop.time() >= deadline:
                raise _Unavailable("context deadline exceeded")
            await asyncio.sleep(1.0)  # upstream polls the PVC every second (waitReadyImterval)

    async def _upload(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405)
        found = _BEARER.match(request.headers.get("Authorization", ""))
        if found is None:
            return web.Response(status=400)
        try:
            target = self.tokens.validate(found[1])
        except InvalidToken:
            return web.Response(status=401)
        key = (target.namespace, target.name)
        try:
            pvc = await self._ready_claim(*key)
        except _Unavailable as error:
            return web.Response(status=503, text=str(error))
        if key in self._uploading:  # the upload server takes one stream at a time
            return web.Response(status=503)
        self._uploading.add(key)
        try:
            return await self._receive(request, pvc)
        finally:
            self._uploading.discard(key)

    async def _receive(self, request: web.Request, pvc: Obj) -> web.Response:
        head = b""
        total = 0
        async for chunk in request.content.iter_chunked(1 << 20):
            if len(head) < HEADER_BYTES:
                head += chunk[:HEADER_BYTES - len(head)]
            total += len(chunk)
        size = virtual_size(head, total)
        available = usable_bytes(pvc)
        metadata = pvc.get("metadata") or {}
        namespace, name = str(metadata.get("namespace", "")), str(metadata["name"])
        if size > available:
            log.info("Refused upload", namespace=namespace, pvc=name, size=size,
                     available=available)
            return web.Response(status=400, text=(
                "Saving stream failed: effective image size is larger than the reported "
                f"available storage: virtual image size {size} is larger than the reported "
                f"available storage {available}. A larger PVC is required"))
        await self.runtime.kube.patch(PVCS, namespace, name, {"metadata": {
            "annotations": upload_finished(total, size)}})
        log.info("Received upload", namespace=namespace, pvc=name, bytes=total, size=size)
        return web.Response(status=200)

