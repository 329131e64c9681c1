"""kubernetes-nmstate's bookkeeping: selectors, maxUnavailable, the conditions and messages
of enactments and policies; every object the emulation writes (NNCE, policy status, NNS)
validates against kubernetes-nmstate's CRD schemas (unknown fields refused)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from devcluster.sim.hosts import HostSpec, nic_inventory
from devcluster.sim.nmstate_enactment import (
    EnactmentCounts,
    admission,
    apply_failure_message,
    count_enactments,
    enactment_aborted,
    enactment_available,
    enactment_failed,
    enactment_pending,
    enactment_progressing,
    enactment_retrying,
    is_finished,
    max_unavailable,
    new_enactment,
    policy_conditions,
    retry_backoff,
    selector_matches,
)
from devcluster.sim.nmstate_state import current_state, initial_configuration, reported_interfaces
from tests import upstream

NOW = "2026-12-01T12:00:00Z"
LATER = "2026-12-01T12:00:05Z"
NODE = {"metadata": {"name": "host-1", "uid": "u-1"}}


def closed(node: Any) -> Any:
    """Objects listing properties refuse others, unless they keep unknown fields."""
    if isinstance(node, dict):
        result = {k: closed(v) for k, v in node.items()}
        if "properties" in result and "additionalProperties" not in result and \
                not result.get("x-kubernetes-preserve-unknown-fields"):
            result["additionalProperties"] = False
        return result
    if isinstance(node, list):
        return [closed(item) for item in node]
    return node


def schema_errors(obj: dict[str, Any], plural: str, section: str) -> list[str]:
    path = upstream.require(upstream.path(f"schemas/nmstate/{plural}.yaml"))
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    version = next(v for v in crd["spec"]["versions"] if v["storage"])
    schema = closed(version["schema"]["openAPIV3Schema"]["properties"][section])
    validator = jsonschema.Draft4Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(obj)]


def statuses(conditions: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in conditions}


@pytest.mark.parametrize("value, nodes, expected", [
    (None, 3, 2), ("50%", 3, 2), ("50%", 50, 25), ("10%", 3, 1), (1, 3, 1), (0, 3, 1),
    ("100%", 4, 4), ("bogus", 4, 2), (5, 3, 5)])
def test_max_unavailable_scales_rounds_up_and_is_at_least_one(
        value: int | str | None, nodes: int, expected: int) -> None:
    assert max_unavailable(value, nodes) == expected


def test_node_selector_is_equality_on_labels() -> None:
    labels = {"vdcos.io/cluster.prod": "", "kubernetes.io/os": "linux"}
    assert selector_matches({"vdcos.io/cluster.prod": ""}, labels)
    assert selector_matches({}, labels)
    assert selector_matches(None, labels)
    assert not selector_matches({"vdcos.io/cluster.prod": "yes"}, labels)
    assert not selector_matches({"vdcos.io/cluster.dev": ""}, labels)


def test_a_new_enactment_is_named_labelled_owned_and_unknown() -> None:
    enactment = new_enactment(NODE, "dvs-prod", NOW)
    assert enactment["metadata"]["name"] == "host-1.dvs-prod"
    assert enactment["metadata"]["labels"] == {"nmstate.io/policy": "dvs-prod",
                                               "nmstate.io/node": "host-1"}
    assert enactment["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert {c["status"] for c in enactment["status"]["conditions"]} == {"Unknown"}
    assert schema_errors(enactment["status"], "nodenetworkconfigurationenactments",
                         "status") == []


def test_enactment_goes_progressing_then_available() -> None:
    progressing = enactment_progressing([], NOW)
    assert statuses(progressing) == {
        "Progressing": ("True", "ConfigurationProgressing"),
        "Failing": ("Unknown", "ConfigurationProgressing"),
        "Available": ("Unknown", "ConfigurationProgressing"),
        "Pending": ("False", "ConfigurationProgressing"),
        "Aborted": ("False", "ConfigurationProgressing")}
    available = enactment_available(progressing, LATER)
    assert statuses(available)["Available"] == ("True", "SuccessfullyConfigured")
    assert statuses(available)["Progressing"] == ("False", "SuccessfullyConfigured")
    done = next(c for c in available if c["type"] == "Available")
    assert done["message"] == "successfully reconciled"
    assert done["lastTransitionTime"] == LATER
    pending = next(c for c in available if c["type"] == "Pending")
    assert pending["lastTransitionTime"] == NOW, "unchanged status keeps its transition time"
    status = {"conditions": available, "policyGeneration": 1, "desiredState": {},
              "features": [], "retryCount": {"1": 0}}
    assert schema_errors(status, "nodenetworkconfigurationenactments", "status") == []


def test_failure_pending_and_abort_conditions() -> None:
    message = apply_failure_message("host-2", "NmstateError: Bug: No suitable device found "
                                    "for this connection", NOW)
    assert message.startswith("error reconciling NodeNetworkConfigurationPolicy on node "
                              "host-2 at desired state apply: \"\",\n")
    assert message.endswith("failed to execute nmstatectl apply --no-commit --timeout 480: "
                            "exit status 1")
    failed = statuses(enactment_failed([], message, NOW))
    assert failed["Failing"] == ("True", "FailedToConfigure")
    assert failed["Available"] == ("False", "FailedToConfigure")
    assert failed["Aborted"] == ("False", "SuccessfullyConfigured")
    retrying = statuses(enactment_retrying([], "again", NOW))
    assert retrying["Failing"] == retrying["Progressing"] == ("True", "Retrying")
    pending = statuses(enactment_pending([], NOW))
    assert pending["Pending"] == ("True", "MaxUnavailableLimitReached")
    aborted = statuses(enactment_aborted([], "stop", NOW))
    assert aborted["Aborted"] == ("True", "ConfigurationAborted")


def test_retry_backoff_doubles_up_to_thirty_seconds() -> None:
    assert [retry_backoff(1.0, n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 16, 30]


def enactment(generation: int, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": {"policyGeneration": generation, "conditions": conditions}}


def test_policy_conditions_follow_the_enactments_of_its_generation() -> None:
    available = enactment_available([], NOW)
    counts = count_enactments([enactment(2, available), enactment(2, available),
                               enactment(1, available)], 2)
    assert counts == EnactmentCounts(available=2)
    progressing = policy_conditions([], matching=3, ready=3, counts=counts, now=NOW)
    assert statuses(progressing)["Progressing"] == ("True", "ConfigurationProgressing")
    assert next(c for c in progressing if c["type"] == "Progressing")["message"] == \
        "Policy is progressing 2/3 nodes finished"
    done = policy_conditions(progressing, matching=3, ready=3,
                             counts=EnactmentCounts(available=3), now=LATER)
    assert statuses(done) == {"Available": ("True", "SuccessfullyConfigured"),
                              "Degraded": ("False", "SuccessfullyConfigured"),
                              "Progressing": ("False", "SuccessfullyConfigured"),
                              "Ignored": ("False", "SuccessfullyConfigured")}
    assert next(c for c in done if c["type"] == "Available")["message"] == \
        "3/3 nodes successfully configured"
    status = {"conditions": done, "unavailableNodeCountMap": {"2": 0}}
    assert schema_errors(status, "nodenetworkconfigurationpolicies", "status") == []


def test_policy_is_degraded_when_a_host_failed_and_ignored_without_hosts() -> None:
    failed = policy_conditions([], matching=3, ready=3,
                               counts=EnactmentCounts(available=1, failed=1, aborted=1),
                               now=NOW)
    degraded = next(c for c in failed if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "FailedToConfigure")
    assert degraded["message"] == "1/3 nodes failed to configure, 1 nodes aborted configuration"
    ignored = policy_conditions([], matching=0, ready=0, counts=EnactmentCounts(), now=NOW)
    assert statuses(ignored)["Ignored"] == ("True", "NoMatchingNode")
    assert statuses(ignored)["Available"] == ("False", "NoMatchingNode")


def test_not_ready_hosts_are_named_in_the_message() -> None:
    done = policy_conditions([], matching=3, ready=2, counts=EnactmentCounts(available=2),
                             now=NOW)
    assert next(c for c in done if c["type"] == "Available")["message"] == \
        "2/3 nodes successfully configured, 1 nodes ignored due to NotReady state"


def test_node_network_state_status_validates() -> None:
    host = HostSpec(name="host-1", index=1, zone="zone-a", internal_ip="172.18.0.2",
                    pod_cidr="10.244.0.0/24")
    nics = nic_inventory(host)
    status = {"currentState": current_state(reported_interfaces(initial_configuration(nics),
                                                                nics)),
              "lastSuccessfulUpdateTime": NOW, "handlerNmstateVersion": "2.2.45",
              "handlerNetworkManagerVersion": "1.52.0", "hostNetworkManagerVersion": "1.52.0"}
    assert schema_errors(status, "nodenetworkstates", "status") == []


@pytest.mark.parametrize("unavailable, limit, failed, decision", [
    (0, 2, 0, "proceed"), (1, 2, 1, "proceed"), (2, 2, 0, "wait"), (2, 2, 1, "wait"),
    (2, 2, 2, "abort"), (1, 1, 1, "abort")])
def test_admission_waits_when_full_and_aborts_when_failures_fill_the_slots(
        unavailable: int, limit: int, failed: int, decision: str) -> None:
    assert admission(unavailable, limit, failed) == decision


def test_an_enactment_is_finished_when_available_aborted_or_out_of_retries() -> None:
    assert is_finished(enactment_available([], NOW), {}, 1)
    assert is_finished(enactment_aborted([], "stop", NOW), {}, 1)
    assert is_finished(enactment_failed([], "x", NOW), {"1": 5}, 1)
    assert not is_finished(enactment_failed([], "x", NOW), {"1": 5}, 2)
    assert not is_finished(enactment_retrying([], "again", NOW), {"1": 2}, 1)
    assert not is_finished(enactment_pending([], NOW), {}, 1)
