"""The VirtualMachine reconciler's judgements and one pass against a recording client."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from controllers.common.kube import Credentials, KubeClient
from controllers.computecluster.builders import ResolvedCluster
from controllers.computecluster.models import ComputeClusterSpec
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.models import VirtualMachineSpec
from controllers.virtualmachine.reconciler import (
    Observed,
    Rejection,
    VirtualMachineReconciler,
    capacity_rejection,
    parse_spec,
    power_action,
    specific_reference_reason,
    status_write_delay,
    vm_references,
    with_admission,
)
from tests.oracles import CDI_SWAGGER, KUBEVIRT_SWAGGER, validate_against_swagger

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def node(name: str, cpu: str = "32", memory: str = "128Gi", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", **labels}},
            "spec": {}, "status": {"allocatable": {"cpu": cpu, "memory": memory},
                                   "conditions": [{"type": "Ready", "status": "True"}]}}


def spec(**overrides: Any) -> VirtualMachineSpec:
    raw: dict[str, Any] = {"cpu": {"count": 2}, "memory": {"size": "2Gi"}, **overrides}
    return VirtualMachineSpec.model_validate(raw)


class RecordingKube(KubeClient):
    """A client that answers writes as a server would, without one."""

    def __init__(self) -> None:
        super().__init__(Credentials(server="http://recording.invalid"))
        self.requests: list[tuple[str, str, Any]] = []

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: Any = None, content_type: str = "application/json") -> dict:
        self.requests.append((method, path, copy.deepcopy(body)))
        self.writes.record(method, path)
        answer = copy.deepcopy(body) if isinstance(body, dict) else {}
        answer.setdefault("metadata", {}).setdefault("uid", "kubevirt-uid")
        return answer


def observed(vdc_spec: dict[str, Any], *, kubevirt_vm: Any = None, vmi: Any = None,
             status: dict[str, Any] | None = None) -> Observed:
    return Observed(
        vdc_vm={"apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
                "metadata": {"name": "web", "namespace": "prod", "uid": "vdc-uid",
                             "generation": 1},
                "spec": vdc_spec, "status": status or {}},
        kubevirt_vm=kubevirt_vm, vmi=vmi,
        storage_policies={"fast": StoragePolicySpec.model_validate(
            {"storageClassName": "standard", "default": True})},
        clusters={"prod": ComputeClusterSpec.model_validate(
            {"hostSelector": {"matchLabels": {"kubernetes.io/os": "linux"}}})},
        storage_classes=frozenset({"standard"}), port_groups=frozenset(),
        nodes=(node("host-1"),),
    )


VDC_SPEC = {"clusterName": "prod", "cpu": {"count": 2, "hotAdd": True},
            "memory": {"size": "2Gi"}, "disks": [{"name": "root", "size": "10Gi"}]}


async def test_first_pass_creates_an_owned_kubevirt_vm_that_kubevirt_accepts() -> None:
    kube = RecordingKube()
    state = observed(VDC_SPEC)
    await VirtualMachineReconciler(kube, lambda key: state).reconcile(("prod", "web"))
    applies = [body for method, path, body in kube.requests
               if method == "PATCH" and path.endswith("/virtualmachines/web")
               and "kubevirt.io" in path]
    assert len(applies) == 1
    kubevirt_vm = applies[0]
    owner = kubevirt_vm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("VirtualMachine", "vdc-uid",
                                                                   True)
    validate_against_swagger(kubevirt_vm, KUBEVIRT_SWAGGER, "v1.VirtualMachine")
    for template in kubevirt_vm["spec"]["dataVolumeTemplates"]:
        validate_against_swagger(template, CDI_SWAGGER, "v1beta1.DataVolume")
    # One apply and one Event; the status follows the KubeVirt VM's watch event.
    assert kube.writes.total == 2


async def test_a_converged_vm_is_not_written_again() -> None:
    kube = RecordingKube()
    state = observed(VDC_SPEC)
    reconciler = VirtualMachineReconciler(kube, lambda key: state)
    await reconciler.reconcile(("prod", "web"))
    applied = next(b for m, p, b in kube.requests if "kubevirt.io" in p)
    created = observed(VDC_SPEC, kubevirt_vm=applied)
    await VirtualMachineReconciler(kube, lambda key: created).reconcile(("prod", "web"))
    status = next(b for m, p, b in kube.requests if p.endswith("/status"))["status"]

    settled = observed(VDC_SPEC, kubevirt_vm=applied, status=status)
    quiet = RecordingKube()
    await VirtualMachineReconciler(quiet, lambda key: settled).reconcile(("prod", "web"))
    assert quiet.requests == []


async def test_missing_cluster_creates_nothing_and_names_it() -> None:
    kube = RecordingKube()
    state = observed({**VDC_SPEC, "clusterName": "elsewhere"})
    await VirtualMachineReconciler(kube, lambda key: state).reconcile(("prod", "web"))
    assert [m for m, p, b in kube.requests if "kubevirt.io" in p] == []
    status = next(b for m, p, b in kube.requests if p.endswith("/status"))["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ComputeClusterNotFound")
    assert '"elsewhere"' in ready["message"]


async def test_pause_when_suspended_is_asked_of_a_running_guest() -> None:
    kube = RecordingKube()
    first = observed(VDC_SPEC)
    reconciler = VirtualMachineReconciler(kube, lambda key: first)
    await reconciler.reconcile(("prod", "web"))
    applied = next(b for m, p, b in kube.requests if "kubevirt.io" in p)
    running = {"metadata": {"uid": "vmi-1"}, "status": {"phase": "Running"}}
    suspended = observed({**VDC_SPEC, "powerState": "Suspended"}, kubevirt_vm=applied,
                         vmi=running)
    kube.requests.clear()
    await VirtualMachineReconciler(kube, lambda key: suspended).reconcile(("prod", "web"))
    puts = [(m, p) for m, p, b in kube.requests if m == "PUT"]
    assert puts == [("PUT", "/apis/subresources.kubevirt.io/v1/namespaces/prod/"
                            "virtualmachineinstances/web/pause")]


def test_parse_spec_names_the_field_of_a_cross_field_rule() -> None:
    rejection = parse_spec({"cpu": {"count": 3, "coresPerSocket": 2}, "memory": {"size": "1Gi"}})
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "InvalidSpec"
    assert rejection.message.startswith("spec.cpu:") and "coresPerSocket" in rejection.message


def test_capacity_rejection_compares_with_the_largest_host_of_the_cluster() -> None:
    cluster = ResolvedCluster("prod", ComputeClusterSpec.model_validate(
        {"hostSelector": {"matchLabels": {"tier": "big"}}}))
    nodes = [node("small", cpu="8"), node("big", cpu="16", tier="big")]
    assert capacity_rejection(spec(cpu={"count": 16}), cluster, nodes) is None
    rejection = capacity_rejection(spec(cpu={"count": 17}), cluster, nodes)
    assert rejection is not None and rejection.reason == "InsufficientHostCapacity"
    assert "spec.cpu.count" in rejection.message and '"prod"' in rejection.message
    memory = capacity_rejection(spec(memory={"size": "512Gi"}), None, nodes)
    assert memory is not None and "spec.memory.size" in memory.message
    assert capacity_rejection(spec(cpu={"count": 64}), cluster, []) is None  # hosts may join


def test_ready_keeps_its_transition_time_while_its_status_stays() -> None:
    rejection = Rejection("InsufficientHostCapacity", "spec.cpu.count: too many")
    first = with_admission({}, [], spec(), rejection, [], 1, NOW)
    later = with_admission({"conditions": first["conditions"]}, first["conditions"], spec(),
                           rejection, [], 1,
                           datetime(2026, 1, 2, tzinfo=UTC))
    assert first == later
    ready = first["conditions"][-1]
    assert (ready["type"], ready["status"], ready["reason"]) == (
        "Ready", "False", "InsufficientHostCapacity")


@pytest.mark.parametrize(("desired", "phase", "paused", "expected"), [
    ("Suspended", "Running", False, "pause"),
    ("Suspended", "Running", True, None),
    ("PoweredOn", "Running", True, "unpause"),
    ("PoweredOn", "Running", False, None),
    ("Suspended", "Scheduling", False, None),
])
def test_power_action(desired: str, phase: str, paused: bool, expected: str | None) -> None:
    conditions = [{"type": "Paused", "status": "True"}] if paused else []
    vmi = {"status": {"phase": phase, "conditions": conditions}}
    assert power_action(desired, vmi) == expected


def test_references_and_their_reasons() -> None:
    assert vm_references({"clusterName": "c", "disks": [{"name": "a"},
                                                        {"name": "b", "storagePolicyName": "p"}],
                          "networks": [{"name": "n", "portGroupName": "pg"}]}) == [
        ("cluster", "c"), ("policy", ""), ("policy", "p"), ("portgroup", "pg")]
    assert specific_reference_reason(
        ['spec.networks[0].portGroupName: DistributedPortGroup "pg" not found']
    ) == "DistributedPortGroupNotFound"


def _status(ready: str, reason: str, generation: int = 1) -> dict[str, Any]:
    return {"observedGeneration": generation, "conditions": [
        {"type": "Ready", "status": ready, "reason": reason, "message": "",
         "lastTransitionTime": "2026-01-01T00:00:00Z"}]}


def test_status_writes_are_held_back_only_while_converging() -> None:
    # Ready reached, or a failure: at once.
    assert status_write_delay(_status("False", "Starting"), _status("True", "Ready"), 1, 0, 5) == 0
    assert status_write_delay(_status("False", "Starting"),
                              _status("False", "ErrorUnschedulable"), 1, 0, 5) == 0
    # The user changed the spec: at once, so observedGeneration catches up.
    assert status_write_delay(_status("True", "Ready"), _status("False", "Stopping", 2), 2,
                              0, 5) == 0
    # Progress: once per window; the same progress again: never.
    assert status_write_delay({}, _status("False", "Starting"), 1, 1, 5) == 4
    assert status_write_delay(_status("False", "Provisioning"), _status("False", "Starting"),
                              1, 10, 5) == 0
    assert status_write_delay(_status("False", "Starting"), _status("False", "Starting"),
                              1, 10, 5) == math.inf
