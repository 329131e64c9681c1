"""Snapshots, revert and restore to a new VM, driven with kubectl against `vdcos up`.

The simulation keeps a content marker per volume (docs/simulation.md): a test writes one
into a VM's disk (the claim annotation `sim.vdcos.io/write-marker`), snapshots, changes it,
and sees a revert bring the first one back (annotation `sim.vdcos.io/content`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, get_json, wait

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

POLICY = "snap-shared"
WRITE_MARKER = "sim.vdcos.io/write-marker"
CONTENT = "sim.vdcos.io/content"


def vm(name: str, *, extra: str = "") -> str:
    """A VM with one disk on the `shared` class (its CSI driver can snapshot)."""
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  cpu:
    count: 1
  memory:
    size: 1Gi
  disks:
    - name: root
      size: 1Gi
      storagePolicyName: {POLICY}
{extra}"""


def snapshot(name: str, vm_name: str) -> str:
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachineSnapshot
metadata:
  name: {name}
spec:
  virtualMachineName: {vm_name}
"""


@pytest.fixture(scope="module", autouse=True)
def shared_policy(datacenter: DevCluster) -> None:
    apply_yaml(datacenter, f"""
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: {POLICY}
spec:
  storageClassName: shared
  accessMode: ReadWriteMany
""")


def wait_running(cluster: DevCluster, namespace: str, name: str) -> None:
    wait(cluster, "--for=condition=Ready", f"vdcvm/{name}", "-n", namespace, timeout=90)
    wait(cluster, "--for=jsonpath={.status.powerState}=PoweredOn", f"vdcvm/{name}", "-n",
         namespace)


def write_marker(cluster: DevCluster, namespace: str, claim: str, text: str) -> None:
    cluster.kubectl("annotate", "pvc", claim, "-n", namespace, f"{WRITE_MARKER}={text}",
                    "--overwrite")
    wait_content(cluster, namespace, claim, text)


def wait_content(cluster: DevCluster, namespace: str, claim: str, text: str) -> None:
    wait(cluster, f"--for=jsonpath={{.metadata.annotations.sim\\.vdcos\\.io/content}}={text}",
         f"pvc/{claim}", "-n", namespace)


def ready_snapshot(cluster: DevCluster, namespace: str, name: str) -> dict[str, Any]:
    try:
        wait(cluster, "--for=condition=Ready", f"vdcsnap/{name}", "-n", namespace)
    except AssertionError as error:
        ours = get_json(cluster, "vdcsnap", name, "-n", namespace).get("status")
        kubevirt = cluster.kubectl("get", "virtualmachinesnapshots.snapshot.kubevirt.io", name,
                                   "-n", namespace, "-o", "jsonpath={.status}", check=False)
        claims = cluster.kubectl("get", "pvc,pv", "-A", "-o", "wide", check=False).stdout
        raise AssertionError(f"{error}\nours: {ours}\nKubeVirt's: {kubevirt.stdout}\n"
                             f"{claims}\n{cluster.log()[-6000:]}") from None
    result: dict[str, Any] = get_json(cluster, "vdcsnap", name, "-n", namespace)
    return result


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def vm_events(cluster: DevCluster, namespace: str, name: str) -> list[str]:
    events = get_json(cluster, "events", "-n", namespace,
                      f"--field-selector=involvedObject.name={name},"
                      "involvedObject.kind=VirtualMachine")
    return [f"{e['reason']}: {e['message']}" for e in events["items"]
            if e["involvedObject"].get("apiVersion", "").startswith("vdcos.io")]


def test_snapshot_then_revert_restores_the_disk(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, vm("web"), namespace)
    wait_running(datacenter, namespace, "web")
    vm_uid = get_json(datacenter, "vdcvm", "web", "-n", namespace)["metadata"]["uid"]
    write_marker(datacenter, namespace, "web-root", "release-1")

    apply_yaml(datacenter, snapshot("before", "web"), namespace)
    taken = ready_snapshot(datacenter, namespace, "before")["status"]
    assert taken["phase"] == "Succeeded" and taken["readyToUse"] is True
    assert taken["consistency"] in ("ApplicationConsistent", "CrashConsistent")
    assert "parent" not in taken and taken["virtualMachineUid"] == vm_uid
    assert taken["sizeBytes"] >= 2**30 and set(taken["volumeSnapshots"]) == {"root"}
    kubevirt = get_json(datacenter, "virtualmachinesnapshots.snapshot.kubevirt.io", "before",
                        "-n", namespace)
    assert kubevirt["spec"]["source"]["name"] == "web"
    assert kubevirt["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachineSnapshot"

    write_marker(datacenter, namespace, "web-root", "release-2")
    datacenter.kubectl("patch", "vdcvm", "web", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"revertToSnapshot":"before"}}')
    wait(datacenter, "--for=jsonpath={.status.revert.phase}=Succeeded", "vdcvm/web", "-n",
         namespace, timeout=90)
    wait_running(datacenter, namespace, "web")
    wait_content(datacenter, namespace, "web-root", "release-1")
    reverted = get_json(datacenter, "vdcvm", "web", "-n", namespace)
    assert reverted["metadata"]["uid"] == vm_uid  # the same VM, reverted
    assert reverted["status"]["revert"]["snapshotName"] == "before"
    assert any(e.startswith("Reverted: Reverted to snapshot before")
               for e in vm_events(datacenter, namespace, "web"))
    restores = get_json(datacenter, "virtualmachinerestores.snapshot.kubevirt.io", "-n",
                        namespace)["items"]
    assert [r["spec"]["virtualMachineSnapshotName"] for r in restores] == ["before"]

    # The next snapshot follows the one reverted to in the VM's tree.
    apply_yaml(datacenter, snapshot("after", "web"), namespace)
    assert ready_snapshot(datacenter, namespace, "after")["status"]["parent"] == "before"
    # Deleting our snapshot deletes KubeVirt's.
    datacenter.kubectl("delete", "vdcsnap", "after", "-n", namespace)
    wait(datacenter, "--for=delete", "virtualmachinesnapshots.snapshot.kubevirt.io/after",
         "-n", namespace)


def test_revert_to_a_snapshot_of_another_vm_is_refused(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, vm("app"), namespace)
    apply_yaml(datacenter, vm("db"), namespace)
    wait_running(datacenter, namespace, "app")
    wait_running(datacenter, namespace, "db")
    apply_yaml(datacenter, snapshot("db-snap", "db"), namespace)
    ready_snapshot(datacenter, namespace, "db-snap")
    vmi_uid = get_json(datacenter, "vmi", "app", "-n", namespace)["metadata"]["uid"]

    datacenter.kubectl("patch", "vdcvm", "app", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"revertToSnapshot":"db-snap"}}')
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=SnapshotOfAnotherVirtualMachine", "vdcvm/app", "-n", namespace)
    refused = get_json(datacenter, "vdcvm", "app", "-n", namespace)
    message = ready_condition(refused)["message"]
    assert "spec.revertToSnapshot: " in message and '"db"' in message
    assert "revert" not in refused["status"]
    # Nothing changed: the guest runs on, no restore was made.
    assert get_json(datacenter, "vmi", "app", "-n", namespace)["metadata"]["uid"] == vmi_uid
    assert get_json(datacenter, "virtualmachinerestores.snapshot.kubevirt.io", "-n",
                    namespace)["items"] == []


def test_snapshot_of_a_vm_that_does_not_exist_fails_naming_the_field(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, snapshot("orphan", "nobody"), namespace)
    wait(datacenter, "--for=jsonpath={.status.phase}=Failed", "vdcsnap/orphan", "-n", namespace)
    failed = get_json(datacenter, "vdcsnap", "orphan", "-n", namespace)
    ready = ready_condition(failed)
    assert (ready["status"], ready["reason"]) == ("False", "VirtualMachineNotFound")
    assert ready["message"].startswith('spec.virtualMachineName: VirtualMachine "nobody"')


def test_restore_to_a_new_vm(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, vm("source"), namespace)
    wait_running(datacenter, namespace, "source")
    write_marker(datacenter, namespace, "source-root", "golden")
    apply_yaml(datacenter, snapshot("golden", "source"), namespace)
    volume_snapshot = ready_snapshot(datacenter, namespace, "golden")["status"][
        "volumeSnapshots"]["root"]

    apply_yaml(datacenter, vm("copy", extra="  restoreFrom:\n    snapshotName: golden\n"),
               namespace)
    wait_running(datacenter, namespace, "copy")
    data_volume = get_json(datacenter, "dv", "copy-root", "-n", namespace)
    assert data_volume["spec"]["source"] == {
        "snapshot": {"namespace": namespace, "name": volume_snapshot}}
    wait_content(datacenter, namespace, "copy-root", "golden")
    macs = {
        name: [nic["macAddress"] for nic in get_json(datacenter, "vdcvm", name, "-n",
                                                      namespace)["status"]["nics"]]
        for name in ("source", "copy")
    }
    assert not set(macs["source"]) & set(macs["copy"]), macs
    # The source is untouched.
    assert get_json(datacenter, "pvc", "source-root", "-n", namespace)["metadata"][
        "annotations"][CONTENT] == "golden"


def test_restore_from_a_snapshot_that_does_not_exist_is_refused(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, vm("copy", extra="  restoreFrom:\n    snapshotName: nothing\n"),
               namespace)
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=SnapshotNotFound", "vdcvm/copy", "-n", namespace)
    message = ready_condition(get_json(datacenter, "vdcvm", "copy", "-n", namespace))["message"]
    assert "spec.restoreFrom.snapshotName: " in message
    assert datacenter.kubectl("get", "vm", "copy", "-n", namespace, check=False).returncode != 0
