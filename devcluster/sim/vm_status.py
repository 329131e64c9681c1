"""VirtualMachine status and run-strategy decisions as KubeVirt's VM controller makes them.

Mirrors `pkg/virt-controller/watch/vm/vm.go` (KubeVirt 1.9): `syncRunStrategy`,
`isSetToStart`, `setPrintableStatus`, `syncConditions`, `isTrimFirstChangeRequestNeeded`
and the start-failure backoff. The caller passes the controller's expectations
(`creation_pending`, `deletion_pending`) since they live in controller memory.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from devcluster.sim.vmi_status import FINAL_PHASES, find_condition, rfc3339

Obj = Mapping[str, Any]

ALWAYS = "Always"
HALTED = "Halted"
MANUAL = "Manual"
RERUN_ON_FAILURE = "RerunOnFailure"
ONCE = "Once"
WAIT_AS_RECEIVER = "WaitAsReceiver"
MAX_CRASH_LOOP_BACKOFF_SECONDS = 300
_MIN_BACKOFF_INTERVAL_SECONDS = 10
# VM conditions the controller owns; all other VMI conditions are mirrored.
_VM_OWNED_CONDITIONS = frozenset({"Ready", "Failure", "RestartRequired"})


def _status(obj: Obj | None) -> Obj:
    if not obj:
        return {}
    status: Obj = obj.get("status") or {}
    return status


def _phase(vmi: Obj | None) -> str:
    return str(_status(vmi).get("phase") or "")


def _is_final(vmi: Obj | None) -> bool:
    return _phase(vmi) in FINAL_PHASES


def _uid(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid", ""))


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_strategy(vm: Obj) -> str:
    """spec.runStrategy; `running: true` means Always, false or neither means Halted."""
    spec = vm.get("spec") or {}
    if spec.get("runStrategy"):
        return str(spec["runStrategy"])
    return ALWAYS if spec.get("running") else HALTED


def _requests(vm: Obj) -> list[Obj]:
    requests: list[Obj] = list(_status(vm).get("stateChangeRequests") or [])
    return requests


def has_start_request(vm: Obj) -> bool:
    requests = _requests(vm)
    return bool(requests) and requests[0].get("action") == "Start"


def has_stop_request_for(vm: Obj, vmi: Obj) -> bool:
    requests = _requests(vm)
    return (
        bool(requests)
        and requests[0].get("action") == "Stop"
        and requests[0].get("uid") is not None
        and requests[0].get("uid") == _uid(vmi)
    )


def is_set_to_start(vm: Obj, vmi: Obj | None) -> bool:
    strategy = run_strategy(vm)
    if strategy == ALWAYS:
        return True
    if strategy == MANUAL:
        return not has_stop_request_for(vm, vmi) if vmi else has_start_request(vm)
    if strategy == RERUN_ON_FAILURE:
        if vmi:
            return _phase(vmi) != "Succeeded"
        return has_start_request(vm) or _status(vm).get("runStrategy") != strategy
    if strategy == ONCE:
        return vmi is None
    return False


@dataclass(frozen=True)
class Decision:
    """What the VM controller does to the VMI: create it, delete it, or leave it."""

    action: Literal["create", "delete", "keep"]
    reason: str
    # RerunOnFailure appends a Start request after deleting a Failed VMI.
    add_start_request: bool = False
    # Halted with a Start request (start paused): the controller flips spec to Always.
    switch_to_always: bool = False


def start_backoff_seconds_left(vm: Obj, now: datetime) -> float:
    retry_after = (_status(vm).get("startFailure") or {}).get("retryAfterTimestamp")
    if not retry_after:
        return 0.0
    return max(0.0, (_parse_time(str(retry_after)) - now).total_seconds())


def should_vmi_exist(vm: Obj, vmi: Obj | None, now: datetime) -> Decision:
    """`syncRunStrategy`: the action for the VM's run strategy and current VMI."""
    strategy = run_strategy(vm)
    being_deleted = bool(vmi and (vmi.get("metadata") or {}).get("deletionTimestamp"))
    if (vm.get("metadata") or {}).get("deletionTimestamp"):
        if vmi and not being_deleted:
            return Decision("delete", "VM is being deleted")
        return Decision("keep", "VM is being deleted")
    if strategy == ALWAYS:
        if vmi:
            if has_stop_request_for(vm, vmi):
                return Decision("delete", "stop request for this VMI; it is restarted")
            if _is_final(vmi):
                return Decision("delete", f"VMI is {_phase(vmi)}; it is restarted")
            return Decision("keep", "VMI is running")
        return _create_after_backoff(vm, now)
    if strategy == RERUN_ON_FAILURE:
        if vmi:
            if being_deleted:
                return Decision("keep", "VMI is being deleted")
            if has_stop_request_for(vm, vmi):
                return Decision("delete", "stop request for this VMI")
            if _phase(vmi) == "Failed":
                return Decision("delete", "VMI failed; it is restarted", add_start_request=True)
            if _phase(vmi) == "Succeeded":
                return Decision("delete", "VMI succeeded; it is not restarted")
            return Decision("keep", "VMI is running")
        if not (has_start_request(vm) or _status(vm).get("runStrategy") != strategy):
            return Decision("keep", "no start request")
        return _create_after_backoff(vm, now)
    if strategy == MANUAL:
        if vmi:
            if has_stop_request_for(vm, vmi):
                return Decision("delete", "stop request for this VMI")
            return Decision("keep", "Manual run strategy")
        if has_start_request(vm):
            return Decision("create", "start request")
        return Decision("keep", "Manual run strategy without a start request")
    if strategy == HALTED:
        if vmi:
            return Decision("delete", "run strategy is Halted")
        if has_start_request(vm):
            return Decision("keep", "start request on a halted VM", switch_to_always=True)
        return Decision("keep", "run strategy is Halted")
    if strategy == ONCE:
        if vmi:
            return Decision("keep", "Once: a VMI ran already")
        return Decision("create", "Once: first start")
    if strategy == WAIT_AS_RECEIVER:
        if vmi:
            return Decision("keep", "receiver VMI exists")
        return Decision("create", "WaitAsReceiver: create receiver VMI")
    return Decision("keep", f"unknown run strategy {strategy}")


