"""Disks of a running KubeVirt VM in the simulation: declarative volume hot-plug, online
expansion by the CSI resizer, and volume (storage live) migration, driven with kubectl."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import DevCluster
from tests.oracles import KUBEVIRT_SWAGGER, swagger_errors

from .conftest import apply, condition, get, vm_manifest, wait_for

pytestmark = pytest.mark.slow


def data_volume(name: str, storage_class: str = "shared", size: str = "1Gi") -> str:
    return f"""
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: {name}
spec:
  source:
    blank: {{}}
  storage:
    storageClassName: {storage_class}
    accessModes: [ReadWriteMany]
    resources:
      requests:
        storage: {size}
"""


def storage_class(name: str, annotations: str = "") -> str:
    return f"""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {name}
  annotations: {{{annotations}}}
provisioner: sim.vdcos.io/shared
volumeBindingMode: Immediate
allowVolumeExpansion: true
"""


def vm_with_root_disk(name: str, claim: str) -> str:
    """A running VM booting from the DataVolume `claim` (volume and disk `root`)."""
    return f"""
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        devices:
          disks:
          - name: root
            disk: {{bus: virtio}}
          interfaces:
          - name: default
            masquerade: {{}}
        memory:
          guest: 1Gi
      networks:
      - name: default
        pod: {{}}
      volumes:
      - name: root
        dataVolume:
          name: {claim}
