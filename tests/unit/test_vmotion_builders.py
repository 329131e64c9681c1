"""vMotion's pure parts: the KubeVirt migration it writes, the planner's view of a cluster,
how refusals and Events read."""

from __future__ import annotations

from typing import Any, get_args

from controllers.computecluster.drs import RefusalCode, choose_target, refusal
from controllers.computecluster.models import ComputeClusterSpec
from controllers.virtualmachinemigration.builders import (
    kubevirt_migration,
    migration_manifest,
    moved_event_message,
    phase_of,
)
from controllers.virtualmachinemigration.cluster_state import cluster_state
from controllers.virtualmachinemigration.kind import VIRTUAL_MACHINE_MIGRATION_CACHE
from controllers.virtualmachinemigration.models import RefusalReason
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

CLUSTER = ComputeClusterSpec.model_validate(
    {"hostSelector": {"matchLabels": {"pool": "prod"}},
     "rules": [{"name": "apart", "type": "SeparateVirtualMachines",
                "virtualMachineSelector": {"matchLabels": {"app": "db"}}}]})


def node(name: str, *, pool: str = "prod", ready: bool = True, memory: str = "16Gi",
         cordoned: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"pool": pool}},
            "spec": {"unschedulable": cordoned},
            "status": {"allocatable": {"cpu": "16", "memory": memory},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def vm(name: str, memory: str = "2Gi", **labels: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "labels": labels},
            "spec": {"clusterName": "prod", "cpu": {"count": 2}, "memory": {"size": memory}}}


def vmi(host: str, migratable: bool = True) -> dict[str, Any]:
    condition = ({"type": "LiveMigratable", "status": "True"} if migratable else
                 {"type": "LiveMigratable", "status": "False",
                  "reason": "DisksNotLiveMigratable",
                  "message": "cannot migrate VMI: PVC db-root is not shared, live migration "
                             "requires that all PVCs must be shared (using ReadWriteMany "
                             "access mode)"})
    return {"status": {"phase": "Running", "nodeName": host, "conditions": [condition]}}


NODES = [node("host-1"), node("host-2"), node("host-3", ready=False),
         node("host-4", memory="1Gi"), node("other", pool="test")]


def state(**vmis: dict[str, Any]) -> Any:
    vms = [vm("web"), vm("db-a", app="db"), vm("db-b", app="db"), vm("pinned")]
    return cluster_state("prod", CLUSTER, NODES, vms,
                         {("ns", name): value for name, value in vmis.items()}, [])[0]


def test_the_kubevirt_migration_names_the_target_host_and_is_valid_upstream() -> None:
    request = {"apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachineMigration",
               "metadata": {"name": "move-web", "namespace": "ns", "uid": "u1"}}
    built = kubevirt_migration(request, "web", "host-3")
    assert built["spec"] == {"vmiName": "web",
                             "addedNodeSelector": {"kubernetes.io/hostname": "host-3"}}
    assert built["metadata"]["ownerReferences"][0]["uid"] == "u1"
    validate_against_swagger(built, KUBEVIRT_SWAGGER, "v1.VirtualMachineInstanceMigration")


def test_each_refusal_names_its_reason() -> None:
    current = state(web=vmi("host-1"), **{"db-a": vmi("host-1"), "db-b": vmi("host-2")},
                    pinned=vmi("host-1", migratable=False))
    cases = {
        ("ns/web", "other"): "TargetNotInCluster",
        ("ns/web", "host-3"): "TargetNotReady",
        ("ns/web", "host-4"): "InsufficientCapacity",
        ("ns/db-a", "host-2"): "RuleViolation",
        ("ns/pinned", "host-2"): "NotLiveMigratable",
        ("ns/web", "host-1"): "TargetIsSource",
    }
    for (key, target), reason in cases.items():
        refused = refusal(key, target, current)
        assert refused is not None, (key, target)
        assert refused.code == reason, refused
    assert refusal("ns/web", "host-2", current) is None
    pinned = refusal("ns/pinned", "host-2", current)
    assert pinned is not None and "ReadWriteOnce on host-1 (PVC db-root)" in pinned.message
    # Every code the planner gives is one the VirtualMachineMigration's status.reason allows.
    assert set(get_args(RefusalCode)) <= set(get_args(RefusalReason))


def test_no_host_fitting_says_why_with_the_hosts_common_reason() -> None:
    current = state(web=vmi("host-1"), **{"db-a": vmi("host-1"), "db-b": vmi("host-2")})
    choice = choose_target("ns/db-a", current)
    assert choice.target is None and choice.refused in ("NoTarget", "RuleViolation")
    assert choice.reason.startswith("no host can take it: ")


def test_without_a_target_drs_picks_a_ready_host_with_room() -> None:
    current = state(web=vmi("host-1"))
    assert choose_target("ns/web", current).target == "host-2"


def test_phases_and_events_read_as_a_vsphere_user_expects() -> None:
    assert [phase_of(p) for p in ("", "Scheduled", "TargetReady", "Succeeded", "Failed")] == [
        "Pending", "Scheduling", "Running", "Succeeded", "Failed"]
    assert moved_event_message("host-1", "host-3", "drs", "balance, imbalance 0.31 -> 0.12",
                               None) == (
        "Migrated by DRS from host-1 to host-3: balance, imbalance 0.31 -> 0.12")
    assert moved_event_message("host-1", "host-3", None, None, None) == (
        "Migrated from host-1 to host-3 on request")


def test_the_manifest_drs_creates_says_who_asked_and_the_cache_keeps_it() -> None:
    manifest = migration_manifest("ns", "web", "host-2", drs_reason="balance")
    body = {**manifest, "metadata": {**manifest["metadata"], "name": "web-migration-x1"}}
    [(key, entry)] = VIRTUAL_MACHINE_MIGRATION_CACHE.entries(body).items()
    assert key == ("ns", "web-migration-x1")
    assert entry.spec is not None and entry.spec.target_host == "host-2"
    assert entry.body["metadata"]["labels"] == {"vdcos.io/requested-by": "drs"}
    assert entry.body["metadata"]["annotations"] == {"vdcos.io/drs-reason": "balance"}
