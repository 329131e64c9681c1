"""The power sequence and scaling planner of a VirtualApp (pure: no I/O, no clock).

Given the app's spec, its VMs as observed, the times its status recorded, and now, `plan`
says what to do next: VMs to create, power on or off, remove (scale in); Events to post; the
times to record; the phase; and when to look again (a start or stop delay running out).
Everything it needs is in the API (status holds the times), so an operator restarted in the
middle of a sequence carries on where it was.

Power on: start groups (members of equal startOrder) run lowest first. A group's members are
powered on together; the next group starts once every member of this one is up (all its
replicas run and are Ready, and their guest agents are connected when waitForGuest) and its
startDelaySeconds have passed since. Power off: groups run highest first; each member's VMs
stop with its stopAction (GuestShutdown: KubeVirt's graceful stop; PowerOff: no grace), and
the next group stops once they all are off and the member's stopDelaySeconds have passed.
Scaling in removes the highest-numbered (newest) replicas; with GuestShutdown a replica is
shut down first and removed once off, with PowerOff it is stopped hard and removed at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from controllers.virtualapp.models import AppPhase, AppPowerState, Member, VirtualAppSpec

VMPower = Literal["PoweredOn", "PoweredOff"]


@dataclass(frozen=True)
class ObservedVM:
    """One VDC VirtualMachine of the app as the caches hold it."""

    name: str
    member: str
    replica: int
    #: Its spec.powerState (what was asked of it).
    requested_power: str
    #: Its status.powerState (None before its controller reported).
    power: str | None = None
    ready: bool = False
    #: The KubeVirt VMI's AgentConnected condition is True.
    guest_ready: bool = False

    @property
    def running(self) -> bool:
        return self.power == "PoweredOn" and self.ready

    @property
    def stopped(self) -> bool:
        return self.requested_power == "PoweredOff" and self.power in (None, "PoweredOff")


@dataclass(frozen=True)
class MemberTimes:
    """The sequence's marks for one member (status.members[].startedAt, upAt, stoppedAt)."""

    started_at: datetime | None = None
    up_at: datetime | None = None
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class PowerChange:
    vm: str
    member: str
    power: VMPower
    #: A stop with no grace period (stopAction PowerOff).
    hard: bool = False


@dataclass(frozen=True)
class Creation:
    member: str
    replica: int
    power: VMPower


@dataclass(frozen=True)
class Removal:
    vm: str
    member: str
    #: Stopped with no grace period first (stopAction PowerOff).
    hard: bool


@dataclass(frozen=True)
class Step:
    """An Event on the app: one step of a sequence or a scaling."""

    reason: str
    message: str


@dataclass
class Plan:
    creations: list[Creation] = field(default_factory=list)
    power_changes: list[PowerChange] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    times: dict[str, MemberTimes] = field(default_factory=dict)
    phase: AppPhase = "Starting"
    #: The start group the sequence waits on (None: the sequence is done).
    current_start_order: int | None = None
    #: Seconds until a delay runs out and the plan changes by time alone.
    requeue_after: float | None = None
    ready: bool = False
    reason: str = ""
    message: str = ""


def _vms_by_member(observed: Sequence[ObservedVM]) -> dict[str, dict[int, ObservedVM]]:
    found: dict[str, dict[int, ObservedVM]] = {}
    for vm in observed:
        found.setdefault(vm.member, {})[vm.replica] = vm
    return found


def _groups(members: Sequence[Member]) -> list[tuple[int, list[Member]]]:
    orders = sorted({member.start_order for member in members})
    return [(order, [m for m in members if m.start_order == order]) for order in orders]


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


def _wait(plan: Plan, seconds: float) -> None:
    plan.requeue_after = seconds if plan.requeue_after is None else min(plan.requeue_after,
                                                                        seconds)


