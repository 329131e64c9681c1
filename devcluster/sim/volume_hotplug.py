"""Declarative volume hot-plug and hot-unplug of a running VM, as KubeVirt 1.9 does it.

KubeVirt 1.9 applies a VM template edit of its hot-pluggable volumes live (VEP 31
"Declarative Volume Hotplug", feature gate `DeclarativeHotplugVolumes`; the older
`addvolume`/`removevolume` subresources now only patch the template too):

- the VM controller copies template volumes with `dataVolume.hotpluggable: true` (or
  `persistentVolumeClaim.hotpluggable: true`) and their disks into the running VMI's spec,
  and drops from the VMI the hot-plugged ones the template no longer has; such a change
  does not ask for a restart;
- the VMI controller (`pkg/virt-controller/watch/vmi/volume-hotplug.go`
  `handleHotplugVolumes`) runs one attachment pod `hp-volume-<random>` on the VMI's node,
  owned by the launcher pod, mounting every hot-plugged claim;
- virt-handler mounts the volume into the launcher and attaches it to the domain; the
  VMI's `status.volumeStatus[]` entry goes `MountedToPod` then `Ready` (reasons
  `VolumeMountedToPod`, `VolumeReady`) with `hotplugVolume.attachPodName/attachPodUID`.

The pure functions here plan those steps; `VolumeHotplugController` carries them out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

import structlog

from kubekit.informer import Key
from kubekit.resources import PODS, PVCS, VMIS, VMS
from kubekit.restclient import KubeError
from kubekit.workqueue import WorkQueue

from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .vmi_status import volume_statuses

log = structlog.get_logger("devcluster.sim.volume-hotplug")

Obj = Mapping[str, Any]

ATTACHMENT_POD_PREFIX: Final = "hp-volume-"
HOTPLUG_DISK_LABEL_VALUE: Final = "hotplug-disk"
PHASE_MOUNTED: Final = "MountedToPod"
PHASE_READY: Final = "Ready"
REASON_MOUNTED: Final = "VolumeMountedToPod"
REASON_READY: Final = "VolumeReady"
HOTPLUG_IMAGE: Final = "quay.io/kubevirt/virt-launcher:v1.9.0"


def is_hotpluggable(volume: Obj) -> bool:
    source = volume.get("dataVolume") or volume.get("persistentVolumeClaim") or {}
    return source.get("hotpluggable") is True


def claim_of(volume: Obj) -> str | None:
    name = (volume.get("persistentVolumeClaim") or {}).get("claimName") or (
        volume.get("dataVolume") or {}).get("name")
    return str(name) if name else None


def _volumes(spec: Obj) -> list[dict[str, Any]]:
    return [dict(v) for v in spec.get("volumes") or []]


def _disks(spec: Obj) -> list[dict[str, Any]]:
    return [dict(d) for d in ((spec.get("domain") or {}).get("devices") or {}).get("disks") or []]


def hotplug_names(spec: Obj) -> set[str]:
    return {str(v.get("name")) for v in _volumes(spec) if is_hotpluggable(v)}


def without_hotplug_volumes(spec: Obj) -> dict[str, Any]:
    """`spec` without its hot-pluggable volumes and their disks: what a restart compares
    (a hot-plug change is live, never a reason to restart)."""
    result = copy.deepcopy(dict(spec))
    names = hotplug_names(spec)
    if not names:
        return result
    result["volumes"] = [v for v in _volumes(spec) if str(v.get("name")) not in names]
    devices = result.setdefault("domain", {}).setdefault("devices", {})
    devices["disks"] = [d for d in _disks(spec) if str(d.get("name")) not in names]
    return result


def synced_vmi_volumes(template_spec: Obj, vmi_spec: Obj) -> tuple[list[dict[str, Any]],
                                                                   list[dict[str, Any]]]:
    """(volumes, disks) the VM controller wants in the VMI spec: the VMI's own, plus the
    template's hot-pluggable ones it lacks, minus hot-plugged ones the template dropped."""
    wanted_names = hotplug_names(template_spec)
    template_disks = {str(d.get("name")): d for d in _disks(template_spec)}
    volumes = [v for v in _volumes(vmi_spec)
               if not is_hotpluggable(v) or str(v.get("name")) in wanted_names]
    disks_kept = {str(v.get("name")) for v in volumes} | {
        str(d.get("name")) for d in _disks(vmi_spec)
        if str(d.get("name")) not in hotplug_names(vmi_spec)}
    disks = [d for d in _disks(vmi_spec) if str(d.get("name")) in disks_kept]
    present = {str(v.get("name")) for v in volumes}
    for volume in _volumes(template_spec):
        name = str(volume.get("name"))
        if is_hotpluggable(volume) and name not in present and name in template_disks:
            volumes.append(copy.deepcopy(volume))
            disks.append(copy.deepcopy(dict(template_disks[name])))
    return volumes, disks


