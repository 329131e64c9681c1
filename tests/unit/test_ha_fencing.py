"""What HA writes for fencing and how it reads failures back (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jsonschema
import pydantic
import pytest
import yaml

from controllers.computecluster.ha_models import HA, FenceAgent, Fencing, Orchestration
from controllers.hostfailure.annotations import is_held, restart_patch
from controllers.hostfailure.failover import host_back, lease_silent, restart_ready, tier_due
from controllers.hostfailure.far import build_remediation, remediation_progress
from controllers.hostfailure.fencing import (
    OUT_OF_SERVICE_TAINT,
    has_out_of_service_taint,
    power_known_off,
    taints_with_out_of_service,
    taints_without_out_of_service,
)
from controllers.hostfailure.vm_conditions import with_failover_conditions
from tests import upstream

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def far_schema() -> dict[str, object]:
    path = upstream.require("schemas/medik8s/fenceagentsremediations.yaml")
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    schema: dict[str, object] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_the_remediation_is_valid_against_the_medik8s_crd() -> None:
    fencing = Fencing(fence_agent=FenceAgent(
        agent="fence_redfish",
        shared_parameters={"--username": "admin", "--action": "reboot"},
        node_parameters={"--ip": {"host-1": "10.0.0.1", "host-2": "10.0.0.2"}},
        shared_secret_name="fence-credentials",
    ))
    remediation = build_remediation("host-1", "production", fencing)
    jsonschema.validate(remediation, far_schema())
    assert remediation["metadata"] == {
        "name": "host-1", "namespace": "vdcos-system",
        "labels": {"app.kubernetes.io/managed-by": "vdcos", "ha.vdcos.io/cluster": "production"},
    }
    assert remediation["spec"]["remediationStrategy"] == "OutOfServiceTaint"
    assert remediation["spec"]["nodeparameters"] == {"--ip": {"host-1": "10.0.0.1"}}


def test_fenced_only_when_succeeded_is_true() -> None:
    assert remediation_progress(None)[0] is False
    processing = {"status": {"conditions": [
        {"type": "Processing", "status": "True", "message": "running fence_ipmilan"},
        {"type": "Succeeded", "status": "Unknown"}]}}
    fenced, message = remediation_progress(processing)
    assert not fenced and "fence_ipmilan" in message
    done = {"status": {"conditions": [{"type": "Succeeded", "status": "True",
                                       "message": "node fenced"}]}}
    assert remediation_progress(done) == (True, "node fenced")


def test_out_of_service_taint_added_once_and_removed_alone() -> None:
    taints = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    tainted = taints_with_out_of_service(taints_with_out_of_service(taints))
    assert [t["key"] for t in tainted] == ["node.kubernetes.io/unreachable", OUT_OF_SERVICE_TAINT]
    assert has_out_of_service_taint({"spec": {"taints": tainted}})
    assert taints_without_out_of_service(tainted) == taints


def test_power_is_known_off_from_an_annotation() -> None:
    assert power_known_off({"metadata": {"annotations": {"vdcos.io/power": "off"}}})
    assert power_known_off({"metadata": {"annotations": {"sim.vdcos.io/power": "Off"}}})
    assert not power_known_off({"metadata": {"annotations": {"sim.vdcos.io/power": "on"}}})


def test_a_host_is_failed_after_the_detection_time_and_back_once_it_renews() -> None:
    assert not lease_silent(NOW - timedelta(seconds=15), NOW, 15)
    assert lease_silent(NOW - timedelta(seconds=16), NOW, 15)
    assert not lease_silent(None, NOW, 15)  # no Lease yet: a host still joining
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    declared = NOW - timedelta(seconds=30)
    # Ready from before the failure is not "back": the Lease must be renewed since.
    assert not host_back(ready, declared - timedelta(seconds=20), declared, NOW, 15)
    assert host_back(ready, NOW - timedelta(seconds=1), declared, NOW, 15)


def vmi(node: str, ready: bool, agent: bool = False) -> dict[str, object]:
    return {"metadata": {}, "status": {"phase": "Running", "nodeName": node, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"},
        {"type": "AgentConnected", "status": "True" if agent else "False"}]}}


def test_readiness_follows_the_orchestration() -> None:
    assert not restart_ready(vmi("host-1", True), "host-1", Orchestration())  # the old one
    assert not restart_ready(vmi("host-2", False), "host-1", Orchestration())
    assert restart_ready(vmi("host-2", False), "host-1", Orchestration(ready_condition="None"))
    assert restart_ready(vmi("host-2", True), "host-1", Orchestration())
    guest = Orchestration(ready_condition="GuestReady")
    assert not restart_ready(vmi("host-2", True), "host-1", guest)
    assert restart_ready(vmi("host-2", True, agent=True), "host-1", guest)


def test_the_next_tier_waits_for_the_one_above_or_its_timeout() -> None:
    orchestration = Orchestration(post_ready_delay_seconds=10, timeout_seconds=60)
    started = NOW - timedelta(seconds=30)
    assert tier_due(0, [None], [None], orchestration, NOW)
    assert not tier_due(1, [None, None], [None, None], orchestration, NOW)
    assert not tier_due(1, [started, None], [None, None], orchestration, NOW)
    assert not tier_due(1, [started, None], [NOW - timedelta(seconds=5), None], orchestration,
                        NOW)
    assert tier_due(1, [started, None], [NOW - timedelta(seconds=10), None], orchestration, NOW)
    assert tier_due(1, [NOW - timedelta(seconds=60), None], [None, None], orchestration, NOW)


def test_held_vms_say_their_host_failed_then_restarting() -> None:
    status = {"conditions": [{"type": "Ready", "status": "False", "reason": "NotReady",
                              "message": "the guest is not ready",
                              "lastTransitionTime": "2026-12-01T11:00:00Z"}]}
    held = restart_patch("host-1", "Held", "priority High; waiting for the host to be fenced")
    assert is_held(held["metadata"])
    ready = with_failover_conditions(status, held["metadata"], 1, NOW)["conditions"][0]
    assert (ready["reason"], ready["status"]) == ("HostFailed", "False")
    assert "host host-1 failed" in ready["message"] and "fenced" in ready["message"]
    restarting = restart_patch("host-1", "Restarting")
    assert not is_held(restarting["metadata"])
    ready = with_failover_conditions(status, restarting["metadata"], 1, NOW)["conditions"][0]
    assert ready["reason"] == "Restarting" and "host-1" in ready["message"]
    assert with_failover_conditions(status, {}, 1, NOW) == status


def test_spec_ha_defaults_and_bounds() -> None:
    ha = HA.model_validate({"enabled": True})
    assert ha.failure_detection_seconds == 15
    assert ha.admission_control.policy == "HostFailuresToTolerate"
    assert ha.orchestration.ready_condition == "PoweredOn"
    assert ha.orchestration.timeout_seconds == 600
    assert ha.fencing.method == "FenceAgentsRemediation"
    with pytest.raises(pydantic.ValidationError, match="failureDetectionSeconds"):
        HA.model_validate({"failureDetectionSeconds": 4})
    with pytest.raises(pydantic.ValidationError, match="agent"):
        HA.model_validate({"fencing": {"fenceAgent": {"agent": "ipmilan"}}})
