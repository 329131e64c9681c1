"""VirtualMachines end to end: kubectl against `vdcos up` (API server, hosts, operator)."""

from __future__ import annotations

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import EXAMPLES, apply_yaml, get_json, wait
from tests.oracles import CDI_SWAGGER, KUBEVIRT_SWAGGER, validate_against_swagger

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]


def small_vm(name: str, *, cpu: int = 2, memory: str = "1Gi", hot_add: bool = False,
             extra: str = "") -> str:
    """A VM without disks: pod network only, so it can live-migrate (and hot-add)."""
    hot = "true" if hot_add else "false"
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  cpu:
    count: {cpu}
    hotAdd: {hot}
  memory:
    size: {memory}
    hotAdd: {hot}
{extra}
"""


def linux_cluster(name: str) -> str:
    """A ComputeCluster of every Linux host."""
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata:
  name: {name}
spec:
  hostSelector:
    matchLabels:
      kubernetes.io/os: linux
"""


def vdc_vm(cluster: DevCluster, namespace: str, name: str) -> dict:
    result: dict = get_json(cluster, "vdcvm", name, "-n", namespace)
    return result


def condition(obj: dict, condition_type: str) -> dict:
    for entry in obj.get("status", {}).get("conditions", []):
        if entry["type"] == condition_type:
            return dict(entry)
    raise AssertionError(f"no {condition_type} condition in {obj.get('status')}")


def wait_ready(cluster: DevCluster, namespace: str, name: str) -> None:
    wait(cluster, "--for=condition=Ready", f"vdcvm/{name}", "-n", namespace)


def events_of(cluster: DevCluster, namespace: str, name: str) -> list[dict]:
    events = get_json(cluster, "events", "-n", namespace,
                      f"--field-selector=involvedObject.name={name},"
                      "involvedObject.kind=VirtualMachine")
    return [e for e in events["items"]
            if e["involvedObject"].get("apiVersion", "").startswith("vdcos.io")]


def test_examples_reach_ready(datacenter: DevCluster, namespace: str) -> None:
    datacenter.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    wait(datacenter, "--for=condition=Ready", "vdcvm", "--all", "-n", namespace, timeout=90)
    vms = {vm["metadata"]["name"]: vm for vm in get_json(datacenter, "vdcvm", "-n",
                                                           namespace)["items"]}
    assert vms["web-01"]["status"]["powerState"] == "PoweredOn"
    assert vms["web-01"]["status"]["host"].startswith("host-")
    assert vms["web-01"]["status"]["ipAddresses"]
    lan = {nic["name"]: nic for nic in vms["web-01"]["status"]["nics"]}["lan"]
    assert (lan["portGroupName"], lan["state"]) == ("vlan100", "Attached")
    assert vms["build-01"]["status"]["powerState"] == "PoweredOff"
    # The KubeVirt VMs are owned by the VDC VMs and validate against KubeVirt's schema.
    for kubevirt_vm in get_json(datacenter, "vm", "-n", namespace)["items"]:
        owners = kubevirt_vm["metadata"]["ownerReferences"]
        assert [o["kind"] for o in owners] == ["VirtualMachine"]
        assert owners[0]["apiVersion"] == "vdcos.io/v1alpha1"
        validate_against_swagger(kubevirt_vm["spec"], KUBEVIRT_SWAGGER, "v1.VirtualMachineSpec")
        for template in kubevirt_vm["spec"]["dataVolumeTemplates"]:
            validate_against_swagger(template["spec"], CDI_SWAGGER, "v1beta1.DataVolumeSpec")
    db = get_json(datacenter, "vm", "db-01", "-n", namespace)
    assert db["spec"]["template"]["spec"]["priorityClassName"] == "vdcos-restart-highest"
    assert {t["spec"]["storage"]["storageClassName"] for t in db["spec"]["dataVolumeTemplates"]} \
        == {"gold"}
    assert all(t["spec"]["preallocation"] for t in db["spec"]["dataVolumeTemplates"])
    # The cluster and the policies report what they see.
    production = get_json(datacenter, "cc", "production")
    assert production["status"]["hostCount"] == 3
    assert condition(production, "Ready")["status"] == "True"
    # Disk counts follow VM changes within moments (they are gathered for 2 s).
    wait(datacenter, "--for=jsonpath={.status.diskCount}=2", "sp/gold")
    gold = get_json(datacenter, "sp", "gold")
    assert gold["status"]["storageClassName"] == "gold"
    assert condition(gold, "Ready")["status"] == "True"
    datacenter.kubectl("get", "storageclass", "gold")
    # Start-up is quiet: db-01's "gold" class is created by its policy moments after db-01 is
    # first seen, which is a wait, not a Warning; each VM is announced once.
    for vm in ("web-01", "db-01", "build-01"):
        events = [(e["type"], e["reason"], e["message"])
                  for e in events_of(datacenter, namespace, vm)]
        assert [e for e in events if e[0] == "Warning"] == [], (vm, events)
        assert [e[1] for e in events].count("Created") == 1, (vm, events)
        assert len(events) == len(set(events)), (vm, events)