def _create_after_backoff(vm: Obj, now: datetime) -> Decision:
    left = start_backoff_seconds_left(vm, now)
    if left > 0:
        return Decision("keep", f"start failure backoff: {left:.0f}s left")
    return Decision("create", "VM is set to start")


# --- printableStatus --------------------------------------------------------------------


def _template_volumes(vm: Obj) -> list[Obj]:
    template_spec = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    volumes: list[Obj] = list(template_spec.get("volumes") or [])
    return volumes


def _template_dv_names(vm: Obj) -> list[str]:
    return [str(v["dataVolume"].get("name")) for v in _template_volumes(vm) if "dataVolume" in v]


def _template_claim_names(vm: Obj) -> list[str]:
    names: list[str] = []
    for volume in _template_volumes(vm):
        if "persistentVolumeClaim" in volume:
            names.append(str(volume["persistentVolumeClaim"].get("claimName")))
        elif "dataVolume" in volume:
            names.append(str(volume["dataVolume"].get("name")))
    return names


def _by_name(objects: Iterable[Obj]) -> dict[str, Obj]:
    return {str(o["metadata"]["name"]): o for o in objects}


def _has_condition(obj: Obj | None, type_: str, status: str, reason: str | None = None) -> bool:
    if not obj:
        return False
    found = find_condition(obj, type_)
    return (
        found is not None
        and found.get("status") == status
        and (reason is None or found.get("reason") == reason)
    )


def is_migrating(vmi: Obj | None, now: datetime) -> bool:
    state = _status(vmi).get("migrationState") or {}
    start = state.get("startTimestamp")
    return bool(start) and _parse_time(str(start)) <= now and not state.get("endTimestamp")


def _has_dv_errors(vm: Obj, dvs: Mapping[str, Obj]) -> bool:
    for name in _template_dv_names(vm):
        dv = dvs.get(name)
        if dv is None:
            continue
        if _status(dv).get("phase") == "Failed":
            return True
        running = find_condition(dv, "Running")
        if (
            running
            and running.get("status") == "False"
            and running.get("reason") in ("Error", "ImagePullFailed")
        ):
            return True
    return False


def _has_dv_provisioning(vm: Obj, dvs: Mapping[str, Obj]) -> bool:
    for name in _template_dv_names(vm):
        dv = dvs.get(name)
        if dv is None:
            continue
        phase = _status(dv).get("phase")
        bound = _has_condition(dv, "Bound", "True")
        if (bound or phase != "WaitForFirstConsumer") and phase not in (
            "Succeeded",
            "PendingPopulation",
        ):
            return True
    return False


def _has_unbound_pvc(vm: Obj, pvcs: Mapping[str, Obj]) -> bool:
    for name in _template_claim_names(vm):
        pvc = pvcs.get(name)
        if pvc is not None and _status(pvc).get("phase") != "Bound":
            return True
    return False


