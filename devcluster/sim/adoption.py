"""Adopting what a restore leaves without an owner, as the real controllers do.

A VirtualMachineRestore creates its DataVolumes and their pre-populated claims without
owners; on a cluster, CDI's DataVolume controller then takes the claim whose annotation
`cdi.kubevirt.io/storage.populatedFor` names the DataVolume, and virt-controller's
controller-ref manager takes the DataVolume a VM's `dataVolumeTemplates` name. Without
this, deleting the restored VM would leave its disks behind. The decisions are pure
(`claim_owner`, `datavolume_owner`); the component only writes the owner references.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.resources import DATAVOLUMES, PVCS, VMS
from kubekit.workqueue import WorkQueue

from .ignoring_gone import ignoring_gone
from .object_parts import metadata_of as _meta
from .runtime import SIM_RETRY_DELAYS, SimRuntime

log = structlog.get_logger("devcluster.sim.adoption")

Obj = Mapping[str, Any]

POPULATED_FOR_ANNOTATION = "cdi.kubevirt.io/storage.populatedFor"


def _has_controller(obj: Obj) -> bool:
    return any(ref.get("controller") for ref in _meta(obj).get("ownerReferences") or [])


def _controller_ref(api_version: str, kind: str, owner: Obj) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": _meta(owner)["name"],
            "uid": _meta(owner).get("uid", ""), "controller": True,
            "blockOwnerDeletion": True}


def claim_owner(claim: Obj, datavolume: Obj | None) -> dict[str, Any] | None:
    """The DataVolume owner reference CDI gives an orphan claim populated for it."""
    wanted = (_meta(claim).get("annotations") or {}).get(POPULATED_FOR_ANNOTATION)
    if not wanted or _has_controller(claim) or datavolume is None or \
            _meta(datavolume).get("name") != wanted or _meta(datavolume).get(
                "deletionTimestamp"):
        return None
    return _controller_ref("cdi.kubevirt.io/v1beta1", "DataVolume", datavolume)


def datavolume_owner(datavolume: Obj, vms: Iterable[Obj]) -> dict[str, Any] | None:
    """The VM owner reference virt-controller gives an orphan DataVolume its templates name."""
    if _has_controller(datavolume) or _meta(datavolume).get("deletionTimestamp"):
        return None
    name = _meta(datavolume).get("name")
    for vm in vms:
        if _meta(vm).get("deletionTimestamp"):
            continue
        templates = (vm.get("spec") or {}).get("dataVolumeTemplates") or []
        if any((t.get("metadata") or {}).get("name") == name for t in templates):
            return _controller_ref("kubevirt.io/v1", "VirtualMachine", vm)
    return None


class Adoption:
    name = "adoption"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self._claims = WorkQueue("adopt-claims", ignoring_gone(self._adopt_claim), workers=1,
                                 retry_delays=SIM_RETRY_DELAYS)
        self._datavolumes = WorkQueue("adopt-datavolumes", ignoring_gone(self._adopt_dv),
                                      workers=1, retry_delays=SIM_RETRY_DELAYS)

    async def start(self) -> None:
        for resource in (PVCS, DATAVOLUMES, VMS):
            self.runtime.informer(resource)
        await self.runtime.wait_synced(PVCS, DATAVOLUMES, VMS)
        self.runtime.informer(PVCS).add_listener(self._on_claim)
        self.runtime.informer(DATAVOLUMES).add_listener(self._on_datavolume)
        self.runtime.informer(VMS).add_listener(self._on_vm)
        self._claims.start()
        self._datavolumes.start()
        for claim in self.runtime.informer(PVCS).values():
            self._on_claim("ADDED", claim)
        for datavolume in self.runtime.informer(DATAVOLUMES).values():
            self._on_datavolume("ADDED", datavolume)

    async def stop(self) -> None:
        await self._claims.stop()
        await self._datavolumes.stop()

    def _on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        if kind != "DELETED" and (_meta(claim).get("annotations") or {}).get(
                POPULATED_FOR_ANNOTATION) and not _has_controller(claim):
            self._claims.enqueue(key_of(claim))

    def _on_datavolume(self, kind: str, datavolume: dict[str, Any]) -> None:
        if kind == "DELETED" or _has_controller(datavolume):
            return
        self._datavolumes.enqueue(key_of(datavolume))
        namespace, name = key_of(datavolume)
        for claim in self.runtime.informer(PVCS).values():
            if key_of(claim)[0] == namespace and (_meta(claim).get("annotations") or {}).get(
                    POPULATED_FOR_ANNOTATION) == name:
                self._claims.enqueue(key_of(claim))

    def _on_vm(self, kind: str, vm: dict[str, Any]) -> None:
        namespace = key_of(vm)[0]
        for template in (vm.get("spec") or {}).get("dataVolumeTemplates") or []:
            name = str((template.get("metadata") or {}).get("name", ""))
            datavolume = self.runtime.informer(DATAVOLUMES).get(namespace, name)
            if datavolume is not None and not _has_controller(datavolume):
                self._datavolumes.enqueue((namespace, name))

    async def _adopt(self, resource: Any, obj: Obj, owner: dict[str, Any]) -> None:
        namespace, name = key_of(dict(obj))
        references = [*(_meta(obj).get("ownerReferences") or []), owner]
        await self.kube.patch(resource, namespace, name, {"metadata": {
            "ownerReferences": references, "resourceVersion": _meta(obj).get(
                "resourceVersion")}})
        log.info("Adopted", kind=obj.get("kind"), object=f"{namespace}/{name}",
                 owner=f"{owner['kind']}/{owner['name']}")

    async def _adopt_claim(self, key: Key) -> float | None:
        claim = self.runtime.informer(PVCS).get(*key)
        if claim is None:
            return None
        wanted = (_meta(claim).get("annotations") or {}).get(POPULATED_FOR_ANNOTATION)
        owner = claim_owner(claim, self.runtime.informer(DATAVOLUMES).get(
            key[0], str(wanted or "")))
        if owner is not None:
            await self._adopt(PVCS, claim, owner)
        return None

    async def _adopt_dv(self, key: Key) -> float | None:
        datavolume = self.runtime.informer(DATAVOLUMES).get(*key)
        if datavolume is None:
            return None
        vms = [vm for vm in self.runtime.informer(VMS).values() if key_of(vm)[0] == key[0]]
        owner = datavolume_owner(datavolume, vms)
        if owner is not None:
            await self._adopt(DATAVOLUMES, datavolume, owner)
        return None