def vmi_volumes_patch(template_spec: Obj, vmi: Obj) -> list[dict[str, Any]]:
    """The JSON patch of the VMI spec; empty when its hot-plugged volumes are in sync."""
    vmi_spec = vmi.get("spec") or {}
    volumes, disks = synced_vmi_volumes(template_spec, vmi_spec)
    if volumes == _volumes(vmi_spec) and disks == _disks(vmi_spec):
        return []
    devices = (vmi_spec.get("domain") or {}).get("devices") or {}
    return [*_replace_list("/spec/volumes", "volumes" in vmi_spec, _volumes(vmi_spec), volumes),
            *_replace_list("/spec/domain/devices/disks", "disks" in devices,
                           _disks(vmi_spec), disks)]


def _replace_list(path: str, present: bool, old: list[dict[str, Any]],
                  new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace a list guarded by a test of its old value (add it when it is absent)."""
    if not present:
        return [{"op": "add", "path": path, "value": new}]
    return [{"op": "test", "path": path, "value": old},
            {"op": "replace", "path": path, "value": new}]


def attachment_pod(vmi: Obj, launcher: Obj, claims: list[tuple[str, str]],
                   suffix: str) -> dict[str, Any]:
    """The attachment pod of the VMI's hot-plugged `claims` ((volume, claim) pairs) on the
    launcher's node, owned by the launcher pod (so it goes with it)."""
    meta, launcher_meta = vmi.get("metadata") or {}, launcher.get("metadata") or {}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{ATTACHMENT_POD_PREFIX}{suffix}",
            "namespace": meta.get("namespace", "default"),
            "labels": {"kubevirt.io": HOTPLUG_DISK_LABEL_VALUE,
                       "kubevirt.io/created-by": str(meta.get("uid", ""))},
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Pod", "name": launcher_meta.get("name", ""),
                "uid": launcher_meta.get("uid", ""), "controller": True,
                "blockOwnerDeletion": True}],
        },
        "spec": {
            "nodeName": (launcher.get("spec") or {}).get("nodeName"),
            "restartPolicy": "Never",
            "containers": [{
                "name": "hotplug-disk", "image": HOTPLUG_IMAGE,
                "command": ["/bin/sh", "-c", "/usr/bin/container-disk --copy-path /path/hp"],
                "resources": {"requests": {"cpu": "10m", "memory": "2M"},
                              "limits": {"cpu": "100m", "memory": "80M"}},
                "volumeMounts": [{"name": volume, "mountPath": f"/path/{volume}"}
                                 for volume, _ in claims],
            }],
            "volumes": [{"name": volume, "persistentVolumeClaim": {"claimName": claim}}
                        for volume, claim in claims],
        },
    }


def hotplug_volume_statuses(vmi: Obj, pvcs: Mapping[str, Obj],
                            attach_pod: Obj | None) -> list[dict[str, Any]]:
    """`status.volumeStatus[]` with the hot-plugged volumes' attachment progress: one step
    per sync (MountedToPod once the attachment pod runs, then Ready), entries of unplugged
    volumes gone."""
    spec = vmi.get("spec") or {}
    hotplugged = hotplug_names(spec)
    fresh = {str(e["name"]): e for e in volume_statuses(vmi, pvcs)}
    existing = {str(e.get("name")): dict(e)
                for e in (vmi.get("status") or {}).get("volumeStatus") or []}
    pod_running = attach_pod is not None and (attach_pod.get("status") or {}).get(
        "phase") == "Running"
    result: list[dict[str, Any]] = []
    for volume in _volumes(spec):
        name = str(volume.get("name"))
        if name not in hotplugged:
            result.append(existing.get(name) or fresh[name])
            continue
        entry = {**fresh[name], **{k: v for k, v in existing.get(name, {}).items()
                                   if k in ("phase", "reason", "message", "hotplugVolume")}}
        if pod_running and attach_pod is not None:
            pod_meta = attach_pod.get("metadata") or {}
            entry["hotplugVolume"] = {"attachPodName": pod_meta.get("name", ""),
                                      "attachPodUID": pod_meta.get("uid", "")}
            if entry.get("phase") not in (PHASE_MOUNTED, PHASE_READY):
                entry.update(phase=PHASE_MOUNTED, reason=REASON_MOUNTED,
                             message=f"Volume {name} has been mounted in virt-launcher pod")
            elif entry.get("phase") == PHASE_MOUNTED:
                entry.update(phase=PHASE_READY, reason=REASON_READY,
                             message=f"Successfully attach hotplugged volume {name} to VM")
        else:
            entry.setdefault("phase", "Bound")
            entry.setdefault("reason", "PVCBound")
            entry.setdefault("message", "PVC is in phase Bound")
        result.append(entry)
    return result


