"""CDI's upload path in the simulation: cdi-apiserver's UploadTokenRequest API
(`upload_token_api.py`) and the upload proxy (`uploadproxy.py`), in namespace cdi, sharing
one token key; the upload DataVolume's phases are in `upload_datavolume.py`."""

from __future__ import annotations

from kubekit.resources import NAMESPACES
from kubekit.restclient import Kube, KubeError

from .runtime import Component, SimRuntime
from .upload_tokens import UploadTokens

CDI_NAMESPACE = "cdi"


async def ensure_cdi_namespace(kube: Kube) -> None:
    try:
        await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": CDI_NAMESPACE}})
    except KubeError as error:
        if error.status != 409:
            raise


def cdi_upload_components(runtime: SimRuntime) -> list[Component]:
    from .upload_token_api import UploadTokenApi
    from .uploadproxy import UploadProxy

    tokens = UploadTokens()
    return [UploadTokenApi(runtime, tokens), UploadProxy(runtime, tokens)]
