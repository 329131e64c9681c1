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
from kubekit.resources import DATASOURCES, DATAVOLUMES, PVCS, STORAGE_CLASSES, ResourceRef
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from .clone import (
    ANN_CLONE_FALLBACK_REASON,
    ANN_CLONE_PHASE,
    ANN_CLONE_SECONDS,
    ANN_CLONE_STARTED,
    ANN_CLONE_TYPE,
    FALLBACK_EVENT_REASONS,
    WORKING_PHASE,
    choose_clone_strategy,
    claim_bytes,
    clone_progress,
    clone_seconds,
    profile_clone_strategy,
)
from .datavolume import (
    ANN_CLONE_WAITING,
    ANN_POD_PHASE,
    ClaimNotValid,
    build_pvc_for_datavolume,
    default_storage_class,
    is_clone,
    next_datavolume_state,
)
from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .upload_datavolume import (
    ANN_UPLOAD_POD,
    is_upload,
    next_upload_state,
    upload_pod_name,
    upload_server_started,
)

log = structlog.get_logger("devcluster.sim.cdi")

Obj = Mapping[str, Any]

STORAGE_PROFILES = ResourceRef("cdi.kubevirt.io", "v1beta1", "storageprofiles", namespaced=False)
ANN_IMPORT_STARTED = "cdi.kubevirt.io/storage.import.startedAt"
# Access modes CDI's capability table gives each provisioner the simulation offers.
PROVISIONER_ACCESS_MODES: dict[str, list[str]] = {
    "rancher.io/local-path": ["ReadWriteOnce"],
    "sim.vdcos.io/shared": ["ReadWriteMany"],
}


