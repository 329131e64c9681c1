"""CSI snapshots and KubeVirt's snapshot/restore controllers in the simulation, with kubectl.

A disk's content marker (PVC annotation `sim.vdcos.io/write-marker` to write, mirrored in
`sim.vdcos.io/content`) shows what a snapshot kept and what a restore brought back.
Everything the emulation writes is checked against KubeVirt's swagger.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from tests.harness import DevCluster
from tests.oracles import CDI_SWAGGER, KUBEVIRT_SWAGGER, validate_against_swagger

from .helpers import apply, condition, get_json

CONTENT = "sim.vdcos.io/content"
WRITE_MARKER = "sim.vdcos.io/write-marker"


def claim(name: str, storage_class: str, extra_spec: str = "") -> str:
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  storageClassName: {storage_class}
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
{extra_spec}
"""


def volume_snapshot(name: str, claim_name: str) -> str:
    return f"""
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata:
  name: {name}
spec:
  source:
    persistentVolumeClaimName: {claim_name}
"""


def vm(name: str, claim_name: str, *, run_strategy: str = "Always",
       guest_agent: bool = True) -> str:
    annotations = "" if guest_agent else """
      annotations:
        sim.vdcos.io/guest-agent: "false\""""
    return f"""
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  runStrategy: {run_strategy}
  template:
    metadata:
      labels: {{app: {name}}}{annotations}
    spec:
      domain:
        devices:
          disks:
          - name: disk
            disk: {{bus: virtio}}
        memory:
          guest: 1Gi
      volumes:
      - name: disk
        persistentVolumeClaim:
          claimName: {claim_name}
"""


def vm_snapshot(name: str, vm_name: str) -> str:
    return f"""
apiVersion: snapshot.kubevirt.io/v1beta1
kind: VirtualMachineSnapshot
metadata:
  name: {name}
spec:
  source:
    apiGroup: kubevirt.io
    kind: VirtualMachine
    name: {vm_name}
"""


def vm_restore(name: str, target: str, snapshot: str) -> str:
    return f"""
apiVersion: snapshot.kubevirt.io/v1beta1
kind: VirtualMachineRestore
metadata:
  name: {name}
spec:
  target:
    apiGroup: kubevirt.io
    kind: VirtualMachine
    name: {target}
  virtualMachineSnapshotName: {snapshot}
"""


def wait(cluster: DevCluster, what: str, condition_: str, timeout: int = 60) -> None:
    """`kubectl wait` (a watch), once the object exists when it may not yet."""
    if condition_ != "delete":
        cluster.kubectl("wait", what, "--for=create", f"--timeout={timeout}s",
                        timeout=timeout + 10)
    cluster.kubectl("wait", what, f"--for={condition_}", f"--timeout={timeout}s",
                    timeout=timeout + 10)


def write_marker(cluster: DevCluster, claim_name: str, text: str) -> None:
    """The guest writes `text` into the disk; done once the claim's mirror shows it."""
    cluster.kubectl("annotate", "pvc", claim_name, "--overwrite", f"{WRITE_MARKER}={text}")
    wait(cluster, f"pvc/{claim_name}",
         f"jsonpath={{.metadata.annotations.sim\\.vdcos\\.io/content}}={text}")


def content_of(cluster: DevCluster, claim_name: str) -> str | None:
    pvc = get_json(cluster, "pvc", claim_name)
    found: str | None = (pvc["metadata"].get("annotations") or {}).get(CONTENT)
    return found


