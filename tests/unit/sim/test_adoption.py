"""Who adopts what a restore leaves ownerless: CDI the claim populated for a DataVolume,
virt-controller the DataVolume a VM's templates name."""

from __future__ import annotations

from typing import Any

from devcluster.sim.adoption import claim_owner, datavolume_owner

DV = {"metadata": {"name": "restore-r-1-root", "uid": "dv-1"}}
VM = {"metadata": {"name": "web", "uid": "vm-1"},
      "spec": {"dataVolumeTemplates": [{"metadata": {"name": "restore-r-1-root"}}]}}


def claim(owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "restore-r-1-root", "ownerReferences": owners or [],
                         "annotations": {"cdi.kubevirt.io/storage.populatedFor":
                                         "restore-r-1-root"}}}


def test_the_datavolume_adopts_the_claim_populated_for_it() -> None:
    assert claim_owner(claim(), DV) == {
        "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
        "name": "restore-r-1-root", "uid": "dv-1", "controller": True,
        "blockOwnerDeletion": True}
    assert claim_owner(claim([{"kind": "VirtualMachine", "controller": True}]), DV) is None
    assert claim_owner(claim(), None) is None
    assert claim_owner(claim(), {"metadata": {"name": "other"}}) is None


def test_the_vm_adopts_the_datavolume_its_templates_name() -> None:
    owner = datavolume_owner(DV, [VM])
    assert owner is not None and (owner["kind"], owner["uid"]) == ("VirtualMachine", "vm-1")
    assert datavolume_owner(DV, [{"metadata": {"name": "x"}, "spec": {}}]) is None
    owned = {"metadata": {**DV["metadata"], "ownerReferences": [{"controller": True}]}}
    assert datavolume_owner(owned, [VM]) is None
