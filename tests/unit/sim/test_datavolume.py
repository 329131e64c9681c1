"""CDI DataVolume phases, conditions, events and the PVC it creates."""

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from devcluster.sim.datavolume import (
    MSG_CLAIM_NOT_VALID,
    ClaimNotValid,
    build_pv_for_claim,
    build_pvc_for_datavolume,
    default_storage_class,
    next_datavolume_state,
    required_space,
)
from tests import upstream

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SWAGGER = upstream.path("schemas/cdi/swagger.json")
WFFC = {"metadata": {"name": "standard"}, "volumeBindingMode": "WaitForFirstConsumer"}
IMMEDIATE = {"metadata": {"name": "fast"}, "volumeBindingMode": "Immediate"}


def assert_valid(status: dict[str, Any]) -> None:
    definitions = json.loads(upstream.require(SWAGGER).read_text())["definitions"]
    schema = {"$ref": "#/definitions/v1beta1.DataVolumeStatus", "definitions": definitions}
    jsonschema.Draft4Validator(schema).validate(status)


def dv(
    source: dict[str, Any] | None = None, *, phase: str = "", storage: dict[str, Any] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "source": source or {"http": {"url": "https://example.com/disk.qcow2"}},
        "storage": storage
        if storage is not None
        else {"resources": {"requests": {"storage": "10Gi"}}},
    }
    return {
        "metadata": {"name": "root", "namespace": "vms", "uid": "dv-uid", "labels": {"team": "a"}},
        "spec": spec,
        "status": {"phase": phase} if phase else {},
    }


def pvc(phase: str = "Bound", **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "root", "annotations": annotations}, "status": {"phase": phase}}


def conditions_by_type(state_conditions: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in state_conditions}


def test_required_space_aligns_and_inflates() -> None:
    assert required_space(10 * 1024**3) == 11_422_785_362
    assert required_space(1) == 1_115_507


def test_pvc_for_storage_api_uses_default_class_and_overhead() -> None:
    made = build_pvc_for_datavolume(dv(), None, WFFC, profile_access_modes=["ReadWriteOnce"])
    assert made["metadata"]["name"] == "root"
    assert made["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "11422785362"}},
        "volumeMode": "Filesystem",
        "storageClassName": "standard",
    }
    assert made["metadata"]["labels"] == {
        "app": "containerized-data-importer",
        "alerts.k8s.io/KubePersistentVolumeFillingUp": "disabled",
        "team": "a",
    }
    annotations = made["metadata"]["annotations"]
    assert annotations["cdi.kubevirt.io/storage.contentType"] == "kubevirt"
    assert (
        annotations["cdi.kubevirt.io/storage.import.endpoint"] == "https://example.com/disk.qcow2"
    )
    assert annotations["cdi.kubevirt.io/createdForDataVolume"] == "dv-uid"
    assert annotations["cdi.kubevirt.io/storage.preallocation.requested"] == "false"
    assert made["metadata"]["ownerReferences"][0]["kind"] == "DataVolume"


def test_block_mode_is_only_aligned() -> None:
    storage = {
        "volumeMode": "Block",
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "10Gi"}},
    }
    made = build_pvc_for_datavolume(dv(storage=storage), None, IMMEDIATE)
    assert made["spec"]["resources"]["requests"]["storage"] == "10737418240"
    assert "alerts.k8s.io/KubePersistentVolumeFillingUp" not in made["metadata"]["labels"]


def test_pvc_api_is_copied_verbatim() -> None:
    body = dv()
    del body["spec"]["storage"]
    body["spec"]["pvc"] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "missing",
    }
    assert build_pvc_for_datavolume(body, None, None)["spec"] == body["spec"]["pvc"]


def test_missing_class_and_access_modes_is_claim_not_valid() -> None:
    with pytest.raises(ClaimNotValid, match=MSG_CLAIM_NOT_VALID):
        build_pvc_for_datavolume(dv(), None, None)
    state = next_datavolume_state(dv(), None, None, None, NOW, claim_not_valid=True)
    assert state.phase == ""
    assert conditions_by_type(state.conditions)["Bound"] == ("False", "ErrClaimNotValid")
    assert state.events[0].reason == "ErrClaimNotValid"
    assert_valid(state.status())


def test_default_class_prefers_virt_default() -> None:
    plain = {
        "metadata": {
            "name": "a",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        }
    }
    virt = {
        "metadata": {
            "name": "b",
            "annotations": {"storageclass.kubevirt.io/is-default-virt-class": "true"},
        }
    }
    assert default_storage_class([plain, virt]) == virt
    assert default_storage_class([plain]) == plain
    assert default_storage_class([]) is None


def test_no_pvc_yet_is_pending() -> None:
    state = next_datavolume_state(dv(), None, IMMEDIATE, None, NOW)
    assert state.phase == "Pending"
    assert conditions_by_type(state.conditions)["Bound"] == ("False", "NotFound")
    assert state.progress == "N/A"


