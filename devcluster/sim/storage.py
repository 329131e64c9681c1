"""Storage: the default StorageClasses and a provisioner that binds claims to new volumes.

Two classes exist from the start (users may create more with the same provisioners):

- `standard` (default, as on kind): provisioner `rancher.io/local-path`, ReadWriteOnce
  volumes on one host, `WaitForFirstConsumer`: a claim is provisioned on the node the
  scheduler picked for its first pod (annotation `volume.kubernetes.io/selected-node`),
  and its volume carries node affinity to that host.
- `shared`: provisioner `sim.vdcos.io/shared`, `Immediate`, any access mode including
  ReadWriteMany (what live migration needs), reachable from every host; it is KubeVirt's
  default class for VM disks (`storageclass.kubevirt.io/is-default-virt-class`).

The provisioner plays external-provisioner and the PV controller: it creates the
PersistentVolume `pvc-<claim uid>` and binds both sides (volume Bound, claim
`spec.volumeName` and Bound). A volume whose claim is gone is deleted (reclaim policy
Delete) or Released (Retain).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.resources import PVCS, PVS, STORAGE_CLASSES
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .written import WrittenCache

log = structlog.get_logger("devcluster.sim.storage")

Obj = Mapping[str, Any]

LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
SHARED_PROVISIONER = "sim.vdcos.io/shared"
PROVISIONERS = (LOCAL_PATH_PROVISIONER, SHARED_PROVISIONER)
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
DEFAULT_VIRT_CLASS_ANNOTATION = "storageclass.kubevirt.io/is-default-virt-class"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"


def default_storage_classes() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": "standard", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
         "provisioner": LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
         "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": False},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": "shared", "annotations": {DEFAULT_VIRT_CLASS_ANNOTATION: "true"}},
         "provisioner": SHARED_PROVISIONER, "reclaimPolicy": "Delete",
         "volumeBindingMode": "Immediate", "allowVolumeExpansion": True},
    ]


def class_of(claim: Obj, classes: Sequence[Obj]) -> Obj | None:
    """The claim's StorageClass: named, or the default one when the claim names none."""
    name = (claim.get("spec") or {}).get("storageClassName")
    if name == "":
        return None  # explicitly no class: only pre-made volumes may bind it
    for storage_class in classes:
        if name and storage_class["metadata"]["name"] == name:
            return storage_class
        if not name and (storage_class["metadata"].get("annotations") or {}).get(
                DEFAULT_CLASS_ANNOTATION) == "true":
            return storage_class
    return None


def volume_for(claim: Obj, storage_class: Obj, node: str | None) -> dict[str, Any]:
    """The PersistentVolume the provisioner creates for a claim."""
    meta, spec = claim["metadata"], claim.get("spec") or {}
    provisioner = str(storage_class["provisioner"])
    name = f"pvc-{meta['uid']}"
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    volume_spec: dict[str, Any] = {
        "capacity": {"storage": storage},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "volumeMode": spec.get("volumeMode", "Filesystem"),
        "storageClassName": storage_class["metadata"]["name"],
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
        "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
                     "resourceVersion": meta.get("resourceVersion", "")},
    }
    if provisioner == LOCAL_PATH_PROVISIONER and node:
        volume_spec["hostPath"] = {
            "path": f"/var/local-path-provisioner/{name}_{meta['namespace']}_{meta['name']}",
            "type": "DirectoryOrCreate"}
        volume_spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    else:
        volume_spec["csi"] = {"driver": provisioner, "volumeHandle": name, "fsType": "ext4"}
    if storage_class.get("mountOptions"):
        volume_spec["mountOptions"] = list(storage_class["mountOptions"])
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name,
                         "annotations": {PROVISIONED_BY_ANNOTATION: provisioner}},
            "spec": volume_spec}


