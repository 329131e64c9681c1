"""virt-api's snapshot and restore webhooks (snapshot_admission.py): KubeVirt's refusals,
each naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.apiserver.errors import ApiError
from devcluster.sim.snapshot_admission import (
    SnapshotAdmission,
    restore_causes,
    snapshot_causes,
)

VM_REF = {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "web"}


def snapshot(source: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "snap", "namespace": "prod"}, "spec": {"source": source}}


def restore(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "revert", "namespace": "prod"},
            "spec": {"target": VM_REF, "virtualMachineSnapshotName": "snap", **spec}}


def fields(causes: list[Any]) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in causes]


@pytest.mark.parametrize(("source", "expected"), [
    (VM_REF, []),
    ({"kind": "VirtualMachine", "name": "web"}, [("spec.source.apiGroup", "missing apiGroup")]),
    ({**VM_REF, "apiGroup": "apps"}, [("spec.source.apiGroup", "invalid apiGroup")]),
    ({**VM_REF, "kind": "Pod"}, [("spec.source.kind", "invalid kind")]),
])
def test_a_snapshot_names_a_kubevirt_vm(source: dict[str, Any],
                                        expected: list[tuple[str, str]]) -> None:
    assert fields(snapshot_causes(snapshot(source), None)) == expected


def test_specs_are_immutable() -> None:
    changed = snapshot({**VM_REF, "name": "other"})
    assert fields(snapshot_causes(changed, snapshot(VM_REF))) == [
        ("spec", "spec in immutable after creation")]
    assert snapshot_causes(snapshot(VM_REF), snapshot(VM_REF)) == []
    assert fields(restore_causes(restore(virtualMachineSnapshotName="x"), restore(), [])) == [
        ("spec", "spec in immutable after creation")]


def test_restore_refusals_name_their_fields() -> None:
    bad = restore(patches=['{"op": "replace", "path": "/metadata/name", "value": "x"}'],
                  volumeRestoreOverrides=[{"restoreName": ""}],
                  volumeRestorePolicy="Sideways", volumeOwnershipPolicy="Nobody")
    assert fields(restore_causes(bad, None, [])) == [
        ("spec.patches", 'patching is valid only for elements under /spec/ only:  '
                         '"path": "/metadata/name"'),
        ("spec.volumeRestoreOverrides[0].volumeName", "must provide a volume name"),
        ("spec.volumeRestoreOverrides[0]", "must provide at least one overriden field"),
        ("spec.volumeRestorePolicy", 'volume restore policy "Sideways" doesn\'t exist'),
        ("spec.volumeOwnershipPolicy", 'volume ownership policy "Nobody" doesn\'t exist')]
    labels = restore(patches=['{"op": "add", "path": "/metadata/labels/copy", "value": "1"}'])
    assert restore_causes(labels, None, []) == []


def test_one_restore_in_progress_per_target() -> None:
    running = {**restore(), "metadata": {"name": "first"}, "status": {"complete": False}}
    done = {**restore(), "metadata": {"name": "old"}, "status": {"complete": True}}
    assert fields(restore_causes(restore(), None, [running, done])) == [
        ("spec.target", 'VirtualMachineRestore "first" in progress')]


class FakeStore:
    def get(self, key: tuple[str, str], namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def list(self, key: tuple[str, str], namespace: str | None = None
             ) -> list[dict[str, Any]]:
        return []


def test_a_refusal_is_answered_as_a_webhook_denial() -> None:
    hooks = SnapshotAdmission(FakeStore()).hooks()
    with pytest.raises(ApiError) as raised:
        hooks[("snapshot.kubevirt.io", "VirtualMachineSnapshot")](snapshot({"name": "web"}))
    assert raised.value.code == 422
    assert raised.value.message == (
        'admission webhook "virtualmachinesnapshot-validator.snapshot.kubevirt.io" denied the '
        "request: missing apiGroup")
    assert raised.value.details["causes"] == [{"reason": "FieldValueNotFound",
                                               "message": "missing apiGroup",
                                               "field": "spec.source.apiGroup"}]
    assert hooks[("snapshot.kubevirt.io", "VirtualMachineRestore")](restore()) == []