def _scale(plan: Plan, member: Member, vms: Mapping[int, ObservedVM]) -> list[ObservedVM]:
    """Scale-in removals (newest first) of one member; returns the VMs it keeps."""
    kept = [vms[replica] for replica in sorted(vms) if replica <= member.replicas]
    for replica in sorted((r for r in vms if r > member.replicas), reverse=True):
        vm = vms[replica]
        if member.stop_action == "PowerOff" or vm.stopped:
            plan.removals.append(Removal(vm.name, member.name, member.stop_action == "PowerOff"))
            how = "powered off and removed" if member.stop_action == "PowerOff" else "removed"
            plan.steps.append(Step("ScaledIn", f"Member {member.name} scaled in to "
                                   f"{member.replicas}: {vm.name} {how} (newest first)"))
        elif vm.requested_power != "PoweredOff":
            plan.power_changes.append(PowerChange(vm.name, member.name, "PoweredOff"))
            plan.steps.append(Step("ScalingIn", f"Member {member.name} scaling in to "
                                   f"{member.replicas}: shutting down the guest of {vm.name} "
                                   "(GuestShutdown), then removing it"))
    return kept


def _member_up(member: Member, vms: Sequence[ObservedVM]) -> tuple[bool, str]:
    """Whether every replica of the member runs (with its guest agent when waitForGuest)."""
    if len(vms) < member.replicas:
        return False, f"{member.name}: {len(vms)}/{member.replicas} VMs created"
    for vm in vms:
        if not vm.running:
            return False, f"{vm.name} is not running and Ready yet"
        if member.wait_for_guest and not vm.guest_ready:
            return False, f"waiting for the guest agent of {vm.name} (waitForGuest)"
    return True, ""


def _next(delay: int, last: bool, group: str) -> str:
    return "" if last else f"; the next {group} group follows in {delay}s"


def _power_on(plan: Plan, spec: VirtualAppSpec, kept: Mapping[str, list[ObservedVM]],
              now: datetime) -> None:
    groups = _groups(spec.members)
    for order, members in groups:
        last = order == groups[-1][0]
        waiting: list[str] = []
        for member in members:
            times = plan.times.get(member.name, MemberTimes())
            vms = kept[member.name]
            if times.started_at is None:
                times = replace(times, started_at=now)
                plan.steps.append(Step("StartingMember", f"Starting member {member.name} "
                                       f"(start order {order}, {member.replicas} VM(s))"))
            for vm in vms:
                if vm.requested_power != "PoweredOn":
                    plan.power_changes.append(PowerChange(vm.name, member.name, "PoweredOn"))
            if times.up_at is None:
                up, why = _member_up(member, vms)
                if up:
                    times = replace(times, up_at=now)
                    guest = " with its guest agent connected" if member.wait_for_guest else ""
                    plan.steps.append(Step("MemberUp", f"Member {member.name} is up{guest}"
                                           + _next(member.start_delay_seconds, last, "start")
                                           + (" (startDelaySeconds)" if not last else "")))
                else:
                    waiting.append(why)
            plan.times[member.name] = times
            if times.up_at is not None:
                left = _seconds(times.up_at + timedelta(seconds=member.start_delay_seconds) - now)
                if left > 0:
                    _wait(plan, left)
                    waiting.append(f"{member.name}'s startDelaySeconds: {left:.1f}s left")
        if waiting:
            plan.phase = "Starting"
            plan.current_start_order = order
            plan.reason = "Starting"
            plan.message = f"start order {order}: " + "; ".join(waiting)
            return
    _settled(plan, spec, kept, "PoweredOn")


def _power_off(plan: Plan, spec: VirtualAppSpec, kept: Mapping[str, list[ObservedVM]],
               now: datetime) -> None:
    groups = _groups(spec.members)
    for order, members in reversed(groups):
        last = order == groups[0][0]
        waiting: list[str] = []
        for member in members:
            times = plan.times.get(member.name, MemberTimes())
            vms = kept[member.name]
            asked = [vm for vm in vms if vm.requested_power != "PoweredOff"]
            for vm in asked:
                plan.power_changes.append(PowerChange(vm.name, member.name, "PoweredOff",
                                                      hard=member.stop_action == "PowerOff"))
            if asked:
                plan.steps.append(Step("StoppingMember", f"Stopping member {member.name} "
                                       f"(start order {order}, {member.stop_action}): "
                                       + ", ".join(vm.name for vm in asked)))
            if times.stopped_at is None:
                running = [vm.name for vm in vms if vm.requested_power == "PoweredOff"
                           and not vm.stopped]
                if asked or running:
                    waiting.append(f"{member.name}: waiting for "
                                   f"{', '.join(running or [vm.name for vm in asked])} to stop")
                else:
                    times = replace(times, stopped_at=now)
                    plan.steps.append(Step("MemberStopped", f"Member {member.name} is stopped"
                                           + _next(member.stop_delay_seconds, last, "stop")
                                           + (" (stopDelaySeconds)" if not last else "")))
            plan.times[member.name] = times
            if times.stopped_at is not None:
                left = _seconds(times.stopped_at
                                + timedelta(seconds=member.stop_delay_seconds) - now)
                if left > 0:
                    _wait(plan, left)
                    waiting.append(f"{member.name}'s stopDelaySeconds: {left:.1f}s left")
        if waiting:
            plan.phase = "Stopping"
            plan.current_start_order = order
            plan.reason = "Stopping"
            plan.message = f"start order {order}: " + "; ".join(waiting)
            return
    _settled(plan, spec, kept, "PoweredOff")


