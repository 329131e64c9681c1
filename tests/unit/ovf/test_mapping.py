"""OVF to VDC objects: VMs, apps from (nested) collections, networks, properties; every
VirtualMachine checked against the CRD in crds/."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import yaml

from controllers.ovf.descriptor import read_envelope
from controllers.ovf.errors import OvfError
from controllers.ovf.mapping import ImportOptions, plan_import
from tests.oracles import REPO_ROOT, crd_schema_errors

from . import descriptors as d


@functools.cache
def _crd(plural: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(
        (REPO_ROOT / "crds" / f"vdcos.io_{plural}.yaml").read_text())
    return crd


def _vm_crd() -> dict[str, Any]:
    return _crd("virtualmachines")


def _plan(text: str, **options: Any) -> Any:
    return plan_import(read_envelope(text, "t.ovf"), ImportOptions(**options))


def test_single_vm_becomes_a_virtual_machine_valid_for_the_crd() -> None:
    plan = _plan(d.single_vm(), namespace="apps", storage_policy="gold")
    vm = plan.workload
    assert vm["kind"] == "VirtualMachine"
    assert vm["metadata"]["name"] == "web"
    assert vm["metadata"]["namespace"] == "apps"
    assert crd_schema_errors(vm, _vm_crd()) == []
    assert vm["spec"]["cpu"] == {"count": 2}
    assert vm["spec"]["memory"] == {"size": "2Gi"}
    [image] = plan.images
    assert vm["spec"]["disks"] == [{
        "name": "disk1", "size": "10Gi", "bus": "scsi", "storagePolicyName": "gold",
        "source": {"pvc": {"name": image.name}}, "bootOrder": 1}]
    assert image.datavolume["spec"] == {
        "source": {"upload": {}}, "storage": {"resources": {"requests": {"storage": "10Gi"}}}}
    assert image.file.href == "web-disk1.vmdk"
    assert vm["spec"]["networks"] == [{"name": "nic1", "podNetwork": {}}]
    assert plan.network_choices == ["network 'VM Network' -> the pod network (default)"]


def test_networks_first_to_pod_others_to_port_groups_and_a_second_pod_nic_moves() -> None:
    system = d.system("vm", d.cpu(1), d.memory(1024), d.nic("VM Network"),
                      d.nic("Back End_1", instance="21", model="E1000", mac="005056aabbcc"),
                      d.nic("VM Network", instance="22", model="PCNet32"))
    text = d.envelope(system, networks=("VM Network", "Back End_1"))
    plan = _plan(text)
    assert plan.workload["spec"]["networks"] == [
        {"name": "nic1", "podNetwork": {}},
        {"name": "nic2", "portGroupName": "back-end-1", "macAddress": "00:50:56:aa:bb:cc",
         "model": "e1000"},
        {"name": "nic3", "portGroupName": "vm-network", "model": "pcnet"}]
    assert plan.network_choices == ["network 'VM Network' -> the pod network (default)",
                                    "network 'Back End_1' -> port group back-end-1 (default)"]
    assert any("nic3" in n or "Network adapter 22" in n for n in plan.notes)
    assert crd_schema_errors(plan.workload, _vm_crd()) == []
    mapped = _plan(text, network_map={"VM Network": "frontend", "Back End_1": "pod"})
    assert [n.get("portGroupName", "pod") for n in mapped.workload["spec"]["networks"]] == [
        "frontend", "pod", "frontend"]
    with pytest.raises(OvfError, match=r"--network-map Nope=x: the descriptor has no network "
                                       r"'Nope' \(its networks: VM Network, Back End_1\)"):
        _plan(text, network_map={"Nope": "x"})


def _three_tier(nested: bool = False) -> str:
    db = d.simple_system("db", disk_id=None)
    app = d.simple_system("app", disk_id=None)
    web = d.simple_system("web", disk_id=None)
    scale = ('<ScaleOutSection ovf:id="web"><Info>Web</Info><Description>x</Description>'
             '<InstanceCount ovf:default="2" ovf:minimum="1" ovf:maximum="5"/>'
             '</ScaleOutSection>')
    app_props = d.product(d.prop("db.host", "string", "db"), d.prop("admin", "string", "pw",
                                                                    password=True))
    if nested:
        front = d.collection("front", app, web, scale_out=scale,
                             startup=[d.startup_item("app", 1, startDelay="5"),
                                      d.startup_item("web", 2)])
        root = d.collection("shop", db, front, product=app_props, startup=[
            d.startup_item("db", 1, startDelay="30", waitingForGuest="true",
                           stopAction="guestShutdown", stopDelay="10"),
            d.startup_item("front", 2, stopDelay="7")])
    else:
        root = d.collection("shop", db, app, web, product=app_props, scale_out=scale, startup=[
            d.startup_item("db", 10, startDelay="30", waitingForGuest="true",
                           stopAction="guestShutdown", stopDelay="10"),
            d.startup_item("app", 20, startDelay="5"), d.startup_item("web", 20)])
    return d.envelope(root)


def _members(app: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(m["name"], m["startOrder"], m["startDelaySeconds"], m["waitForGuest"],
             m["stopAction"], m["stopDelaySeconds"], m["replicas"], m["minReplicas"],
             m["maxReplicas"]) for m in app["spec"]["members"]]


def test_collection_becomes_a_virtual_app_in_start_order() -> None:
    app = _plan(_three_tier(), name="shop").workload
    assert app["kind"] == "VirtualApp"
    assert crd_schema_errors(app, _crd("virtualapps")) == []
    assert _members(app) == [
        ("db", 1, 30, True, "GuestShutdown", 10, 1, 1, 1),
        ("app", 2, 5, False, "PowerOff", 0, 1, 1, 1),
        ("web", 2, 0, False, "PowerOff", 0, 2, 1, 5)]
    assert app["spec"]["properties"] == [{"key": "db.host", "value": "db"},
                                         {"key": "admin", "value": "pw", "password": True}]
    for member in app["spec"]["members"]:
        vm = {"apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
              "metadata": {"name": "x"}, "spec": member["template"]["spec"]}
        assert crd_schema_errors(vm, _vm_crd()) == []


def test_nested_collections_flatten_keeping_the_sequence() -> None:
    app = _plan(_three_tier(nested=True)).workload
    assert app["metadata"]["name"] == "shop"
    assert crd_schema_errors(app, _crd("virtualapps")) == []
    # db first; then the front collection: app, then web (its own order inside it). The
    # front collection's stopDelay follows its first step, app, which stops last in it.
    assert _members(app) == [
        ("db", 1, 30, True, "GuestShutdown", 10, 1, 1, 1),
        ("app", 2, 5, False, "PowerOff", 7, 1, 1, 1),
        ("web", 3, 0, False, "PowerOff", 0, 2, 1, 5)]


def test_equal_orders_of_nested_collections_run_side_by_side() -> None:
    left = d.collection("left", d.simple_system("a1", disk_id=None),
                        d.simple_system("a2", disk_id=None),
                        startup=[d.startup_item("a1", 1), d.startup_item("a2", 2)])
    right = d.collection("right", d.simple_system("b1", disk_id=None),
                         startup=[d.startup_item("b1", 1)])
    text = d.envelope(d.collection("pair", left, right, d.simple_system("last", disk_id=None),
                                   startup=[d.startup_item("left", 1),
                                            d.startup_item("right", 1),
                                            d.startup_item("last", 2)]))
    app = _plan(text).workload
    assert [(m["name"], m["startOrder"]) for m in app["spec"]["members"]] == [
        ("a1", 1), ("b1", 1), ("a2", 2), ("last", 3)]


def test_members_keep_their_own_properties_and_disk_images() -> None:
    member = d.system("db", d.cpu(2), d.memory(4096), d.scsi(), d.disk("dbdisk"),
                      d.nic("VM Network"),
                      product=d.product(d.prop("port", "uint16", "5432")))
    text = d.envelope(d.collection("shop", member), files={"f": "db.vmdk"},
                      disks=[d.disk_entry("dbdisk", file_ref="f")])
    plan = _plan(text, name="store")
    [m] = plan.workload["spec"]["members"]
    assert m["properties"] == [{"key": "port", "value": "5432"}]
    assert [image.name for image in plan.images] == ["store-db-dbdisk-image"]
    assert m["template"]["spec"]["disks"][0]["source"] == {
        "pvc": {"name": "store-db-dbdisk-image"}}


def test_lone_vm_properties_are_kept_in_an_annotation() -> None:
    text = d.envelope(d.system("vm", d.cpu(1), d.memory(1024), product=d.product(
        d.prop("ip", "string", "10.1.1.1"), d.prop("pw", "string", "s", password=True))),
        networks=())
    vm = _plan(text).workload
    assert vm["metadata"]["annotations"]["ovf.vdcos.io/properties"] == '{"ip": "10.1.1.1"}'


def test_a_multicast_mac_is_refused_naming_the_nic() -> None:
    text = d.envelope(d.system("vm", d.cpu(1), d.memory(1024),
                               d.nic("VM Network", mac="01:00:5e:00:00:01")))
    with pytest.raises(OvfError, match=r"VirtualSystem 'vm', NIC Network adapter 20: Address "
                                       r"'01:00:5e:00:00:01' is a multicast address"):
        _plan(text)


def test_member_names_fit_the_virtual_app_limit() -> None:
    long_id = "a-very-long-virtual-system-identifier-from-a-vendor-appliance"
    text = d.envelope(d.collection("app", d.simple_system(long_id, disk_id=None),
                                   d.simple_system(long_id + "-2", disk_id=None)))
    app = _plan(text).workload
    names = [m["name"] for m in app["spec"]["members"]]
    assert all(len(name) <= 40 for name in names) and len(set(names)) == 2
    assert crd_schema_errors(app, _crd("virtualapps")) == []
