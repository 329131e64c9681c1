"""The VirtualMachine reconciler's judgements and one pass against a recording client."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from controllers.common.kube import FIELD_MANAGER, KubeClient, KubeError, WriteCounter
from controllers.computecluster.builders import ResolvedCluster
from controllers.computecluster.models import ComputeClusterSpec
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.admission import (
    Rejection,
    capacity_rejection,
    parse_spec,
    unresolved_references,
)
from controllers.virtualmachine.changes import power_action
from controllers.virtualmachine.models import VirtualMachineSpec
from controllers.virtualmachine.observed import Observed, vm_references
from controllers.virtualmachine.reconciler import VirtualMachineReconciler
from controllers.virtualmachine.status import observed_power_state, vm_status_from
from controllers.virtualmachine.status_pacing import status_write_delay
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
    """A client that answers writes as a server would, without one.

    GETs of VDC VMs are answered from `vdc_vms` (by name), as the API server would: a VM
    that is not there is a 404.
    """

    def __init__(self, vdc_vms: dict[str, Any] | None = None) -> None:
        # No server: every request is answered here (the client's methods build them).
        self.field_manager = FIELD_MANAGER
        self.writes = WriteCounter()
        self.requests: list[tuple[str, str, Any]] = []
        self.vdc_vms = {"web": VDC_VM} if vdc_vms is None else vdc_vms

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: Any = None, content_type: str = "application/json") -> dict:
        self.requests.append((method, path, copy.deepcopy(body)))
        if method == "GET":
            found = self.vdc_vms.get(path.rsplit("/", 1)[-1]) if "vdcos.io" in path else None
            if found is None:
                raise KubeError(404, {"reason": "NotFound", "message": f"{path} not found"})
            return copy.deepcopy(found)
        self.writes.record(method, path)
        answer = copy.deepcopy(body) if isinstance(body, dict) else {}
        answer.setdefault("metadata", {}).setdefault("uid", "kubevirt-uid")
        return answer

    def writes_to(self, fragment: str) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET" and fragment in r[1]]


VDC_VM: dict[str, Any] = {
    "apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
    "metadata": {"name": "web", "namespace": "prod", "uid": "vdc-uid", "generation": 1}}


def observed(vdc_spec: dict[str, Any], *, kubevirt_vm: Any = None, vmi: Any = None,
             status: dict[str, Any] | None = None, generation: int = 1) -> Observed:
    return Observed(
        vdc_vm={**VDC_VM, "metadata": {**VDC_VM["metadata"], "generation": generation},
                "spec": vdc_spec, "status": status or {}},
        kubevirt_vm=kubevirt_vm, vmi=vmi,
        storage_policies={"fast": StoragePolicySpec.model_validate(
            {"storageClassName": "standard", "default": True})},
        clusters={"prod": ComputeClusterSpec.model_validate(
            {"hostSelector": {"matchLabels": {"kubernetes.io/os": "linux"}}})},
        storage_classes=frozenset({"standard"}), port_groups={},
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
    first = vm_status_from(spec(), "web", "prod", 1, None, None, rejection=rejection, now=NOW)
    later = vm_status_from(spec(), "web", "prod", 1, None, None, rejection=rejection,
                           previous_conditions=first["conditions"],
                           now=datetime(2026, 1, 2, tzinfo=UTC))
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
    assert power_action(desired, observed_power_state(vmi)) == expected


def test_references_and_their_reasons() -> None:
    assert vm_references({"clusterName": "c", "disks": [{"name": "a"},
                                                        {"name": "b", "storagePolicyName": "p"}],
                          "networks": [{"name": "n", "portGroupName": "pg"}]}) == [
        ("cluster", "c"), ("policy", ""), ("policy", "p"), ("portgroup", "pg")]
    networked = spec(networks=[{"name": "n", "portGroupName": "pg"}])
    missing = unresolved_references(networked, storage_policies=[],
                                    default_storage_policy_name=None, cluster_exists=True,
                                    port_groups=[])
    assert [m.reason for m in missing] == ["DistributedPortGroupNotFound"]


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


# ------------------------------------------------------------------ writes only on change


def merged(stored: Any, patch: Any) -> Any:
    """A JSON merge patch (RFC 7386) applied as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(stored) if isinstance(stored, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result


def stored_status(kube: RecordingKube, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The status the server holds after the status patches the client sent."""
    status: dict[str, Any] = dict(before or {})
    for _, _, body in kube.writes_to("/status"):
        status = merged(status, body["status"])
    return status


RUNNING_VMI = {"metadata": {"uid": "vmi-1"},
               "status": {"phase": "Running", "nodeName": "host-1",
                          "currentCPUTopology": {"sockets": 2, "cores": 1, "threads": 1},
                          "memory": {"guestAtBoot": "2Gi", "guestCurrent": "2Gi"},
                          "interfaces": [{"name": "default", "ipAddress": "10.0.0.7"}],
                          "conditions": [{"type": "Ready", "status": "True"},
                                         {"type": "LiveMigratable", "status": "True"}]}}


async def running_vm(kube: RecordingKube) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the KubeVirt VM, the VDC status) of VDC_SPEC once it runs."""
    await VirtualMachineReconciler(kube, lambda key: observed(VDC_SPEC)).reconcile(("prod", "web"))
    applied = kube.writes_to("kubevirt.io")[0][2]
    applied["status"] = {"printableStatus": "Running"}
    state = observed(VDC_SPEC, kubevirt_vm=applied, vmi=RUNNING_VMI)
    await VirtualMachineReconciler(kube, lambda key: state).reconcile(("prod", "web"))
    return applied, stored_status(kube)


async def test_status_reports_the_cpus_and_memory_the_guest_runs_with() -> None:
    kube = RecordingKube()
    _, status = await running_vm(kube)
    assert (status["cpu"], status["memory"], status["host"]) == (2, "2Gi", "host-1")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


async def test_a_spec_made_invalid_is_reported_once_then_nothing_is_written() -> None:
    kube = RecordingKube()
    applied, status = await running_vm(kube)
    invalid = {**VDC_SPEC, "cpu": {"count": 3, "coresPerSocket": 2}}
    kube.requests.clear()
    state = observed(invalid, kubevirt_vm=applied, vmi=RUNNING_VMI, status=status, generation=2)
    reconciler = VirtualMachineReconciler(kube, lambda key: state)
    await reconciler.reconcile(("prod", "web"))
    status = stored_status(kube, status)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.cpu" in ready["message"] and status["observedGeneration"] == 2
    assert [b["reason"] for _, p, b in kube.writes_to("/events")] == ["InvalidSpec"]
    # What still runs is still reported.
    assert (status["powerState"], status["host"]) == ("PoweredOn", "host-1")

    # Resyncs and unrelated events (the VMI's, a policy's) find nothing to write, even
    # after a restart of the operator (a new reconciler remembers nothing).
    written = kube.writes.total
    settled = observed(invalid, kubevirt_vm=applied, vmi=RUNNING_VMI, status=status,
                       generation=2)
    reconciler.observe = lambda key: settled
    for again in (reconciler, VirtualMachineReconciler(kube, lambda key: settled)):
        for _ in range(3):
            await again.reconcile(("prod", "web"))
    assert kube.writes.total == written


async def test_a_vm_deleted_during_a_watch_gap_is_not_created_again() -> None:
    kube = RecordingKube(vdc_vms={})  # the API server no longer has it; the cache does
    reconciler = VirtualMachineReconciler(kube, lambda key: observed(VDC_SPEC))
    forgotten: list[tuple[str, str]] = []
    forget = reconciler.forget
    reconciler.forget = lambda key: (forgotten.append(key), forget(key))[-1]  # type: ignore[method-assign]
    await reconciler.reconcile(("prod", "web"))
    assert kube.writes.total == 0
    assert [m for m, p, b in kube.requests] == ["GET"]
    assert forgotten == [("prod", "web")]


async def test_a_vm_recreated_under_the_same_name_is_not_created_for_the_old_one() -> None:
    newer = {**VDC_VM, "metadata": {**VDC_VM["metadata"], "uid": "newer-uid"}}
    kube = RecordingKube(vdc_vms={"web": newer})
    await VirtualMachineReconciler(kube, lambda key: observed(VDC_SPEC)).reconcile(("prod", "web"))
    assert kube.writes.total == 0


async def test_passes_before_the_cache_shows_the_new_vm_create_and_announce_it_once() -> None:
    kube = RecordingKube()
    reconciler = VirtualMachineReconciler(kube, lambda key: observed(VDC_SPEC))
    for _ in range(3):  # e.g. the policy's and the cluster's status events, right after
        await reconciler.reconcile(("prod", "web"))
    assert len(kube.writes_to("kubevirt.io")) == 1
    assert [b["reason"] for _, p, b in kube.writes_to("/events")] == ["Created"]


def with_policy(state: Observed, policy: dict[str, Any], classes: frozenset[str]) -> Observed:
    return Observed(**{**state.__dict__,
                       "storage_policies": {"fast": StoragePolicySpec.model_validate(policy)},
                       "storage_classes": classes})


async def test_a_storage_class_its_policy_creates_is_waited_for_without_a_warning() -> None:
    kube = RecordingKube()
    creates = {"provisioner": "rancher.io/local-path", "default": True}
    waiting = with_policy(observed(VDC_SPEC), creates, frozenset({"standard"}))
    requeued: list[float] = []
    await VirtualMachineReconciler(kube, lambda key: waiting,
                                   requeue=lambda key, delay: requeued.append(delay)
                                   ).reconcile(("prod", "web"))
    assert kube.writes_to("/events") == [] and kube.writes_to("kubevirt.io") == []
    # Progress: held back while the class is created within moments.
    assert kube.writes_to("/status") == [] and requeued and requeued[0] > 0

    kube = RecordingKube()
    # Once the wait lasts (here at once), it shows, naming the class.
    reconciler = VirtualMachineReconciler(kube, lambda key: waiting, requeue=lambda k, d: None,
                                          progress_window_seconds=0, first_progress_seconds=0)
    await reconciler.reconcile(("prod", "web"))
    status = stored_status(kube)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "StorageClassPending")
    assert '"fast"' in ready["message"]

    arrived = with_policy(observed(VDC_SPEC), creates, frozenset({"fast"}))
    reconciler.observe = lambda key: arrived
    await reconciler.reconcile(("prod", "web"))
    assert len(kube.writes_to("kubevirt.io")) == 1


async def test_a_storage_class_nobody_creates_is_a_warning() -> None:
    kube = RecordingKube()
    adopts = {"storageClassName": "missing", "default": True}
    state = with_policy(observed(VDC_SPEC), adopts, frozenset({"standard"}))
    await VirtualMachineReconciler(kube, lambda key: state).reconcile(("prod", "web"))
    assert [(b["type"], b["reason"]) for _, p, b in kube.writes_to("/events")] == [
        ("Warning", "StorageClassNotFound")]


async def test_a_migration_posts_an_event_once() -> None:
    kube = RecordingKube()
    applied, status = await running_vm(kube)
    moved = copy.deepcopy(RUNNING_VMI)
    moved["status"].update(nodeName="host-2", interfaces=[{"ipAddress": "10.0.1.9"}],
                           migrationState={"sourceNode": "host-1", "targetNode": "host-2",
                                           "completed": True})
    kube.requests.clear()
    state = observed(VDC_SPEC, kubevirt_vm=applied, vmi=moved, status=status)
    await VirtualMachineReconciler(kube, lambda key: state).reconcile(("prod", "web"))
    events = [b for _, p, b in kube.writes_to("/events")]
    assert [(e["reason"], e["type"]) for e in events] == [("Migrated", "Normal")]
    assert "host-1" in events[0]["message"] and "host-2" in events[0]["message"]
    assert "10.0.1.9" in events[0]["message"]

    status = stored_status(kube, status)
    kube.requests.clear()
    again = observed(VDC_SPEC, kubevirt_vm=applied, vmi=moved, status=status)
    await VirtualMachineReconciler(kube, lambda key: again).reconcile(("prod", "web"))
    assert kube.requests == []


async def test_a_created_vm_the_cache_never_shows_is_created_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Deleted before its watch event was seen: after a while the cache is believed again.
    from controllers.virtualmachine import reconciler as module
    monkeypatch.setattr(module, "CREATED_MEMORY_SECONDS", -1.0)
    kube = RecordingKube()
    reconciler = VirtualMachineReconciler(kube, lambda key: observed(VDC_SPEC))
    await reconciler.reconcile(("prod", "web"))
    await reconciler.reconcile(("prod", "web"))
    assert len(kube.writes_to("kubevirt.io")) == 2
