"""Creating an import in the cluster of the current kubeconfig.

Checked before anything is created: the namespace exists, the kind (VirtualMachine or
VirtualApp) is served, no object of the import exists yet, CDI's upload proxy is known
(`--uploadproxy-url`, else the CDIConfig `config`'s status.uploadProxyURL, trusting its
status.uploadProxyCA). Then, as virtctl image-upload does, per disk image: the DataVolume
with `source: upload: {}`, a wait for UploadReady, an UploadTokenRequest
(upload.cdi.kubevirt.io/v1beta1), the bytes POSTed to the proxy's /v1beta1/upload with the
token, a wait for Succeeded. Then the VirtualMachine or VirtualApp, whose disks clone those
volumes, and the volumes are given to it (ownerReferences: deleting it deletes them). A
failure on the way deletes what this import created.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from kubekit.resources import DATAVOLUMES, NAMESPACES, ResourceRef

from .errors import OvfError
from .mapping import DiskImage

if TYPE_CHECKING:
    from controllers.common.kube import KubeClient

    from .command import PreparedImport
    from .package import Package

CDI_CONFIGS = ResourceRef("cdi.kubevirt.io", "v1beta1", "cdiconfigs", namespaced=False)
UPLOAD_TOKEN_REQUESTS = ResourceRef("upload.cdi.kubevirt.io", "v1beta1", "uploadtokenrequests")
UPLOAD_PATH = "/v1beta1/upload"
WORKLOADS = {
    "VirtualMachine": ResourceRef("vdcos.io", "v1alpha1", "virtualmachines"),
    "VirtualApp": ResourceRef("vdcos.io", "v1alpha1", "virtualapps"),
}
POLL_SECONDS = 0.5
_CHUNK = 1 << 20


class ImportFailed(Exception):
    """Something in the cluster refused or failed the import (created objects are undone)."""


@dataclass(frozen=True)
class UploadProxy:
    url: str
    ca_pem: str | None
    insecure: bool

    def ssl(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        context = ssl.create_default_context()
        if self.ca_pem:
            context.load_verify_locations(cadata=self.ca_pem)
        return context


async def find_upload_proxy(kube: KubeClient, url: str | None, insecure: bool) -> UploadProxy:
    config = await kube.get(CDI_CONFIGS, None, "config")
    status = (config or {}).get("status") or {}
    chosen = url or status.get("uploadProxyURL")
    if not chosen:
        raise OvfError("CDI's upload proxy is unknown: the CDIConfig 'config' has no "
                       "status.uploadProxyURL; pass --uploadproxy-url")
    if "://" not in chosen:
        chosen = f"https://{chosen}"  # CDI publishes a host name, as virtctl reads it
    return UploadProxy(url=chosen.rstrip("/"), ca_pem=status.get("uploadProxyCA") or None,
                       insecure=insecure)


async def _check_can_create(kube: KubeClient, prepared: PreparedImport) -> None:
    from controllers.common.kube import KubeError

    plan = prepared.plan
    namespace = plan.workload["metadata"]["namespace"]
    if await kube.get(NAMESPACES, None, namespace) is None:
        raise OvfError(f'namespace "{namespace}" not found')
    kind = plan.workload["kind"]
    resource = WORKLOADS[kind]
    try:
        await kube.request("GET", resource.path(namespace), params={"limit": "1"})
    except KubeError as error:
        if error.status == 404:
            raise OvfError(f"the cluster does not serve {kind} ({resource.group}/"
                           f"{resource.version} {resource.plural}): install the vdcos "
                           "CRDs (vdcos crds | kubectl apply -f -)") from None
        raise
    for obj in plan.objects():
        target = WORKLOADS.get(obj["kind"], DATAVOLUMES)
        name = obj["metadata"]["name"]
        if await kube.get(target, namespace, name) is not None:
            raise OvfError(f'{obj["kind"].lower()} "{name}" already exists in namespace '
                           f'"{namespace}" (pass --name for another)')


async def _wait_for_phase(kube: KubeClient, image: DiskImage, wanted: str,
                          timeout: float) -> None:
    namespace = image.datavolume["metadata"]["namespace"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    phase = None
    while loop.time() < deadline:
        datavolume = await kube.get(DATAVOLUMES, namespace, image.name)
        if datavolume is None:
            raise ImportFailed(f"datavolume {image.name} disappeared")
        phase = (datavolume.get("status") or {}).get("phase")
        if phase == wanted or (wanted == "UploadReady" and phase == "Succeeded"):
            return
        if phase == "Failed":
            raise ImportFailed(f"datavolume {image.name} Failed")
        await asyncio.sleep(POLL_SECONDS)  # a CLI polling its one object, as virtctl does
    raise ImportFailed(f"datavolume {image.name} is still {phase or 'without a phase'} after "
                       f"{timeout:.0f}s (waiting for {wanted})")


async def _chunks(package: Package, href: str) -> AsyncIterator[bytes]:
    with package.open(href) as stream:
        while chunk := await asyncio.to_thread(stream.read, _CHUNK):
            yield chunk


async def _upload(kube: KubeClient, proxy: UploadProxy, package: Package,
                  image: DiskImage) -> None:
    namespace = image.datavolume["metadata"]["namespace"]
    request = await kube.request("POST", UPLOAD_TOKEN_REQUESTS.path(namespace), body={
        "apiVersion": "upload.cdi.kubevirt.io/v1beta1", "kind": "UploadTokenRequest",
        "metadata": {"name": image.name, "namespace": namespace},
        "spec": {"pvcName": image.name}})
    token = (request.get("status") or {}).get("token")
    if not token:
        raise ImportFailed(f"the UploadTokenRequest for {image.name} returned no token")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.post(f"{proxy.url}{UPLOAD_PATH}", headers=headers,
                                    data=_chunks(package, image.file.href),
                                    ssl=proxy.ssl()) as answer:
                if answer.status != 200:
                    text = (await answer.text()).strip() or answer.reason or ""
                    raise ImportFailed(f"the upload proxy refused {image.file.href} for "
                                       f"datavolume {image.name}: {answer.status} {text}")
        except aiohttp.ClientError as error:
            raise ImportFailed(f"cannot upload {image.file.href} to {proxy.url}: "
                               f"{error}") from None


async def _import(kube: KubeClient, prepared: PreparedImport, proxy_url: str | None,
                  insecure: bool, timeout: float) -> int:
    from controllers.common.kube import KubeError

    plan = prepared.plan
    await _check_can_create(kube, prepared)
    proxy = await find_upload_proxy(kube, proxy_url, insecure) if plan.images else None
    created: list[tuple[ResourceRef, str, str]] = []
    namespace = plan.workload["metadata"]["namespace"]
    try:
        for image in plan.images:
            await kube.create(DATAVOLUMES, image.datavolume)
            created.append((DATAVOLUMES, namespace, image.name))
            print(f"datavolume.cdi.kubevirt.io/{image.name} created")
        for image in plan.images:
            assert proxy is not None
            await _wait_for_phase(kube, image, "UploadReady", timeout)
            size = prepared.package.size(image.file.href)
            print(f"uploading {image.file.href} ({size} bytes) into datavolume {image.name} "
                  f"through {proxy.url}")
            await _upload(kube, proxy, prepared.package, image)
            await _wait_for_phase(kube, image, "Succeeded", timeout)
            print(f"datavolume.cdi.kubevirt.io/{image.name} Succeeded")
        kind = plan.workload["kind"]
        workload = await kube.create(WORKLOADS[kind], plan.workload)
        created.append((WORKLOADS[kind], namespace, workload["metadata"]["name"]))
        print(f"{kind.lower()}.vdcos.io/{workload['metadata']['name']} created")
        owner = {"apiVersion": workload["apiVersion"], "kind": kind,
                 "name": workload["metadata"]["name"], "uid": workload["metadata"]["uid"]}
        for image in plan.images:
            await kube.patch(DATAVOLUMES, namespace, image.name,
                             {"metadata": {"ownerReferences": [owner]}})
    except (ImportFailed, KubeError) as error:
        print(f"Error: {error}", file=sys.stderr)
        await _undo(kube, created)
        return 1
    except BaseException:
        # Interrupted (Ctrl-C) or failed reading the package: undo, then let it propagate.
        await asyncio.shield(_undo(kube, created))
        raise
    return 0


async def _undo(kube: KubeClient, created: list[tuple[ResourceRef, str, str]]) -> None:
    for resource, namespace, name in reversed(created):
        if await kube.delete(resource, namespace, name):
            print(f"deleted {resource.plural}/{name} (the import did not finish)",
                  file=sys.stderr)


async def _run(prepared: PreparedImport, kubeconfig: Path | None, proxy_url: str | None,
               insecure: bool, timeout: float) -> int:
    from controllers.common.kube import KubeClient
    from controllers.common.login import log_in

    kube = KubeClient(await log_in(kubeconfig), user_agent="vdcos-import")
    try:
        return await _import(kube, prepared, proxy_url, insecure, timeout)
    finally:
        await kube.close()


def run_import(prepared: PreparedImport, *, kubeconfig: Path | None,
               uploadproxy_url: str | None, insecure: bool, timeout: float = 600) -> int:
    from controllers.common.kube import KubeError
    from controllers.common.login import LoginError

    try:
        return asyncio.run(_run(prepared, kubeconfig, uploadproxy_url, insecure, timeout))
    except (OvfError, LoginError, KubeError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
