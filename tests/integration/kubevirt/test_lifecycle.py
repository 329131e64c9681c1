"""VM lifecycle on the emulated KubeVirt, driven as a user would (kubectl, virtctl's PUTs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import upstream
from tests.harness import DevCluster
from tests.oracles import CDI_SWAGGER, KUBEVIRT_SWAGGER, swagger_errors

from .conftest import apply, condition, get, subresource, vm_manifest, wait_for

pytestmark = pytest.mark.slow


def running_vmi(cluster: DevCluster, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        vmi = get(cluster, "vmi", name)
        ready = condition(vmi, "Ready").get("status") == "True"
        return vmi if (vmi.get("status") or {}).get("phase") == "Running" and ready else None

    return wait_for(check, message=f"VMI {name} Running and Ready")


def printable(cluster: DevCluster, name: str, wanted: str, timeout: float = 30) -> dict[str, Any]:
    return wait_for(lambda: (vm := get(cluster, "vm", name)) and
                    (vm.get("status") or {}).get("printableStatus") == wanted and vm,
                    timeout=timeout, message=f"VM {name} {wanted}")


def test_start_stop_restart_pause_through_subresources(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("life", run_strategy="Halted"))
    printable(cluster, "life", "Stopped")
    assert subresource(cluster, "virtualmachines", "life", "stop") == 409

    assert subresource(cluster, "virtualmachines", "life", "start") == 202
    first = running_vmi(cluster, "life")
    vm = printable(cluster, "life", "Running")
    assert vm["spec"]["runStrategy"] == "Always"
    assert vm["status"]["ready"] is True
    assert subresource(cluster, "virtualmachines", "life", "start") == 409

    assert subresource(cluster, "virtualmachines", "life", "restart") == 202
    restarted = wait_for(lambda: (v := get(cluster, "vmi", "life")) and
                         v["metadata"]["uid"] != first["metadata"]["uid"] and v,
                         message="a new VMI after restart")
    running_vmi(cluster, "life")
    assert restarted["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"

    assert subresource(cluster, "virtualmachineinstances", "life", "pause") == 202
    paused = printable(cluster, "life", "Paused")
    assert condition(paused, "Paused")["reason"] == "PausedByUser"
    vmi = wait_for(lambda: (v := get(cluster, "vmi", "life")) and
                   condition(v, "Ready").get("status") == "False" and v,
                   message="a paused VMI is not Ready")
    assert condition(vmi, "Paused")["status"] == "True"
    assert subresource(cluster, "virtualmachineinstances", "life", "pause") == 409
    assert subresource(cluster, "virtualmachineinstances", "life", "unpause") == 202
    printable(cluster, "life", "Running")

    assert subresource(cluster, "virtualmachines", "life", "stop") == 202
    stopped = printable(cluster, "life", "Stopped")
    assert stopped["spec"]["runStrategy"] == "Halted"
    wait_for(lambda: not get(cluster, "vmi", "life"), message="the VMI is gone")
    pods = cluster.kubectl("get", "pods", "-l", "vm.kubevirt.io/name=life", "-o", "name").stdout
    assert pods.strip() == ""


def test_cpu_and_memory_hotplug_keep_the_vmi(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("hot", sockets=1, guest="1Gi"))
    before = running_vmi(cluster, "hot")
    assert before["spec"]["domain"]["cpu"]["maxSockets"] == 4
    assert before["spec"]["domain"]["memory"]["maxGuest"] == "4Gi"
    cluster.kubectl("patch", "vm", "hot", "--type", "merge", "-p", json.dumps(
        {"spec": {"template": {"spec": {"domain": {"cpu": {"sockets": 3},
                                                   "memory": {"guest": "2Gi"}}}}}}))

    def hotplugged() -> dict[str, Any] | None:
        vmi = get(cluster, "vmi", "hot")
        status = vmi.get("status") or {}
        done = (status.get("currentCPUTopology") or {}).get("sockets") == 3 and \
            (status.get("memory") or {}).get("guestCurrent") == "2Gi"
        return vmi if done else None

    after = wait_for(hotplugged, message="sockets 3 and 2Gi applied to the running VMI")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["status"]["phase"] == "Running"
    migrations = json.loads(cluster.kubectl("get", "vmim", "-o", "json").stdout)["items"]
    update = [m for m in migrations if m["metadata"]["name"].startswith("kubevirt-workload-update-")
              and m["spec"]["vmiName"] == "hot"]
    assert update and update[0]["status"]["phase"] == "Succeeded"
    vm = wait_for(lambda: (v := get(cluster, "vm", "hot")) and
                  not condition(v, "HotVCPUChange") and v, message="hot-plug conditions gone")
    assert not condition(vm, "RestartRequired")


def test_change_that_is_not_live_updatable_requires_restart(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("rr"))
    before = running_vmi(cluster, "rr")
    cluster.kubectl("patch", "vm", "rr", "--type", "merge", "-p", json.dumps(
        {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 5}}}}))
    vm = wait_for(lambda: (v := get(cluster, "vm", "rr")) and
                  condition(v, "RestartRequired") and v, message="RestartRequired")
    restart = condition(vm, "RestartRequired")
    assert restart["status"] == "True"
    assert restart["message"] == "a non-live-updatable field was changed in the template spec"
    assert "reason" not in restart
    assert get(cluster, "vmi", "rr")["metadata"]["uid"] == before["metadata"]["uid"]
    assert subresource(cluster, "virtualmachines", "rr", "restart") == 202
    wait_for(lambda: (v := get(cluster, "vm", "rr")) and not condition(v, "RestartRequired")
             and (v.get("status") or {}).get("printableStatus") == "Running",
             message="restart clears RestartRequired")


def test_unschedulable_vm_says_why(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("huge", guest="400Gi"))
    vm = printable(cluster, "huge", "ErrorUnschedulable")
    scheduled = condition(vm, "PodScheduled")
    assert scheduled["status"] == "False"
    assert scheduled["reason"] == "Unschedulable"
    assert scheduled["message"].startswith("0/3 nodes are available: 3 Insufficient memory")
    cluster.kubectl("delete", "vm", "huge", "--wait=false")


def test_missing_network_attachment_definition_blocks_start(cluster: DevCluster) -> None:
    extra = """      domain:
        devices:
          interfaces:
          - name: default
            masquerade: {}
          - name: storage
            bridge: {}
        memory:
          guest: 1Gi
      networks:
      - name: default
        pod: {}
      - name: storage
        multus:
          networkName: storage-net
