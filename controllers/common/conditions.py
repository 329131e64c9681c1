"""`metav1.Condition` helpers: a list of conditions kept as a map keyed by type.

`set_condition` ports k8s.io/apimachinery `meta.SetStatusCondition`: `lastTransitionTime`
moves only when `status` changes; reason, message and observedGeneration are overwritten.
`mark_true`/`mark_false`/`mark_unknown` and `summarize_ready` follow vm-operator's
`pkg/conditions` (MarkTrue, MarkFalse(reason, message), a Ready summary from the others).

All functions are pure: they return a new list and never modify their argument, so a
handler can compare old and new and skip a status write when nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal, NotRequired, TypedDict

from pydantic import Field

from controllers.common.apimodel import StatusModel

ConditionStatus = Literal["True", "False", "Unknown"]

READY = "Ready"


class Condition(TypedDict):
    """One entry of `status.conditions`, exactly as the API carries it."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: NotRequired[int]


class ConditionModel(StatusModel):
    """Schema of a condition in the CRDs (metav1.Condition)."""

    type: str = Field(
        description="Type of the condition in CamelCase, e.g. Ready.",
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: str = Field(
        description="Machine-readable CamelCase reason for the last transition.",
        max_length=1024,
        min_length=1,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: str = Field(
        default="",
        description="Human-readable details about the last transition.",
        max_length=32768,
    )
    last_transition_time: str = Field(
        description="When the status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the condition was computed from."
    )


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serialises."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_condition(conditions: Iterable[Condition], condition_type: str) -> Condition | None:
    """The condition of that type, or None."""
    for condition in conditions:
        if condition["type"] == condition_type:
            return condition
    return None


def is_true(conditions: Iterable[Condition], condition_type: str) -> bool:
    """True when the condition exists and its status is "True"."""
    condition = find_condition(conditions, condition_type)
    return condition is not None and condition["status"] == "True"


def set_condition(
    conditions: Sequence[Condition], new: Condition, *, now: datetime
) -> list[Condition]:
    """The list with `new` set, following meta.SetStatusCondition.

    A new type is appended, stamped `now` unless `new` carries a lastTransitionTime. An
    existing type keeps its lastTransitionTime unless its status changes; its reason,
    message and observedGeneration are replaced. Order of the other entries is kept.
    """
    result: list[Condition] = []
    replaced = False
    for existing in conditions:
        if existing["type"] != new["type"]:
            result.append(existing)
            continue
        updated = Condition(
            type=existing["type"],
            status=new["status"],
            reason=new["reason"],
            message=new["message"],
            lastTransitionTime=existing["lastTransitionTime"],
        )
        if existing["status"] != new["status"]:
            updated["lastTransitionTime"] = new["lastTransitionTime"] or timestamp(now)
        if "observedGeneration" in new:
            updated["observedGeneration"] = new["observedGeneration"]
        result.append(updated)
        replaced = True
    if not replaced:
        appended = Condition(**new)
        if not appended["lastTransitionTime"]:
            appended["lastTransitionTime"] = timestamp(now)
        result.append(appended)
    return result


def remove_condition(conditions: Sequence[Condition], condition_type: str) -> list[Condition]:
    """The list without the condition of that type."""
    return [condition for condition in conditions if condition["type"] != condition_type]


def _mark(
    conditions: Sequence[Condition],
    condition_type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int | None,
    now: datetime,
) -> list[Condition]:
    new = Condition(
        type=condition_type, status=status, reason=reason, message=message, lastTransitionTime=""
    )
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    return set_condition(conditions, new, now=now)


def mark_true(
    conditions: Sequence[Condition],
    condition_type: str,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: datetime,
) -> list[Condition]:
    """Sets the condition True. metav1.Condition requires a reason, even when True."""
    return _mark(conditions, condition_type, "True", reason, message, observed_generation, now)


def mark_false(
    conditions: Sequence[Condition],
    condition_type: str,
    reason: str,
    message: str,
    *,
    observed_generation: int | None = None,
    now: datetime,
) -> list[Condition]:
    """Sets the condition False, with the reason and a message that says what to do."""
    return _mark(conditions, condition_type, "False", reason, message, observed_generation, now)


def mark_unknown(
    conditions: Sequence[Condition],
    condition_type: str,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: datetime,
) -> list[Condition]:
    """Sets the condition Unknown: not yet observed (e.g. seeded on first sight)."""
    return _mark(conditions, condition_type, "Unknown", reason, message, observed_generation, now)


def summarize_ready(
    conditions: Sequence[Condition],
    required_types: Sequence[str],
    *,
    observed_generation: int | None = None,
    now: datetime,
    ready_reason: str = "Ready",
    ready_message: str = "",
) -> list[Condition]:
    """Sets `Ready` from the required conditions, as vm-operator's summary does.

    Ready is True when every required condition is True. Otherwise it copies the reason of
    the first required condition that is False (else the first that is Unknown or missing),
    and its message prefixed with the condition type, so `kubectl get` shows why.
    """
    blocking: Condition | None = None
    blocking_status: ConditionStatus = "True"
    for condition_type in required_types:
        condition = find_condition(conditions, condition_type)
        if condition is None:
            condition = Condition(
                type=condition_type,
                status="Unknown",
                reason=f"{condition_type}Unknown",
                message="not yet observed",
                lastTransitionTime="",
            )
        if condition["status"] == "False":
            blocking, blocking_status = condition, "False"
            break
        if condition["status"] == "Unknown" and blocking is None:
            blocking, blocking_status = condition, "Unknown"
    if blocking is None:
        return mark_true(
            conditions,
            READY,
            ready_reason,
            ready_message,
            observed_generation=observed_generation,
            now=now,
        )
    message = (
        f"{blocking['type']}: {blocking['message']}" if blocking["message"] else blocking["type"]
    )
    return _mark(
        conditions,
        READY,
        blocking_status,
        blocking["reason"],
        message,
        observed_generation,
        now,
    )
