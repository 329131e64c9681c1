"""Disks of a running VM with kubectl: hot-add and hot-remove (same guest), online growth,
growth on a class that cannot expand (RestartRequired saying why), shrink refused."""

from __future__ import annotations

import json

import pytest

from controllers.virtualmachine.disks import required_space
from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, get_json, wait
from tests.integration.disk_helpers import (
    disk,
    disk_status,
    get_or_none,
    policy,
    poll,
    vdc_condition,
    vm_with_disks,
    vmi_uid,
    vmi_volume,
)
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def policies(datacenter: DevCluster) -> None:
    apply_yaml(datacenter, policy("disks-shared", "  storageClassName: shared")
               + "---" + policy("disks-local", "  storageClassName: standard\n"
                                               "  accessMode: ReadWriteOnce"))
    wait(datacenter, "--for=condition=Ready", "storagepolicy/disks-shared",
         "storagepolicy/disks-local")


def patch(cluster: DevCluster, namespace: str, vm: str, body: object) -> None:
    cluster.kubectl("patch", "vdcvm", vm, "-n", namespace, "--type", "json",
                    "-p", json.dumps(body))


def test_hot_add_and_remove_a_data_disk_keeps_the_guest(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, vm_with_disks("hp", disk("root", "disks-shared")), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/hp", "-n", namespace, timeout=90)
    guest = vmi_uid(datacenter, namespace, "hp")

    patch(datacenter, namespace, "hp", [{"op": "add", "path": "/spec/disks/-", "value": {
        "name": "data", "size": "1Gi", "storagePolicyName": "disks-shared"}}])
    plugged = poll(lambda: (v := vmi_volume(datacenter, namespace, "hp", "data")).get(
        "phase") == "Ready" and v, "the data disk hot-plugged")
    assert plugged["target"].startswith("sd")  # on the SCSI bus
    assert get_or_none(datacenter, "pod", plugged["hotplugVolume"]["attachPodName"],
                       "-n", namespace)
    assert vmi_uid(datacenter, namespace, "hp") == guest
    poll(lambda: disk_status(datacenter, namespace, "hp", "data").get("hotPlugged"),
         "status says the disk is hot-plugged")
    assert vdc_condition(datacenter, "vdcvm", "hp", "RestartRequired", namespace).get(
        "status") != "True"
    validate_against_swagger(get_json(datacenter, "vmi", "hp", "-n", namespace),
                             KUBEVIRT_SWAGGER, "v1.VirtualMachineInstance")

    patch(datacenter, namespace, "hp", [{"op": "remove", "path": "/spec/disks/1"}])
    poll(lambda: not vmi_volume(datacenter, namespace, "hp", "data"), "the disk unplugged")
    poll(lambda: get_or_none(datacenter, "dv", "hp-data", "-n", namespace) is None,
         "the removed disk's DataVolume deleted")
    assert vmi_uid(datacenter, namespace, "hp") == guest
    assert vdc_condition(datacenter, "vdcvm", "hp", "RestartRequired", namespace).get(
        "status") != "True"


def test_a_disk_grows_online(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, vm_with_disks("grow", disk("root", "disks-shared")), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/grow", "-n", namespace, timeout=90)
    guest = vmi_uid(datacenter, namespace, "grow")

    patch(datacenter, namespace, "grow", [
        {"op": "replace", "path": "/spec/disks/0/size", "value": "3Gi"}])
    grown = required_space("3Gi", "Filesystem")
    poll(lambda: (get_json(datacenter, "pvc", "grow-root", "-n", namespace)["status"].get(
        "capacity") or {}).get("storage") == grown, "the claim grown to 3Gi")
    wait(datacenter, "--for=jsonpath={.status.observedGeneration}=2", "vdcvm/grow",
         "-n", namespace)
    assert vmi_uid(datacenter, namespace, "grow") == guest
    assert vdc_condition(datacenter, "vdcvm", "grow", "RestartRequired", namespace).get(
        "status") != "True"


def test_growth_on_a_class_without_expansion_says_why(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, vm_with_disks("fixed", disk("root", "disks-local")), namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/fixed", "-n", namespace, timeout=90)
    before = get_json(datacenter, "pvc", "fixed-root", "-n", namespace)["spec"]

    patch(datacenter, namespace, "fixed", [
        {"op": "replace", "path": "/spec/disks/0/size", "value": "2Gi"}])
    wait(datacenter, "--for=condition=RestartRequired", "vdcvm/fixed", "-n", namespace)
    message = vdc_condition(datacenter, "vdcvm", "fixed", "RestartRequired", namespace)[
        "message"]
    assert "standard" in message and "allowVolumeExpansion" in message
    after = get_json(datacenter, "pvc", "fixed-root", "-n", namespace)["spec"]
    assert after["resources"] == before["resources"]


def test_shrinking_a_disk_is_refused_naming_the_field(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, vm_with_disks("shrink", disk("root", "disks-shared", "2Gi")),
               namespace)
    wait(datacenter, "--for=condition=Ready", "vdcvm/shrink", "-n", namespace, timeout=90)
    patch(datacenter, namespace, "shrink", [
        {"op": "replace", "path": "/spec/disks/0/size", "value": "1Gi"}])
    wait(datacenter, "--for=condition=Admitted=False", "vdcvm/shrink", "-n", namespace)
    admitted = vdc_condition(datacenter, "vdcvm", "shrink", "Admitted", namespace)
    assert admitted["reason"] == "DiskShrinkRefused"
    assert "spec.disks[0].size" in admitted["message"]
    kubevirt_vm = get_json(datacenter, "vm", "shrink", "-n", namespace)
    template = kubevirt_vm["spec"]["dataVolumeTemplates"][0]
    assert template["spec"]["storage"]["resources"]["requests"]["storage"] == "2Gi"
