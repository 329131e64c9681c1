"""CPU/memory hot-plug decisions and their RestartRequired messages."""

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from devcluster.sim.hotplug import (
    MSG_CPU_ABOVE_MAX,
    MSG_CPU_REDUCTION,
    MSG_MEMORY_BELOW_BOOT,
    MSG_MEMORY_FAILED,
    MSG_MEMORY_NO_MAX_GUEST,
    MSG_MEMORY_NOT_MIGRATABLE,
    MSG_NON_LIVE_UPDATABLE,
    apply_hotplug_defaults,
    default_max_guest,
    default_max_sockets,
    hotplug_conditions,
    plan_live_update,
    restart_required_condition,
    status_after_hotplug,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
GI = 1024**3


def template(sockets: int = 2, guest: str = "2Gi", **extra: Any) -> dict[str, Any]:
    return {
        "domain": {
            "cpu": {"sockets": sockets, "cores": 1, "threads": 1},
            "memory": {"guest": guest},
        },
        **extra,
    }


def vm(spec: dict[str, Any], conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}, "status": {"conditions": conditions or []}}


def running_vmi(
    sockets: int = 2,
    guest: str = "2Gi",
    *,
    migratable: bool = True,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec = apply_hotplug_defaults(template(sockets, guest))
    return {
        "metadata": {"name": "web1"},
        "spec": spec,
        "status": {
            "phase": "Running",
            "currentCPUTopology": {"sockets": sockets, "cores": 1, "threads": 1},
            "memory": {"guestAtBoot": guest, "guestCurrent": guest, "guestRequested": guest},
            "conditions": [{"type": "LiveMigratable", "status": "True" if migratable else "False"}]
            + (conditions or []),
        },
    }


def test_default_max_sockets_is_four_times_sockets() -> None:
    assert default_max_sockets(2) == 8
    assert default_max_sockets(2, configured_max_sockets=1) == 2
    assert default_max_sockets(100, cores=2) == 256


def test_default_max_guest_only_when_supported() -> None:
    assert default_max_guest(2 * GI) == 8 * GI
    assert default_max_guest(512 * 1024**2) is None
    assert default_max_guest(2 * GI, arch="arm64") is None
    assert default_max_guest(2 * GI, configured_max_guest=16 * GI) == 16 * GI


def test_apply_defaults_sets_max_fields() -> None:
    spec = apply_hotplug_defaults(template(2, "2Gi"))
    assert spec["domain"]["cpu"]["maxSockets"] == 8
    assert spec["domain"]["memory"]["maxGuest"] == "8Gi"


def test_socket_increase_patches_vmi() -> None:
    plan = plan_live_update(vm(template(4)), running_vmi(2), template(2), NOW)
    assert plan.restart_required is None
    assert plan.vmi_patch == [
        {"op": "test", "path": "/spec/domain/cpu/sockets", "value": 2},
        {"op": "replace", "path": "/spec/domain/cpu/sockets", "value": 4},
    ]


def test_socket_increase_adjusts_explicit_cpu_request() -> None:
    wanted = template(4)
    wanted["domain"]["resources"] = {"requests": {"cpu": "200m"}}
    instance = running_vmi(2)
    instance["spec"]["domain"]["resources"] = {"requests": {"cpu": "200m"}}
    started = template(2)
    started["domain"]["resources"] = {"requests": {"cpu": "200m"}}
    plan = plan_live_update(vm(wanted), instance, started, NOW)
    assert plan.vmi_patch[-1] == {
        "op": "replace",
        "path": "/spec/domain/resources/requests/cpu",
        "value": "400m",
    }


@pytest.mark.parametrize(("sockets", "message"), [(9, MSG_CPU_ABOVE_MAX), (1, MSG_CPU_REDUCTION)])
def test_socket_changes_needing_restart(sockets: int, message: str) -> None:
    plan = plan_live_update(vm(template(sockets)), running_vmi(2), template(2), NOW)
    assert (plan.restart_required, plan.vmi_patch) == (message, [])


def test_cpu_hotplug_in_progress_is_a_sync_error() -> None:
    busy = running_vmi(2, conditions=[{"type": "HotVCPUChange", "status": "True"}])
    plan = plan_live_update(vm(template(3)), busy, template(2), NOW)
    assert (plan.error, plan.error_reason) == (
        "another CPU hotplug is in progress",
        "HotPlugCPUError",
    )


def test_memory_increase_patches_guest() -> None:
    plan = plan_live_update(vm(template(2, "4Gi")), running_vmi(2, "2Gi"), template(2, "2Gi"), NOW)
    assert plan.vmi_patch == [
        {"op": "test", "path": "/spec/domain/memory/guest", "value": "2Gi"},
        {"op": "replace", "path": "/spec/domain/memory/guest", "value": "4Gi"},
    ]


@pytest.mark.parametrize(
    ("guest", "vmi_kwargs", "message"),
    [
        ("4Gi", {"migratable": False}, MSG_MEMORY_NOT_MIGRATABLE),
        ("1Gi", {}, MSG_MEMORY_BELOW_BOOT),
        (
            "16Gi",
            {},
            "memory hotplug not supported, "
            "Guest memory is greater than the configured maxGuest memory",
        ),
        ("3001Mi", {}, "memory hotplug not supported, Guest memory must be 2Mi aligned"),
        (
            "4Gi",
            {"conditions": [{"type": "HotMemoryChange", "status": "False"}]},
            MSG_MEMORY_FAILED,
        ),
    ],
)
def test_memory_changes_needing_restart(
    guest: str, vmi_kwargs: dict[str, Any], message: str
) -> None:
    plan = plan_live_update(
        vm(template(2, guest)), running_vmi(2, "2Gi", **vmi_kwargs), template(2, "2Gi"), NOW
    )
    assert plan.restart_required == message


def test_memory_without_max_guest_needs_restart() -> None:
    instance = running_vmi(2, "2Gi")
    del instance["spec"]["domain"]["memory"]["maxGuest"]
    plan = plan_live_update(vm(template(2, "4Gi")), instance, template(2, "2Gi"), NOW)
    assert plan.restart_required == MSG_MEMORY_NO_MAX_GUEST


def test_non_live_updatable_change_needs_restart() -> None:
    changed = template(2)
    changed["domain"]["firmware"] = {"bootloader": {"efi": {}}}
    plan = plan_live_update(vm(changed), running_vmi(2), template(2), NOW)
    assert plan.restart_required == MSG_NON_LIVE_UPDATABLE
    assert (
        restart_required_condition(MSG_NON_LIVE_UPDATABLE, NOW)["message"] == MSG_NON_LIVE_UPDATABLE
    )
    assert "reason" not in restart_required_condition(MSG_NON_LIVE_UPDATABLE, NOW)


def test_placement_changes_are_patched_live() -> None:
    changed = template(
        2, nodeSelector={"zone": "b"}, tolerations=[{"key": "k", "operator": "Exists"}]
    )
    plan = plan_live_update(vm(changed), running_vmi(2), template(2), NOW)
    assert plan.restart_required is None
    assert plan.vmi_patch == [
        {"op": "add", "path": "/spec/nodeSelector", "value": {"zone": "b"}},
        {"op": "add", "path": "/spec/tolerations", "value": [{"key": "k", "operator": "Exists"}]},
    ]


def test_pending_restart_blocks_live_updates() -> None:
    existing = [{"type": "RestartRequired", "status": "True", "message": MSG_CPU_REDUCTION}]
    plan = plan_live_update(vm(template(4), existing), running_vmi(2), template(2), NOW)
    assert (plan.restart_required, plan.vmi_patch) == (MSG_CPU_REDUCTION, [])


def test_vmi_conditions_follow_spec_and_clear_after_hotplug() -> None:
    instance = running_vmi(2, "2Gi")
    instance["spec"]["domain"]["cpu"]["sockets"] = 4
    instance["spec"]["domain"]["memory"]["guest"] = "4Gi"
    assert [c["type"] for c in hotplug_conditions(instance, NOW)] == [
        "HotVCPUChange",
        "HotMemoryChange",
    ]
    before = copy.deepcopy(instance)
    after = status_after_hotplug(instance)
    assert instance == before
    assert after["currentCPUTopology"]["sockets"] == 4
    assert after["memory"]["guestRequested"] == "4Gi"
    assert hotplug_conditions({**instance, "status": after}, NOW) == []
