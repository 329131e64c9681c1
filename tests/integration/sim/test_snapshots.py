"""CSI snapshots and KubeVirt's snapshot/restore controllers in the simulation, with kubectl.

A disk's content marker (PVC annotation `sim.vdcos.io/write-marker` to write, mirrored in
`sim.vdcos.io/content`) shows what a snapshot kept and what a restore brought back.
Everything the emulation writes is checked against KubeVirt's swagger.
"""

from __future__ import annotations

import json
from typing import Any

from tests.harness import DevCluster
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

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
