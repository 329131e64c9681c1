"""kubernetes-nmstate's bookkeeping, as pure functions: which hosts a policy selects, how
many may be configured at once, the conditions of enactments and policies, their messages.

Follows kubernetes-nmstate (api/shared/*_types.go, pkg/enactmentstatus/conditions,
pkg/policyconditions, pkg/node/nodes.go, controllers/handler/
nodenetworkconfigurationpolicy_controller.go): an enactment `<node>.<policy>` per selected
node, its five conditions set together (Available, Failing, Progressing, Pending, Aborted),
the policy's four (Available, Degraded, Progressing, Ignored) computed from the enactments
of the policy's current generation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]
Conditions = list[dict[str, Any]]

POLICY_LABEL = "nmstate.io/policy"
NODE_LABEL = "nmstate.io/node"
DEFAULT_MAX_UNAVAILABLE = "50%"
RETRIES_UNTIL_FAIL = 5  # the handler's NNCP_MAX_RETRIES default
MAX_BACKOFF_SECONDS = 30.0  # NNCP_MAX_BACKOFF_SECONDS default
APPLY_TIMEOUT_SECONDS = 480  # DesiredStateConfigurationTimeout: (120 s + 120 s) x 2

AVAILABLE, FAILING, PROGRESSING, PENDING, ABORTED = (
    "Available", "Failing", "Progressing", "Pending", "Aborted")
DEGRADED, IGNORED = "Degraded", "Ignored"
ENACTMENT_CONDITION_TYPES = (AVAILABLE, FAILING, PROGRESSING, PENDING, ABORTED)
POLICY_CONDITION_TYPES = (AVAILABLE, DEGRADED, PROGRESSING, IGNORED)

FAILED_TO_CONFIGURE = "FailedToConfigure"
RETRYING = "Retrying"
SUCCESSFULLY_CONFIGURED = "SuccessfullyConfigured"
MAX_UNAVAILABLE_LIMIT_REACHED = "MaxUnavailableLimitReached"
CONFIGURATION_PROGRESSING = "ConfigurationProgressing"
CONFIGURATION_ABORTED = "ConfigurationAborted"
NO_MATCHING_NODE = "NoMatchingNode"


def enactment_name(node: str, policy: str) -> str:
    return f"{node}.{policy}"


def selector_matches(node_selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """nmstate's nodeSelector: every key present with exactly that value (equality only)."""
    return all(labels.get(key) == value for key, value in (node_selector or {}).items())


_PERCENT = re.compile(r"^(\d+)%$")


def max_unavailable(value: int | str | None, matching_nodes: int) -> int:
    """How many selected nodes may be configuring at once: maxUnavailable scaled to the
    number of nodes, rounded up, at least 1 (ScaledMaxUnavailableNodeCount). An invalid
    value falls back to the default 50%, as upstream does."""
    def scaled(text_or_int: int | str) -> int | None:
        if isinstance(text_or_int, bool):
            return None
        if isinstance(text_or_int, int):
            return text_or_int
        if text_or_int.isdigit():  # intstr parses a plain numeric string as a percent error
            return None
        match = _PERCENT.match(text_or_int)
        if match is None:
            return None
        return math.ceil(int(match.group(1)) * matching_nodes / 100)

    count = scaled(value) if value is not None else None
    if count is None:
        count = scaled(DEFAULT_MAX_UNAVAILABLE)
    return max(1, count or 0)


# --- conditions -------------------------------------------------------------------------


def set_condition(conditions: Conditions, type_: str, status: str, reason: str, message: str,
                  now: str) -> None:
    """ConditionList.Set: a new condition, or the old one with its transition time kept
    unless the status changes; the heartbeat always moves."""
    for condition in conditions:
        if condition["type"] == type_:
            if condition.get("status") != status:
                condition["lastTransitionTime"] = now
            condition["status"] = status
            _set_text(condition, "reason", reason)
            _set_text(condition, "message", message)
            condition["lastHeartbeatTime"] = now
            return
    condition = {"type": type_, "status": status, "lastHeartbeatTime": now,
                 "lastTransitionTime": now}
    _set_text(condition, "reason", reason)
    _set_text(condition, "message", message)
    conditions.append(condition)


def _set_text(condition: dict[str, Any], key: str, value: str) -> None:
    # Go's omitempty: an empty reason or message is absent.
    if value:
        condition[key] = value
    else:
        condition.pop(key, None)


def _set_all(conditions: Conditions, now: str,
             rows: Iterable[tuple[str, str, str, str]]) -> Conditions:
    result = [dict(c) for c in conditions]
    for type_, status, reason, message in rows:
        set_condition(result, type_, status, reason, message, now)
    return result


