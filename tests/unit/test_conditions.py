"""Condition helpers behave like apimachinery's meta.SetStatusCondition."""

from datetime import UTC, datetime, timedelta

from controllers.common.conditions import (
    Condition,
    find_condition,
    is_true,
    mark_false,
    mark_true,
    mark_unknown,
    remove_condition,
    set_condition,
    summarize_ready,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def _condition(status: str, reason: str = "R", message: str = "") -> Condition:
    return Condition(
        type="Available",
        status=status,  # type: ignore[typeddict-item]
        reason=reason,
        message=message,
        lastTransitionTime="",
    )


def test_new_condition_is_stamped_now() -> None:
    conditions = set_condition([], _condition("True"), now=T0)
    assert conditions == [
        {
            "type": "Available",
            "status": "True",
            "reason": "R",
            "message": "",
            "lastTransitionTime": "2024-05-01T12:00:00Z",
        }
    ]


def test_transition_time_kept_when_only_reason_or_message_changes() -> None:
    first = set_condition([], _condition("False", "Waiting", "a"), now=T0)
    second = set_condition(first, _condition("False", "StillWaiting", "b"), now=T1)
    condition = find_condition(second, "Available")
    assert condition is not None
    assert condition["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert (condition["reason"], condition["message"]) == ("StillWaiting", "b")


def test_transition_time_moves_when_status_changes() -> None:
    first = set_condition([], _condition("False"), now=T0)
    second = set_condition(first, _condition("True"), now=T1)
    assert second[0]["lastTransitionTime"] == "2024-05-01T12:05:00Z"


def test_explicit_transition_time_is_used() -> None:
    new = _condition("True")
    new["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    assert set_condition([], new, now=T0)[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"


def test_inputs_are_not_modified_and_order_is_kept() -> None:
    original = mark_true([], "A", "Ok", now=T0)
    original = mark_false(original, "B", "Bad", "broken", now=T0)
    snapshot = [dict(c) for c in original]
    updated = mark_true(original, "A", "StillOk", now=T1)
    assert [dict(c) for c in original] == snapshot
    assert [c["type"] for c in updated] == ["A", "B"]


def test_observed_generation_is_overwritten_and_dropped_like_apimachinery() -> None:
    conditions = mark_true([], "A", "Ok", observed_generation=3, now=T0)
    assert conditions[0]["observedGeneration"] == 3
    conditions = mark_true(conditions, "A", "Ok", now=T0)
    assert "observedGeneration" not in conditions[0]


def test_idempotent_marking_changes_nothing() -> None:
    once = mark_false([], "A", "Bad", "why", observed_generation=1, now=T0)
    twice = mark_false(once, "A", "Bad", "why", observed_generation=1, now=T1)
    assert once == twice


def test_ready_true_when_all_required_are_true() -> None:
    conditions = mark_true([], "A", "Ok", now=T0)
    conditions = mark_true(conditions, "B", "Ok", now=T0)
    conditions = summarize_ready(conditions, ["A", "B"], now=T0)
    assert is_true(conditions, "Ready")


def test_ready_copies_the_first_false_reason_and_message() -> None:
    conditions = mark_unknown([], "A", "Pending", now=T0)
    conditions = mark_false(conditions, "B", "NotFound", 'StoragePolicy "x" not found', now=T0)
    conditions = summarize_ready(conditions, ["A", "B"], now=T0)
    ready = find_condition(conditions, "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert ready["reason"] == "NotFound"
    assert ready["message"] == 'B: StoragePolicy "x" not found'


def test_ready_unknown_when_a_required_condition_is_missing() -> None:
    conditions = summarize_ready(mark_true([], "A", "Ok", now=T0), ["A", "B"], now=T0)
    ready = find_condition(conditions, "Ready")
    assert ready is not None and ready["status"] == "Unknown"


def test_remove_condition() -> None:
    conditions = mark_true(mark_true([], "A", "Ok", now=T0), "B", "Ok", now=T0)
    assert [c["type"] for c in remove_condition(conditions, "A")] == ["B"]
