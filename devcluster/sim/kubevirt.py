"""The emulated KubeVirt, CDI and Multus: what `kubevirt_components` gives the runner.

Start order: the installer (CRDs, the `kubevirt` namespace and KubeVirt CR), then CDI,
virt-controller and virt-handler, all in the simulation's process. virt-api's subresource
API and admission hooks are loaded into the API server's process instead
(`install_virt_api`, called by `python -m devcluster --virt-api`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from devcluster.apiserver.errors import ApiError
from kubekit.resources import CRDS, KUBEVIRTS, NAMESPACES, ResourceRef
from kubekit.restclient import Kube, KubeError, wait_for_resource

from .cdi import CdiController
from .kubevirt_crds import KUBEVIRT_NAMESPACE, default_kubevirt_cr, kubevirt_crds
from .runtime import Component, SimRuntime
from .snapshot_admission import SnapshotAdmission
from .subresources import VirtApi, default_vmi, eviction_denied_message
from .virt_controller import VirtController
from .virt_handler import VirtHandlers

if TYPE_CHECKING:
    from devcluster.apiserver.server import ApiServer

log = structlog.get_logger("devcluster.sim.kubevirt")

KUBEVIRT_VERSION = "v1.9.0"


def install_virt_api(server: ApiServer) -> VirtApi:
    """Serve subresources.kubevirt.io and hook virt-api's webhooks into the API server.

    Runs in the API server's process (real virt-api is a webhook server the API server
    calls; ours reads and writes the store directly, so it is an admission plugin there).

    The VMI mutating webhook runs as a per-kind admission function (it edits the object
    in place, as a mutating webhook's patch would); the launcher-eviction webhook is an
    eviction admitter: it refuses the eviction with 429 and starts an evacuation instead.
    """
    api = VirtApi(server)
    for extension in api.extensions():
        server.add_extension(extension)
    server.rest.create_mutators[("kubevirt.io", "VirtualMachineInstance")] = default_vmi
    server.rest.validators.update(SnapshotAdmission(server.store).hooks())

    async def refuse_launcher_eviction(pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        refusal = api.refuse_eviction(meta.get("namespace", ""), meta["name"])
        if refusal is not None:
            await server.store.durable()
            raise ApiError(429, "TooManyRequests", eviction_denied_message(refusal))

    server.eviction_admitters.append(refuse_launcher_eviction)
    return api


async def _ensure_crd(kube: Kube, definition: dict[str, Any]) -> None:
    """Create the CRD, or bring a stored one (a datacenter kept in a data dir by an older
    version) to this version's definition, as virt-operator reconciles its CRDs."""
    try:
        await kube.create(CRDS, definition)
        return
    except KubeError as error:
        if error.status != 409:
            raise
    name = definition["metadata"]["name"]
    stored = await kube.get(CRDS, None, name)
    if stored is None or stored.get("spec") == {**stored.get("spec", {}), **definition["spec"]}:
        return
    await kube.request("PUT", CRDS.path(None, name), body={
        **stored, "metadata": {**stored["metadata"], **definition["metadata"]},
        "spec": {**stored.get("spec", {}), **definition["spec"]}})


class KubeVirtInstaller:
    """virt-operator's and cdi-operator's part: CRDs and the KubeVirt CR."""

    name = "kubevirt-installer"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime

    async def start(self) -> None:
        kube = self.runtime.kube
        for definition in kubevirt_crds():
            await _ensure_crd(kube, definition)
        for definition in kubevirt_crds():
            spec = definition["spec"]
            await wait_for_resource(kube, ResourceRef(
                spec["group"], spec["versions"][0]["name"], spec["names"]["plural"],
                namespaced=spec["scope"] == "Namespaced"))
        try:
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": KUBEVIRT_NAMESPACE}})
        except KubeError as error:
            if error.status != 409:
                raise
        try:
            created = await kube.create(KUBEVIRTS, default_kubevirt_cr())
            await kube.request("PUT", KUBEVIRTS.path(KUBEVIRT_NAMESPACE,
                                                     created["metadata"]["name"], "status"),
                               body={**created, "status": {
                                   "phase": "Deployed",
                                   "observedKubeVirtVersion": KUBEVIRT_VERSION,
                                   "targetKubeVirtVersion": KUBEVIRT_VERSION,
                                   "operatorVersion": KUBEVIRT_VERSION,
                                   "defaultArchitecture": "amd64",
                                   "conditions": [{"type": "Available", "status": "True",
                                                   "reason": "AllComponentsReady",
                                                   "message": "All components are ready."}]}})
        except KubeError as error:
            if error.status != 409:
                raise

    async def stop(self) -> None:
        return None


def kubevirt_components(runtime: SimRuntime) -> list[Component]:
    """The KubeVirt/CDI/Multus emulation, in start order."""
    return [KubeVirtInstaller(runtime), CdiController(runtime),
            VirtController(runtime), VirtHandlers(runtime)]
