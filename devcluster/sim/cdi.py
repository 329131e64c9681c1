"""CDI: DataVolumes become PVCs whose content is imported (or cloned) by a simulated importer.

The DataVolume controller renders the PVC (`datavolume.build_pvc_for_datavolume`), waits for
it to bind (a WaitForFirstConsumer class binds once a consumer pod is scheduled), then plays
the importer pod through the PVC annotation `cdi.kubevirt.io/storage.pod.phase` as CDI reads
it: Running for `import_seconds`, then Succeeded. Status comes from the pure planner
`datavolume.next_datavolume_state`. A StorageProfile is kept for every StorageClass.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from kubekit.informer import Key
from kubekit.resources import DATAVOLUMES, PVCS, STORAGE_CLASSES, ResourceRef
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from .datavolume import (
    ANN_POD_PHASE,
    ClaimNotValid,
    build_pvc_for_datavolume,
    default_storage_class,
    next_datavolume_state,
)
from .runtime import SIM_RETRY_DELAYS, SimRuntime

log = structlog.get_logger("devcluster.sim.cdi")

Obj = Mapping[str, Any]

STORAGE_PROFILES = ResourceRef("cdi.kubevirt.io", "v1beta1", "storageprofiles", namespaced=False)
ANN_IMPORT_STARTED = "cdi.kubevirt.io/storage.import.startedAt"
# Access modes CDI's capability table gives each provisioner the simulation offers.
PROVISIONER_ACCESS_MODES: dict[str, list[str]] = {
    "rancher.io/local-path": ["ReadWriteOnce"],
    "sim.vdcos.io/shared": ["ReadWriteMany"],
}


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _key(obj: Obj) -> Key:
    return (str(_meta(obj).get("namespace", "")), str(_meta(obj)["name"]))


def storage_profile_for(storage_class: Obj) -> dict[str, Any]:
    """The StorageProfile CDI keeps for a StorageClass (same name, cluster-scoped)."""
    name = str(_meta(storage_class)["name"])
    provisioner = str(storage_class.get("provisioner", ""))
    status: dict[str, Any] = {"storageClass": name, "provisioner": provisioner,
                              "cloneStrategy": "copy", "dataImportCronSourceFormat": "pvc"}
    modes = PROVISIONER_ACCESS_MODES.get(provisioner)
    if modes:
        status["claimPropertySets"] = [{"accessModes": modes, "volumeMode": "Filesystem"}]
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "StorageProfile",
            "metadata": {"name": name, "labels": {"app": "containerized-data-importer"}},
            "spec": {}, "status": status}


class CdiController:
    """The DataVolume controller and the importer it starts."""

    name = "cdi"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.settings = runtime.settings
        self.dvs = runtime.informer(DATAVOLUMES)
        self.pvcs = runtime.informer(PVCS)
        self.classes = runtime.informer(STORAGE_CLASSES)
        self.profiles = runtime.informer(STORAGE_PROFILES)
        self.queue = WorkQueue("datavolume", self._sync, workers=4,
                               retry_delays=SIM_RETRY_DELAYS)
        self.profile_queue = WorkQueue("storageprofile", self._sync_profile, workers=1,
                                       retry_delays=SIM_RETRY_DELAYS)

    async def start(self) -> None:
        self.dvs.add_listener(lambda _kind, dv: self.queue.enqueue(_key(dv)))
        self.pvcs.add_listener(self._on_pvc)
        self.classes.add_listener(self._on_class)
        self.queue.start()
        self.profile_queue.start()
        await self.runtime.wait_synced(DATAVOLUMES, PVCS, STORAGE_CLASSES, STORAGE_PROFILES)
        for dv in self.dvs.values():
            self.queue.enqueue(_key(dv))
        for storage_class in self.classes.values():
            self.profile_queue.enqueue(("", str(_meta(storage_class)["name"])))

    async def stop(self) -> None:
        await self.queue.stop()
        await self.profile_queue.stop()

    def _on_pvc(self, _kind: str, pvc: dict[str, Any]) -> None:
        namespace = str(_meta(pvc).get("namespace", ""))
        for ref in _meta(pvc).get("ownerReferences") or []:
            if ref.get("kind") == "DataVolume":
                self.queue.enqueue((namespace, str(ref.get("name"))))
        # A claim populated for a DataVolume (a KubeVirt restore's) has no owner yet.
        populated_for = (_meta(pvc).get("annotations") or {}).get(
            "cdi.kubevirt.io/storage.populatedFor")
        if populated_for:
            self.queue.enqueue((namespace, str(populated_for)))

    def _on_class(self, _kind: str, storage_class: dict[str, Any]) -> None:
        self.profile_queue.enqueue(("", str(_meta(storage_class)["name"])))
        for dv in self.dvs.values():
            if (dv.get("status") or {}).get("phase") in (None, "", "Pending"):
                self.queue.enqueue(_key(dv))

    async def _sync_profile(self, key: Key) -> float | None:
        storage_class = self.classes.get("", key[1])
        if storage_class is None or self.profiles.get("", key[1]) is not None:
            return None
        profile = storage_profile_for(storage_class)
        try:
            created = await self.kube.create(STORAGE_PROFILES, profile)
        except KubeError as error:
            if error.status == 409:
                return None
            raise
        await self.kube.request("PUT", STORAGE_PROFILES.path(None, key[1], "status"),
                                body={**created, "status": profile["status"]})
        return None

    def _class_named(self, name: str | None) -> dict[str, Any] | None:
        return self.classes.get("", name) if name else None

    def _profile_modes(self, storage_class: Obj | None) -> list[str]:
        if storage_class is None:
            return []
        profile = self.profiles.get("", str(_meta(storage_class)["name"]))
        sets = ((profile or {}).get("status") or {}).get("claimPropertySets") or []
        if sets:
            return list(sets[0].get("accessModes") or [])
        return PROVISIONER_ACCESS_MODES.get(str(storage_class.get("provisioner", "")), [])

    async def _sync(self, key: Key) -> float | None:
        dv = self.dvs.get(*key)
        if dv is None or _meta(dv).get("deletionTimestamp"):
            return None
        now = datetime.now(UTC)
        pvc = self.pvcs.get(*key)
        spec = dv.get("spec") or {}
        claim_spec = spec.get("pvc") or spec.get("storage") or {}
        named_class = self._class_named(claim_spec.get("storageClassName"))
        default_class = default_storage_class(self.classes.values())
        chosen = named_class or (None if claim_spec.get("storageClassName") else default_class)
        claim_not_valid = False
        requeue: float | None = None
        if pvc is None:
            try:
                rendered = build_pvc_for_datavolume(
                    dv, named_class, default_class,
                    profile_access_modes=self._profile_modes(chosen))
                pvc = await self.kube.create(PVCS, rendered)
            except ClaimNotValid:
                claim_not_valid = True
            except KubeError as error:
                if error.status != 409:
                    raise
                return None
        elif (pvc.get("status") or {}).get("phase") == "Bound":
            requeue = await self._run_importer(pvc, now)
        storage_class = self._class_named((pvc or {}).get("spec", {}).get("storageClassName")) \
            if pvc is not None else chosen
        progress = self._progress(pvc, now)
        state = next_datavolume_state(dv, self.pvcs.get(*key) or pvc, storage_class, progress,
                                      now, claim_not_valid=claim_not_valid)
        status = {**(dv.get("status") or {}), **state.status()}
        status.setdefault("restartCount", 0)
        if status != (dv.get("status") or {}):
            await self.kube.request("PUT", DATAVOLUMES.path(key[0], key[1], "status"),
                                    body={**dv, "status": status})
            for event in state.events:
                await self.runtime.event(dict(dv), event.reason, event.message,
                                         kind=event.type, component="datavolume-controller")
        return requeue

    def _progress(self, pvc: Obj | None, now: datetime) -> str | None:
        annotations = _meta(pvc or {}).get("annotations") or {}
        started = annotations.get(ANN_IMPORT_STARTED)
        if annotations.get(ANN_POD_PHASE) != "Running" or not started:
            return None
        elapsed = (now - datetime.fromisoformat(str(started).replace("Z", "+00:00")))
        fraction = min(0.99, elapsed.total_seconds() / max(self.settings.import_seconds, 0.01))
        return f"{fraction * 100:.2f}%"

    async def _run_importer(self, pvc: Obj, now: datetime) -> float | None:
        """The importer pod of a bound claim: Running for import_seconds, then Succeeded."""
        annotations = _meta(pvc).get("annotations") or {}
        phase = annotations.get(ANN_POD_PHASE)
        namespace, name = _key(pvc)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if phase is None:
            await self.kube.patch(PVCS, namespace, name, {"metadata": {"annotations": {
                ANN_POD_PHASE: "Running", ANN_IMPORT_STARTED: stamp,
                "cdi.kubevirt.io/storage.import.importPodName": f"importer-{name}",
                "cdi.kubevirt.io/storage.condition.running": "true",
                "cdi.kubevirt.io/storage.condition.running.reason": "Pod is running"}}})
            return self.settings.import_seconds
        if phase == "Running":
            started = datetime.fromisoformat(
                str(annotations.get(ANN_IMPORT_STARTED, stamp)).replace("Z", "+00:00"))
            left = self.settings.import_seconds - (now - started).total_seconds()
            if left > 0:
                return min(left, 2.0)  # CDI scrapes the importer's progress every 2 s
            await self.kube.patch(PVCS, namespace, name, {"metadata": {"annotations": {
                ANN_POD_PHASE: "Succeeded",
                "cdi.kubevirt.io/storage.condition.running": "false",
                "cdi.kubevirt.io/storage.condition.running.reason": "Completed",
                "cdi.kubevirt.io/storage.condition.running.message":
                    "Import Complete"}}})
        return None
