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

A claim whose `dataSourceRef` (or `dataSource`) is a VolumeSnapshot is provisioned, as
external-provisioner does, once the snapshot is ready to use (until then a
`ProvisioningFailed` Warning says why, retried); a PersistentVolumeClaim source is a CSI
clone. The new volume starts with the source's content marker (`volume_content.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.quantity import to_bytes
from kubekit.resources import PVCS, PVS, STORAGE_CLASSES
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from .csi_snapshots import install_snapshot_api
from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .snapshot_crds import VOLUME_SNAPSHOT_CONTENTS, VOLUME_SNAPSHOTS
from .volume_content import CONTENT_ANNOTATION, Origin, claim_origin, content_of
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


def snapshot_source_problem(claim: Obj, snapshot: Obj | None) -> str | None:
    """Why external-provisioner cannot yet provision a claim from a VolumeSnapshot (its
    `getSnapshotSource` messages), or None when the snapshot is ready."""
    spec = claim.get("spec") or {}
    ref = spec.get("dataSourceRef") or spec.get("dataSource") or {}
    name = ref.get("name")
    prefix = f"error getting handle for DataSource Type VolumeSnapshot by Name {name}"
    if snapshot is None:
        return (f"{prefix}: error getting snapshot {name} from api server: "
                f'volumesnapshots.snapshot.storage.k8s.io "{name}" not found')
    status = snapshot.get("status") or {}
    if not status.get("readyToUse"):
        return f"{prefix}: snapshot {name} is not Ready"
    if not status.get("boundVolumeSnapshotContentName"):
        return f"{prefix}: snapshot {name} not bound"
    requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if requested is not None and status.get("restoreSize") is not None and \
            to_bytes(requested) < to_bytes(status["restoreSize"]):
        return (f"requested volume size {to_bytes(requested)} is less than the size "
                f"{to_bytes(status['restoreSize'])} for the source snapshot {name}")
    return None


def volume_for(claim: Obj, storage_class: Obj, node: str | None,
               content: str | None = None) -> dict[str, Any]:
    """The PersistentVolume the provisioner creates for a claim (`content`: the marker it
    starts with, from its data source)."""
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
    annotations = {PROVISIONED_BY_ANNOTATION: provisioner}
    if content is not None:
        annotations[CONTENT_ANNOTATION] = content
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": annotations},
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
        self._failures_reported: dict[str, str] = {}  # claim uid -> last ProvisioningFailed
        # A bind is three writes; the watch events of the first two must not bind again.
        self.written = WrittenCache()

    async def start(self) -> None:
        # Claims may name snapshots as their data source: the API must exist to watch them.
        await install_snapshot_api(self.kube)
        for storage_class in default_storage_classes():
            try:
                await self.kube.create(STORAGE_CLASSES, storage_class)
            except KubeError as error:
                if error.status != 409:
                    raise
        claims = self.runtime.informer(PVCS)
        volumes = self.runtime.informer(PVS)
        classes = self.runtime.informer(STORAGE_CLASSES)
        snapshots = self.runtime.informer(VOLUME_SNAPSHOTS)
        self.runtime.informer(VOLUME_SNAPSHOT_CONTENTS)
        await self.runtime.wait_synced(PVCS, PVS, STORAGE_CLASSES, VOLUME_SNAPSHOTS,
                                       VOLUME_SNAPSHOT_CONTENTS)
        snapshots.add_listener(self._on_snapshot)
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

    def _on_snapshot(self, kind: str, snapshot: dict[str, Any]) -> None:
        """A claim waiting for a snapshot to be ready is provisioned once it is."""
        namespace, name = key_of(snapshot)
        for claim in self.runtime.informer(PVCS).values():
            origin = claim_origin(claim, lambda _namespace, _name: None)
            if origin == Origin("VolumeSnapshot", namespace, name) and \
                    (claim.get("status") or {}).get("phase") != "Bound":
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
        origin = claim_origin(claim, lambda namespace, name: None)
        content: str | None = None
        if origin is not None and origin.kind == "VolumeSnapshot":
            snapshot = self.runtime.informer(VOLUME_SNAPSHOTS).get(origin.namespace,
                                                                   origin.name)
            problem = snapshot_source_problem(claim, snapshot)
            if problem is not None:
                await self._provisioning_failed(claim, storage_class, problem)
                return None  # retried when the snapshot changes
            content = self._origin_content(origin)
        elif origin is not None and origin.kind == "PersistentVolumeClaim":
            content = self._origin_content(origin)
        volume = volume_for(claim, storage_class, node, content)
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

    def _origin_content(self, origin: Origin) -> str | None:
        if origin.kind == "PersistentVolumeClaim":
            source = self.runtime.informer(PVCS).get(origin.namespace, origin.name)
            volume_name = ((source or {}).get("spec") or {}).get("volumeName")
            return content_of(self.runtime.informer(PVS).get("", str(volume_name))
                              if volume_name else None)
        snapshot = self.runtime.informer(VOLUME_SNAPSHOTS).get(origin.namespace, origin.name)
        bound = ((snapshot or {}).get("status") or {}).get("boundVolumeSnapshotContentName")
        return content_of(self.runtime.informer(VOLUME_SNAPSHOT_CONTENTS).get("", str(bound))
                          if bound else None)

    async def _provisioning_failed(self, claim: Obj, storage_class: Obj, problem: str) -> None:
        """external-provisioner's Warning, once per distinct message."""
        message = (f'failed to provision volume with StorageClass '
                   f'"{storage_class["metadata"]["name"]}": {problem}')
        uid = str(claim["metadata"]["uid"])
        if self._failures_reported.get(uid) == message:
            return
        self._failures_reported[uid] = message
        await self.runtime.event(dict(claim), "ProvisioningFailed", message, kind="Warning",
                                 component=str(storage_class["provisioner"]))

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
        # The informer may still hold an older claim of that name (one deleted and made
        # again, as an InPlace restore does): the API server decides whether it is gone.
        current = await self.kube.get(PVCS, claim_ref.get("namespace", ""),
                                      claim_ref.get("name", ""))
        if current is not None and current["metadata"].get("uid") == claim_ref.get("uid"):
            return None
        ours = (meta.get("annotations") or {}).get(PROVISIONED_BY_ANNOTATION) in PROVISIONERS
        if ours and spec.get("persistentVolumeReclaimPolicy", "Delete") == "Delete":
            await self.kube.delete(PVS, None, meta["name"])
            log.info("Volume deleted with its claim", volume=meta["name"])
        elif (volume.get("status") or {}).get("phase") != "Released":
            await self.kube.patch(PVS, None, meta["name"], {"status": {"phase": "Released"}},
                                  subresource="status")
        return None
