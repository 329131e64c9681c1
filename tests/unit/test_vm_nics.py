"""VM NICs: MACs assigned once, models, Multus bridge networks KubeVirt accepts, port-group
admission, hot-plug and hot-unplug planned as live changes, and status.nics."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers.distributedportgroup.models import DistributedPortGroupSpec
from controllers.virtualmachine.admission import (
    mac_address_rejection,
    parse_spec,
    port_group_rejection,
)
from controllers.virtualmachine.changes import plan_changes
from controllers.virtualmachine.models import VirtualMachineSpec
from controllers.virtualmachine.nics import (
    WIRING_ANNOTATION,
    assign_mac,
    kept_macs,
    port_group_wiring,
    resolve_macs,
    rewired_port_groups,
)
from controllers.virtualmachine.status import nic_statuses
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger
from tests.unit.test_builders import _build, _live, _running_vmi

SHAPE: dict[str, Any] = {
    "cpu": {"count": 2},
    "memory": {"size": "2Gi"},
    "networks": [
        {"name": "default", "podNetwork": {}},
        {"name": "lan", "portGroupName": "pg-web", "model": "e1000e"},
    ],
}


def _nothing_in_use(mac: str) -> bool:
    return False


def _spec(shape: dict[str, Any]) -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate(shape)


def _with_macs(shape: dict[str, Any], live: dict[str, Any] | None = None,
               vmi: dict[str, Any] | None = None) -> dict[str, Any]:
    macs = resolve_macs(_spec(shape), "apps", "web", kept_macs(live), _nothing_in_use)
    return _build(shape, live=live, mac_addresses=macs, vmi=vmi)


def _interfaces(vm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    devices = vm["spec"]["template"]["spec"]["domain"]["devices"]
    return {i["name"]: i for i in devices["interfaces"]}


def _with_nic_status(vmi: dict[str, Any], *names: str, source: str = "domain") -> dict[str, Any]:
    vmi = copy.deepcopy(vmi)
    vmi["status"]["interfaces"] = [
        {"name": name, "mac": "02:76:00:00:00:01", "infoSource": source,
         "ipAddress": "10.0.0.5", "ipAddresses": ["10.0.0.5"]} for name in names]
    return vmi


# --------------------------------------------------------------------------- MACs


def test_assigned_mac_is_locally_administered_unicast_and_stable() -> None:
    mac = assign_mac("apps/web/lan", _nothing_in_use)
    first = int(mac.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01
    assert mac.startswith("02:76:")
    assert assign_mac("apps/web/lan", _nothing_in_use) == mac  # the same NIC, the same MAC
    assert assign_mac("apps/web/wan", _nothing_in_use) != mac


def test_assigned_mac_steps_past_those_in_use() -> None:
    mac = assign_mac("apps/web/lan", _nothing_in_use)
    other = assign_mac("apps/web/lan", {mac}.__contains__)
    assert other != mac and other.startswith("02:76:")


def test_macs_come_from_the_spec_then_the_kubevirt_vm_then_assignment() -> None:
    shape = copy.deepcopy(SHAPE)
    shape["networks"][0]["macAddress"] = "02:AA:BB:CC:DD:EE"
    first = _with_macs(shape)
    assert _interfaces(first)["default"]["macAddress"] == "02:aa:bb:cc:dd:ee"
    assigned = _interfaces(first)["lan"]["macAddress"]
    # Kept when the derivation would now give another (a NIC in use took its first pick).
    kept = resolve_macs(_spec(shape), "apps", "web", kept_macs(_live(first)),
                        {assigned}.__contains__)
    assert kept["lan"] == assigned


def test_a_new_nic_does_not_take_a_mac_in_use() -> None:
    taken = assign_mac("apps/web/lan", _nothing_in_use)
    macs = resolve_macs(_spec(SHAPE), "apps", "web", {}, {taken}.__contains__)
    assert macs["lan"] != taken and len(set(macs.values())) == 2


def test_the_default_pod_nic_gets_a_mac_too() -> None:
    vm = _with_macs({"cpu": {"count": 1}, "memory": {"size": "1Gi"}})
    assert _interfaces(vm)["default"]["macAddress"].startswith("02:76:")


@pytest.mark.parametrize(("mac", "says"), [
    ("01:00:5e:00:00:01", "should match pattern"),  # multicast: refused by the CRD pattern
    ("00:00:00:00:00:00", "all-zero"),
    ("02:00:00:00:00:00", "reserved by KubeVirt"),
    ("02:00:00:00:00", "should match pattern"),
])
def test_bad_mac_is_refused_naming_the_field(mac: str, says: str) -> None:
    shape = copy.deepcopy(SHAPE)
    shape["networks"][1]["macAddress"] = mac
    rejection = parse_spec(shape)
    assert not isinstance(rejection, VirtualMachineSpec)
    assert "spec.networks.1.macAddress" in rejection.message and says in rejection.message


def test_two_nics_may_not_share_a_mac() -> None:
    shape = copy.deepcopy(SHAPE)
    for network in shape["networks"]:
        network["macAddress"] = "02:aa:00:00:00:01"
    rejection = parse_spec(shape)
    assert not isinstance(rejection, VirtualMachineSpec) and "macAddress" in rejection.message


def test_unknown_model_is_refused() -> None:
    shape = copy.deepcopy(SHAPE)
    shape["networks"][1]["model"] = "vmxnet3"
    rejection = parse_spec(shape)
    assert not isinstance(rejection, VirtualMachineSpec)
    assert "spec.networks.1.model" in rejection.message


# --------------------------------------------------------------------------- shapes


def test_port_group_nic_is_a_multus_bridge_kubevirt_accepts() -> None:
    vm = _with_macs(SHAPE)
    validate_against_swagger(vm, KUBEVIRT_SWAGGER, "v1.VirtualMachine")
    template = vm["spec"]["template"]["spec"]
    assert template["networks"][1] == {"name": "lan", "multus": {"networkName": "pg-web"}}
    lan = _interfaces(vm)["lan"]
    assert "bridge" in lan and lan["model"] == "e1000e"
    assert _interfaces(vm)["default"]["model"] == "virtio" and "masquerade" in _interfaces(vm)[
        "default"]


def test_a_removed_nic_the_guest_still_has_is_unplugged_then_dropped() -> None:
    live = _live(_with_macs(SHAPE))
    gone = copy.deepcopy(SHAPE)
    gone["networks"].pop()
    vmi = _with_nic_status(_running_vmi(_with_macs(SHAPE)), "default", "lan")
    unplugging = _with_macs(gone, live=live, vmi=vmi)
    validate_against_swagger(unplugging, KUBEVIRT_SWAGGER, "v1.VirtualMachine")
    assert _interfaces(unplugging)["lan"]["state"] == "absent"
    assert _interfaces(unplugging)["lan"]["macAddress"] == _interfaces(_with_macs(SHAPE))["lan"][
        "macAddress"]
    assert "lan" in {n["name"] for n in unplugging["spec"]["template"]["spec"]["networks"]}
    plan = plan_changes(unplugging, live, vmi)
    assert plan.live_updates == ("NIC lan hot-unplugged",) and not plan.restart_required

    unplugged = _with_nic_status(_running_vmi(_with_macs(SHAPE)), "default")
    dropped = _with_macs(gone, live=_live(unplugging), vmi=unplugged)
    assert set(_interfaces(dropped)) == {"default"}
    assert not plan_changes(dropped, _live(unplugging), unplugged).restart_required


# --------------------------------------------------------------------------- live changes


def test_a_new_port_group_nic_is_hot_plugged() -> None:
    pod_only = {**SHAPE, "networks": SHAPE["networks"][:1]}
    live = _live(_with_macs(pod_only))
    plan = plan_changes(_with_macs(SHAPE, live=live), live, _running_vmi(_with_macs(pod_only)))
    assert plan.live_updates == ("NIC lan hot-plugged",) and not plan.restart_required


def test_hot_plug_on_a_vm_that_cannot_migrate_waits_for_a_restart() -> None:
    pod_only = {**SHAPE, "networks": SHAPE["networks"][:1]}
    live = _live(_with_macs(pod_only))
    vmi = _running_vmi(_with_macs(pod_only), migratable=False)
    plan = plan_changes(_with_macs(SHAPE, live=live), live, vmi)
    assert not plan.live_updates
    assert plan.restart_reasons == (
        "NIC lan hot-plug completes through a live migration and the VM is not "
        "live-migratable (PVC web-root is not shared)",)


def test_a_changed_model_or_a_new_pod_nic_needs_a_restart() -> None:
    live = _live(_with_macs(SHAPE))
    changed = copy.deepcopy(SHAPE)
    changed["networks"][1]["model"] = "virtio"
    plan = plan_changes(_with_macs(changed, live=live), live, _running_vmi(_with_macs(SHAPE)))
    assert plan.restart_reasons == ("NIC lan changed (model)",)

    lan_only = {**SHAPE, "networks": SHAPE["networks"][1:]}
    live = _live(_with_macs(lan_only))
    plan = plan_changes(_with_macs(SHAPE, live=live), live, _running_vmi(_with_macs(lan_only)))
    assert plan.restart_reasons == ("NIC default added (only bridge NICs can be hot-plugged)",)


def test_a_nic_moved_to_another_port_group_is_live_on_a_migratable_vm() -> None:
    live = _live(_with_macs(SHAPE))
    moved = copy.deepcopy(SHAPE)
    moved["networks"][1]["portGroupName"] = "pg-db"
    plan = plan_changes(_with_macs(moved, live=live), live, _running_vmi(_with_macs(SHAPE)))
    assert plan.live_updates == ("NIC lan moved to pg-db",)


# --------------------------------------------------------------------------- admission


def _port_group(selector: dict[str, Any] | None) -> DistributedPortGroupSpec:
    spec: dict[str, Any] = {"switchName": "dvs", "vlan": {"id": 100}}
    if selector is not None:
        spec["namespaceSelector"] = selector
    return DistributedPortGroupSpec.model_validate(spec)


def test_port_group_admission_follows_its_namespace_selector() -> None:
    spec = _spec(SHAPE)
    tenant = _port_group({"matchLabels": {"tenant": "web"}})
    assert port_group_rejection(spec, "apps", {"pg-web": tenant}, {"tenant": "web"}) is None
    assert port_group_rejection(spec, "apps", {"pg-web": _port_group({})}, {}) is None
    refused = port_group_rejection(spec, "apps", {"pg-web": tenant}, {"tenant": "db"})
    assert refused is not None and refused.reason == "PortGroupNotAllowed"
    assert refused.message.startswith(
        'spec.networks[1].portGroupName: DistributedPortGroup "pg-web"'
    )
    assert '"apps"' in refused.message
    # No selector admits nobody; a port group not there yet is a reference to wait for.
    assert port_group_rejection(spec, "apps", {"pg-web": _port_group(None)}, {}) is not None
    assert port_group_rejection(spec, "apps", {}, {}) is None


def test_a_mac_another_vm_has_is_refused_naming_the_field() -> None:
    shape = copy.deepcopy(SHAPE)
    shape["networks"][1]["macAddress"] = "02:AA:00:00:00:07"
    users = {"02:aa:00:00:00:07": [("apps", "db")]}
    refused = mac_address_rejection(_spec(shape), ("apps", "web"), lambda m: users.get(m, []))
    assert refused is not None and refused.reason == "MACAddressInUse"
    assert refused.message == (
        'spec.networks[1].macAddress: 02:AA:00:00:00:07 is used by VirtualMachine "apps/db"')
    # Its own KubeVirt VM having the MAC is no conflict.
    assert mac_address_rejection(_spec(shape), ("apps", "db"), lambda m: users.get(m, [])) is None


def test_wiring_follows_vlan_and_mtu_not_who_may_attach() -> None:
    base = _port_group({"matchLabels": {"tenant": "web"}})
    assert port_group_wiring(base, 1500) == port_group_wiring(_port_group({}), 1500)
    assert port_group_wiring(base, 1500) != port_group_wiring(base, 9000)
    other_vlan = DistributedPortGroupSpec.model_validate(
        {"switchName": "dvs", "vlan": {"id": 101}, "namespaceSelector": {}})
    assert port_group_wiring(base, 1500) != port_group_wiring(other_vlan, 1500)


def test_the_template_records_the_wiring_and_a_change_is_a_restart() -> None:
    vm = _with_macs(SHAPE)
    assert "annotations" not in vm["spec"]["template"]["metadata"]  # no wiring known
    macs = resolve_macs(_spec(SHAPE), "apps", "web", {}, _nothing_in_use)
    wired = _build(SHAPE, mac_addresses=macs, port_group_wiring={"pg-web": "aaa", "pg-x": "b"})
    started = wired["spec"]["template"]["metadata"]["annotations"][WIRING_ANNOTATION]
    assert started == "pg-web=aaa"
    assert rewired_port_groups(started, "pg-web=aaa") == []
    assert rewired_port_groups(started, "pg-web=ccc") == ["pg-web"]
    # A NIC hot-plugged later, or a guest started before any was recorded: nothing to say.
    assert rewired_port_groups(started, "pg-web=aaa,pg-db=ddd") == []
    assert rewired_port_groups(None, "pg-web=ccc") == []


# --------------------------------------------------------------------------- status


def test_status_lists_each_nic_with_mac_port_group_ip_and_state() -> None:
    vm = _with_macs(SHAPE)
    macs = {name: i["macAddress"] for name, i in _interfaces(vm).items()}
    vmi = _with_nic_status(_running_vmi(vm), "default")
    listed = nic_statuses(_spec(SHAPE), _live(vm), vmi)
    assert listed == [
        {"name": "default", "macAddress": macs["default"], "ipAddress": "10.0.0.5",
         "ipAddresses": ["10.0.0.5"], "state": "Attached"},
        {"name": "lan", "macAddress": macs["lan"], "portGroupName": "pg-web",
         "state": "Attaching"},
    ]
    powered_off = nic_statuses(_spec(SHAPE), _live(vm), None)
    assert [n.get("state") for n in powered_off] == [None, None]
    assert [n["macAddress"] for n in powered_off] == [macs["default"], macs["lan"]]
