"""The VirtualApp planner: given members, what the VMs are doing and the time, what next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

from controllers.virtualapp.models import VirtualAppSpec
from controllers.virtualapp.sequence import MemberTimes, ObservedVM, Plan, plan

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
TEMPLATE = {"spec": {"cpu": {"count": 1}, "memory": {"size": "256Mi"}}}


def app(power: str = "PoweredOn", /, **members: dict[str, Any]) -> VirtualAppSpec:
    return VirtualAppSpec.model_validate({
        "powerState": power,
        "members": [{"name": name, "template": TEMPLATE, **fields}
                    for name, fields in members.items()],
    })


THREE_TIER: dict[str, dict[str, Any]] = {
    "db": {"startOrder": 0, "startDelaySeconds": 10, "waitForGuest": True,
           "stopDelaySeconds": 5},
    "app": {"startOrder": 1, "startDelaySeconds": 3, "replicas": 2, "maxReplicas": 3,
            "stopAction": "PowerOff"},
    "web": {"startOrder": 2},
}


def vm(name: str, member: str, replica: int = 1, *, requested: str = "PoweredOff",
       running: bool = False, guest: bool = False) -> ObservedVM:
    return ObservedVM(name, member, replica, requested,
                      "PoweredOn" if running else "PoweredOff", running, guest)


def all_off() -> list[ObservedVM]:
    return [vm("s-db", "db"), vm("s-app", "app"), vm("s-app-2", "app", 2), vm("s-web", "web")]


def run(spec: VirtualAppSpec, vms: Sequence[ObservedVM], previous: Plan | None,
        now: datetime) -> Plan:
    return plan(spec, vms, previous.times if previous else {},
                spec.power_state if previous else None, now)


def powered_on(result: Plan) -> set[str]:
    return {c.vm for c in result.power_changes if c.power == "PoweredOn"}


def test_a_new_app_creates_every_vm_and_starts_only_the_first_group() -> None:
    spec = app(**THREE_TIER)
    first = run(spec, [], None, T0)
    assert {(c.member, c.replica, c.power) for c in first.creations} == {
        ("db", 1, "PoweredOn"), ("app", 1, "PoweredOff"), ("app", 2, "PoweredOff"),
        ("web", 1, "PoweredOff")}
    assert first.phase == "Starting" and first.current_start_order == 0
    assert [s.reason for s in first.steps] == ["StartingMember"]
    assert first.requeue_after is None  # nothing runs on a timer yet: VM events come


def test_groups_start_in_order_after_guest_agent_and_delay() -> None:
    spec = app(**THREE_TIER)
    first = run(spec, all_off(), None, T0)
    assert powered_on(first) == {"s-db"}
    # db runs but its guest agent is not connected yet: waitForGuest holds the next group.
    vms = [vm("s-db", "db", requested="PoweredOn", running=True), *all_off()[1:]]
    waiting = run(spec, vms, first, T0 + timedelta(seconds=1))
    assert powered_on(waiting) == set()
    assert "guest agent of s-db" in waiting.message
    vms[0] = replace(vms[0], guest_ready=True)
    up = run(spec, vms, waiting, T0 + timedelta(seconds=2))
    assert up.times["db"].up_at == T0 + timedelta(seconds=2)
    assert powered_on(up) == set() and up.requeue_after == pytest.approx(10)
    early = run(spec, vms, up, T0 + timedelta(seconds=11.9))
    assert powered_on(early) == set() and early.requeue_after == pytest.approx(0.1)
    released = run(spec, vms, early, T0 + timedelta(seconds=12))
    assert powered_on(released) == {"s-app", "s-app-2"}
    assert released.current_start_order == 1
    assert released.times["app"].started_at == T0 + timedelta(seconds=12)


def test_equal_start_orders_start_together_and_the_app_runs_when_all_are_ready() -> None:
    spec = app(a={"startOrder": 1}, b={"startOrder": 1}, c={"startOrder": 2})
    first = run(spec, [vm("x-a", "a"), vm("x-b", "b"), vm("x-c", "c")], None, T0)
    assert powered_on(first) == {"x-a", "x-b"}
    vms = [vm("x-a", "a", requested="PoweredOn", running=True),
           vm("x-b", "b", requested="PoweredOn"), vm("x-c", "c")]
    assert powered_on(run(spec, vms, first, T0)) == set()  # b is not up: c waits
    vms = [vm(n, m, requested="PoweredOn", running=True) for n, m in
           (("x-a", "a"), ("x-b", "b"), ("x-c", "c"))]
    done = run(spec, vms, first, T0 + timedelta(seconds=1))
    assert (done.phase, done.ready, done.current_start_order) == ("Running", True, None)


def test_power_off_runs_in_reverse_with_stop_actions_and_delays() -> None:
    on = app(**THREE_TIER)
    running = [vm(v.name, v.member, v.replica, requested="PoweredOn", running=True, guest=True)
               for v in all_off()]
    started = run(on, running, None, T0)
    spec = app("PoweredOff", **THREE_TIER)
    first = plan(spec, running, started.times, "PoweredOn", T0)
    assert [s.reason for s in first.steps][:2] == ["PoweringOff", "StoppingMember"]
    assert [(c.vm, c.hard) for c in first.power_changes] == [("s-web", False)]
    web_off = [*running[:3], vm("s-web", "web")]
    second = run(spec, web_off, first, T0 + timedelta(seconds=1))
    # web stopped (stopDelaySeconds 0): app goes next, with no grace (PowerOff).
    assert {(c.vm, c.hard) for c in second.power_changes} == {("s-app", True),
                                                              ("s-app-2", True)}
    app_off = [running[0], vm("s-app", "app"), vm("s-app-2", "app", 2), vm("s-web", "web")]
    third = run(spec, app_off, second, T0 + timedelta(seconds=2))
    assert [(c.vm, c.hard) for c in third.power_changes] == [("s-db", False)]
    db_off = all_off()
    fourth = run(spec, db_off, third, T0 + timedelta(seconds=3))
    assert fourth.times["db"].stopped_at == T0 + timedelta(seconds=3)
    assert fourth.phase == "Stopping" and fourth.requeue_after == pytest.approx(5)
    done = run(spec, db_off, fourth, T0 + timedelta(seconds=8))
    assert (done.phase, done.ready) == ("Stopped", True)


def test_a_restarted_operator_continues_from_the_recorded_times() -> None:
    spec = app(**THREE_TIER)
    recorded = {"db": MemberTimes(started_at=T0, up_at=T0 + timedelta(seconds=2))}
    vms = [vm("s-db", "db", requested="PoweredOn", running=True, guest=True), *all_off()[1:]]
    # No memory of the sequence but status: nothing is asked again, the delay still counts.
    again = plan(spec, vms, recorded, "PoweredOn", T0 + timedelta(seconds=5))
    assert again.steps == [] and again.power_changes == []
    assert again.requeue_after == pytest.approx(7)


def test_scale_in_removes_the_newest_replica_first_with_a_guest_shutdown() -> None:
    members = {"app": {"replicas": 1, "maxReplicas": 3}}
    spec = app(**members)
    vms = [vm(f"s-app{suffix}", "app", n, requested="PoweredOn", running=True)
           for n, suffix in ((1, ""), (2, "-2"), (3, "-3"))]
    times = {"app": MemberTimes(started_at=T0, up_at=T0)}
    first = plan(spec, vms, times, "PoweredOn", T0)
    assert [(c.vm, c.power) for c in first.power_changes] == [("s-app-3", "PoweredOff"),
                                                              ("s-app-2", "PoweredOff")]
    assert first.removals == []  # their guests shut down first
    assert first.steps[0].message.startswith("Member app scaling in to 1: shutting down the "
                                             "guest of s-app-3")
    stopped = [vms[0], vm("s-app-2", "app", 2), vm("s-app-3", "app", 3)]
    second = plan(spec, stopped, first.times, "PoweredOn", T0)
    assert [r.vm for r in second.removals] == ["s-app-3", "s-app-2"]


def test_scale_in_with_power_off_removes_at_once_and_scale_out_starts_new_replicas() -> None:
    spec = app(app={"replicas": 1, "maxReplicas": 3, "stopAction": "PowerOff"})
    vms = [vm("s-app", "app", 1, requested="PoweredOn", running=True),
           vm("s-app-2", "app", 2, requested="PoweredOn", running=True)]
    times = {"app": MemberTimes(started_at=T0, up_at=T0)}
    shrunk = plan(spec, vms, times, "PoweredOn", T0)
    assert [(r.vm, r.hard) for r in shrunk.removals] == [("s-app-2", True)]
    grown = plan(app(app={"replicas": 3, "maxReplicas": 3}), vms, times, "PoweredOn", T0)
    assert [(c.replica, c.power) for c in grown.creations] == [(3, "PoweredOn")]
    assert grown.phase == "Starting" and "ScaledOut" in [s.reason for s in grown.steps]


def test_replicas_outside_min_and_max_are_refused_naming_the_field() -> None:
    with pytest.raises(pydantic.ValidationError, match="replicas \\(4\\) must be within"):
        app(app={"replicas": 4, "maxReplicas": 3})
    with pytest.raises(pydantic.ValidationError, match="member name 'a' is used twice"):
        VirtualAppSpec.model_validate({"members": [{"name": "a", "template": TEMPLATE}] * 2})