def test_power_off_on_and_suspend(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, small_vm("power"), namespace)
    wait_ready(datacenter, namespace, "power")
    first_uid = get_json(datacenter, "vmi", "power", "-n", namespace)["metadata"]["uid"]

    datacenter.kubectl("patch", "vdcvm", "power", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"PoweredOff"}}')
    wait(datacenter, "--for=delete", "vmi/power", "-n", namespace)
    wait(datacenter, "--for=jsonpath={.status.powerState}=PoweredOff", "vdcvm/power",
         "-n", namespace)
    wait_ready(datacenter, namespace, "power")
    assert get_json(datacenter, "vm", "power", "-n", namespace)["spec"]["runStrategy"] == "Halted"

    datacenter.kubectl("patch", "vdcvm", "power", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"PoweredOn"}}')
    wait(datacenter, "--for=jsonpath={.status.powerState}=PoweredOn", "vdcvm/power",
         "-n", namespace)
    wait_ready(datacenter, namespace, "power")
    assert get_json(datacenter, "vmi", "power", "-n", namespace)["metadata"]["uid"] != first_uid

    datacenter.kubectl("patch", "vdcvm", "power", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"Suspended"}}')
    wait(datacenter, "--for=jsonpath={.status.powerState}=Suspended", "vdcvm/power",
         "-n", namespace)
    wait(datacenter, "--for=condition=Paused", "vmi/power", "-n", namespace)
    wait_ready(datacenter, namespace, "power")
    datacenter.kubectl("patch", "vdcvm", "power", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"PoweredOn"}}')
    wait(datacenter, "--for=jsonpath={.status.powerState}=PoweredOn", "vdcvm/power",
         "-n", namespace)

    reasons = [event["reason"] for event in events_of(datacenter, namespace, "power")]
    for expected in ("PoweringOff", "PoweringOn", "Suspending", "Resuming"):
        assert expected in reasons, reasons


def test_hot_add_cpu_and_memory_keeps_the_running_guest(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, small_vm("hot", cpu=2, memory="2Gi", hot_add=True), namespace)
    wait_ready(datacenter, namespace, "hot")
    vmi_uid = get_json(datacenter, "vmi", "hot", "-n", namespace)["metadata"]["uid"]

    datacenter.kubectl("patch", "vdcvm", "hot", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"cpu":{"count":4},"memory":{"size":"4Gi"}}}')
    wait(datacenter, "--for=jsonpath={.status.currentCPUTopology.sockets}=4", "vmi/hot",
         "-n", namespace)
    wait(datacenter, "--for=jsonpath={.status.memory.guestRequested}=4Gi", "vmi/hot",
         "-n", namespace)
    wait(datacenter, "--for=jsonpath={.status.observedGeneration}=2", "vdcvm/hot",
         "-n", namespace)
    wait_ready(datacenter, namespace, "hot")
    assert get_json(datacenter, "vmi", "hot", "-n", namespace)["metadata"]["uid"] == vmi_uid
    assert condition(vdc_vm(datacenter, namespace, "hot"), "RestartRequired")["status"] == "False"


def test_change_that_needs_a_restart_says_so(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, small_vm("firm"), namespace)
    wait_ready(datacenter, namespace, "firm")
    datacenter.kubectl("patch", "vdcvm", "firm", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"firmware":"EFI"}}')
    wait(datacenter, "--for=condition=RestartRequired", "vdcvm/firm", "-n", namespace)
    message = condition(vdc_vm(datacenter, namespace, "firm"), "RestartRequired")["message"]
    assert "restart" in message.lower() and "powerState" in message

    datacenter.kubectl("patch", "vdcvm", "firm", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"PoweredOff"}}')
    wait(datacenter, "--for=jsonpath={.status.powerState}=PoweredOff", "vdcvm/firm",
         "-n", namespace)
    datacenter.kubectl("patch", "vdcvm", "firm", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"PoweredOn"}}')
    wait(datacenter, "--for=condition=RestartRequired=False", "vdcvm/firm", "-n", namespace)
    wait_ready(datacenter, namespace, "firm")
    vmi = get_json(datacenter, "vmi", "firm", "-n", namespace)
    assert "efi" in vmi["spec"]["domain"]["firmware"]["bootloader"]


