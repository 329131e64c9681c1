"""VMs made from templates: the merge of vmDefaults (the VM's own fields win), the boot disk
cloned from the template's DataSource, Full asking CDI for a copy, and the template's own
CDI objects, all as CDI's schema accepts them."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.storagepolicy.builders import ResolvedStoragePolicy
from controllers.virtualmachine.admission import Rejection, parse_spec
from controllers.virtualmachine.builders import build_kubevirt_vm
from controllers.virtualmachine.models import VirtualMachineSpec
from controllers.virtualmachine.template_merge import (
    TemplateView,
    TemplateWait,
    clone_status,
    resolve_template,
)
from controllers.virtualmachinetemplate.builders import (
    SourceDisk,
    build_data_source,
    build_image_data_volume,
    source_vm_disk,
    template_readiness,
)
from controllers.virtualmachinetemplate.models import VirtualMachineTemplateSpec
from tests.oracles import CDI_SWAGGER, KUBEVIRT_SWAGGER, validate_against_swagger

SHARED = ResolvedStoragePolicy("fast", "shared", "Thin", "ReadWriteMany", "Filesystem")
LOCAL = ResolvedStoragePolicy("local", "standard", "Thin", "ReadWriteOnce", "Filesystem")
POLICIES = {"fast": SHARED, "local": LOCAL}

TEMPLATE_SPEC = VirtualMachineTemplateSpec.model_validate({
    "source": {"http": {"url": "https://example.com/fedora.qcow2"}},
    "size": "10Gi",
    "storagePolicyName": "fast",
    "vmDefaults": {
        "cpu": {"count": 2},
        "memory": {"size": "4Gi"},
        "firmware": "EFI",
        "networks": [{"name": "nic0", "podNetwork": {}}],
        "disks": [{"name": "data", "size": "5Gi"}],
    },
})
READY = TemplateView(TEMPLATE_SPEC, "Ready", "fedora", "10Gi")


def merged(vm_spec: dict[str, Any], template: TemplateView | None = READY) -> dict[str, Any]:
    result = resolve_template({"templateName": "fedora", **vm_spec}, template)
    assert isinstance(result, dict), result
    return result


def test_left_out_fields_come_from_the_template() -> None:
    spec = VirtualMachineSpec.model_validate(merged({}))
    assert (spec.cpu.count, spec.memory.size, spec.firmware) == (2, "4Gi", "EFI")
    assert [n.name for n in spec.networks] == ["nic0"]
    root, data = spec.disks
    assert (root.name, root.size, root.boot_order, root.storage_policy_name) == (
        "root", "10Gi", 1, "fast")
    assert root.source is not None and root.source.data_source is not None
    assert root.source.data_source.name == "fedora"
    assert (data.name, data.size) == ("data", "5Gi")


def test_fields_the_vm_sets_win() -> None:
    spec = VirtualMachineSpec.model_validate(merged({
        "cpu": {"count": 8, "coresPerSocket": 4},
        "firmware": "BIOS",
        "networks": [{"name": "lan", "portGroupName": "vlan100"}],
        "disks": [{"name": "root", "size": "40Gi", "storagePolicyName": "local"},
                  {"name": "logs", "size": "1Gi"}],
    }))
    assert (spec.cpu.count, spec.cpu.cores_per_socket, spec.firmware) == (8, 4, "BIOS")
    assert spec.memory.size == "4Gi"  # left out: the template's
    assert [n.name for n in spec.networks] == ["lan"]  # a list is the VM's whole
    by_name = {disk.name: disk for disk in spec.disks}
    assert list(by_name) == ["root", "data", "logs"]
    root = by_name["root"]
    # Disks merge by name, field by field: a bigger root on other storage, still the clone.
    assert (root.size, root.storage_policy_name, root.boot_order) == ("40Gi", "local", 1)
    assert root.source is not None and root.source.data_source is not None


def test_a_boot_disk_smaller_than_the_image_is_refused_naming_the_field() -> None:
    result = resolve_template(
        {"templateName": "fedora", "disks": [{"name": "root", "size": "5Gi"}]}, READY
    )
    assert isinstance(result, TemplateWait)
    assert result.reason == "InvalidSpec"
    assert result.message.startswith("spec.disks[0].size: 5Gi is smaller")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (None, "VirtualMachineTemplateNotFound"),
        (TemplateView(TEMPLATE_SPEC, "Importing", None, "10Gi", "DataVolume x is "
                      "ImportInProgress (45.00%)"), "VirtualMachineTemplateNotReady"),
        (TemplateView(None, "Failed", None, None), "VirtualMachineTemplateInvalid"),
    ],
)
def test_a_vm_waits_for_its_template_naming_the_field(
    template: TemplateView | None, reason: str
) -> None:
    result = resolve_template({"templateName": "fedora"}, template)
    assert isinstance(result, TemplateWait)
    assert result.reason == reason
    assert result.message.startswith('spec.templateName: ')
    assert '"fedora"' in result.message


def test_without_a_template_cpu_and_memory_are_required() -> None:
    assert resolve_template({"memory": {"size": "1Gi"}}, None) == {"memory": {"size": "1Gi"}}
    rejection = parse_spec({"memory": {"size": "1Gi"}})
    assert isinstance(rejection, Rejection)
    assert "cpu is required (set spec.cpu, or name a templateName" in rejection.message


@pytest.mark.parametrize(("mode", "annotation"), [("Linked", None), ("Full", "copy")])
def test_boot_disk_is_a_clone_of_the_data_source(mode: str, annotation: str | None) -> None:
    spec = VirtualMachineSpec.model_validate(merged({"cloneMode": mode}))
    built = build_kubevirt_vm(spec, "web", "prod", storage_policies=POLICIES, cluster=None,
                              default_storage_policy_name="local")
    validate_against_swagger(built["spec"], KUBEVIRT_SWAGGER, "v1.VirtualMachineSpec")
    root, data = built["spec"]["dataVolumeTemplates"]
    for template in (root, data):
        validate_against_swagger(template, CDI_SWAGGER, "v1beta1.DataVolume")
    assert root["spec"]["sourceRef"] == {"kind": "DataSource", "namespace": "prod",
                                         "name": "fedora"}
    assert root["spec"]["storage"]["storageClassName"] == "shared"  # the template's policy
    assert root["metadata"]["annotations"].get("cdi.kubevirt.io/cloneType") == annotation
    # A blank data disk is no clone: nothing to ask of CDI.
    assert "cdi.kubevirt.io/cloneType" not in data["metadata"]["annotations"]
    assert data["spec"]["storage"]["storageClassName"] == "standard"  # the default policy


def test_clone_status_shows_a_linked_clone_that_fell_back() -> None:
    def dv(strategy: str | None) -> dict[str, Any]:
        annotations = {"cdi.kubevirt.io/cloneType": strategy} if strategy else {}
        return {"metadata": {"annotations": annotations}}

    claim = {"metadata": {"annotations": {
        "cdi.kubevirt.io/cloneFallbackReason": "Provisioners are incompatible"}}}
    assert clone_status("Linked", None) == {"cloneStrategy": None, "cloneFallbackReason": None}
    assert clone_status("Linked", dv("csi-clone")) == {
        "cloneStrategy": "csi-clone", "cloneFallbackReason": None}
    assert clone_status("Full", dv("copy")) == {"cloneStrategy": "copy",
                                                "cloneFallbackReason": None}
    assert clone_status("Linked", dv("copy"), claim) == {
        "cloneStrategy": "copy", "cloneFallbackReason": "Provisioners are incompatible"}


# --------------------------------------------------------------------------- the template


def test_template_source_is_exactly_one_and_size_is_known() -> None:
    with pytest.raises(ValueError, match="exactly one of virtualMachineName, http"):
        VirtualMachineTemplateSpec.model_validate({"source": {}, "size": "1Gi"})
    with pytest.raises(ValueError, match=r"size is required unless source\.virtualMachineName"):
        VirtualMachineTemplateSpec.model_validate(
            {"source": {"http": {"url": "https://example.com/a.img"}}})
    with pytest.raises(ValueError, match="must not use the boot disk's name 'root'"):
        VirtualMachineTemplateSpec.model_validate({
            "source": {"virtualMachineName": "vm"},
            "vmDefaults": {"disks": [{"name": "root", "size": "1Gi"}]}})


def test_image_data_volume_and_data_source_are_cdi_objects() -> None:
    data_volume = build_image_data_volume("fedora", "prod", TEMPLATE_SPEC, SHARED, "10Gi")
    validate_against_swagger(data_volume, CDI_SWAGGER, "v1beta1.DataVolume")
    assert data_volume["metadata"]["name"] == "vdcvmt-fedora"
    assert data_volume["spec"]["source"] == {"http": {"url": "https://example.com/fedora.qcow2"}}
    data_source = build_data_source("fedora", "prod")
    validate_against_swagger(data_source, CDI_SWAGGER, "v1beta1.DataSource")
    assert data_source["spec"]["source"]["pvc"] == {"namespace": "prod", "name": "vdcvmt-fedora"}
    published = VirtualMachineTemplateSpec.model_validate({"source": {"virtualMachineName": "a"}})
    from_vm = build_image_data_volume("a-tmpl", "prod", published, SHARED, "20Gi", "a-os")
    validate_against_swagger(from_vm, CDI_SWAGGER, "v1beta1.DataVolume")
    assert from_vm["spec"]["source"] == {"pvc": {"namespace": "prod", "name": "a-os"}}


def test_only_a_powered_off_vm_is_published() -> None:
    disks = [{"name": "data", "size": "5Gi"}, {"name": "os", "size": "20Gi", "bootOrder": 1}]

    def vm(spec_state: str, observed: str) -> dict[str, Any]:
        return {"spec": {"powerState": spec_state, "disks": disks},
                "status": {"powerState": observed}}

    assert source_vm_disk("a", vm("PoweredOff", "PoweredOff")) == SourceDisk("a-os", "20Gi")
    running = source_vm_disk("a", vm("PoweredOn", "PoweredOn"))
    assert isinstance(running, str)
    assert running.startswith('spec.source.virtualMachineName: VirtualMachine "a" is PoweredOn')
    # Asked to power off but still running: the copy would race the guest's writes.
    assert isinstance(source_vm_disk("a", vm("PoweredOff", "PoweredOn")), str)
    assert "not found" in str(source_vm_disk("a", None))


def test_template_phase_follows_the_data_volume_and_data_source() -> None:
    def dv(phase: str, progress: str = "N/A") -> dict[str, Any]:
        return {"metadata": {"name": "vdcvmt-f"}, "status": {"phase": phase,
                                                              "progress": progress}}

    def ds(status: str) -> dict[str, Any]:
        return {"metadata": {"name": "f"}, "status": {"conditions": [
            {"type": "Ready", "status": status, "message": "Import DataVolume phase X"}]}}

    importing = template_readiness(dv("ImportInProgress", "45.00%"), ds("False"))
    assert (importing.phase, importing.progress, importing.ready) == (
        "Importing", "45.00%", False)
    assert template_readiness(dv("Failed"), None).phase == "Failed"
    waiting = template_readiness(dv("Succeeded", "100.0%"), ds("False"))
    assert (waiting.phase, waiting.reason) == ("Importing", "DataSourceNotReady")
    ready = template_readiness(dv("Succeeded", "100.0%"), ds("True"))
    assert (ready.phase, ready.ready) == ("Ready", True)
