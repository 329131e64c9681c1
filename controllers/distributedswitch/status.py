"""Pure status of a DistributedSwitch: per host from nmstate's enactments and node states,
and the Ready and Degraded conditions.

A host is the switch's when the cluster's hostSelector picks it. Its state, in order:
- no NodeNetworkState yet: Pending (nmstate has not reported the host's NICs);
- an uplink missing from its NodeNetworkState: Failing, naming the NIC (and no policy is
  applied, since nmstate would fail on that host and roll back);
- its enactment of the policy's current generation: Failing (or Aborted), Progressing,
  Pending or Available, with nmstate's message;
- Available, but with uplinks down in its NodeNetworkState: still Available while one uplink
  carries the bond (the switch is Degraded), Failing when none does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controllers.common.conditions import Condition, mark_false, mark_true
from controllers.distributedswitch.models import DistributedSwitchSpec
from controllers.distributedswitch.nmstate import enactment_state

Interfaces = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class HostReport:
    """The switch on one host."""

    name: str
    state: str
    message: str = ""
    #: Uplinks whose link is down (the host may still be Available over the others).
    uplinks_down: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        report = {"name": self.name, "state": self.state}
        if self.message:
            report["message"] = self.message
        return report


def missing_uplinks(
    spec: DistributedSwitchSpec, hosts: Sequence[str], states: Mapping[str, Interfaces]
) -> dict[str, list[str]]:
    """{host: uplinks its NodeNetworkState lacks}, for hosts that report and lack some."""
    missing: dict[str, list[str]] = {}
    for host in hosts:
        interfaces = states.get(host)
        if interfaces is None:
            continue
        lacking = [uplink for uplink in spec.uplinks if uplink not in interfaces]
        if lacking:
            missing[host] = lacking
    return missing


def _nics(names: Sequence[str]) -> str:
    return ", ".join(names)


def host_report(
    host: str,
    spec: DistributedSwitchSpec,
    interfaces: Interfaces | None,
    enactment: Mapping[str, Any] | None,
    policy_generation: int | None,
) -> HostReport:
    """The switch's state on one host (see the module's docstring for the order)."""
    if interfaces is None:
        return HostReport(host, "Pending", "waiting for the host's NodeNetworkState")
    lacking = [uplink for uplink in spec.uplinks if uplink not in interfaces]
    if lacking:
        noun = "NIC" if len(lacking) == 1 else "NICs"
        return HostReport(host, "Failing", f"host {host} has no {noun} {_nics(lacking)}")
    if policy_generation is None:
        return HostReport(host, "Pending", "the policy is not applied yet")
    if enactment is None:
        return HostReport(host, "Pending", "waiting for nmstate to enact the policy")
    enacted = enactment.get("policyGeneration")
    if enacted is not None and int(enacted) < policy_generation:
        message = f"nmstate is applying generation {policy_generation}"
        return HostReport(host, "Progressing", message)
    state, _, message = enactment_state(enactment)
    if state == "Aborted":
        return HostReport(host, "Failing", message or "aborted after another host failed")
    if state != "Available":
        return HostReport(host, state, message)
    down = tuple(
        uplink for uplink in spec.uplinks if (interfaces.get(uplink) or {}).get("state") == "down"
    )
    if down and len(down) == len(spec.uplinks):
        return HostReport(host, "Failing", f"every uplink is down: {_nics(down)}", down)
    if down:
        carrying = [uplink for uplink in spec.uplinks if uplink not in down]
        return HostReport(
            host,
            "Available",
            f"uplink {_nics(down)} down; the bond carries traffic on {_nics(carrying)}",
            down,
        )
    return HostReport(host, "Available")


def switch_conditions(
    reports: Sequence[HostReport],
    previous: Sequence[Condition],
    generation: int,
    now: datetime,
    blocked: tuple[str, str] | None = None,
) -> list[Condition]:
    """Ready (every host Available) and Degraded (a host Failing or an uplink down).

    `blocked` (reason, message) overrides Ready when the switch cannot be applied at all.
    """
    conditions = list(previous)
    available = [report for report in reports if report.state == "Available"]
    failing = [report for report in reports if report.state == "Failing"]
    if blocked is not None:
        reason, message = blocked
        conditions = mark_false(
            conditions, "Ready", reason, message, observed_generation=generation, now=now
        )
    elif not reports:
        conditions = mark_false(
            conditions,
            "Ready",
            "NoHosts",
            "the cluster has no hosts",
            observed_generation=generation,
            now=now,
        )
    elif len(available) == len(reports):
        conditions = mark_true(
            conditions,
            "Ready",
            "Available",
            f"{len(available)}/{len(reports)} hosts Available",
            observed_generation=generation,
            now=now,
        )
    else:
        waiting = [report for report in reports if report.state != "Available"]
        first = waiting[0]
        reason = "HostsFailing" if failing else "Progressing"
        message = f"{len(available)}/{len(reports)} hosts Available; {first.name}: " + (
            first.message or first.state
        )
        conditions = mark_false(
            conditions, "Ready", reason, message, observed_generation=generation, now=now
        )
    degraded_hosts = [report for report in reports if report.uplinks_down]
    if failing:
        message = "; ".join(f"{report.name}: {report.message}" for report in failing)
        conditions = mark_true(
            conditions,
            "Degraded",
            "HostsFailing",
            message,
            observed_generation=generation,
            now=now,
        )
    elif degraded_hosts:
        message = "; ".join(f"{report.name}: {report.message}" for report in degraded_hosts)
        conditions = mark_true(
            conditions, "Degraded", "UplinkDown", message, observed_generation=generation, now=now
        )
    else:
        conditions = mark_false(
            conditions,
            "Degraded",
            "AsExpected",
            "every host's uplinks are up",
            observed_generation=generation,
            now=now,
        )
    return conditions


def host_summary(reports: Sequence[HostReport]) -> dict[str, Any]:
    """hosts[], availableHosts, totalHosts and the "available/total" column."""
    available = sum(1 for report in reports if report.state == "Available")
    return {
        "hosts": [report.to_api() for report in reports],
        "availableHosts": available,
        "totalHosts": len(reports),
        "hostSummary": f"{available}/{len(reports)}",
    }
