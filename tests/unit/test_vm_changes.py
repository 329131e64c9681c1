"""Defect 6a: whatever is removed from a VDC VM's spec is removed from its KubeVirt VM.

The planner compares the desired KubeVirt VM with what our field manager applied (the
managedFields projection the cache keeps), so a field we applied and no longer send is a
difference, and the next server-side apply removes it; KubeVirt's defaults are not ours.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers.common.kube import FIELD_MANAGER
from controllers.virtualmachine.changes import plan_changes
from controllers.virtualmachine.managed_view import applied_fields, managed_view
from controllers.virtualmachine.observed import slim_kubevirt_vm
from tests.unit.test_builders import CLUSTER, POLICIES, _build, _live, _running_vmi, _server_object

BASE: dict[str, Any] = {
    "clusterName": "production",
    "cpu": {"count": 2},
    "memory": {"size": "2Gi"},
    "disks": [
        {"name": "root", "size": "10Gi", "bootOrder": 1, "storagePolicyName": "gold"},
        {"name": "data", "size": "5Gi", "bus": "scsi", "storagePolicyName": "gold"},
    ],
    "networks": [
        {"name": "default", "podNetwork": {}},
        {"name": "lan", "portGroupName": "pg-prod"},
    ],
}
assert CLUSTER.name == "production" and "gold" in POLICIES


def _without(path: str) -> dict[str, Any]:
    """BASE with one field removed, e.g. "disks.0.bootOrder" or "networks.1"."""
    shape = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node: Any = shape
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if last.isdigit():
        del node[int(last)]
    else:
        del node[last]
    return shape


def _template(vm: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = vm["spec"]["template"]["spec"]
    return template


@pytest.mark.parametrize(
    ("removed", "running_says", "gone_from_desired"),
    [
        ("clusterName", "placement (nodeSelector)", ("nodeSelector",)),
        ("disks.0.bootOrder", "domain.devices.disks.0.bootOrder changed", ()),
        ("disks.1.bus", "domain.devices.disks.1.disk.bus changed", ()),
        ("networks.1", "NIC lan removed", ()),
    ],
)
def test_a_removed_field_is_a_difference(
    removed: str, running_says: str, gone_from_desired: tuple[str, ...]
) -> None:
    live = _live(_build(BASE))
    desired = _build(_without(removed), live=live)
    for key in gone_from_desired:
        assert key not in _template(desired)
    running = plan_changes(desired, live, _running_vmi(live))
    assert running.changed
    assert running_says in running.live_updates + running.restart_reasons
    stopped = plan_changes(desired, live, None)
    assert stopped.changed and stopped.deferred and not stopped.restart_required


def test_a_removed_cluster_removes_its_label_and_placement() -> None:
    live = _live(_build(BASE))
    desired = _build(_without("clusterName"), live=live)
    assert "vdcos.io/cluster" in live["metadata"]["labels"]
    assert "vdcos.io/cluster" not in desired["metadata"]["labels"]
    plan = plan_changes(desired, live, _running_vmi(live))
    assert "labels" in plan.live_updates
    assert "placement (affinity)" in plan.live_updates
    assert not plan.restart_required


def test_a_removed_label_alone_is_a_difference() -> None:
    vm = _build(BASE)
    live = _live(vm)
    desired = copy.deepcopy(vm)
    del desired["metadata"]["labels"]["vdcos.io/cluster"]
    desired["metadata"]["annotations"]["vdcos.io/applied-digest"] = "another-object"
    assert plan_changes(desired, live, _running_vmi(live)).live_updates == ("labels",)


def test_the_same_desired_object_again_is_no_change() -> None:
    vm = _build(BASE)
    live = _live(vm)
    assert not plan_changes(_build(BASE, live=live), live, _running_vmi(live)).changed


def test_defaults_recorded_under_our_manager_do_not_make_us_apply_forever() -> None:
    # Real kube-apiserver attributes a mutating webhook's defaults to the request's manager.
    vm = _build(BASE)
    server = _server_object(vm)
    fields = server["metadata"]["managedFields"][0]["fieldsV1"]
    domain_fields = fields["f:spec"]["f:template"]["f:spec"]["f:domain"]
    domain_fields["f:machine"] = {"f:type": {}}
    live = slim_kubevirt_vm(server)
    assert live["spec"]["template"]["spec"]["domain"]["machine"] == {"type": "q35"}
    assert not plan_changes(_build(BASE, live=live), live, _running_vmi(live)).changed


def test_a_live_vm_without_our_digest_is_applied_once() -> None:
    vm = _build(BASE)
    live = _live(vm)
    del live["metadata"]["annotations"]["vdcos.io/applied-digest"]
    plan = plan_changes(_build(BASE, live=live), live, _running_vmi(live))
    assert plan.changed and plan.refresh
    assert not plan.restart_required and not plan.live_updates


def test_the_managed_view_keeps_what_the_manager_applied() -> None:
    obj = {
        "metadata": {
            "labels": {"ours": "a", "theirs": "b"},
            "managedFields": [
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}},
                {
                    "manager": FIELD_MANAGER,
                    "operation": "Apply",
                    "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:ours": {}}},
                        "f:spec": {
                            "f:ports": {
                                'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}},
                            },
                            "f:finalizers": {'v:"a"': {}},
                            "f:atomic": {},
                        },
                    },
                },
            ],
        },
        "spec": {
            "ports": [
                {"port": 443, "protocol": "TCP", "name": "https"},
                {"port": 80, "protocol": "TCP", "name": "http"},
            ],
            "finalizers": ["b", "a"],
            "atomic": [{"x": 1, "y": 2}],
            "defaulted": True,
        },
    }
    fields = applied_fields(obj, FIELD_MANAGER)
    assert fields is not None
    assert managed_view(obj, fields) == {
        "metadata": {"labels": {"ours": "a"}},
        "spec": {"ports": [{"port": 80}], "finalizers": ["a"], "atomic": [{"x": 1, "y": 2}]},
    }
    assert applied_fields(obj, "somebody") is None