"""


def running(cluster: DevCluster, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        vmi = get(cluster, "vmi", name)
        return vmi if (vmi.get("status") or {}).get("phase") == "Running" else None

    return wait_for(check, timeout=60, message=f"VMI {name} Running")


def succeeded(cluster: DevCluster, *names: str) -> None:
    cluster.kubectl("wait", *[f"dv/{n}" for n in names],
                    "--for=jsonpath={.status.phase}=Succeeded", "--timeout=60s", timeout=70)


def volume_status(vmi: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in (vmi.get("status") or {}).get("volumeStatus") or []:
        if entry.get("name") == name:
            found: dict[str, Any] = entry
            return found
    return {}


def patch(cluster: DevCluster, kind: str, name: str, body: Any, kind_of_patch: str = "json",
          subresource: str | None = None) -> None:
    args = ["patch", kind, name, "--type", kind_of_patch, "-p", json.dumps(body)]
    if subresource:
        args += ["--subresource", subresource]
    cluster.kubectl(*args)


def assert_valid(cluster: DevCluster, name: str) -> None:
    for kind, definition in (("vm", "v1.VirtualMachine"), ("vmi", "v1.VirtualMachineInstance")):
        obj = get(cluster, kind, name)
        assert not swagger_errors(obj, KUBEVIRT_SWAGGER, definition), (kind, name)


def test_hot_plug_and_unplug_a_data_volume_keeps_the_vmi(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("hp"))
    apply(cluster, data_volume("hp-data"))
    first = running(cluster, "hp")
    succeeded(cluster, "hp-data")

    patch(cluster, "vm", "hp", [
        {"op": "add", "path": "/spec/template/spec/volumes", "value": [
            {"name": "data", "dataVolume": {"name": "hp-data", "hotpluggable": True}}]},
        {"op": "add", "path": "/spec/template/spec/domain/devices/disks", "value": [
            {"name": "data", "disk": {"bus": "scsi"}}]}])
    vmi = wait_for(lambda: (v := get(cluster, "vmi", "hp")) and
                   volume_status(v, "data").get("phase") == "Ready" and v,
                   message="the hot-plugged volume Ready")
    entry = volume_status(vmi, "data")
    assert entry["reason"] == "VolumeReady"
    assert entry["target"].startswith("sd")  # SCSI
    pod = get(cluster, "pod", entry["hotplugVolume"]["attachPodName"])
    assert pod["spec"]["nodeName"] == vmi["status"]["nodeName"]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "hp-data"
    assert vmi["metadata"]["uid"] == first["metadata"]["uid"]
    assert not condition(get(cluster, "vm", "hp"), "RestartRequired")
    assert_valid(cluster, "hp")

    patch(cluster, "vm", "hp", [
        {"op": "remove", "path": "/spec/template/spec/volumes"},
        {"op": "remove", "path": "/spec/template/spec/domain/devices/disks"}])
    def unplugged() -> dict[str, Any] | None:
        found = get(cluster, "vmi", "hp")
        return found if found and not volume_status(found, "data") else None

    vmi = wait_for(unplugged, message="the volume unplugged")
    assert [v["name"] for v in vmi["spec"].get("volumes") or []] == []
    wait_for(lambda: not get(cluster, "pod", entry["hotplugVolume"]["attachPodName"]),
             message="the attachment pod gone")
    assert vmi["metadata"]["uid"] == first["metadata"]["uid"]
    assert not condition(get(cluster, "vm", "hp"), "RestartRequired")


def test_a_mounted_claim_grows_online_on_an_expandable_class(cluster: DevCluster) -> None:
    apply(cluster, data_volume("grow-root"))
    apply(cluster, vm_with_root_disk("grow", "grow-root"))
    running(cluster, "grow")
    patch(cluster, "pvc", "grow-root", {"spec": {"resources": {"requests": {"storage": "5Gi"}}}},
          kind_of_patch="merge")
    pvc = wait_for(lambda: (p := get(cluster, "pvc", "grow-root")) and
                   p["status"].get("capacity", {}).get("storage") == "5Gi" and p,
                   message="the claim's capacity 5Gi")
    assert not pvc["status"].get("conditions")
    volume = get(cluster, "pv", pvc["spec"]["volumeName"], namespace="")
    assert volume["spec"]["capacity"]["storage"] == "5Gi"
    reasons = cluster.kubectl("get", "events", "--field-selector",
                              "involvedObject.name=grow-root", "-o",
                              "jsonpath={.items[*].reason}").stdout.split()
    assert {"Resizing", "FileSystemResizeRequired", "FileSystemResizeSuccessful"} <= set(reasons)


def test_volume_migration_moves_the_disk_and_keeps_the_vmi(cluster: DevCluster) -> None:
    apply(cluster, storage_class("fast"))
    apply(cluster, data_volume("move-src"))
    apply(cluster, data_volume("move-dst", storage_class="fast"))
    apply(cluster, vm_with_root_disk("move", "move-src"))
    first = running(cluster, "move")
    succeeded(cluster, "move-dst")

    patch(cluster, "vm", "move", [
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"},
        {"op": "replace", "path": "/spec/template/spec/volumes/0/dataVolume/name",
         "value": "move-dst"}])
    vmi = wait_for(lambda: (v := get(cluster, "vmi", "move")) and
                   volume_status(v, "root").get("persistentVolumeClaimInfo", {}).get(
                       "claimName") == "move-dst" and not condition(v, "VolumesChange") and v,
                   message="the root volume on move-dst")
    assert vmi["metadata"]["uid"] == first["metadata"]["uid"]
    assert vmi["status"]["migratedVolumes"][0]["sourcePVCInfo"]["claimName"] == "move-src"
    assert vmi["status"]["migratedVolumes"][0]["destinationPVCInfo"]["claimName"] == "move-dst"
    vm = get(cluster, "vm", "move")
    assert not condition(vm, "RestartRequired")
    assert not vm["status"].get("volumeUpdateState")
    assert_valid(cluster, "move")


def test_volume_migration_to_an_unreachable_class_returns_to_the_source(
        cluster: DevCluster) -> None:
    apply(cluster, storage_class("far", annotations='"sim.vdcos.io/unreachable": "true"'))
    apply(cluster, data_volume("stay-src"))
    apply(cluster, data_volume("stay-dst", storage_class="far"))
    apply(cluster, vm_with_root_disk("stay", "stay-src"))
    first = running(cluster, "stay")
    succeeded(cluster, "stay-dst")

    patch(cluster, "vm", "stay", [
        {"op": "add", "path": "/spec/updateVolumesStrategy", "value": "Migration"},
        {"op": "replace", "path": "/spec/template/spec/volumes/0/dataVolume/name",
         "value": "stay-dst"}])
    vmi = wait_for(lambda: (v := get(cluster, "vmi", "stay")) and
                   condition(v, "VolumesChange").get("status") == "False" and v,
                   message="the volume migration failed")
    failed = condition(vmi, "VolumesChange")
    assert failed["reason"] == "VolumeMigrationFailed"
    assert "far" in failed["message"] and "not reachable" in failed["message"]
    assert vmi["spec"]["volumes"][0]["dataVolume"]["name"] == "stay-src"
    assert vmi["metadata"]["uid"] == first["metadata"]["uid"]

    patch(cluster, "vm", "stay", [
        {"op": "replace", "path": "/spec/template/spec/volumes/0/dataVolume/name",
         "value": "stay-src"}])
    wait_for(lambda: not condition(get(cluster, "vmi", "stay"), "VolumesChange"),
             message="the failure cleared once the template is reverted")
    assert_valid(cluster, "stay")
