"""NIC hot-plug and hot-unplug as KubeVirt 1.9 does them: which changes need a restart, the
VMI spec the VM controller patches, MigrationRequired and its grace period, the unplug."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from devcluster.sim.hotplug import MSG_NON_LIVE_UPDATABLE, plan_live_update
from devcluster.sim.nic_hotplug import (
    DYNAMIC_NETWORK_GRACE_SECONDS,
    detached_from_domain,
    migration_required_condition,
    network_restart_required,
    synced_vmi_nics,
    template_without_detached,
    vmi_nics_patch,
)
from devcluster.sim.vmi_status import rfc3339

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
POD = ({"name": "default", "pod": {}}, {"name": "default", "masquerade": {}})
LAN = ({"name": "lan", "multus": {"networkName": "pg-web"}},
       {"name": "lan", "bridge": {}, "macAddress": "02:76:00:00:00:02"})


def spec(*nics: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {"networks": [copy.deepcopy(n) for n, _ in nics],
            "domain": {"devices": {"interfaces": [copy.deepcopy(i) for _, i in nics]}}}


def vmi(vmi_spec: dict[str, Any], reported: dict[str, str] | None = None,
        migratable: bool = True, conditions: list[dict[str, Any]] | None = None,
        ) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "apps"}, "spec": vmi_spec, "status": {
        "phase": "Running",
        "interfaces": [{"name": name, "infoSource": source}
                       for name, source in (reported or {}).items()],
        "conditions": [{"type": "LiveMigratable", "status": str(migratable)}]
        + (conditions or []),
    }}


def absent(nic: tuple[dict[str, Any], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    return nic[0], {**nic[1], "state": "absent"}


def test_adding_or_unplugging_a_nic_is_live_removing_or_changing_one_is_not() -> None:
    running = vmi(spec(POD, LAN))
    assert not network_restart_required(spec(POD, LAN, ({"name": "b", "multus": {
        "networkName": "pg-b"}}, {"name": "b", "bridge": {}})), running)
    assert not network_restart_required(spec(POD, absent(LAN)), running)
    assert network_restart_required(spec(POD), running)
    changed = (LAN[0], {**LAN[1], "model": "e1000e"})
    assert network_restart_required(spec(POD, changed), running)
    moved = ({"name": "lan", "multus": {"networkName": "pg-db"}}, LAN[1])
    assert not network_restart_required(spec(POD, moved), running)
    assert network_restart_required(spec(POD, moved), vmi(spec(POD, LAN), migratable=False))


def test_hot_plug_goes_into_the_vmi_spec_without_restart_required() -> None:
    running = vmi(spec(POD), {"default": "domain, guest-agent"})
    template = spec(POD, LAN)
    interfaces, networks = synced_vmi_nics(template, running)
    assert [i["name"] for i in interfaces] == ["default", "lan"]
    assert networks[1] == LAN[0]
    patch = vmi_nics_patch(template, running)
    assert [op["op"] for op in patch] == ["test", "add", "test", "add"]
    assert vmi_nics_patch(template, vmi(template)) == []
    vm = {"metadata": {"generation": 2}, "spec": {"template": {"spec": template}},
          "status": {}}
    plan = plan_live_update(vm, running, spec(POD), NOW)
    assert plan.restart_required is None
    removed = {**vm, "spec": {"template": {"spec": spec(LAN)}}}
    assert plan_live_update(removed, running, spec(POD), NOW).restart_required == (
        MSG_NON_LIVE_UPDATABLE)


def test_hot_plug_asks_for_a_migration_after_the_grace_period() -> None:
    plugging = vmi(spec(POD, LAN), {"default": "domain"})
    pending, look_again = migration_required_condition(plugging, NOW)
    assert pending is not None and pending["status"] == "False"
    assert pending["reason"] == "AutoMigrationPending"
    assert look_again == DYNAMIC_NETWORK_GRACE_SECONDS
    waiting = vmi(spec(POD, LAN), {"default": "domain"}, conditions=[pending])
    still, look_again = migration_required_condition(waiting, NOW + timedelta(seconds=5))
    assert still is not None and still["status"] == "False" and look_again is not None
    later = NOW + timedelta(seconds=DYNAMIC_NETWORK_GRACE_SECONDS + 1)
    due, _ = migration_required_condition(waiting, later)
    assert due is not None and due["status"] == "True"
    assert due["reason"] == "AutoMigrationDueToLiveUpdate"
    assert due["lastTransitionTime"] == rfc3339(later)
    plugged = vmi(spec(POD, LAN), {"default": "domain", "lan": "domain, multus-status"},
                  conditions=[due])
    assert migration_required_condition(plugged, later) == (None, None)


def test_unplug_detaches_from_the_domain_then_migrates_then_drops_the_nic() -> None:
    running = vmi(spec(POD, LAN), {"default": "domain", "lan": "domain, multus-status"})
    template = spec(POD, absent(LAN))
    interfaces, _ = synced_vmi_nics(template, running)
    assert interfaces[1]["state"] == "absent"
    unplugging = vmi(template, {"default": "domain", "lan": "domain, multus-status"})
    assert migration_required_condition(unplugging, NOW) == (None, None)  # still in domain
    entries = detached_from_domain(unplugging)
    assert entries is not None and entries[1] == {"name": "lan", "infoSource": "multus-status"}
    detached = vmi(template, {"default": "domain", "lan": "multus-status"})
    assert detached_from_domain(detached) is None
    pending, _ = migration_required_condition(detached, NOW)
    assert pending is not None and pending["reason"] == "AutoMigrationPending"
    assert template_without_detached(template, detached) is None  # the VMI still has it

    migrated = vmi(template, {"default": "domain"})
    interfaces, networks = synced_vmi_nics(template, migrated)
    assert [i["name"] for i in interfaces] == ["default"] and len(networks) == 1
    cleared = template_without_detached(template, vmi(spec(POD), {"default": "domain"}))
    assert cleared is not None
    assert [n["name"] for n in cleared["networks"]] == ["default"]
    assert template_without_detached(template, None) is not None  # stopped: dropped at once