def test_delete_leaves_nothing_behind(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, small_vm("gone", extra="""  disks:
    - name: root
      size: 1Gi
      storagePolicyName: thin
"""), namespace)
    apply_yaml(datacenter, """
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: thin
spec:
  storageClassName: standard
  accessMode: ReadWriteOnce
  default: true
""")
    wait_ready(datacenter, namespace, "gone")
    datacenter.kubectl("delete", "vdcvm", "gone", "-n", namespace)
    for kind in ("vm", "vmi", "dv", "pvc"):
        wait(datacenter, "--for=delete", f"{kind}/gone" if kind in ("vm", "vmi")
             else f"{kind}/gone-root", "-n", namespace)
    left = get_json(datacenter, "vm,vmi,dv,pvc,pods", "-n", namespace)["items"]
    assert [f"{o['kind']}/{o['metadata']['name']}" for o in left
            if o["metadata"].get("deletionTimestamp") is None] == []


def test_missing_references_wait_and_heal(datacenter: DevCluster, namespace: str) -> None:
    cluster_name = f"later-{namespace}"[:60]
    apply_yaml(datacenter, small_vm("waits", extra=f"  clusterName: {cluster_name}\n"),
               namespace)
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=ComputeClusterNotFound", "vdcvm/waits", "-n", namespace)
    ready = condition(vdc_vm(datacenter, namespace, "waits"), "Ready")
    assert ready["status"] == "False" and cluster_name in ready["message"]
    assert datacenter.kubectl("get", "vm", "waits", "-n", namespace, check=False).returncode != 0

    apply_yaml(datacenter, linux_cluster(cluster_name))
    wait_ready(datacenter, namespace, "waits")
    vm = get_json(datacenter, "vm", "waits", "-n", namespace)
    assert vm["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_port_group_that_does_not_exist_waits(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, small_vm("nic", extra="""  networks:
    - name: lan
      portGroupName: web-tier
"""), namespace)
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=DistributedPortGroupNotFound", "vdcvm/nic", "-n", namespace)
    assert "web-tier" in condition(vdc_vm(datacenter, namespace, "nic"), "Ready")["message"]


def test_more_cpu_than_any_host_is_rejected(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, small_vm("huge", cpu=64), namespace)
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=InsufficientHostCapacity", "vdcvm/huge", "-n", namespace)
    assert "spec.cpu.count" in condition(vdc_vm(datacenter, namespace, "huge"), "Ready")["message"]
    assert [e["reason"] for e in events_of(datacenter, namespace, "huge")] == [
        "InsufficientHostCapacity"]
    assert datacenter.kubectl("get", "vm", "huge", "-n", namespace, check=False).returncode != 0


def test_storage_class_that_does_not_exist_is_rejected(
    datacenter: DevCluster, namespace: str
) -> None:
    policy = f"nowhere-{namespace}"[:60]
    apply_yaml(datacenter, f"""
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: {policy}
spec:
  storageClassName: does-not-exist
""")
    apply_yaml(datacenter, small_vm("nosc", extra=f"""  disks:
    - name: root
      size: 1Gi
      storagePolicyName: {policy}
"""), namespace)
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=StorageClassNotFound", "vdcvm/nosc", "-n", namespace)
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=StorageClassNotFound", f"sp/{policy}")
    assert "StorageClassNotFound" in [e["reason"] for e in events_of(datacenter, namespace,
                                                                      "nosc")]
    assert datacenter.kubectl("get", "vm", "nosc", "-n", namespace, check=False).returncode != 0
    assert datacenter.kubectl("get", "dv", "nosc-root", "-n", namespace,
                              check=False).returncode != 0


BAD_INPUTS = {
    "wrong-type": ("  cpu:\n    count: two\n  memory:\n    size: 1Gi\n", "spec.cpu.count"),
    "cpu-out-of-range": ("  cpu:\n    count: 1000\n  memory:\n    size: 1Gi\n",
                         "spec.cpu.count"),
    "memory-not-a-size": ("  cpu:\n    count: 1\n  memory:\n    size: lots\n",
                          "spec.memory.size"),
    "unknown-field": ("  cpu:\n    count: 1\n    turbo: true\n  memory:\n    size: 1Gi\n",
                      "turbo"),
    "disk-without-size": ("  cpu:\n    count: 1\n  memory:\n    size: 1Gi\n"
                          "  disks:\n    - name: root\n", "spec.disks[0].size"),
    "two-nics-one-name": ("  cpu:\n    count: 1\n  memory:\n    size: 1Gi\n"
                          "  networks:\n    - name: eth\n      podNetwork: {}\n"
                          "    - name: eth\n      portGroupName: pg\n", "spec.networks[1]"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_rejected_naming_the_field(
    datacenter: DevCluster, namespace: str, case: str
) -> None:
    spec, field = BAD_INPUTS[case]
    text = f"apiVersion: vdcos.io/v1alpha1\nkind: VirtualMachine\nmetadata:\n  name: bad\n" \
           f"spec:\n{spec}"
    result = apply_yaml(datacenter, text, namespace, check=False)
    assert result.returncode != 0
    assert field in result.stderr, result.stderr
    assert datacenter.kubectl("get", "vdcvm", "bad", "-n", namespace, check=False).returncode != 0


def test_fields_removed_from_the_spec_leave_the_kubevirt_vm(
    datacenter: DevCluster, namespace: str
) -> None:
    cluster_name, policy = f"rm-{namespace}"[:60], f"rm-{namespace}"[:60]
    apply_yaml(datacenter, linux_cluster(cluster_name) + f"""---
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: {policy}
spec:
  storageClassName: standard
  accessMode: ReadWriteOnce
""")
    disks = f"""  disks:
    - name: root
      size: 1Gi
      storagePolicyName: {policy}
"""
    full = small_vm("shrink", extra=f"  clusterName: {cluster_name}\n" + disks
                    + "      bootOrder: 1\n")
    apply_yaml(datacenter, full, namespace)
    wait_ready(datacenter, namespace, "shrink")
    template = get_json(datacenter, "vm", "shrink", "-n", namespace)["spec"]["template"]
    assert template["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert template["spec"]["domain"]["devices"]["disks"][0] == {
        "name": "root", "disk": {"bus": "virtio"}, "bootOrder": 1}

    # kubectl apply without them: the VDC VM loses clusterName and bootOrder, and nothing
    # it still sets changes (a change there would make any planner apply).
    apply_yaml(datacenter, small_vm("shrink", extra=disks), namespace)
    wait(datacenter, "--for=jsonpath={.status.observedGeneration}=2", "vdcvm/shrink",
         "-n", namespace)
    kubevirt_vm = get_json(datacenter, "vm", "shrink", "-n", namespace)
    template = kubevirt_vm["spec"]["template"]
    assert "nodeSelector" not in template["spec"] and "affinity" not in template["spec"]
    assert "vdcos.io/cluster" not in kubevirt_vm["metadata"]["labels"]
    assert "vdcos.io/cluster" not in template["metadata"]["labels"]
    assert template["spec"]["domain"]["devices"]["disks"][0] == {
        "name": "root", "disk": {"bus": "virtio"}}
    # The running guest takes the rest at its next restart.
    restart = condition(vdc_vm(datacenter, namespace, "shrink"), "RestartRequired")
    assert restart["status"] == "True" and "bootOrder" in restart["message"]


def test_wide_columns_show_what_the_guest_runs(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, small_vm("cols", cpu=2, memory="2Gi", hot_add=True), namespace)
    wait_ready(datacenter, namespace, "cols")
    vmi = get_json(datacenter, "vmi", "cols", "-n", namespace)
    datacenter.kubectl("patch", "vdcvm", "cols", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"cpu":{"count":4},"memory":{"size":"4Gi"}}}')
    wait(datacenter, "--for=jsonpath={.status.cpu}=4", "vdcvm/cols", "-n", namespace)
    wait(datacenter, "--for=jsonpath={.status.memory}=4Gi", "vdcvm/cols", "-n", namespace)
    wide = datacenter.kubectl("get", "vdcvm", "cols", "-n", namespace, "-o", "wide").stdout
    header, row = wide.splitlines()[:2]
    columns = dict(zip(header.split(), row.split(), strict=False))
    assert (columns["CPU"], columns["MEMORY"]) == ("4", "4Gi")
    # The hot-add went through a live migration: the VM says where it moved.
    after = get_json(datacenter, "vmi", "cols", "-n", namespace)
    assert after["metadata"]["uid"] == vmi["metadata"]["uid"]
    source, target = vmi["status"]["nodeName"], after["status"]["nodeName"]
    assert source != target
    wait(datacenter, f"--for=jsonpath={{.status.host}}={target}", "vdcvm/cols", "-n", namespace)
    migrated = [e for e in events_of(datacenter, namespace, "cols") if e["reason"] == "Migrated"]
    assert len(migrated) == 1, migrated
    assert source in migrated[0]["message"] and target in migrated[0]["message"]

