"""A DRS plan as the user sees it: status.drs (valid per the CRD), recommendations with the
migration that applies them, status.rules, Balanced, and when the next pass is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from controllers.computecluster.command_drs import migrations_to_create
from controllers.computecluster.drs import DrsPlan, Move
from controllers.computecluster.drs_types import RuleStatus
from controllers.computecluster.models import DRS
from controllers.computecluster.pass_inputs import Observation, planner_inputs
from controllers.computecluster.pass_report import (
    balanced_conditions,
    drs_status,
    move_reason_text,
    pass_message,
    recommendations,
    rule_statuses,
    seconds_until_pass,
)
from tests.oracles import REPO_ROOT, crd_schema_errors

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REPAIR = Move("apps/db", "host-1", "host-2", "RuleViolation", 1, 0.10, rule="apart",
              imbalance_before=0.31)
BALANCE = Move("apps/web", "host-1", "host-3", "Balance", 3, 0.12, imbalance_before=0.10)
PLAN = DrsPlan(
    imbalance=0.31, target_imbalance=0.1, cpu_imbalance=0.3, memory_imbalance=0.32,
    moves=(REPAIR, BALANCE),
    rules=(RuleStatus("apart", False, ("apps/db", "apps/web"), "apps/db and apps/web share "
                      "host-1"),
           RuleStatus("together", True, (), "", disabled_by="apart")),
)


def test_reason_text_is_what_the_vm_event_quotes() -> None:
    assert move_reason_text(BALANCE) == "balance, imbalance 0.10 -> 0.12"
    assert move_reason_text(REPAIR) == "rule apart, imbalance 0.31 -> 0.10"


def test_recommendations_carry_the_migration_that_applies_them() -> None:
    first, second = recommendations("prod", PLAN)
    assert first["virtualMachine"] == {"namespace": "apps", "name": "db"}
    assert (first["reason"], first["priority"], first["rule"]) == ("RuleViolation", 1, "apart")
    assert first["migration"] == {
        "apiVersion": "vdcos.io/v1alpha1",
        "kind": "VirtualMachineMigration",
        "metadata": {
            "generateName": "db-migration-",
            "namespace": "apps",
            "labels": {"vdcos.io/drs-cluster": "prod", "vdcos.io/requested-by": "drs"},
            "annotations": {"vdcos.io/drs-reason": "rule apart, imbalance 0.31 -> 0.10"},
        },
        "spec": {"virtualMachineName": "db", "targetHost": "host-2"},
    }
    # Each move's "before" is the imbalance the previous one leaves.
    assert second["migration"]["metadata"]["annotations"]["vdcos.io/drs-reason"] == (
        "balance, imbalance 0.10 -> 0.12")
    assert second["expectedImbalance"] == "0.120"


def _crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (Path(REPO_ROOT) / "crds" / "vdcos.io_computeclusters.yaml").read_text())
    return loaded


def test_status_is_valid_per_the_generated_crd() -> None:
    observation = Observation(
        nodes=[{"metadata": {"name": f"host-{i}"}, "status": {
            "allocatable": {"cpu": "8", "memory": "32Gi"},
            "conditions": [{"type": "Ready", "status": "True"}]}} for i in (1, 2, 3)],
        virtual_machines=[], vmis={}, launcher_pods=[], pod_metrics=[])
    inputs = planner_inputs([], DRS(), observation, 0.0)
    drs = drs_status("prod", PLAN, inputs, NOW, migrations_in_progress=2, message="m")
    status = {
        "drs": drs,
        "rules": rule_statuses(PLAN.rules),
        "conditions": balanced_conditions([], PLAN, {"apart"}, 3, NOW),
    }
    body = {"apiVersion": "vdcos.io/v1alpha1", "kind": "ComputeCluster",
            "metadata": {"name": "prod"}, "spec": {"hostSelector": {}}, "status": status}
    assert crd_schema_errors(body, _crd()) == []
    assert drs["imbalance"] == "0.310" and drs["targetImbalance"] == "0.100"
    assert drs["lastPassTime"] == "2026-12-01T12:00:00Z"
    assert [entry["name"] for entry in drs["hostLoads"]] == ["host-1", "host-2", "host-3"]


def test_rules_say_which_are_broken_and_which_a_conflict_disabled() -> None:
    apart, together = rule_statuses(PLAN.rules)
    assert apart == {"name": "apart", "satisfied": False,
                     "violatingVirtualMachines": ["apps/db", "apps/web"],
                     "message": "apps/db and apps/web share host-1"}
    assert together["disabled"] is True


def test_balanced_is_false_while_a_required_rule_is_broken_or_above_target() -> None:
    broken = balanced_conditions([], PLAN, {"apart"}, 1, NOW)[0]
    assert (broken["status"], broken["reason"]) == ("False", "RuleViolated")
    assert "apart" in broken["message"]
    # A broken Preferred rule does not make the cluster unbalanced: only the figures do.
    imbalanced = balanced_conditions([], PLAN, set(), 1, NOW)[0]
    assert (imbalanced["status"], imbalanced["reason"]) == ("False", "Imbalanced")
    quiet = DrsPlan(0.05, 0.1, 0.05, 0.05, (), ())
    within = balanced_conditions([], quiet, set(), 1, NOW)[0]
    assert (within["status"], within["reason"]) == ("True", "WithinTarget")
    assert within["message"] == "imbalance 0.050, target 0.100"


def test_pass_message() -> None:
    assert pass_message(PLAN, True, ()) == "2 migration(s) started"
    assert pass_message(PLAN, False, ("n",)) == (
        "2 migration(s) recommended (apply: vdcos drs apply); n")
    assert pass_message(DrsPlan(0.05, 0.1, 0.05, 0.05, (), ()), True, ()) == "no move needed"


def test_a_pass_is_due_every_interval_or_when_asked() -> None:
    last = {"lastPassTime": "2026-12-01T12:00:00Z"}
    assert seconds_until_pass(None, 60, NOW, requested=False) == 0
    assert seconds_until_pass(last, 60, NOW + timedelta(seconds=20), requested=False) == 40
    assert seconds_until_pass(last, 60, NOW + timedelta(seconds=61), requested=False) == 0
    assert seconds_until_pass(last, 60, NOW + timedelta(seconds=20), requested=True) == 0


def test_drs_apply_creates_each_recommendation_once() -> None:
    status = {"drs": {"recommendations": recommendations("prod", PLAN)}}
    moving = [{"metadata": {"namespace": "apps"}, "spec": {"virtualMachineName": "web"},
               "status": {"phase": "Running"}},
              {"metadata": {"namespace": "apps"}, "spec": {"virtualMachineName": "db"},
               "status": {"phase": "Succeeded"}}]
    manifests, skipped = migrations_to_create(status, moving)
    assert [m["spec"]["virtualMachineName"] for m in manifests] == ["db"]
    assert skipped == ["apps/web: already migrating"]
    assert migrations_to_create({}, []) == ([], [])