def unknown_enactment_conditions(now: str) -> Conditions:
    """A new enactment (NewEnactment): every condition Unknown."""
    return _set_all([], now, ((t, "Unknown", "", "") for t in ENACTMENT_CONDITION_TYPES))


def enactment_progressing(conditions: Conditions, now: str) -> Conditions:
    reason = CONFIGURATION_PROGRESSING
    return _set_all(conditions, now, (
        (PROGRESSING, "True", reason, "Applying desired state"),
        (FAILING, "Unknown", reason, ""), (AVAILABLE, "Unknown", reason, ""),
        (PENDING, "False", reason, ""), (ABORTED, "False", reason, "")))


def enactment_available(conditions: Conditions, now: str) -> Conditions:
    reason = SUCCESSFULLY_CONFIGURED
    return _set_all(conditions, now, (
        (AVAILABLE, "True", reason, "successfully reconciled"),
        (FAILING, "False", reason, ""), (PROGRESSING, "False", reason, ""),
        (PENDING, "False", reason, ""), (ABORTED, "False", reason, "")))


def enactment_failed(conditions: Conditions, message: str, now: str) -> Conditions:
    reason = FAILED_TO_CONFIGURE
    return _set_all(conditions, now, (
        (FAILING, "True", reason, message), (AVAILABLE, "False", reason, ""),
        (PROGRESSING, "False", reason, ""), (PENDING, "False", reason, ""),
        (ABORTED, "False", SUCCESSFULLY_CONFIGURED, "")))


def enactment_retrying(conditions: Conditions, message: str, now: str) -> Conditions:
    reason = RETRYING
    return _set_all(conditions, now, (
        (FAILING, "True", reason, message), (PROGRESSING, "True", reason, message),
        (AVAILABLE, "False", reason, ""), (PENDING, "False", reason, ""),
        (ABORTED, "False", SUCCESSFULLY_CONFIGURED, "")))


def enactment_pending(conditions: Conditions, now: str) -> Conditions:
    reason, message = MAX_UNAVAILABLE_LIMIT_REACHED, "Waiting for progressing nodes to finish"
    return _set_all(conditions, now, (
        (PENDING, "True", reason, message), (ABORTED, "False", reason, ""),
        (PROGRESSING, "False", reason, message), (FAILING, "False", reason, ""),
        (AVAILABLE, "False", reason, "")))


def enactment_aborted(conditions: Conditions, message: str, now: str) -> Conditions:
    reason = CONFIGURATION_ABORTED
    return _set_all(conditions, now, (
        (FAILING, "False", reason, ""), (AVAILABLE, "False", reason, ""),
        (PROGRESSING, "False", reason, ""), (PENDING, "False", reason, ""),
        (ABORTED, "True", reason, message)))


def condition_status(conditions: Sequence[Obj] | None, type_: str) -> str:
    for condition in conditions or []:
        if condition.get("type") == type_:
            return str(condition.get("status", "Unknown"))
    return "Unknown"


def is_retrying(conditions: Sequence[Obj] | None) -> bool:
    return any(c.get("type") == FAILING and c.get("reason") == RETRYING
               for c in conditions or [])


# --- the handler's decisions -------------------------------------------------------------

PROCEED, WAIT, ABORT = "proceed", "wait", "abort"


def admission(unavailable: int, limit: int, failed: int) -> str:
    """May one more host start configuring? `unavailable` hosts hold a slot (configuring,
    or failed: a failed host keeps its slot), `limit` is maxUnavailable, `failed` the hosts
    Failing and no longer Progressing. Full: wait (Pending), or abort once the failed alone
    fill the slots (shouldAbortReconcile)."""
    if unavailable < limit:
        return PROCEED
    return ABORT if failed >= limit else WAIT


def is_finished(conditions: Sequence[Obj], retry_count: Mapping[str, int],
                generation: int) -> bool:
    """Done with this generation: Available, Aborted, or failed after every retry."""
    return retry_count.get(str(generation), 0) >= RETRIES_UNTIL_FAIL or any(
        condition_status(conditions, done) == "True" for done in (AVAILABLE, ABORTED))


# --- messages ---------------------------------------------------------------------------


def apply_failure_message(node: str, nmstate_error: str, started: str) -> str:
    """The Failing message: the handler's wrapper around nmstatectl's failed output
    ("" stdout, its log on stderr, then the exec error)."""
    log = (f"[{started} INFO  nmstate::nm::query_apply::profile] Activating connection\n"
           f"[{started} ERROR nmstate::nm::query_apply::profile] {nmstate_error}\n"
           f"{nmstate_error}\n")
    return (f"error reconciling NodeNetworkConfigurationPolicy on node {node} at desired "
            f"state apply: \"\",\n , {log}: failed to execute nmstatectl apply --no-commit "
            f"--timeout {APPLY_TIMEOUT_SECONDS}: exit status 1")


