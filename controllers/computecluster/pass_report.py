"""A DRS plan as the user sees it (pure): status.drs, status.rules, the Balanced condition,
and the VirtualMachineMigration each recommendation carries.

Figures are decimal strings with three places ("0.082"): a status that changes in the
fourth decimal every pass would be rewritten every pass for nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from controllers.common.conditions import Condition, mark_false, mark_true, timestamp
from controllers.computecluster.drs import DrsPlan, Move
from controllers.computecluster.drs_types import RuleStatus
from controllers.computecluster.pass_inputs import Inputs
from controllers.virtualmachinemigration.builders import migration_manifest
from controllers.virtualmachinemigration.kind import REQUESTED_BY_DRS

BALANCED: Final = "Balanced"
#: Label on migrations a DRS pass created, naming the cluster (besides who asked).
DRS_CLUSTER_LABEL: Final = "vdcos.io/drs-cluster"


def decimal(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def move_reason_text(move: Move) -> str:
    """Why, in the words the VM's Event quotes after "Migrated by DRS from A to B: ":
    "balance, imbalance 0.31 -> 0.12" (two places: the figures of one move, for a person)."""
    if move.reason == "RuleViolation":
        words = f"rule {move.rule}" if move.rule else "rule"
    elif move.reason == "Maintenance":
        words = f"{move.source} enters maintenance"
    else:
        words = "balance"
    return f"{words}, imbalance {move.imbalance_before:.2f} -> {move.expected_imbalance:.2f}"


def move_manifests(cluster: str, moves: Sequence[Move]) -> list[dict[str, Any]]:
    """The VirtualMachineMigration of each move, labelled as made by DRS for this cluster."""
    manifests = []
    for move in moves:
        namespace, name = split_key(move.vm)
        manifests.append(
            migration_manifest(
                namespace,
                name,
                move.target,
                requested_by=REQUESTED_BY_DRS,
                drs_reason=move_reason_text(move),
                labels={DRS_CLUSTER_LABEL: cluster},
            )
        )
    return manifests


def recommendations(cluster: str, plan: DrsPlan) -> list[dict[str, Any]]:
    """status.drs.recommendations: each move with the manifest that applies it."""
    result = []
    for move, manifest in zip(
        plan.moves, move_manifests(cluster, plan.moves), strict=True
    ):
        namespace, name = split_key(move.vm)
        entry: dict[str, Any] = {
            "virtualMachine": {"namespace": namespace, "name": name},
            "sourceHost": move.source,
            "targetHost": move.target,
            "reason": move.reason,
            "priority": move.priority,
            "expectedImbalance": decimal(move.expected_imbalance),
            "migration": manifest,
        }
        if move.rule:
            entry["rule"] = move.rule
        result.append(entry)
    return result


def rule_statuses(rules: Sequence[RuleStatus]) -> list[dict[str, Any]]:
    """status.rules, in the planner's order."""
    result = []
    for rule in rules:
        entry: dict[str, Any] = {
            "name": rule.name,
            "satisfied": rule.satisfied,
            "violatingVirtualMachines": sorted(rule.violating),
            "message": rule.message,
        }
        if rule.disabled_by is not None:
            entry["disabled"] = True
        result.append(entry)
    return result


def _percent(part: int, whole: int) -> int:
    return (part * 100) // whole if whole else 0


def drs_status(
    cluster: str,
    plan: DrsPlan,
    inputs: Inputs,
    now: datetime,
    *,
    migrations_in_progress: int,
    message: str,
) -> dict[str, Any]:
    """status.drs of one pass."""
    hosts = {host.name: host for host in inputs.state.hosts}
    used_cpu = sum(load[0] for load in inputs.loads_by_host.values())
    used_memory = sum(load[1] for load in inputs.loads_by_host.values())
    capacity_cpu = sum(host.cpu_millicores for host in hosts.values())
    capacity_memory = sum(host.memory_bytes for host in hosts.values())
    host_loads = []
    for name, (cpu, memory) in sorted(inputs.loads_by_host.items()):
        host = hosts[name]
        host_loads.append(
            {
                "name": name,
                "cpu": decimal(cpu / host.cpu_millicores if host.cpu_millicores else 0.0),
                "memory": decimal(memory / host.memory_bytes if host.memory_bytes else 0.0),
            }
        )
    return {
        "imbalance": decimal(plan.imbalance),
        "targetImbalance": decimal(plan.target_imbalance),
        "lastPassTime": timestamp(now),
        "usagePercent": {
            "cpu": _percent(used_cpu, capacity_cpu),
            "memory": _percent(used_memory, capacity_memory),
        },
        "hostLoads": host_loads,
        "recommendations": recommendations(cluster, plan),
        "migrationsInProgress": migrations_in_progress,
        "message": message,
    }


def pass_message(plan: DrsPlan, automated: bool, notes: Sequence[str]) -> str:
    """One sentence on what the pass did."""
    if not plan.moves:
        said = "no move needed" if plan.imbalance <= plan.target_imbalance else (
            "no move improves the balance within the limits and rules"
        )
    elif automated:
        said = f"{len(plan.moves)} migration(s) started"
    else:
        said = f"{len(plan.moves)} migration(s) recommended (apply: vdcos drs apply)"
    held = [f"{held.vm}: {held.reason}" for held in plan.held]
    return "; ".join([said, *held, *notes])


def balanced_conditions(
    previous: Sequence[Condition],
    plan: DrsPlan,
    required_rules: Collection[str],
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Balanced: True when the imbalance is within the target and no enabled Required rule is
    broken (a broken Preferred rule is reported in status.rules only)."""
    broken = [
        rule.name
        for rule in plan.rules
        if not rule.satisfied and rule.disabled_by is None and rule.name in required_rules
    ]
    figures = f"imbalance {decimal(plan.imbalance)}, target {decimal(plan.target_imbalance)}"
    if broken:
        return mark_false(
            previous,
            BALANCED,
            "RuleViolated",
            f"rule(s) {', '.join(broken)} broken; {figures}",
            observed_generation=generation,
            now=now,
        )
    if plan.imbalance > plan.target_imbalance:
        return mark_false(
            previous, BALANCED, "Imbalanced", figures, observed_generation=generation, now=now
        )
    return mark_true(
        previous, BALANCED, "WithinTarget", figures, observed_generation=generation, now=now
    )


def copied_drs_status(previous: Mapping[str, Any]) -> dict[str, Any] | None:
    """The last pass's status.drs, kept between passes (status is written whole)."""
    drs = previous.get("drs")
    return dict(drs) if isinstance(drs, Mapping) else None


def seconds_until_pass(
    previous_drs: Mapping[str, Any] | None, interval: int, now: datetime, *, requested: bool
) -> float:
    """0 when a pass is due (never ran, asked for, or intervalSeconds passed), else the wait."""
    if requested or not previous_drs or not previous_drs.get("lastPassTime"):
        return 0.0
    try:
        last = datetime.fromisoformat(str(previous_drs["lastPassTime"]).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, interval - (now - last).total_seconds())