def printable_status(
    vm: Obj,
    vmi: Obj | None,
    datavolumes: Sequence[Obj],
    pvcs: Sequence[Obj],
    *,
    creation_pending: bool,
    now: datetime,
    deletion_pending: bool = False,
) -> str:
    """`setPrintableStatus`: the first matching row of the precedence table wins."""
    dvs, claims = _by_name(datavolumes), _by_name(pvcs)
    vmi_deleting = bool(vmi and (vmi.get("metadata") or {}).get("deletionTimestamp"))
    strategy = run_strategy(vm)
    if (vm.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if vmi and not _is_final(vmi) and (vmi_deleting or deletion_pending):
        return "Stopping"
    if is_migrating(vmi, now):
        return "Migrating"
    if vmi and _phase(vmi) == "Running":
        return "Paused" if _has_condition(vmi, "Paused", "True") else "Running"
    if _has_condition(vmi, "Synchronized", "False", "FailedPvcNotFound"):
        return "ErrorPvcNotFound"
    if _has_dv_errors(vm, dvs):
        return "DataVolumeError"
    if _has_condition(vmi, "PodScheduled", "False", "Unschedulable"):
        return "ErrorUnschedulable"
    if _has_dv_provisioning(vm, dvs):
        return "Provisioning"
    if is_set_to_start(vm, vmi) and _has_unbound_pvc(vm, claims):
        return "WaitingForVolumeBinding"
    if _has_condition(vmi, "Synchronized", "False", "ErrImagePull"):
        return "ErrImagePull"
    if _has_condition(vmi, "Synchronized", "False", "ImagePullBackOff"):
        return "ImagePullBackOff"
    if (vmi is None and creation_pending) or (
        vmi and _phase(vmi) in ("", "Pending", "Scheduling", "Scheduled")
    ):
        return "Starting"
    fail_count = int((_status(vm).get("startFailure") or {}).get("consecutiveFailCount") or 0)
    if (
        (vmi is None or _is_final(vmi))
        and not creation_pending
        and fail_count > 0
        and strategy in (ALWAYS, RERUN_ON_FAILURE, ONCE)
    ):
        return "CrashLoopBackOff"
    if (vmi and _is_final(vmi)) or (vmi is None and not creation_pending):
        return "Stopped"
    if strategy == WAIT_AS_RECEIVER and (vmi is None or _phase(vmi) == "WaitingForSync"):
        return "WaitingForReceiver"
    return "Unknown"


# --- conditions, requests, start failures -----------------------------------------------


def vm_conditions(vm: Obj, vmi: Obj | None, now: datetime) -> list[dict[str, Any]]:
    """`syncConditions`: Ready from the VMI; other VMI conditions mirrored and pruned."""
    existing: list[dict[str, Any]] = [dict(c) for c in _status(vm).get("conditions") or []]
    ready = find_condition(vmi, "Ready") if vmi else None
    if vmi is None:
        new_ready: dict[str, Any] = {
            "type": "Ready",
            "status": "False",
            "reason": "VMINotExists",
            "message": "VMI does not exist",
            "lastProbeTime": rfc3339(now),
            "lastTransitionTime": rfc3339(now),
        }
    elif ready is None:
        new_ready = {
            "type": "Ready",
            "status": "False",
            "reason": "VMIConditionMissing",
            "message": "VMI is missing the Ready condition",
            "lastProbeTime": rfc3339(now),
            "lastTransitionTime": rfc3339(now),
        }
    else:
        new_ready = _copy_condition(ready)
    result = _replace(existing, new_ready)
    if vmi is None:
        return result
    vmi_conditions = [c for c in _status(vmi).get("conditions") or []]
    mirrored = {c.get("type") for c in vmi_conditions} - _VM_OWNED_CONDITIONS
    for vmi_condition in vmi_conditions:
        if vmi_condition.get("type") in mirrored:
            result = _replace(result, _copy_condition(vmi_condition))
    return [c for c in result if c.get("type") in _VM_OWNED_CONDITIONS or c.get("type") in mirrored]


def _copy_condition(source: Obj) -> dict[str, Any]:
    copied: dict[str, Any] = {
        "type": source.get("type"),
        "status": source.get("status"),
        "lastProbeTime": source.get("lastProbeTime"),
        "lastTransitionTime": source.get("lastTransitionTime"),
    }
    for key in ("reason", "message"):
        if source.get(key):
            copied[key] = source[key]
    return copied


def _replace(conditions: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Put `new` in place of its type. An otherwise identical condition keeps its
    timestamps, so a resync with nothing new writes nothing (KubeVirt would bump
    lastProbeTime of its own VMINotExists condition on every sync)."""
    result: list[dict[str, Any]] = []
    found = False
    for existing in conditions:
        if existing.get("type") != new["type"]:
            result.append(existing)
            continue
        found = True
        same = all(existing.get(k) == new.get(k) for k in ("status", "reason", "message"))
        result.append(existing if same else new)
    return result if found else [*result, new]


def trimmed_state_change_requests(vm: Obj, vmi: Obj | None) -> list[dict[str, Any]]:
    """Drop the first request once satisfied (Stop: VMI gone or replaced; Start: VMI live)."""
    requests = [copy.deepcopy(dict(r)) for r in _requests(vm)]
    if not requests:
        return requests
    first = requests[0]
    satisfied = False
    if first.get("action") == "Stop":
        satisfied = vmi is None or first.get("uid") is None or first.get("uid") != _uid(vmi)
    elif first.get("action") == "Start":
        deleting = bool(vmi and (vmi.get("metadata") or {}).get("deletionTimestamp"))
        satisfied = vmi is not None and not deleting and not _is_final(vmi)
    return requests[1:] if satisfied else requests


def start_backoff_seconds(fail_count: int, jitter_seconds: int = 0) -> int:
    """`calculateStartBackoffTime`: 10 s x count^2 plus jitter in [0, delay/2], max 300 s.

    `jitter_seconds` is the caller's random draw; it is clipped to the allowed range.
    """
    count = max(1, fail_count)
    interval = max(_MIN_BACKOFF_INTERVAL_SECONDS, MAX_CRASH_LOOP_BACKOFF_SECONDS // 30)
    delay = interval * count * count
    delay += min(max(0, jitter_seconds), delay // 2)
    return min(delay, MAX_CRASH_LOOP_BACKOFF_SECONDS)


def _reached_running(vmi: Obj) -> bool:
    return any(
        t.get("phase") == "Running" for t in _status(vmi).get("phaseTransitionTimestamps") or []
    )


def next_start_failure(
    vm: Obj, vmi: Obj | None, now: datetime, *, jitter_seconds: int = 0
) -> dict[str, Any] | None:
    """`status.startFailure` after this sync (None = absent).

    A final VMI that never reached Running counts one failure (once per VMI UID); a VMI
    that reached Running, or a strategy other than Always/RerunOnFailure/Once, clears it.
    """
    current = _status(vm).get("startFailure")
    if run_strategy(vm) not in (ALWAYS, RERUN_ON_FAILURE, ONCE):
        return None
    if vmi is None:
        return copy.deepcopy(dict(current)) if current else None
    if _reached_running(vmi):
        return None
    if not _is_final(vmi):
        return copy.deepcopy(dict(current)) if current else None
    if current and current.get("lastFailedVMIUID") == _uid(vmi):
        return copy.deepcopy(dict(current))
    count = int((current or {}).get("consecutiveFailCount") or 0) + 1
    retry_after = now + timedelta(seconds=start_backoff_seconds(count, jitter_seconds))
    return {
        "consecutiveFailCount": count,
        "lastFailedVMIUID": _uid(vmi),
        "retryAfterTimestamp": rfc3339(retry_after),
    }


def vm_status(
    vm: Obj,
    vmi: Obj | None,
    datavolumes: Sequence[Obj],
    pvcs: Sequence[Obj],
    *,
    now: datetime,
    creation_pending: bool = False,
    deletion_pending: bool = False,
    jitter_seconds: int = 0,
) -> dict[str, Any]:
    """The VM's whole status after one controller sync (`updateStatus`)."""
    status: dict[str, Any] = copy.deepcopy(dict(_status(vm)))
    status["created"] = vmi is not None
    status["ready"] = _has_condition(vmi, "Ready", "True")
    if vmi is not None or status.get("runStrategy"):
        status["runStrategy"] = run_strategy(vm)
    annotations = ((vmi or {}).get("metadata") or {}).get("annotations") or {}
    observed = annotations.get("kubevirt.io/vm-generation")
    if observed is not None:
        status["observedGeneration"] = int(observed)
    generation = (vm.get("metadata") or {}).get("generation")
    if generation is not None:
        status["desiredGeneration"] = int(generation)
    requests = trimmed_state_change_requests(vm, vmi)
    if requests:
        status["stateChangeRequests"] = requests
    else:
        status.pop("stateChangeRequests", None)
    start_failure = next_start_failure(vm, vmi, now, jitter_seconds=jitter_seconds)
    if start_failure is None:
        status.pop("startFailure", None)
    else:
        status["startFailure"] = start_failure
    status["conditions"] = vm_conditions(vm, vmi, now)
    with_failure = {**vm, "status": status}
    status["printableStatus"] = printable_status(
        with_failure,
        vmi,
        datavolumes,
        pvcs,
        creation_pending=creation_pending,
        deletion_pending=deletion_pending,
        now=now,
    )
    return status
