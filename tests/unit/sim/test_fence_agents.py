"""The emulated Fence Agents Remediation controller's decisions: the agent command it
builds, why an agent fails against a host's BMC, and the conditions it writes (each
status checked against medik8s' CRD schema)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from devcluster.apiserver.schema import prune, validate
from devcluster.sim import fence_agents as fa
from tests import upstream

NOW = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
FAR_SCHEMA = upstream.path("schemas/medik8s/fenceagentsremediations.yaml")


def far(name: str = "host-1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "fence-agents-remediation.medik8s.io/v1alpha1",
            "kind": "FenceAgentsRemediation",
            "metadata": {"name": name, "namespace": "vdcos-system", "generation": 1},
            "spec": {"agent": "fence_ipmilan", **spec}}


def upstream_schema() -> dict[str, Any]:
    crd = yaml.safe_load(upstream.require(FAR_SCHEMA).read_text(encoding="utf-8"))
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_node_parameters_and_secret_build_the_command_with_reboot_by_default() -> None:
    remediation = far(sharedparameters={"--username": "admin", "--lanplus": ""},
                      nodeparameters={"--ip": {"host-1": "172.19.0.2", "host-2": "x"}})
    command = fa.build_fence_command(remediation, {"--password": "calvin"})
    assert command.agent == "fence_ipmilan"
    assert command.action == "reboot"
    assert command.parameters == {"--username": "admin", "--lanplus": "", "--ip": "172.19.0.2",
                                  "--password": "calvin", "--action": "reboot"}


def test_node_name_template_and_explicit_off_action() -> None:
    remediation = far(sharedparameters={"--ip": "{{.NodeName}}-bmc", "--action": "off"})
    command = fa.build_fence_command(remediation, {})
    assert command.action == "off"
    assert command.option(fa.ADDRESS_OPTIONS) == "host-1-bmc"


def test_the_node_name_annotation_names_the_target() -> None:
    remediation = far("remediation-1")
    remediation["metadata"]["annotations"] = {fa.NODE_NAME_ANNOTATION: "host-3"}
    assert fa.target_node_name(remediation) == "host-3"
    assert fa.target_node_name(far("host-2")) == "host-2"


@pytest.mark.parametrize(("spec", "secret", "message"), [
    ({}, {}, "invalid spec: mandatory parameters are missing"),
    ({"sharedparameters": {"--ip": "10.0.0.1"}}, {},
     "invalid spec: mandatory parameters are missing"),
    ({"sharedparameters": {"--ip": "{{.NodeName}}", "--action": "status"}}, {},
     "FAR doesn't support any other action than `reboot` or `off`"),
    ({"sharedparameters": {"--ip": "{{.NodeName}}", "--password": "a"}}, {"--password": "b"},
     "invalid multiple definition of FAR parameter, parameter name: --password"),
])
def test_bad_parameters_fail_in_upstream_words(spec: dict[str, Any], secret: dict[str, str],
                                               message: str) -> None:
    with pytest.raises(fa.FenceSpecError) as error:
        fa.build_fence_command(far(**spec), secret)
    assert str(error.value) == message


def test_agents_that_reach_the_simulated_bmc() -> None:
    assert fa.unsupported_agent_message("fence_redfish") is None
    assert fa.unsupported_agent_message("fence_ipmilan") is None
    assert fa.unsupported_agent_message("fence_aws") == "unsupported fence agent: fence_aws"


@pytest.mark.parametrize(("parameters", "failure"), [
    ({"--username": "a", "--password": "b"}, "Failed: You have to enter fence address"),
    ({"--ip": "172.19.0.2", "--password": "b"}, "Failed: You have to set login name"),
    ({"--ip": "172.19.0.2", "-l": "a"},
     "Failed: You have to enter password or password script"),
    ({"--ip": "10.1.1.1", "-l": "a", "-p": "b"},
     "Failed: Unable to connect/login to fencing device"),
    ({"--ip": "172.19.0.2:623", "-l": "a", "-p": "b"}, None),
    ({"-a": "host-1-bmc", "--login": "a", "--password-script": "cat pw"}, None),
])
def test_agent_failure_against_the_bmc(parameters: dict[str, str], failure: str | None) -> None:
    command = fa.FenceCommand("fence_ipmilan", "off", parameters)
    assert fa.agent_failure(command, {"172.19.0.2", "host-1-bmc"}) == failure


@pytest.mark.parametrize(("text", "seconds"), [
    ("5s", 5.0), ("1m30s", 90.0), ("500ms", 0.5), ("1.5h", 5400.0), ("", 60.0), ("5x", 60.0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert fa.parse_duration(text, 60.0) == seconds


def by_type(conditions: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conditions}


def test_conditions_through_a_successful_remediation_validate_against_the_crd() -> None:
    schema = upstream_schema()
    conditions: list[dict[str, Any]] = []
    seen = []
    for step, reason in enumerate((fa.REMEDIATION_STARTED, fa.FENCE_AGENT_SUCCEEDED,
                                   fa.REMEDIATION_FINISHED_SUCCESSFULLY)):
        conditions, changed = fa.conditions_after(reason, conditions,
                                                  NOW + timedelta(seconds=step), generation=1)
        assert changed
        seen.append(by_type(conditions))
        status = {"conditions": conditions, "lastUpdateTime": "2026-12-01T13:00:00Z"}
        obj = {**far(), "status": status}
        assert validate(obj, schema) == []
        assert prune(obj, schema)[1] == [], "nothing the CRD does not know"
    assert seen == [
        {"Processing": ("True", "RemediationStarted"),
         "FenceAgentActionSucceeded": ("Unknown", "RemediationStarted"),
         "Succeeded": ("Unknown", "RemediationStarted")},
        {"Processing": ("True", "RemediationStarted"),
         "FenceAgentActionSucceeded": ("True", "FenceAgentSucceeded"),
         "Succeeded": ("Unknown", "RemediationStarted")},
        {"Processing": ("False", "RemediationFinishedSuccessfully"),
         "FenceAgentActionSucceeded": ("True", "FenceAgentSucceeded"),
         "Succeeded": ("True", "RemediationFinishedSuccessfully")},
    ]
    succeeded = next(c for c in conditions if c["type"] == "Succeeded")
    assert succeeded["message"].startswith("The unhealthy node was fully remediated")
    assert succeeded["lastTransitionTime"] == "2026-12-01T13:00:02Z"


@pytest.mark.parametrize("reason", [fa.FENCE_AGENT_FAILED, fa.FENCE_AGENT_TIMED_OUT,
                                    fa.REMEDIATION_FINISHED_NODE_NOT_FOUND,
                                    fa.REMEDIATION_INTERRUPTED_BY_NHC])
def test_failures_set_every_condition_false(reason: str) -> None:
    started, _ = fa.conditions_after(fa.REMEDIATION_STARTED, [], NOW)
    conditions, changed = fa.conditions_after(reason, started, NOW)
    assert changed
    assert by_type(conditions) == {t: ("False", reason) for t in (
        "Processing", "FenceAgentActionSucceeded", "Succeeded")}
    assert validate({**far(), "status": {"conditions": conditions}}, upstream_schema()) == []
    again, changed = fa.conditions_after(reason, conditions, NOW + timedelta(seconds=5))
    assert not changed and again == conditions


def test_taints_are_unique_by_key_and_effect() -> None:
    node = {"spec": {"taints": [{"key": "other", "effect": "NoSchedule"}]}}
    tainted = fa.taints_with(node, fa.out_of_service_taint(NOW))
    assert tainted == [{"key": "other", "effect": "NoSchedule"},
                       {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown",
                        "effect": "NoExecute", "timeAdded": "2026-12-01T13:00:00Z"}]
    assert fa.taints_with({"spec": {"taints": tainted}}, fa.out_of_service_taint(NOW)) is None
    assert fa.taints_without({"spec": {"taints": tainted}}, fa.OUT_OF_SERVICE_TAINT_KEY,
                             "NoExecute") == [{"key": "other", "effect": "NoSchedule"}]
    assert fa.taints_without(node, fa.REMEDIATION_TAINT_KEY, "NoSchedule") is None