#: CDI's AnnPrePopulated: the DataVolume's claim is made by someone else.
ANN_PRE_POPULATED = "cdi.kubevirt.io/storage.prePopulated"


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
                              "cloneStrategy": profile_clone_strategy(storage_class),
                              "dataImportCronSourceFormat": "pvc"}
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
        self.data_sources = runtime.informer(DATASOURCES)
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
        await self.runtime.wait_synced(DATAVOLUMES, PVCS, STORAGE_CLASSES, STORAGE_PROFILES,
                                       DATASOURCES)
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
        if pvc is None and (_meta(dv).get("annotations") or {}).get(ANN_PRE_POPULATED):
            # CDI makes no claim for a pre-populated DataVolume: someone else (a KubeVirt
            # restore) is making it, and the claim's creation wakes this DataVolume.
            return None
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
            requeue = await (self._start_upload_server(pvc) if is_upload(dv)
                             else self._run_clone(dv, pvc, now) if is_clone(dv)
                             else self._run_importer(pvc, now))
        storage_class = self._class_named((pvc or {}).get("spec", {}).get("storageClassName")) \
            if pvc is not None else chosen
        progress = self._progress(pvc, now)
        if is_upload(dv) and not claim_not_valid:
            state = next_upload_state(dv, self.pvcs.get(*key) or pvc, storage_class, now)
        else:
            state = next_datavolume_state(dv, self.pvcs.get(*key) or pvc, storage_class,
                                          progress, now, claim_not_valid=claim_not_valid)
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
        if annotations.get(ANN_CLONE_STARTED):
            return clone_progress(str(annotations.get(ANN_CLONE_TYPE)),
                                  (now - _parse_time(annotations[ANN_CLONE_STARTED]))
                                  .total_seconds(),
                                  float(annotations.get(ANN_CLONE_SECONDS) or 0))
        started = annotations.get(ANN_IMPORT_STARTED)
        if annotations.get(ANN_POD_PHASE) != "Running" or not started:
            return None
        elapsed = (now - datetime.fromisoformat(str(started).replace("Z", "+00:00")))
        fraction = min(0.99, elapsed.total_seconds() / max(self.settings.import_seconds, 0.01))
        return f"{fraction * 100:.2f}%"

    async def _start_upload_server(self, pvc: Obj) -> None:
        """An upload DataVolume's bound claim: its upload server runs and waits for bytes
        (the upload proxy, uploadproxy.py, takes them)."""
        if ANN_POD_PHASE in (_meta(pvc).get("annotations") or {}):
            return
        namespace, name = _key(pvc)
        await self.kube.patch(PVCS, namespace, name, {"metadata": {"annotations": {
            **upload_server_started(), ANN_UPLOAD_POD: upload_pod_name(name)}}})

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

    # --- clones (the clone populator; devcluster/sim/clone.py has the rules) ---------------

    def _clone_source(self, dv: Obj) -> tuple[str, str] | str:
        """(namespace, name) of the claim a clone DataVolume copies, or why it is not known."""
        spec = dv.get("spec") or {}
        namespace = str(_meta(dv).get("namespace", ""))
        ref = spec.get("sourceRef")
        if ref:
            ref_namespace = str(ref.get("namespace") or namespace)
            data_source = self.data_sources.get(ref_namespace, str(ref.get("name")))
            if data_source is None:
                return f"DataSource {ref_namespace}/{ref.get('name')} not found"
            pvc = ((data_source.get("spec") or {}).get("source") or {}).get("pvc")
            if not pvc:
                return f"DataSource {ref_namespace}/{ref.get('name')} has no source PVC"
            return str(pvc.get("namespace") or ref_namespace), str(pvc.get("name"))
        pvc = (spec.get("source") or {}).get("pvc") or {}
        return str(pvc.get("namespace") or namespace), str(pvc.get("name"))

    def _source_ready(self, source: tuple[str, str]) -> dict[str, Any] | str:
        """The source claim when it can be cloned, or why not yet."""
        claim = self.pvcs.get(*source)
        if claim is None:
            return f"The source pvc {source[1]} doesn't exist"
        source_dv = self.dvs.get(*source)
        phase = ((source_dv or {}).get("status") or {}).get("phase")
        if source_dv is not None and phase != "Succeeded":
            return f"The source pvc {source[0]}/{source[1]} is not populated yet ({phase})"
        if (claim.get("status") or {}).get("phase") != "Bound":
            return f"The source pvc {source[0]}/{source[1]} is not bound"
        return claim

    async def _run_clone(self, dv: Obj, pvc: Obj, now: datetime) -> float | None:
        """The clone populator on a bound target claim: choose, wait the clone time, done."""
        annotations = _meta(pvc).get("annotations") or {}
        phase = annotations.get(ANN_CLONE_PHASE)
        namespace, name = _key(pvc)
        if phase == "Succeeded":
            return None
        if phase not in (None, "Pending"):
            started = _parse_time(annotations.get(ANN_CLONE_STARTED))
            left = float(annotations.get(ANN_CLONE_SECONDS) or 0) - (now - started).total_seconds()
            if left > 0:
                return min(left, 2.0)  # CDI re-reads the transfer's progress every few seconds
            await self.kube.patch(PVCS, namespace, name, {"metadata": {"annotations": {
                ANN_CLONE_PHASE: "Succeeded"}}})
            return None
        if ((dv.get("spec") or {}).get("source") or {}).get("snapshot") is not None:
            # CDI restores a source.snapshot DataVolume from the VolumeSnapshot itself (the
            # claim's dataSourceRef, provisioned with its content): no source claim, no copy.
            await self.kube.patch(PVCS, namespace, name, {"metadata": {"annotations": {
                ANN_CLONE_TYPE: "snapshot", ANN_CLONE_PHASE: "Succeeded"}}})
            return None
        source = self._clone_source(dv)
        claim = self._source_ready(source) if isinstance(source, tuple) else source
        if isinstance(claim, str):
            if annotations.get(ANN_CLONE_WAITING) != claim:
                await self.kube.patch(PVCS, namespace, name, {"metadata": {"annotations": {
                    ANN_CLONE_PHASE: "Pending", ANN_CLONE_WAITING: claim}}})
                await self.runtime.event(dict(dv), "CloneWithoutSource", claim, kind="Warning",
                                         component="datavolume-controller")
            return 2.0
        target_class = self._class_named(pvc.get("spec", {}).get("storageClassName"))
        source_class = self._class_named(claim.get("spec", {}).get("storageClassName"))
        profile = self.profiles.get("", str(_meta(target_class or {}).get("name", "")))
        profile_strategy = ((profile or {}).get("status") or {}).get("cloneStrategy") or (
            profile_clone_strategy(target_class) if target_class is not None else None)
        choice = choose_clone_strategy(pvc, claim, target_class, source_class, profile_strategy)
        seconds = clone_seconds(choice.strategy, claim_bytes(claim),
                                csi_seconds=self.settings.clone_csi_seconds,
                                copy_mbps=self.settings.clone_copy_mbps)
        clone_annotations = {
            ANN_CLONE_TYPE: choice.strategy, ANN_CLONE_PHASE: WORKING_PHASE[choice.strategy],
            ANN_CLONE_STARTED: now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            ANN_CLONE_SECONDS: f"{seconds:.3f}", ANN_CLONE_WAITING: None,
            "k8s.io/CloneRequest": f"{source[0]}/{source[1]}",
        }
        if choice.fallback_reason:
            clone_annotations[ANN_CLONE_FALLBACK_REASON] = choice.fallback_reason
        await self.kube.patch(PVCS, namespace, name,
                              {"metadata": {"annotations": clone_annotations}})
        # CDI copies the strategy it chose onto the DataVolume (pvc-clone-controller.go).
        await self.kube.patch(DATAVOLUMES, namespace, name,
                              {"metadata": {"annotations": {ANN_CLONE_TYPE: choice.strategy}}})
        if choice.fallback_reason:
            await self.runtime.event(
                {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **pvc},
                FALLBACK_EVENT_REASONS.get(choice.fallback_reason, "CloneFallback"),
                choice.fallback_reason, kind="Warning", component="clone-populator")
        log.info("clone started", namespace=namespace, name=name, strategy=choice.strategy,
                 seconds=round(seconds, 2), fallback=choice.fallback_reason)
        return min(seconds, 2.0)


def _parse_time(text: object) -> datetime:
    if not text:
        return datetime.now(UTC)
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
