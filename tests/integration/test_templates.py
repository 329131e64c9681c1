"""VM templates and clones end to end: kubectl against `vdcos up` (API server, hosts, CDI
emulation, operator). A template imports its image and publishes a CDI DataSource; VMs naming
it clone their boot disk from it, linked (csi-clone) or full (copy)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, get_json, start_vdcos_up, wait
from tests.oracles import CDI_SWAGGER, KUBEVIRT_SWAGGER, validate_against_swagger

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

POLICIES = """
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: tmpl-shared
spec:
  storageClassName: shared
---
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: tmpl-local
spec:
  storageClassName: standard
  accessMode: ReadWriteOnce
"""


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """A datacenter whose clones are quick: CSI clones 1 s, copies at 1000 MB/s."""
    cluster = start_vdcos_up(
        tmp_path_factory.mktemp("vdcos-templates"),
        "--hosts", "3", "--import-seconds", "0.5", "--clone-csi-seconds", "1",
        "--clone-copy-mbps", "1000",
    )
    apply_yaml(cluster, POLICIES)
    wait(cluster, "--for=condition=Ready", "sp/tmpl-shared", "sp/tmpl-local")
    yield cluster
    cluster.stop()


@pytest.fixture
def namespace(datacenter: DevCluster, request: pytest.FixtureRequest) -> str:
    name = f"tmpl-{request.node.name.lower().replace('_', '-')[5:40]}".strip("-")
    datacenter.kubectl("create", "namespace", name)
    return name


def http_template(name: str, *, cpu: int = 2, memory: str = "2Gi") -> str:
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachineTemplate
metadata:
  name: {name}
spec:
  source:
    http:
      url: https://cloud.example.com/images/fedora-40.qcow2
  size: 1Gi
  storagePolicyName: tmpl-shared
  vmDefaults:
    cpu:
      count: {cpu}
    memory:
      size: {memory}
    firmware: EFI
"""


