"""What a DRS pass reads, turned into the planner's input: load, moves in flight, limits."""

from __future__ import annotations

from typing import Any

from controllers.computecluster.models import DRS, ComputeClusterSpec
from controllers.computecluster.pass_inputs import Observation, planner_inputs, pod_usage

GIB = 1024**3


def _node(name: str, *, ready: bool = True, cordoned: bool = False, **labels: str
          ) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"unschedulable": cordoned},
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi"},
                       "conditions": [{"type": "Ready", "status": str(ready)}]}}


def _vm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "apps", "labels": labels},
            "spec": {"clusterName": "prod"}}


def _vmi(name: str, host: str, migratable: bool = True) -> dict[str, Any]:
    condition = {"type": "LiveMigratable", "status": str(migratable)}
    if not migratable:
        condition |= {"reason": "DisksNotLiveMigratable",
                      "message": "cannot migrate VMI: PVC root is not shared"}
    return {"metadata": {"name": name, "namespace": "apps"},
            "status": {"phase": "Running", "nodeName": host, "conditions": [condition]}}


def _pod(name: str, host: str, cpu: str = "100m", memory: str = "1Gi") -> dict[str, Any]:
    return {"metadata": {"name": f"virt-launcher-{name}-abcde", "namespace": "apps",
                         "labels": {"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": name}},
            "spec": {"nodeName": host, "containers": [
                {"name": "compute", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
            "status": {"phase": "Running"}}


def _metrics(name: str, cpu: str, memory: str) -> dict[str, Any]:
    return {"metadata": {"name": f"virt-launcher-{name}-abcde", "namespace": "apps"},
            "containers": [{"name": "compute", "usage": {"cpu": cpu, "memory": memory}},
                           {"name": "guest-console-log", "usage": {"cpu": "1m",
                                                                   "memory": "8Mi"}}]}


def _observation(**overrides: Any) -> Observation:
    fields: dict[str, Any] = {
        "nodes": [_node("host-1"), _node("host-2")],
        "virtual_machines": [_vm("web", app="web"), _vm("db", app="db")],
        "vmis": {("apps", "web"): _vmi("web", "host-1"), ("apps", "db"): _vmi("db", "host-1")},
        "launcher_pods": [_pod("web", "host-1"), _pod("db", "host-1", "2", "8Gi")],
        "pod_metrics": [_metrics("web", "1500000000n", "3Gi"), _metrics("db", "500m", "1Gi")],
    }
    fields.update(overrides)
    return Observation(**fields)


def _loads(inputs: Any) -> dict[str, tuple[int, int]]:
    return {vm.key: (vm.cpu_millicores, vm.memory_bytes) for vm in inputs.state.virtual_machines}


def test_usage_is_what_metrics_measured_with_the_requests_as_a_floor() -> None:
    inputs = planner_inputs([], DRS(), _observation(), 0.0)
    loads = _loads(inputs)
    # web measures more than it requests; db (2 cores, 8Gi requested) measures less.
    assert loads["apps/web"] == (1501, 3 * GIB + 8 * 1024**2)
    assert loads["apps/db"] == (2000, 8 * GIB)
    assert inputs.loads_by_host == {"host-1": (3501, 11 * GIB + 8 * 1024**2), "host-2": (0, 0)}


def test_requests_metric_ignores_usage() -> None:
    inputs = planner_inputs([], DRS(load_metric="Requests"), _observation(), 0.0)
    assert _loads(inputs)["apps/web"] == (100, GIB)


def test_metrics_unavailable_falls_back_to_requests_and_says_so() -> None:
    inputs = planner_inputs([], DRS(), _observation(pod_metrics=None), 0.0)
    assert _loads(inputs)["apps/web"] == (100, GIB)
    assert inputs.notes == ("metrics.k8s.io did not answer: load is the VMs' requests",)


def test_hosts_carry_ready_cordon_and_capacity() -> None:
    nodes = [_node("host-1"), _node("host-2", ready=False), _node("host-3", cordoned=True)]
    hosts = planner_inputs([], DRS(), _observation(nodes=nodes), 0.0).state.hosts
    assert [(h.name, h.ready, h.schedulable, h.cpu_millicores, h.memory_bytes) for h in hosts] == [
        ("host-1", True, True, 8000, 32 * GIB),
        ("host-2", False, True, 8000, 32 * GIB),
        ("host-3", True, False, 8000, 32 * GIB),
    ]


def test_a_vm_that_cannot_migrate_says_why() -> None:
    vmis = {("apps", "web"): _vmi("web", "host-1"),
            ("apps", "db"): _vmi("db", "host-1", migratable=False)}
    vms = {vm.key: vm for vm in planner_inputs([], DRS(), _observation(vmis=vmis),
                                               0.0).state.virtual_machines}
    assert vms["apps/web"].migratable
    assert not vms["apps/db"].migratable
    assert vms["apps/db"].not_migratable_reason == "disk data is ReadWriteOnce on host-1 (PVC root)"


def test_vms_not_running_are_not_balanced() -> None:
    vmis = {("apps", "web"): {**_vmi("web", "host-1"), "status": {"phase": "Scheduling"}}}
    keys = _loads(planner_inputs([], DRS(), _observation(vmis=vmis), 0.0))
    assert keys == {}


def test_unfinished_migrations_are_moves_in_flight_and_finished_ones_start_the_cooldown(
) -> None:
    migrations = [
        {"metadata": {"namespace": "apps", "name": "web-migration-1"},
         "spec": {"virtualMachineName": "web", "targetHost": "host-2"},
         "status": {"phase": "Running", "sourceHost": "host-1", "targetHost": "host-2"}},
        {"metadata": {"namespace": "apps", "name": "db-migration-1"},
         "spec": {"virtualMachineName": "db"},
         "status": {"phase": "Succeeded", "completionTime": "2026-12-01T12:00:00Z"}},
    ]
    inputs = planner_inputs([], DRS(), _observation(migrations=migrations), 0.0)
    assert [(m.vm, m.source, m.target) for m in inputs.state.in_flight] == [
        ("apps/web", "host-1", "host-2")]
    db = next(vm for vm in inputs.state.virtual_machines if vm.key == "apps/db")
    assert db.last_moved_at is not None and db.last_moved_at > 1.7e9


def test_kubevirt_migration_limits_come_from_its_cr() -> None:
    kubevirt = {"spec": {"configuration": {"migrations": {
        "parallelMigrationsPerCluster": 9, "parallelOutboundMigrationsPerNode": 3}}}}
    settings = planner_inputs([], DRS(migration_threshold=4), _observation(kubevirt=kubevirt),
                              42.0).settings
    assert (settings.max_parallel_in_cluster, settings.max_outbound_per_host) == (9, 3)
    assert settings.migration_threshold == 4 and settings.now == 42.0
    defaults = planner_inputs([], DRS(), _observation(), 0.0).settings
    assert (defaults.max_parallel_in_cluster, defaults.max_outbound_per_host) == (5, 2)


def test_rules_resolve_to_vm_keys_and_host_names_in_spec_order() -> None:
    spec = ComputeClusterSpec.model_validate({"hostSelector": {}, "rules": [
        {"name": "apart", "type": "SeparateVirtualMachines",
         "virtualMachineSelector": {"matchExpressions": [
             {"key": "app", "operator": "In", "values": ["web", "db"]}]}},
        {"name": "db-off-ssd", "type": "VirtualMachinesNotOnHosts", "enforcement": "Preferred",
         "virtualMachineSelector": {"matchLabels": {"app": "db"}},
         "hostSelector": {"matchLabels": {"disk": "ssd"}}},
    ]})
    nodes = [_node("host-1", disk="ssd"), _node("host-2")]
    rules = planner_inputs(spec.rules, DRS(), _observation(nodes=nodes), 0.0).state.rules
    assert [(r.name, r.kind, r.enforcement, r.virtual_machines, r.hosts, r.order)
            for r in rules] == [
        ("apart", "SeparateVirtualMachines", "Required", ("apps/db", "apps/web"), (), 0),
        ("db-off-ssd", "VirtualMachinesNotOnHosts", "Preferred", ("apps/db",), ("host-1",), 1),
    ]


def test_pod_usage_sums_containers() -> None:
    assert pod_usage(_metrics("web", "250m", "1Gi")) == (251, GIB + 8 * 1024**2)