def test_wffc_claim_waits_for_first_consumer_until_node_selected() -> None:
    assert (
        next_datavolume_state(dv(), pvc("Pending"), WFFC, None, NOW).phase == "WaitForFirstConsumer"
    )
    selected = pvc("Pending", **{"volume.kubernetes.io/selected-node": "node-1"})
    assert next_datavolume_state(dv(), selected, WFFC, None, NOW).phase == "Pending"
    state = next_datavolume_state(dv(), pvc("Pending"), IMMEDIATE, None, NOW)
    assert (state.phase, conditions_by_type(state.conditions)["Bound"]) == (
        "Pending",
        ("False", "Pending"),
    )


@pytest.mark.parametrize(
    ("source", "pod_phase", "phase"),
    [
        ({"http": {"url": "u"}}, None, "PVCBound"),
        ({"http": {"url": "u"}}, "Pending", "ImportScheduled"),
        ({"registry": {"url": "docker://x"}}, "Running", "ImportInProgress"),
        ({"blank": {}}, "Running", "ImportInProgress"),
        ({"pvc": {"namespace": "golden", "name": "fedora"}}, "Pending", "CloneScheduled"),
        ({"pvc": {"namespace": "golden", "name": "fedora"}}, "Running", "CloneInProgress"),
        ({"http": {"url": "u"}}, "Failed", "ImportInProgress"),
        ({"http": {"url": "u"}}, "Succeeded", "Succeeded"),
    ],
)
def test_phase_follows_worker_pod(
    source: dict[str, Any], pod_phase: str | None, phase: str
) -> None:
    annotations = {"cdi.kubevirt.io/storage.pod.phase": pod_phase} if pod_phase else {}
    state = next_datavolume_state(dv(source), pvc("Bound", **annotations), IMMEDIATE, "45.32%", NOW)
    assert state.phase == phase
    assert_valid(state.status())


def test_source_ref_is_a_clone() -> None:
    body = dv()
    body["spec"].pop("source")
    body["spec"]["sourceRef"] = {"kind": "DataSource", "name": "fedora", "namespace": "golden"}
    state = next_datavolume_state(
        body, pvc("Bound", **{"cdi.kubevirt.io/storage.pod.phase": "Running"}), IMMEDIATE, None, NOW
    )
    assert state.phase == "CloneInProgress"


def test_running_import_reports_progress_and_conditions() -> None:
    state = next_datavolume_state(
        dv(phase="ImportScheduled"),
        pvc("Bound", **{"cdi.kubevirt.io/storage.pod.phase": "Running"}),
        IMMEDIATE,
        "45.32%",
        NOW,
    )
    assert state.progress == "45.32%"
    assert conditions_by_type(state.conditions) == {
        "Bound": ("True", "Bound"),
        "Ready": ("False", "TransferRunning"),
        "Running": ("True", "Pod is running"),
    }


def test_success_sets_ready_progress_and_event_once() -> None:
    done = pvc("Bound", **{"cdi.kubevirt.io/storage.pod.phase": "Succeeded"})
    state = next_datavolume_state(dv(phase="ImportInProgress"), done, IMMEDIATE, None, NOW)
    assert (state.phase, state.progress) == ("Succeeded", "100.0%")
    assert conditions_by_type(state.conditions)["Ready"] == ("True", "")
    assert [(e.reason, e.message) for e in state.events] == [
        ("ImportSucceeded", "Successfully imported into PVC root")
    ]
    again = next_datavolume_state(dv(phase="Succeeded"), done, IMMEDIATE, None, NOW)
    assert again.events == []


def test_lost_claim_fails() -> None:
    state = next_datavolume_state(dv(phase="Succeeded"), pvc("Lost"), IMMEDIATE, None, NOW)
    assert state.phase == "Failed"
    assert conditions_by_type(state.conditions)["Bound"] == ("False", "ClaimLost")
    assert state.events[0].message == "PVC root lost"


def test_transition_time_kept_while_status_unchanged() -> None:
    first = next_datavolume_state(dv(), pvc("Pending"), IMMEDIATE, None, NOW)
    body = dv()
    body["status"] = first.status()
    later = datetime(2025, 1, 2, 4, 0, 0, tzinfo=UTC)
    second = next_datavolume_state(body, pvc("Pending"), IMMEDIATE, None, later)
    bound = next(c for c in second.conditions if c["type"] == "Bound")
    assert bound["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert bound["lastHeartbeatTime"] == "2025-01-02T04:00:00Z"


def test_pv_binds_to_claim() -> None:
    claim = build_pvc_for_datavolume(dv(), None, WFFC, profile_access_modes=["ReadWriteOnce"])
    claim["metadata"]["uid"] = "pvc-uid"
    pv = build_pv_for_claim(claim, node_name="node-1")
    assert pv["metadata"]["name"] == "pvc-pvc-uid"
    assert pv["spec"]["claimRef"]["name"] == "root"
    assert pv["spec"]["capacity"] == {"storage": "11422785362"}
    assert pv["spec"]["storageClassName"] == "standard"