def vm_from(name: str, template: str, extra: str = "") -> str:
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  templateName: {template}
{extra}
"""


def condition(obj: dict[str, Any], condition_type: str) -> dict[str, Any]:
    for entry in obj.get("status", {}).get("conditions", []):
        if entry["type"] == condition_type:
            return dict(entry)
    raise AssertionError(f"no {condition_type} condition in {obj.get('status')}")


def wait_template_ready(cluster: DevCluster, namespace: str, name: str) -> dict[str, Any]:
    wait(cluster, "--for=condition=Ready", f"vdcvmt/{name}", "-n", namespace, timeout=90)
    template: dict[str, Any] = get_json(cluster, "vdcvmt", name, "-n", namespace)
    return template


def test_linked_clones_of_an_http_template(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, http_template("fedora"), namespace)
    template = wait_template_ready(datacenter, namespace, "fedora")
    assert template["status"]["phase"] == "Ready"
    assert template["status"]["progress"] == "100.0%"
    assert template["status"]["dataSourceName"] == "fedora"
    assert template["status"]["storageClassName"] == "shared"
    # What the template publishes is CDI's: an imported DataVolume and a Ready DataSource.
    data_source = get_json(datacenter, "datasource", "fedora", "-n", namespace)
    validate_against_swagger(data_source, CDI_SWAGGER, "v1beta1.DataSource")
    assert condition(data_source, "Ready")["status"] == "True"
    assert data_source["spec"]["source"]["pvc"]["name"] == template["status"]["dataVolumeName"]
    image = get_json(datacenter, "dv", template["status"]["dataVolumeName"], "-n", namespace)
    validate_against_swagger(image, CDI_SWAGGER, "v1beta1.DataVolume")
    assert image["spec"]["source"]["http"]["url"].endswith("fedora-40.qcow2")
    events = get_json(datacenter, "events", "-n", namespace, "--field-selector="
                      "involvedObject.name=fedora,involvedObject.kind=VirtualMachineTemplate")
    reasons = [event["reason"] for event in events["items"]]
    assert (reasons.count("Importing"), reasons.count("Ready")) == (1, 1), reasons

    for index in range(3):
        apply_yaml(datacenter, vm_from(f"linked-{index}", "fedora"), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm", "--all", "-n", namespace, timeout=120)
    for index in range(3):
        vm = get_json(datacenter, "vdcvm", f"linked-{index}", "-n", namespace)
        assert vm["status"]["powerState"] == "PoweredOn"
        assert vm["status"]["cloneStrategy"] == "csi-clone"
        assert "cloneFallbackReason" not in vm["status"]
        assert vm["status"]["cpu"] == 2  # the template's vmDefaults
        kubevirt_vm = get_json(datacenter, "vm", f"linked-{index}", "-n", namespace)
        validate_against_swagger(kubevirt_vm["spec"], KUBEVIRT_SWAGGER, "v1.VirtualMachineSpec")
        assert kubevirt_vm["spec"]["template"]["spec"]["domain"]["firmware"]["bootloader"] == {
            "efi": {"secureBoot": False}}
        [boot] = kubevirt_vm["spec"]["dataVolumeTemplates"]
        assert boot["spec"]["sourceRef"] == {"kind": "DataSource", "namespace": namespace,
                                             "name": "fedora"}
        disk = get_json(datacenter, "dv", f"linked-{index}-root", "-n", namespace)
        validate_against_swagger(disk, CDI_SWAGGER, "v1beta1.DataVolume")
        assert disk["metadata"]["annotations"]["cdi.kubevirt.io/cloneType"] == "csi-clone"
        assert disk["status"]["phase"] == "Succeeded"


def test_full_clone_is_a_copy(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, http_template("golden"), namespace)
    wait_template_ready(datacenter, namespace, "golden")
    apply_yaml(datacenter, vm_from("full", "golden", "  cloneMode: Full"), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/full", "-n", namespace, timeout=120)
    vm = get_json(datacenter, "vdcvm", "full", "-n", namespace)
    assert vm["status"]["cloneStrategy"] == "copy"
    assert "cloneFallbackReason" not in vm["status"]  # asked for, not a fallback
    events = get_json(datacenter, "events", "-n", namespace,
                      "--field-selector=involvedObject.name=full-root")["items"]
    assert "CloneInProgress" in {event["reason"] for event in events}


def test_linked_clone_on_other_storage_falls_back_to_copy(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, http_template("base"), namespace)
    wait_template_ready(datacenter, namespace, "base")
    local_root = """  disks:
  - name: root
    size: 1Gi
    storagePolicyName: tmpl-local"""
    apply_yaml(datacenter, vm_from("elsewhere", "base", local_root), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/elsewhere", "-n", namespace, timeout=120)
    vm = get_json(datacenter, "vdcvm", "elsewhere", "-n", namespace)
    # The local class's StorageProfile says copy: CDI copies, and the status says why.
    assert vm["status"]["cloneStrategy"] == "copy"
    assert "StorageProfile" in vm["status"]["cloneFallbackReason"]
    claim = get_json(datacenter, "pvc", "elsewhere-root", "-n", namespace)
    assert claim["spec"]["storageClassName"] == "standard"


def test_fields_the_vm_sets_win(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, http_template("shape", cpu=2, memory="2Gi"), namespace)
    wait_template_ready(datacenter, namespace, "shape")
    apply_yaml(datacenter, vm_from("own-cpu", "shape", "  cpu:\n    count: 4"), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/own-cpu", "-n", namespace, timeout=120)
    vm = get_json(datacenter, "vdcvm", "own-cpu", "-n", namespace)
    assert vm["status"]["cpu"] == 4
    assert vm["status"]["memory"] == "2Gi"  # left out: the template's


def test_missing_template_waits_then_builds(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, vm_from("early", "later"), namespace)
    wait(datacenter, "--for=condition=Ready=False", "vdcvm/early", "-n", namespace)
    vm = get_json(datacenter, "vdcvm", "early", "-n", namespace)
    ready = condition(vm, "Ready")
    assert ready["reason"] == "VirtualMachineTemplateNotFound"
    assert "spec.templateName" in ready["message"] and '"later"' in ready["message"]
    assert datacenter.kubectl("get", "vm", "early", "-n", namespace,
                              check=False).returncode != 0  # nothing built meanwhile
    # The template appearing and turning Ready is what builds the VM (no edit of the VM).
    apply_yaml(datacenter, http_template("later"), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/early", "-n", namespace, timeout=120)


def test_template_from_a_powered_off_vm(datacenter: DevCluster, namespace: str) -> None:
    source_vm = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: prepared
spec:
  powerState: PoweredOff
  cpu:
    count: 1
  memory:
    size: 1Gi
  disks:
  - name: os
    size: 1Gi
    bootOrder: 1
    storagePolicyName: tmpl-shared
    source:
      http:
        url: https://cloud.example.com/images/debian-12.qcow2
"""
    apply_yaml(datacenter, source_vm, namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/prepared", "-n", namespace, timeout=90)
    published = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachineTemplate
metadata:
  name: debian
spec:
  source:
    virtualMachineName: prepared
  storagePolicyName: tmpl-shared
  vmDefaults:
    cpu:
      count: 1
    memory:
      size: 1Gi
"""
    apply_yaml(datacenter, published, namespace)
    template = wait_template_ready(datacenter, namespace, "debian")
    assert template["status"]["size"] == "1Gi"  # the VM's boot disk
    image = get_json(datacenter, "dv", template["status"]["dataVolumeName"], "-n", namespace)
    assert image["spec"]["source"] == {"pvc": {"namespace": namespace, "name": "prepared-os"}}
    apply_yaml(datacenter, vm_from("copy-of-prepared", "debian"), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/copy-of-prepared", "-n", namespace,
         timeout=120)


def test_template_of_a_running_vm_is_refused(datacenter: DevCluster, namespace: str) -> None:
    running = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: busy
spec:
  cpu:
    count: 1
  memory:
    size: 1Gi
"""
    apply_yaml(datacenter, running, namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/busy", "-n", namespace, timeout=90)
    refused = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachineTemplate
metadata:
  name: from-busy
spec:
  source:
    virtualMachineName: busy
"""
    apply_yaml(datacenter, refused, namespace)
    wait(datacenter, "--for=condition=Ready=False", "vdcvmt/from-busy", "-n", namespace)
    template = get_json(datacenter, "vdcvmt", "from-busy", "-n", namespace)
    ready = condition(template, "Ready")
    assert template["status"]["phase"] == "Failed"
    assert ready["reason"] == "SourceVirtualMachineNotPoweredOff"
    assert "spec.source.virtualMachineName" in ready["message"]
    assert "PoweredOn" in ready["message"]
    # Nothing half-made is left behind.
    assert get_json(datacenter, "dv", "-n", namespace)["items"] == []
    assert get_json(datacenter, "datasource", "-n", namespace)["items"] == []