class VolumeHotplugController:
    """The VM controller's, VMI controller's and virt-handler's parts of volume hot-plug."""

    name = "volume-hotplug"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.vms = runtime.informer(VMS)
        self.vmis = runtime.informer(VMIS)
        self.pods = runtime.informer(PODS)
        self.pvcs = runtime.informer(PVCS)
        # vmi uid -> the attachment pod created last, until the informer shows it (the
        # next sync must not create a second one).
        self._created: dict[str, dict[str, Any]] = {}
        self.queue = WorkQueue("volume-hotplug", self._sync, workers=2,
                               retry_delays=SIM_RETRY_DELAYS)

    async def start(self) -> None:
        self.vms.add_listener(lambda kind, vm: self._enqueue(vm))
        self.vmis.add_listener(lambda kind, vmi: self._enqueue(vmi))
        self.pods.add_listener(self._on_pod)
        self.queue.start()
        await self.runtime.wait_synced(VMS, VMIS, PODS, PVCS)
        for vmi in self.vmis.values():
            self._enqueue(vmi)

    async def stop(self) -> None:
        await self.queue.stop()

    def _enqueue(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self.queue.enqueue((str(meta.get("namespace", "")), str(meta.get("name", ""))))

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get("kubevirt.io") != HOTPLUG_DISK_LABEL_VALUE:
            return
        uid = labels.get("kubevirt.io/created-by")
        for vmi in self.vmis.values():
            if (vmi.get("metadata") or {}).get("uid") == uid:
                self._enqueue(vmi)

    def _launcher(self, vmi: Obj) -> dict[str, Any] | None:
        meta = vmi.get("metadata") or {}
        node = (vmi.get("status") or {}).get("nodeName")
        for pod in self.pods.values():
            pod_meta = pod.get("metadata") or {}
            labels = pod_meta.get("labels") or {}
            if labels.get("kubevirt.io") == "virt-launcher" and labels.get(
                    "kubevirt.io/created-by") == meta.get("uid") and (
                    pod.get("spec") or {}).get("nodeName") == node and (
                    pod.get("status") or {}).get("phase") == "Running":
                return pod
        return None

    def _attachment_pods(self, vmi: Obj) -> list[dict[str, Any]]:
        uid = str((vmi.get("metadata") or {}).get("uid", ""))
        found = [p for p in self.pods.values()
                if ((p.get("metadata") or {}).get("labels") or {}).get("kubevirt.io")
                == HOTPLUG_DISK_LABEL_VALUE
                and ((p.get("metadata") or {}).get("labels") or {}).get(
                    "kubevirt.io/created-by") == uid
                and not (p.get("metadata") or {}).get("deletionTimestamp")]
        created = self._created.get(uid)
        if created is None:
            return found
        if any(p["metadata"]["uid"] == created["metadata"]["uid"] for p in found):
            self._created.pop(uid)
            return found
        return [*found, created]

    async def _sync(self, key: Key) -> float | None:
        vmi = self.vmis.get(*key)
        vm = self.vms.get(*key)
        if vmi is None or (vmi.get("status") or {}).get("phase") != "Running" or (
                vmi.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if vm is not None:
            template = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
            patch = vmi_volumes_patch(template, vmi)
            if patch:
                try:
                    vmi = await self.kube.patch(VMIS, key[0], key[1], patch, kind="json")
                except KubeError as error:
                    if error.status in (409, 422):
                        return 0.2  # the VMI changed meanwhile: plan again on the new one
                    raise
                log.info("Hot-plug volumes synced into the VMI", vmi=f"{key[0]}/{key[1]}")
        return await self._attach(key, vmi)

    async def _attach(self, key: Key, vmi: Obj) -> float | None:
        spec = vmi.get("spec") or {}
        claims = [(str(v.get("name")), str(claim_of(v))) for v in _volumes(spec)
                  if is_hotpluggable(v) and claim_of(v)]
        pods = self._attachment_pods(vmi)
        current = pods[0] if pods else None
        mounted = sorted(
            (str(v.get("name")), str((v.get("persistentVolumeClaim") or {}).get("claimName")))
            for v in ((current or {}).get("spec") or {}).get("volumes") or [])
        if current is not None and mounted != sorted(claims):
            # The set of hot-plugged claims changed: a new pod replaces the old one.
            await self.kube.delete(PODS, key[0], current["metadata"]["name"])
            self._created.pop(str(vmi["metadata"].get("uid", "")), None)
            current = None
        if current is None and claims:
            launcher = self._launcher(vmi)
            if launcher is None:
                return 1.0
            from .virt_controller import random_suffix

            current = await self.kube.create(
                PODS, attachment_pod(vmi, launcher, claims, random_suffix()))
            self._created[str(vmi["metadata"].get("uid", ""))] = current
            log.info("Attachment pod created", vmi=f"{key[0]}/{key[1]}",
                     pod=current["metadata"]["name"])
        pvcs = {str(p["metadata"]["name"]): p for p in self.pvcs.values()
                if p["metadata"].get("namespace") == key[0]}
        statuses = hotplug_volume_statuses(vmi, pvcs, current)
        if statuses != list((vmi.get("status") or {}).get("volumeStatus") or []):
            try:
                await self.kube.patch(VMIS, key[0], key[1],
                                      {"status": {"volumeStatus": statuses}})
            except KubeError as error:
                if error.status != 404:
                    raise
                return None
            if any(s.get("phase") == PHASE_MOUNTED for s in statuses):
                return 0.2  # virt-handler attaches to the domain right after mounting
        return None