"""
    manifest = vm_manifest("multi").split("      domain:")[0] + extra
    apply(cluster, manifest)
    vmi = wait_for(lambda: (v := get(cluster, "vmi", "multi")) and
                   condition(v, "Synchronized") and v, message="Synchronized=False")
    synchronized = condition(vmi, "Synchronized")
    assert synchronized["status"] == "False"
    assert synchronized["reason"] == "FailedCreate"
    assert synchronized["message"] == ("failed to render launch manifest: failed to locate "
                                       "network attachment definition default/storage-net")
    assert vmi["status"]["phase"] == "Pending"
    vm = wait_for(lambda: (v := get(cluster, "vm", "multi")) and
                  condition(v, "Synchronized") and v, message="the VM mirrors Synchronized")
    assert condition(vm, "Synchronized")["message"] == synchronized["message"]
    events = cluster.kubectl("get", "events", "--field-selector",
                             "involvedObject.name=multi", "-o", "json").stdout
    assert "failed to locate network attachment definition" in events

    apply(cluster, """
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: storage-net
spec:
  config: '{"cniVersion":"0.3.1","type":"bridge","bridge":"br1",
    "ipam":{"type":"whereabouts","range":"192.168.10.0/24"}}'
""")
    running = running_vmi(cluster, "multi")
    secondary = next(i for i in running["status"]["interfaces"] if i["name"] == "storage")
    assert secondary["ipAddress"]
    assert secondary["podInterfaceName"].startswith("pod")


def test_datavolume_import_succeeds_and_vm_runs(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("withdisk", extra_spec="""
      volumes:
      - name: rootdisk
        dataVolume:
          name: withdisk-root
  dataVolumeTemplates:
  - metadata:
      name: withdisk-root
    spec:
      storage:
        resources:
          requests:
            storage: 5Gi
      source:
        http:
          url: https://example.com/fedora.qcow2