def _settled(plan: Plan, spec: VirtualAppSpec, kept: Mapping[str, list[ObservedVM]],
             power: AppPowerState) -> None:
    """The sequence is done: Running or Stopped, unless VMs are missing or not Ready."""
    plan.current_start_order = None
    vms = [vm for member in spec.members for vm in kept[member.name]]
    missing = [f"{m.name} ({len(kept[m.name])}/{m.replicas})" for m in spec.members
               if len(kept[m.name]) < m.replicas]
    if power == "PoweredOff":
        plan.phase, plan.ready, plan.reason = "Stopped", not missing, "Stopped"
        plan.message = "every VM is powered off" if not missing else (
            "creating VMs of " + ", ".join(missing))
        return
    starting = [vm.name for vm in vms if vm.power != "PoweredOn"]
    not_ready = [vm.name for vm in vms if vm.power == "PoweredOn" and not vm.ready]
    if not_ready:
        plan.phase, plan.reason = "Degraded", "VirtualMachinesNotReady"
        plan.message = "running but not Ready: " + ", ".join(not_ready)
    elif missing or starting:
        plan.phase, plan.reason = "Starting", "ScalingOut"
        plan.message = "starting " + ", ".join(starting + [f"members {m}" for m in missing])
    else:
        plan.phase, plan.ready, plan.reason = "Running", True, "Running"
        plan.message = f"all {len(vms)} VMs run and are Ready"


def plan(
    spec: VirtualAppSpec,
    observed: Sequence[ObservedVM],
    times: Mapping[str, MemberTimes],
    sequence_power: AppPowerState | None,
    now: datetime,
) -> Plan:
    """What to do next. `times` and `sequence_power` are what status recorded (the sequence
    they belong to); a different spec.powerState starts a new sequence."""
    result = Plan()
    if sequence_power == spec.power_state:
        result.times = {name: t for name, t in times.items() if spec.member(name) is not None}
    elif sequence_power is not None:
        result.steps.append(Step(
            "PoweringOn" if spec.power_state == "PoweredOn" else "PoweringOff",
            "Powering on: start groups in startOrder" if spec.power_state == "PoweredOn"
            else "Powering off: start groups in reverse startOrder"))
    by_member = _vms_by_member(observed)
    kept = {member.name: _scale(result, member, by_member.get(member.name, {}))
            for member in spec.members}
    if spec.power_state == "PoweredOn":
        _power_on(result, spec, kept, now)
    else:
        _power_off(result, spec, kept, now)
    for member in spec.members:
        present = {vm.replica for vm in kept[member.name]}
        started = result.times.get(member.name, MemberTimes()).started_at is not None
        power: VMPower = "PoweredOn" if spec.power_state == "PoweredOn" and started \
            else "PoweredOff"
        for replica in range(1, member.replicas + 1):
            if replica not in present:
                result.creations.append(Creation(member.name, replica, power))
        added = member.replicas - len(present)
        if added > 0 and present:
            result.steps.append(Step("ScaledOut", f"Member {member.name} scaled out to "
                                     f"{member.replicas} (+{added})"))
    # VMs of members no longer in the spec go (newest first, as a scale-in to zero).
    for name, vms in sorted(by_member.items()):
        if spec.member(name) is None:
            for replica in sorted(vms, reverse=True):
                result.removals.append(Removal(vms[replica].name, name, hard=False))
                result.steps.append(Step("MemberRemoved", f"Member {name} is no longer in "
                                         f"the spec: {vms[replica].name} removed"))
    return result
