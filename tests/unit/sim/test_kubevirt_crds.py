"""The emulated KubeVirt CRDs have the subresources of KubeVirt's own (virt-operator's
`crds.go`): VMIs none, so a VMI's status and labels are written in one update."""

from __future__ import annotations

from typing import Any

from devcluster.sim.kubevirt_crds import kubevirt_crds


def subresources(plural: str) -> dict[str, Any]:
    crd = next(c for c in kubevirt_crds() if c["spec"]["names"]["plural"] == plural)
    found: dict[str, Any] = crd["spec"]["versions"][0].get("subresources") or {}
    return found


def test_vmi_has_no_status_subresource_but_keeps_its_status_schema() -> None:
    assert subresources("virtualmachineinstances") == {}
    crd = next(c for c in kubevirt_crds()
               if c["spec"]["names"]["plural"] == "virtualmachineinstances")
    assert "status" in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]


def test_vm_migration_and_kubevirt_have_a_status_subresource() -> None:
    for plural in ("virtualmachines", "virtualmachineinstancemigrations", "kubevirts"):
        assert "status" in subresources(plural), plural