class StorageProvisioner:
    name = "storage"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self._claims = WorkQueue("provisioner", self._reconcile_claim, workers=4,
                                 retry_delays=SIM_RETRY_DELAYS)
        self._volumes = WorkQueue("volume-reclaim", self._reconcile_volume, workers=2,
                                  retry_delays=SIM_RETRY_DELAYS)
        self._waiting_reported: set[str] = set()  # claim uids told WaitForFirstConsumer
        # A bind is three writes; the watch events of the first two must not bind again.
        self.written = WrittenCache()

    async def start(self) -> None:
        for storage_class in default_storage_classes():
            try:
                await self.kube.create(STORAGE_CLASSES, storage_class)
            except KubeError as error:
                if error.status != 409:
                    raise
        claims = self.runtime.informer(PVCS)
        volumes = self.runtime.informer(PVS)
        classes = self.runtime.informer(STORAGE_CLASSES)
        await self.runtime.wait_synced(PVCS, PVS, STORAGE_CLASSES)
        claims.add_listener(self._on_claim)
        volumes.add_listener(lambda kind, pv: self._volumes.enqueue(key_of(pv)))
        classes.add_listener(lambda kind, sc: self._requeue_claims())
        self._claims.start()
        self._volumes.start()
        for claim in claims.values():
            self._claims.enqueue(key_of(claim))
        for volume in volumes.values():
            self._volumes.enqueue(key_of(volume))

    async def stop(self) -> None:
        await self._claims.stop()
        await self._volumes.stop()

    def _requeue_claims(self) -> None:
        for claim in self.runtime.informer(PVCS).values():
            self._claims.enqueue(key_of(claim))

    def _on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.written.forget(PVCS, key_of(claim))
            volume_name = (claim.get("spec") or {}).get("volumeName")
            if volume_name:
                self._volumes.enqueue(("", volume_name))
            return
        self._claims.enqueue(key_of(claim))

    async def _reconcile_claim(self, key: Key) -> float | None:
        claim = self.written.latest(PVCS, self.runtime.informer(PVCS), key)
        if claim is None or claim["metadata"].get("deletionTimestamp"):
            return None
        spec, status = claim.get("spec") or {}, claim.get("status") or {}
        if status.get("phase") == "Bound":
            return None
        if spec.get("volumeName"):
            volume = self.written.latest(PVS, self.runtime.informer(PVS),
                                         ("", spec["volumeName"]))
            if volume is not None:
                await self._bind(claim, volume)
            return None
        storage_class = class_of(claim, self.runtime.informer(STORAGE_CLASSES).values())
        if storage_class is None or storage_class.get("provisioner") not in PROVISIONERS:
            return None  # no provisioner of ours: the claim stays Pending, as on a cluster
        node = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE_ANNOTATION)
        if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
            uid = claim["metadata"]["uid"]
            if uid not in self._waiting_reported:
                self._waiting_reported.add(uid)
                await self.runtime.event(
                    claim, "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                    component="persistentvolume-controller")
            return None
        volume = volume_for(claim, storage_class, node)
        try:
            volume = await self.kube.create(PVS, volume)
        except KubeError as error:
            if error.status != 409:
                raise
            existing = self.runtime.informer(PVS).get("", volume["metadata"]["name"])
            if existing is None:
                return 0.2  # created a moment ago; the watch has not caught up
            volume = existing
        await self.runtime.event(
            claim, "ProvisioningSucceeded",
            f"Successfully provisioned volume {volume['metadata']['name']}",
            component=str(storage_class["provisioner"]))
        await self._bind(claim, volume)
        return None

    async def _bind(self, claim: Obj, volume: Obj) -> None:
        """The PV controller's bind: volume Bound, then the claim pointing at it, Bound."""
        meta, volume_name = claim["metadata"], volume["metadata"]["name"]
        if (volume.get("status") or {}).get("phase") != "Bound":
            self.written.remember(PVS, await self.kube.patch(
                PVS, None, volume_name, {"status": {"phase": "Bound"}}, subresource="status"))
        if (claim.get("spec") or {}).get("volumeName") != volume_name:
            claim_spec: dict[str, Any] = {"volumeName": volume_name}
            if (claim.get("spec") or {}).get("storageClassName") is None:
                # Retroactive default class assignment (Kubernetes 1.28+), as the PV
                # controller does for claims created without a class.
                claim_spec["storageClassName"] = (volume.get("spec") or {}).get(
                    "storageClassName")
            annotations = {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.kubernetes.io/storage-provisioner":
                    (volume["metadata"].get("annotations") or {}).get(
                        PROVISIONED_BY_ANNOTATION, "")}
            self.written.remember(PVCS, await self.kube.patch(
                PVCS, meta["namespace"], meta["name"],
                {"metadata": {"annotations": annotations}, "spec": claim_spec}))
        spec = volume.get("spec") or {}
        self.written.remember(PVCS, await self.kube.patch(
            PVCS, meta["namespace"], meta["name"], {"status": {
                "phase": "Bound", "accessModes": spec.get("accessModes"),
                "capacity": spec.get("capacity")}}, subresource="status"))
        log.info("Claim bound", claim=f"{meta['namespace']}/{meta['name']}", volume=volume_name)

    async def _reconcile_volume(self, key: Key) -> float | None:
        volume = self.runtime.informer(PVS).get(*key)
        if volume is None:
            return None
        spec, meta = volume.get("spec") or {}, volume["metadata"]
        claim_ref = spec.get("claimRef") or {}
        if not claim_ref or (volume.get("status") or {}).get("phase") not in ("Bound",
                                                                            "Released"):
            return None
        claim = self.runtime.informer(PVCS).get(claim_ref.get("namespace", ""),
                                                claim_ref.get("name", ""))
        if claim is not None and claim["metadata"].get("uid") == claim_ref.get("uid"):
            return None
        ours = (meta.get("annotations") or {}).get(PROVISIONED_BY_ANNOTATION) in PROVISIONERS
        if ours and spec.get("persistentVolumeReclaimPolicy", "Delete") == "Delete":
            await self.kube.delete(PVS, None, meta["name"])
            log.info("Volume deleted with its claim", volume=meta["name"])
        elif (volume.get("status") or {}).get("phase") != "Released":
            await self.kube.patch(PVS, None, meta["name"], {"status": {"phase": "Released"}},
                                  subresource="status")
        return None