def kubevirt_object(cluster: DevCluster, kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = get_json(cluster, kind, name)
    for key in ("metadata",):
        obj[key] = {k: v for k, v in obj[key].items() if k != "managedFields"}
    return obj


def test_volume_snapshot_of_a_shared_claim_restores_its_content(
        datacenter: DevCluster) -> None:
    apply(datacenter, claim("data", "shared"))
    wait(datacenter, "pvc/data", "jsonpath={.status.phase}=Bound")
    write_marker(datacenter, "data", "before-snapshot")

    apply(datacenter, volume_snapshot("data-snap", "data"))
    wait(datacenter, "volumesnapshot/data-snap", "jsonpath={.status.readyToUse}=true")
    snapshot = get_json(datacenter, "volumesnapshot", "data-snap")
    assert snapshot["spec"]["volumeSnapshotClassName"] == "shared-snapclass"
    assert snapshot["status"]["restoreSize"] == "1Gi"
    assert snapshot["status"]["creationTime"]
    content = get_json(datacenter, "volumesnapshotcontent",
                       snapshot["status"]["boundVolumeSnapshotContentName"])
    assert content["spec"]["volumeSnapshotRef"]["uid"] == snapshot["metadata"]["uid"]
    assert content["spec"]["driver"] == "sim.vdcos.io/shared"
    assert content["status"]["readyToUse"] is True
    assert content["status"]["restoreSize"] == 1024 ** 3
    table = datacenter.kubectl("get", "volumesnapshot", "data-snap").stdout.split()
    assert table[:8] == ["NAME", "READYTOUSE", "SOURCEPVC", "SOURCESNAPSHOTCONTENT",
                         "RESTORESIZE", "SNAPSHOTCLASS", "SNAPSHOTCONTENT", "CREATIONTIME"]
    row = datacenter.kubectl("get", "volumesnapshot", "data-snap", "--no-headers").stdout
    assert row.split()[:3] == ["data-snap", "true", "data"]
    assert {"1Gi", "shared-snapclass", content["metadata"]["name"]} <= set(row.split())

    write_marker(datacenter, "data", "after-snapshot")
    apply(datacenter, claim("data-restored", "shared", """
  dataSourceRef:
    apiGroup: snapshot.storage.k8s.io
    kind: VolumeSnapshot
    name: data-snap
"""))
    wait(datacenter, "pvc/data-restored", "jsonpath={.status.phase}=Bound")
    wait(datacenter, "pvc/data-restored",
         "jsonpath={.metadata.annotations.sim\\.vdcos\\.io/content}=before-snapshot")
    assert content_of(datacenter, "data") == "after-snapshot"
    volumes = json.loads(datacenter.kubectl("get", "--raw", "/api/v1/persistentvolumes").stdout)
    restored = get_json(datacenter, "pvc", "data-restored")["spec"]["volumeName"]
    by_name = {v["metadata"]["name"]: v for v in volumes["items"]}
    assert by_name[restored]["metadata"]["annotations"][CONTENT] == "before-snapshot"


def test_a_local_path_volume_cannot_be_snapshotted(datacenter: DevCluster) -> None:
    apply(datacenter, claim("local", "standard"))
    apply(datacenter, volume_snapshot("local-snap", "local"))
    wait(datacenter, "volumesnapshot/local-snap",
         "jsonpath={.status.error.message}=Failed to set default snapshot class with error "
         "the PVC local is not yet bound to a PV, will not attempt to take a snapshot")
    apply(datacenter, vm("local-vm", "local"))  # its first consumer binds the claim
    wait(datacenter, "pvc/local", "jsonpath={.status.phase}=Bound")
    expected = ("Failed to set default snapshot class with error snapshotting non-CSI volumes "
                "is not supported, snapshot:default/local-snap")
    wait(datacenter, "volumesnapshot/local-snap", f"jsonpath={{.status.error.message}}={expected}")
    snapshot = get_json(datacenter, "volumesnapshot", "local-snap")
    assert "readyToUse" not in snapshot["status"]
    assert "boundVolumeSnapshotContentName" not in snapshot["status"]
    events = get_json(datacenter, "events", "--field-selector",
                      "involvedObject.name=local-snap,reason=SetDefaultSnapshotClassFailed")
    assert expected in [e["message"] for e in events["items"]]
    wait(datacenter, "vm/local-vm", "jsonpath={.status.volumeSnapshotStatuses[0].enabled}=false")
    statuses = get_json(datacenter, "vm", "local-vm")["status"]["volumeSnapshotStatuses"]
    for entry in statuses:
        validate_against_swagger(entry, KUBEVIRT_SWAGGER, "v1.VolumeSnapshotStatus")
    assert statuses == [{"name": "disk", "enabled": False, "reason":
                         "No VolumeSnapshotClass: Volume snapshots are not configured for this "
                         "StorageClass [standard] [disk]"}]


def test_snapshot_of_a_running_vm_with_guest_agent_then_restore(datacenter: DevCluster) -> None:
    apply(datacenter, claim("agent-disk", "shared"))
    apply(datacenter, vm("agent", "agent-disk"))
    wait(datacenter, "vmi/agent", "condition=AgentConnected")
    write_marker(datacenter, "agent-disk", "v1")

    apply(datacenter, vm_snapshot("agent-snap", "agent"))
    wait(datacenter, "vmsnapshot/agent-snap", "jsonpath={.status.phase}=Succeeded")
    snapshot = kubevirt_object(datacenter, "vmsnapshot", "agent-snap")
    validate_against_swagger(snapshot, KUBEVIRT_SWAGGER, "v1beta1.VirtualMachineSnapshot")
    status = snapshot["status"]
    assert status["readyToUse"] is True
    assert status["indications"] == ["GuestAgent", "Online"]
    assert status["sourceUID"] == get_json(datacenter, "vm", "agent")["metadata"]["uid"]
    assert status["snapshotVolumes"] == {"includedVolumes": ["disk"]}
    assert condition(snapshot, "Ready")["reason"] == "Ready"
    assert condition(snapshot, "Progressing")["reason"] == "Operation complete"
    row = datacenter.kubectl("get", "vmsnapshot", "agent-snap", "--no-headers").stdout.split()
    assert row[:5] == ["agent-snap", "VirtualMachine", "agent", "Succeeded", "true"]
    content = kubevirt_object(datacenter, "vmsnapshotcontent",
                              status["virtualMachineSnapshotContentName"])
    validate_against_swagger(content, KUBEVIRT_SWAGGER, "v1beta1.VirtualMachineSnapshotContent")
    [backup] = content["spec"]["volumeBackups"]
    assert backup["volumeSnapshotName"] == \
        f"vmsnapshot-{snapshot['metadata']['uid']}-volume-disk"
    assert get_json(datacenter, "volumesnapshot", backup["volumeSnapshotName"])["status"][
        "readyToUse"] is True
    assert "snapshotInProgress" not in get_json(datacenter, "vm", "agent")["status"]

    write_marker(datacenter, "agent-disk", "v2")
    apply(datacenter, vm_restore("agent-restore", "agent", "agent-snap"))
    wait(datacenter, "vmrestore/agent-restore",
         "jsonpath={.status.conditions[?(@.type=='Ready')].reason}="
         "Waiting for target VM to be powered off. Please stop the restore target to proceed "
         "with restore, or the operation will fail after 5m0s")
    datacenter.kubectl("patch", "vm", "agent", "--type", "merge",
                       "-p", '{"spec":{"runStrategy":"Halted"}}')
    wait(datacenter, "vmrestore/agent-restore", "jsonpath={.status.complete}=true")
    restore = kubevirt_object(datacenter, "vmrestore", "agent-restore")
    validate_against_swagger(restore, KUBEVIRT_SWAGGER, "v1beta1.VirtualMachineRestore")
    claim_name = f"restore-{restore['metadata']['uid']}-disk"
    assert restore["status"]["restores"] == [{
        "volumeName": "disk", "persistentVolumeClaim": claim_name,
        "volumeSnapshotName": backup["volumeSnapshotName"]}]
    assert condition(restore, "Ready") | {"lastTransitionTime": None} == {
        "type": "Ready", "status": "True", "reason": "Operation complete",
        "lastTransitionTime": None, "lastProbeTime": None}
    restored = get_json(datacenter, "vm", "agent")
    assert restored["spec"]["template"]["spec"]["volumes"] == [
        {"name": "disk", "persistentVolumeClaim": {"claimName": claim_name}}]
    assert restored["spec"]["runStrategy"] == "Halted"
    assert "restoreInProgress" not in restored["status"]
    wait(datacenter, f"pvc/{claim_name}",
         "jsonpath={.metadata.annotations.sim\\.vdcos\\.io/content}=v1")
    assert content_of(datacenter, "agent-disk") == "v2"


def test_snapshot_without_guest_agent_and_restore_to_a_new_vm(datacenter: DevCluster) -> None:
    apply(datacenter, claim("plain-disk", "shared"))
    apply(datacenter, vm("plain", "plain-disk", guest_agent=False))
    wait(datacenter, "vmi/plain", "jsonpath={.status.phase}=Running")
    write_marker(datacenter, "plain-disk", "original")
    apply(datacenter, vm_snapshot("plain-snap", "plain"))
    wait(datacenter, "vmsnapshot/plain-snap", "jsonpath={.status.phase}=Succeeded")
    snapshot = kubevirt_object(datacenter, "vmsnapshot", "plain-snap")
    assert snapshot["status"]["indications"] == ["NoGuestAgent", "Online"]
    assert [i["indication"] for i in snapshot["status"]["sourceIndications"]] == [
        "NoGuestAgent", "Online"]

    apply(datacenter, vm_restore("plain-clone", "plain-copy", "plain-snap"))
    wait(datacenter, "vmrestore/plain-clone", "jsonpath={.status.complete}=true")
    copy = get_json(datacenter, "vm", "plain-copy")
    restore = get_json(datacenter, "vmrestore", "plain-clone")
    claim_name = f"restore-{restore['metadata']['uid']}-disk"
    assert copy["spec"]["runStrategy"] == "Halted"
    assert copy["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": claim_name}
    wait(datacenter, f"pvc/{claim_name}",
         "jsonpath={.metadata.annotations.sim\\.vdcos\\.io/content}=original")
    # The source keeps running on its own disk.
    assert get_json(datacenter, "vmi", "plain")["status"]["phase"] == "Running"
    assert get_json(datacenter, "vm", "plain")["spec"]["template"]["spec"]["volumes"][0][
        "persistentVolumeClaim"] == {"claimName": "plain-disk"}


def dv_vm(name: str) -> str:
    """A VM whose disk is a DataVolume template (as vdcos's operator writes VMs)."""
    return f"""
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  runStrategy: Always
  dataVolumeTemplates:
  - metadata:
      name: {name}-root
    spec:
      source:
        blank: {{}}
      storage:
        storageClassName: shared
        accessModes: [ReadWriteMany]
        resources:
          requests:
            storage: 1Gi
  template:
    spec:
      domain:
        devices:
          disks:
          - name: root
            disk: {{bus: virtio}}
        memory:
          guest: 1Gi
      volumes:
      - name: root
        dataVolume:
          name: {name}-root
"""


def test_revert_of_a_datavolume_disk_renames_it_and_drops_the_old_one(
        datacenter: DevCluster) -> None:
    apply(datacenter, dv_vm("web"))
    wait(datacenter, "vmi/web", "condition=AgentConnected", timeout=90)
    write_marker(datacenter, "web-root", "installed")
    apply(datacenter, vm_snapshot("web-snap", "web"))
    wait(datacenter, "vmsnapshot/web-snap", "jsonpath={.status.phase}=Succeeded")
    assert get_json(datacenter, "vmsnapshot", "web-snap")["status"]["snapshotVolumes"] == {
        "includedVolumes": ["root"]}

    write_marker(datacenter, "web-root", "broken")
    datacenter.kubectl("patch", "vm", "web", "--type", "merge",
                       "-p", '{"spec":{"runStrategy":"Halted"}}')
    wait(datacenter, "vmi/web", "delete")
    apply(datacenter, vm_restore("web-revert", "web", "web-snap"))
    wait(datacenter, "vmrestore/web-revert", "jsonpath={.status.complete}=true", timeout=90)
    restore = kubevirt_object(datacenter, "vmrestore", "web-revert")
    validate_against_swagger(restore, KUBEVIRT_SWAGGER, "v1beta1.VirtualMachineRestore")
    new_name = f"restore-{restore['metadata']['uid']}-root"
    assert restore["status"]["restores"][0]["dataVolumeName"] == new_name
    assert restore["status"]["deletedDataVolumes"] == ["web-root"]
    vm_obj = get_json(datacenter, "vm", "web")
    assert [t["metadata"]["name"] for t in vm_obj["spec"]["dataVolumeTemplates"]] == [new_name]
    assert vm_obj["spec"]["template"]["spec"]["volumes"][0]["dataVolume"] == {"name": new_name}
    wait(datacenter, f"dv/{new_name}", "jsonpath={.status.phase}=Succeeded")
    restored_dv = kubevirt_object(datacenter, "dv", new_name)
    assert restored_dv["metadata"]["annotations"]["cdi.kubevirt.io/storage.prePopulated"] == \
        "true"
    validate_against_swagger(restored_dv, CDI_SWAGGER, "v1beta1.DataVolume")
    wait(datacenter, "dv/web-root", "delete")
    assert content_of(datacenter, new_name) == "installed"

    datacenter.kubectl("patch", "vm", "web", "--type", "merge",
                       "-p", '{"spec":{"runStrategy":"Always"}}')
    wait(datacenter, "vmi/web", "jsonpath={.status.phase}=Running", timeout=90)
    vmi = get_json(datacenter, "vmi", "web")
    assert vmi["spec"]["volumes"][0]["dataVolume"] == {"name": new_name}
    # CDI and virt-controller adopt the restore's DataVolume and claim: they go with the VM.
    owners = {kind: get_json(datacenter, kind, new_name)["metadata"]["ownerReferences"]
              for kind in ("dv", "pvc")}
    assert [(o["kind"], o["name"]) for o in owners["dv"]] == [("VirtualMachine", "web")]
    assert [(o["kind"], o["name"]) for o in owners["pvc"]] == [("DataVolume", new_name)]
    datacenter.kubectl("delete", "vm", "web", "--wait=true", "--timeout=60s", timeout=70)
    wait(datacenter, f"dv/{new_name}", "delete")
    wait(datacenter, f"pvc/{new_name}", "delete")


def datavolume(name: str, source: str) -> str:
    return f"""
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: {name}
spec:
  source:
{source}
  storage:
    storageClassName: shared
    accessModes: [ReadWriteMany]
    resources:
      requests:
        storage: 1Gi
"""


def test_cdi_clones_carry_the_content(datacenter: DevCluster) -> None:
    apply(datacenter, claim("golden", "shared"))
    wait(datacenter, "pvc/golden", "jsonpath={.status.phase}=Bound")
    write_marker(datacenter, "golden", "golden-image")
    apply(datacenter, volume_snapshot("golden-snap", "golden"))
    wait(datacenter, "volumesnapshot/golden-snap", "jsonpath={.status.readyToUse}=true")
    write_marker(datacenter, "golden", "golden-image-2")

    apply(datacenter, datavolume("from-pvc", "    pvc: {namespace: default, name: golden}"))
    apply(datacenter, datavolume("from-snap",
                                 "    snapshot: {namespace: default, name: golden-snap}"))
    wait(datacenter, "dv/from-pvc", "jsonpath={.status.phase}=Succeeded")
    wait(datacenter, "dv/from-snap", "jsonpath={.status.phase}=Succeeded")
    wait(datacenter, "pvc/from-pvc",
         "jsonpath={.metadata.annotations.sim\\.vdcos\\.io/content}=golden-image-2")
    wait(datacenter, "pvc/from-snap",
         "jsonpath={.metadata.annotations.sim\\.vdcos\\.io/content}=golden-image")


def test_deleting_a_vm_snapshot_deletes_its_content_and_volume_snapshots(
        datacenter: DevCluster) -> None:
    apply(datacenter, claim("gone-disk", "shared"))
    apply(datacenter, vm("gone", "gone-disk", run_strategy="Halted"))
    wait(datacenter, "pvc/gone-disk", "jsonpath={.status.phase}=Bound")
    apply(datacenter, vm_snapshot("gone-snap", "gone"))
    wait(datacenter, "vmsnapshot/gone-snap", "jsonpath={.status.phase}=Succeeded")
    status = get_json(datacenter, "vmsnapshot", "gone-snap")["status"]
    assert "indications" not in status  # taken offline
    content_name = status["virtualMachineSnapshotContentName"]
    [backup] = get_json(datacenter, "vmsnapshotcontent", content_name)["spec"]["volumeBackups"]
    volume_snapshot = get_json(datacenter, "volumesnapshot", backup["volumeSnapshotName"])
    snapcontent = volume_snapshot["status"]["boundVolumeSnapshotContentName"]

    datacenter.kubectl("delete", "vmsnapshot", "gone-snap", "--wait=true", "--timeout=60s",
                       timeout=70)
    wait(datacenter, f"vmsnapshotcontent/{content_name}", "delete")
    wait(datacenter, f"volumesnapshot/{backup['volumeSnapshotName']}", "delete")
    wait(datacenter, f"volumesnapshotcontent/{snapcontent}", "delete")
    vm_obj = get_json(datacenter, "vm", "gone")
    assert "snapshot.kubevirt.io/snapshot-source-protection" not in \
        (vm_obj["metadata"].get("finalizers") or [])


def test_a_restore_may_stop_its_running_target(datacenter: DevCluster) -> None:
    apply(datacenter, claim("busy-disk", "shared"))
    apply(datacenter, vm("busy", "busy-disk"))
    wait(datacenter, "vmi/busy", "jsonpath={.status.phase}=Running")
    write_marker(datacenter, "busy-disk", "good")
    apply(datacenter, vm_snapshot("busy-snap", "busy"))
    wait(datacenter, "vmsnapshot/busy-snap", "jsonpath={.status.phase}=Succeeded")
    write_marker(datacenter, "busy-disk", "bad")
    apply(datacenter, vm_restore("busy-revert", "busy", "busy-snap").replace(
        "  virtualMachineSnapshotName:", "  targetReadinessPolicy: StopTarget\n"
                                         "  virtualMachineSnapshotName:"))
    wait(datacenter, "vmrestore/busy-revert", "jsonpath={.status.complete}=true", timeout=90)
    vm_obj = get_json(datacenter, "vm", "busy")
    assert vm_obj["spec"]["runStrategy"] == "Halted"
    events = get_json(datacenter, "events", "--field-selector",
                      "involvedObject.name=busy-revert,reason=RestoreTargetNotReady")
    assert [e["message"] for e in events["items"]] == [
        "Automatically stopping restore target for restore operation"]
    claim_name = vm_obj["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"][
        "claimName"]
    wait(datacenter, f"pvc/{claim_name}",
         "jsonpath={.metadata.annotations.sim\\.vdcos\\.io/content}=good")


def test_virt_api_refuses_bad_snapshots_and_restores(datacenter: DevCluster) -> None:
    refused = datacenter.kubectl("apply", "-f", "-", check=False, stdin=vm_snapshot(
        "bad-snap", "web").replace("    apiGroup: kubevirt.io\n", ""))
    assert refused.returncode != 0
    # kubectl prints the webhook's causes, as for any Invalid answer.
    assert 'The VirtualMachineSnapshot "bad-snap" is invalid: spec.source.apiGroup: missing ' \
           "apiGroup" in refused.stderr
    client = datacenter.api_client()
    try:
        with pytest.raises(ApiException) as raised:
            CustomObjectsApi(client).create_namespaced_custom_object(
                "snapshot.kubevirt.io", "v1beta1", "default", "virtualmachinesnapshots", {
                    "apiVersion": "snapshot.kubevirt.io/v1beta1",
                    "kind": "VirtualMachineSnapshot", "metadata": {"name": "bad-snap"},
                    "spec": {"source": {"apiGroup": "apps", "kind": "VirtualMachine",
                                        "name": "x"}}})
    finally:
        client.close()
    assert raised.value.status == 422
    assert json.loads(raised.value.body or "{}")["message"] == (
        'admission webhook "virtualmachinesnapshot-validator.snapshot.kubevirt.io" denied the '
        "request: invalid apiGroup")
    apply(datacenter, vm_restore("pending-a", "nobody", "no-such-snapshot"))
    wait(datacenter, "vmrestore/pending-a",
         "jsonpath={.status.conditions[?(@.type=='Ready')].reason}="
         "VMSnapshot default/no-such-snapshot does not exist")
    second = datacenter.kubectl("apply", "-f", "-", check=False,
                                stdin=vm_restore("pending-b", "nobody", "no-such-snapshot"))
    assert second.returncode != 0
    assert 'spec.target: VirtualMachineRestore "pending-a" in progress' in second.stderr
    changed = datacenter.kubectl("patch", "vmrestore", "pending-a", "--type", "merge", "-p",
                                 '{"spec":{"virtualMachineSnapshotName":"other"}}', check=False)
    assert "spec in immutable after creation" in changed.stderr
