"""VM printableStatus precedence, run strategies, conditions and status shape."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from devcluster.sim.vm_status import (
    is_set_to_start,
    next_start_failure,
    printable_status,
    run_strategy,
    should_vmi_exist,
    start_backoff_seconds,
    trimmed_state_change_requests,
    vm_conditions,
    vm_status,
)
from tests import upstream

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SWAGGER = upstream.path("schemas/kubevirt/swagger.json")


def assert_valid(status: dict[str, Any], definition: str) -> None:
    definitions = json.loads(upstream.require(SWAGGER).read_text())["definitions"]
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    jsonschema.Draft4Validator(schema).validate(status)


def vm(
    strategy: str | None = "Always", *, status: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "volumes": [
                    {"name": "root", "dataVolume": {"name": "root-dv"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}},
                ]
            }
        }
    }
    if strategy:
        spec["runStrategy"] = strategy
    return {
        "metadata": {"name": "web1", "uid": "vm-uid", "generation": 3, **meta},
        "spec": spec,
        "status": status or {},
    }


def vmi(
    phase: str = "Running", *, conditions: list[dict[str, Any]] | None = None, **meta: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web1",
            "uid": "vmi-uid",
            "annotations": {"kubevirt.io/vm-generation": "2"},
            **meta,
        },
        "status": {"phase": phase, "conditions": conditions or []},
    }


def cond(type_: str, status: str, reason: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    if reason:
        result["reason"] = reason
    return result


def dv(phase: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "root-dv"},
        "status": {"phase": phase, "conditions": list(conditions)},
    }


def pvc(phase: str) -> dict[str, Any]:
    return {"metadata": {"name": "data-pvc"}, "status": {"phase": phase}}


def status_of(
    machine: dict[str, Any],
    instance: dict[str, Any] | None,
    dvs: Sequence[Any] = (),
    pvcs: Sequence[Any] = (),
    **kw: Any,
) -> str:
    return printable_status(
        machine,
        instance,
        dvs,
        pvcs,
        creation_pending=kw.pop("creation_pending", False),
        now=NOW,
        **kw,
    )


@pytest.mark.parametrize(
    ("machine", "instance", "dvs", "pvcs", "pending", "expected"),
    [
        (vm(deletionTimestamp="2025-01-01T00:00:00Z"), vmi(), [], [], False, "Terminating"),
        (vm(), vmi(deletionTimestamp="2025-01-01T00:00:00Z"), [], [], False, "Stopping"),
        (vm(), vmi(conditions=[cond("Paused", "True", "PausedByUser")]), [], [], False, "Paused"),
        (vm(), vmi(), [dv("Failed")], [], False, "Running"),
        (
            vm(),
            vmi("Pending", conditions=[cond("Synchronized", "False", "FailedPvcNotFound")]),
            [],
            [],
            False,
            "ErrorPvcNotFound",
        ),
        (
            vm(),
            vmi("Pending"),
            [dv("ImportInProgress", cond("Running", "False", "ImagePullFailed"))],
            [],
            False,
            "DataVolumeError",
        ),
        (
            vm(),
            vmi("Scheduling", conditions=[cond("PodScheduled", "False", "Unschedulable")]),
            [],
            [],
            False,
            "ErrorUnschedulable",
        ),
        (vm(), None, [dv("ImportInProgress", cond("Bound", "True"))], [], False, "Provisioning"),
        (
            vm(),
            None,
            [dv("WaitForFirstConsumer", cond("Bound", "False"))],
            [pvc("Pending")],
            False,
            "WaitingForVolumeBinding",
        ),
        (vm("Halted"), None, [], [pvc("Pending")], False, "Stopped"),
        (
            vm(),
            vmi("Scheduling", conditions=[cond("Synchronized", "False", "ErrImagePull")]),
            [],
            [],
            False,
            "ErrImagePull",
        ),
        (
            vm(),
            vmi("Scheduling", conditions=[cond("Synchronized", "False", "ImagePullBackOff")]),
            [],
            [],
            False,
            "ImagePullBackOff",
        ),
        (vm(), None, [], [], True, "Starting"),
        (vm(), vmi("Scheduled"), [], [], False, "Starting"),
        (
            vm(status={"startFailure": {"consecutiveFailCount": 2}}),
            None,
            [],
            [],
            False,
            "CrashLoopBackOff",
        ),
        (
            vm("Manual", status={"startFailure": {"consecutiveFailCount": 2}}),
            None,
            [],
            [],
            False,
            "Stopped",
        ),
        (vm(), vmi("Succeeded"), [], [], False, "Stopped"),
        (vm("Halted"), None, [], [], False, "Stopped"),
    ],
)
def test_printable_status_precedence(
    machine: dict[str, Any],
    instance: dict[str, Any] | None,
    dvs: list[Any],
    pvcs: list[Any],
    pending: bool,
    expected: str,
) -> None:
    assert status_of(machine, instance, dvs, pvcs, creation_pending=pending) == expected


def test_stopping_when_deletion_expected() -> None:
    assert status_of(vm(), vmi(), deletion_pending=True) == "Stopping"


def test_migrating_while_migration_window_open() -> None:
    instance = vmi()
    instance["status"]["migrationState"] = {"startTimestamp": "2025-01-02T03:00:00Z"}
    assert status_of(vm(), instance) == "Migrating"
    instance["status"]["migrationState"]["endTimestamp"] = "2025-01-02T03:01:00Z"
    assert status_of(vm(), instance) == "Running"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"running": True}, "Always"),
        ({"running": False}, "Halted"),
        ({}, "Halted"),
        ({"runStrategy": "Manual"}, "Manual"),
    ],
)
def test_run_strategy(spec: dict[str, Any], expected: str) -> None:
    assert run_strategy({"spec": spec}) == expected


START = [{"action": "Start"}]
STOP_THIS = [{"action": "Stop", "uid": "vmi-uid"}]


@pytest.mark.parametrize(
    ("strategy", "requests", "instance", "action"),
    [
        ("Always", [], None, "create"),
        ("Always", [], vmi("Failed"), "delete"),
        ("Always", STOP_THIS, vmi(), "delete"),
        ("Always", [], vmi(), "keep"),
        ("Halted", [], vmi(), "delete"),
        ("Halted", [], None, "keep"),
        ("Manual", [], None, "keep"),
        ("Manual", START, None, "create"),
        ("Manual", STOP_THIS, vmi(), "delete"),
        ("Manual", [{"action": "Stop", "uid": "other"}], vmi(), "keep"),
        ("RerunOnFailure", [], vmi("Failed"), "delete"),
        ("RerunOnFailure", [], vmi("Succeeded"), "delete"),
        ("RerunOnFailure", START, None, "create"),
        ("Once", [], None, "create"),
        ("Once", [], vmi("Succeeded"), "keep"),
    ],
)
def test_should_vmi_exist(
    strategy: str, requests: list[Any], instance: dict[str, Any] | None, action: str
) -> None:
    machine = vm(strategy, status={"stateChangeRequests": requests, "runStrategy": strategy})
    assert should_vmi_exist(machine, instance, NOW).action == action


def test_rerun_on_failure_restarts_only_failures() -> None:
    machine = vm("RerunOnFailure", status={"runStrategy": "RerunOnFailure"})
    assert should_vmi_exist(machine, vmi("Failed"), NOW).add_start_request
    assert not should_vmi_exist(machine, vmi("Succeeded"), NOW).add_start_request
    assert should_vmi_exist(machine, None, NOW).action == "keep"


def test_rerun_on_failure_starts_when_strategy_just_switched() -> None:
    assert should_vmi_exist(vm("RerunOnFailure"), None, NOW).action == "create"


def test_halted_with_start_request_switches_to_always() -> None:
    machine = vm("Halted", status={"stateChangeRequests": START})
    decision = should_vmi_exist(machine, None, NOW)
    assert (decision.action, decision.switch_to_always) == ("keep", True)


def test_always_waits_for_start_backoff() -> None:
    later = (NOW + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    machine = vm(status={"startFailure": {"consecutiveFailCount": 1, "retryAfterTimestamp": later}})
    assert should_vmi_exist(machine, None, NOW).action == "keep"
    assert should_vmi_exist(machine, None, NOW + timedelta(seconds=31)).action == "create"


@pytest.mark.parametrize(
    ("count", "jitter", "seconds"), [(1, 0, 10), (1, 99, 15), (2, 0, 40), (5, 0, 250), (6, 0, 300)]
)
def test_start_backoff(count: int, jitter: int, seconds: int) -> None:
    assert start_backoff_seconds(count, jitter) == seconds


def test_start_failure_counts_vmis_that_never_ran() -> None:
    failed = vmi("Failed")
    failed["status"]["phaseTransitionTimestamps"] = [{"phase": "Pending"}, {"phase": "Failed"}]
    first = next_start_failure(vm(), failed, NOW)
    assert first == {
        "consecutiveFailCount": 1,
        "lastFailedVMIUID": "vmi-uid",
        "retryAfterTimestamp": "2025-01-02T03:04:15Z",
    }
    again = next_start_failure(vm(status={"startFailure": first}), failed, NOW)
    assert again == first
    ran = vmi("Failed")
    ran["status"]["phaseTransitionTimestamps"] = [{"phase": "Running"}]
    assert next_start_failure(vm(status={"startFailure": first}), ran, NOW) is None


def test_is_set_to_start() -> None:
    assert is_set_to_start(vm("Always"), None)
    assert not is_set_to_start(vm("Halted"), None)
    assert is_set_to_start(vm("Manual", status={"stateChangeRequests": START}), None)
    assert not is_set_to_start(vm("Manual", status={"stateChangeRequests": STOP_THIS}), vmi())
    assert not is_set_to_start(vm("Once"), vmi())


def test_state_change_requests_are_trimmed_when_satisfied() -> None:
    stop_then_start = {"stateChangeRequests": [*STOP_THIS, *START]}
    assert trimmed_state_change_requests(vm(status=stop_then_start), vmi()) == STOP_THIS + START
    assert trimmed_state_change_requests(vm(status=stop_then_start), None) == START
    assert trimmed_state_change_requests(vm(status={"stateChangeRequests": START}), vmi()) == []
    assert (
        trimmed_state_change_requests(vm(status={"stateChangeRequests": START}), vmi("Failed"))
        == START
    )


def test_ready_condition_when_vmi_missing() -> None:
    ready = vm_conditions(vm(), None, NOW)[0]
    assert (ready["type"], ready["status"], ready["reason"], ready["message"]) == (
        "Ready",
        "False",
        "VMINotExists",
        "VMI does not exist",
    )
    missing = vm_conditions(vm(), vmi(), NOW)[0]
    assert missing["reason"] == "VMIConditionMissing"


def test_vmi_conditions_are_mirrored_and_pruned() -> None:
    stale = cond("AgentConnected", "True")
    restart = {"type": "RestartRequired", "status": "True", "message": "x"}
    machine = vm(status={"conditions": [stale, restart]})
    instance = vmi(
        conditions=[
            cond("Ready", "True"),
            cond("LiveMigratable", "False", "InterfaceNotLiveMigratable"),
        ]
    )
    types = {c["type"]: c for c in vm_conditions(machine, instance, NOW)}
    assert set(types) == {"Ready", "LiveMigratable", "RestartRequired"}
    assert types["LiveMigratable"]["reason"] == "InterfaceNotLiveMigratable"
    assert types["Ready"]["status"] == "True"
    # Without a VMI, previously copied conditions are left alone.
    assert any(c["type"] == "AgentConnected" for c in vm_conditions(machine, None, NOW))


def test_vm_status_shape() -> None:
    instance = vmi(conditions=[cond("Ready", "True")])
    status = vm_status(vm(), instance, [dv("Succeeded")], [pvc("Bound")], now=NOW)
    assert status["created"] is True
    assert status["ready"] is True
    assert status["printableStatus"] == "Running"
    assert status["runStrategy"] == "Always"
    assert (status["observedGeneration"], status["desiredGeneration"]) == (2, 3)
    assert_valid(status, "v1.VirtualMachineStatus")


def test_vm_status_before_first_start_has_no_run_strategy() -> None:
    status = vm_status(vm("Halted"), None, [], [], now=NOW)
    assert "runStrategy" not in status
    assert (status["created"], status["ready"], status["printableStatus"]) == (
        False,
        False,
        "Stopped",
    )
    assert_valid(status, "v1.VirtualMachineStatus")


def test_vm_status_is_stable_on_resync() -> None:
    first = vm_status(vm(), None, [], [], now=NOW)
    second = vm_status(vm(status=first), None, [], [], now=NOW + timedelta(minutes=1))
    assert second == first