""").replace("        devices:\n", "        devices:\n          disks:\n"
             "          - name: rootdisk\n            disk:\n              bus: virtio\n"))
    dv = wait_for(lambda: (d := get(cluster, "dv", "withdisk-root")) and
                  (d.get("status") or {}).get("phase") == "Succeeded" and d,
                  message="DataVolume Succeeded")
    assert dv["status"]["progress"] == "100.0%"
    assert condition(dv, "Ready")["status"] == "True"
    assert dv["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine"
    pvc = get(cluster, "pvc", "withdisk-root")
    assert pvc["status"]["phase"] == "Bound"
    assert pvc["spec"]["storageClassName"] == "shared"
    running_vmi(cluster, "withdisk")
    printable(cluster, "withdisk", "Running")


def test_drain_live_migrates_evictable_vms(cluster: DevCluster) -> None:
    apply(cluster, vm_manifest("drainme"))
    vmi = running_vmi(cluster, "drainme")
    source = vmi["status"]["nodeName"]
    result = cluster.kubectl("drain", source, "--ignore-daemonsets", "--delete-emptydir-data",
                             "--pod-selector", "vm.kubevirt.io/name=drainme", "--timeout=60s",
                             timeout=90)
    assert "Eviction triggered evacuation of VMI" in result.stdout + result.stderr
    moved = running_vmi(cluster, "drainme")
    assert moved["status"]["nodeName"] != source
    assert moved["metadata"]["uid"] == vmi["metadata"]["uid"]
    assert moved["metadata"]["labels"]["kubevirt.io/nodeName"] == moved["status"]["nodeName"]
    migrations = json.loads(cluster.kubectl("get", "vmim", "-o", "json").stdout)["items"]
    evacuations = [m for m in migrations
                   if m["metadata"]["annotations"].get("kubevirt.io/evacuationMigration")
                   == source]
    assert evacuations and evacuations[0]["status"]["phase"] == "Succeeded"
    cluster.kubectl("uncordon", source)


def test_every_object_the_simulation_wrote_matches_the_upstream_swagger(
        cluster: DevCluster) -> None:
    """Runs last in this module: everything the scenarios above left behind, plus a live
    migration made here so that a migration is always among what is checked."""
    apply(cluster, vm_manifest("oracle"))
    running_vmi(cluster, "oracle")
    assert subresource(cluster, "virtualmachines", "oracle", "migrate") == 202
    cluster.kubectl("wait", "vmim", "-l", "kubevirt.io/vmi-name=oracle",
                    "--for=jsonpath={.status.phase}=Succeeded", "--timeout=60s", timeout=70)
    checked = 0
    for plural, swagger, definition in (
            ("virtualmachines.kubevirt.io", KUBEVIRT_SWAGGER, "v1.VirtualMachine"),
            ("virtualmachineinstances.kubevirt.io", KUBEVIRT_SWAGGER,
             "v1.VirtualMachineInstance"),
            ("virtualmachineinstancemigrations.kubevirt.io", KUBEVIRT_SWAGGER,
             "v1.VirtualMachineInstanceMigration"),
            ("kubevirts.kubevirt.io", KUBEVIRT_SWAGGER, "v1.KubeVirt"),
            ("datavolumes.cdi.kubevirt.io", CDI_SWAGGER, "v1beta1.DataVolume")):
        upstream.require(swagger)
        items = json.loads(cluster.kubectl("get", plural, "-A", "-o", "json").stdout)["items"]
        assert items, f"no {plural} to check"
        for item in items:
            errors = swagger_errors(item, swagger, definition)
            assert not errors, f"{plural} {item['metadata']['name']}: {errors}"
            checked += 1
    assert checked >= 10