def retrying_message(node: str, attempt: int) -> str:
    return (f"failed to reconcile NodeNetworkConfigurationPolicy on node {node}. Retrying "
            f"{attempt}/{RETRIES_UNTIL_FAIL}")


def aborted_message(name: str) -> str:
    return f'reconciliation of enactment "{name}" has aborted'


def retry_backoff(initial_seconds: float, failures: int) -> float:
    """The handler's exponential per-item backoff: initial x 2^(failures-1), at most 30 s."""
    return min(MAX_BACKOFF_SECONDS, initial_seconds * float(2 ** max(0, failures - 1)))


# --- the policy's status ----------------------------------------------------------------


@dataclass(frozen=True)
class EnactmentCounts:
    """Enactments of the policy's current generation, by condition (Count)."""

    available: int = 0
    failed: int = 0
    pending: int = 0
    aborted: int = 0
    failed_not_progressing: int = 0

    @property
    def finished(self) -> int:
        return self.available + self.failed + self.aborted


def count_enactments(enactments: Iterable[Obj], generation: int) -> EnactmentCounts:
    available = failed = pending = aborted = failed_not_progressing = 0
    for enactment in enactments:
        status = enactment.get("status") or {}
        if int(status.get("policyGeneration") or 0) != generation:
            continue
        conditions = status.get("conditions") or []
        available += condition_status(conditions, AVAILABLE) == "True"
        failed += condition_status(conditions, FAILING) == "True"
        pending += condition_status(conditions, PENDING) == "True"
        aborted += condition_status(conditions, ABORTED) == "True"
        failed_not_progressing += (condition_status(conditions, FAILING) == "True"
                                   and condition_status(conditions, PROGRESSING) == "False")
    return EnactmentCounts(available, failed, pending, aborted, failed_not_progressing)


def policy_conditions(conditions: Conditions, *, matching: int, ready: int,
                      counts: EnactmentCounts, now: str) -> Conditions:
    """setPolicyStatus: NoMatchingNode, failed, progressing, pending or all configured."""
    not_ready = matching - ready

    def not_ready_note() -> str:
        return f", {not_ready} nodes ignored due to NotReady state" if not_ready > 0 else ""

    if matching == 0:
        reason = NO_MATCHING_NODE
        return _set_all(conditions, now, (
            (DEGRADED, "False", reason, ""), (AVAILABLE, "False", reason, ""),
            (PROGRESSING, "False", reason, ""),
            (IGNORED, "True", reason, "Policy does not match any node")))
    if counts.failed > 0 or counts.aborted > 0:
        message = f"{counts.failed}/{matching} nodes failed to configure"
        if counts.aborted > 0:
            message += f", {counts.aborted} nodes aborted configuration"
        return _set_all(conditions, now, (
            (DEGRADED, "True", FAILED_TO_CONFIGURE, message),
            (AVAILABLE, "False", FAILED_TO_CONFIGURE, ""),
            (PROGRESSING, "False", CONFIGURATION_PROGRESSING, ""),
            (IGNORED, "False", FAILED_TO_CONFIGURE, "")))
    if counts.finished < ready or counts.pending > 0:
        message = f"Policy is progressing {counts.finished}/{ready} nodes finished"
        if counts.finished >= ready:
            message += f", {counts.pending} pending"
        message += not_ready_note()
        reason = CONFIGURATION_PROGRESSING
        return _set_all(conditions, now, (
            (DEGRADED, "Unknown", reason, ""), (AVAILABLE, "Unknown", reason, ""),
            (PROGRESSING, "True", reason, message), (IGNORED, "False", reason, "")))
    message = f"{counts.available}/{matching} nodes successfully configured" + not_ready_note()
    reason = SUCCESSFULLY_CONFIGURED
    return _set_all(conditions, now, (
        (DEGRADED, "False", reason, ""), (AVAILABLE, "True", reason, message),
        (PROGRESSING, "False", reason, ""), (IGNORED, "False", reason, "")))


def new_enactment(node: Obj, policy_name: str, now: str) -> dict[str, Any]:
    """The NNCE a node's handler creates for a policy (NewEnactment)."""
    node_meta = node["metadata"]
    return {
        "apiVersion": "nmstate.io/v1beta1", "kind": "NodeNetworkConfigurationEnactment",
        "metadata": {
            "name": enactment_name(node_meta["name"], policy_name),
            "labels": {POLICY_LABEL: policy_name, NODE_LABEL: node_meta["name"]},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_meta["name"],
                                 "uid": node_meta.get("uid", "")}],
        },
        "status": {"desiredState": {}, "conditions": unknown_enactment_conditions(now)},
    }
