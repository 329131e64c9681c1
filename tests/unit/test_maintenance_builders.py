"""Host maintenance's pure decisions: HA failover capacity, Required rules, what Shutdown
does with a VM that cannot migrate, and what the status says holds each VM."""

from __future__ import annotations

from controllers.computecluster.drs import (
    ClusterState,
    Host,
    PlacementRule,
    VirtualMachineLoad,
    evacuation_moves,
)
from controllers.computecluster.models import HA
from controllers.hostmaintenance.builders import (
    evacuation_migration_name,
    failover_shortfall,
    remaining_on_host,
    rule_refusal,
    shutdown_action,
)
from controllers.virtualmachinemigration.cluster_state import RunningVM

GIB = 1024**3


def host(name: str, memory_gib: int = 64) -> Host:
    return Host(name, 16000, memory_gib * GIB)


def running(name: str, on: str, memory_gib: int = 8, reason: str = "") -> RunningVM:
    key = f"ns/{name}"
    return RunningVM(key, "ns", name, on, VirtualMachineLoad(
        key=key, host=on, cpu_millicores=100, memory_bytes=memory_gib * GIB,
        cpu_request_millicores=100, memory_request_bytes=memory_gib * GIB,
        migratable=not reason, not_migratable_reason=reason))


def test_ha_capacity_counts_the_largest_hosts_as_failed() -> None:
    hosts = [host("h1"), host("h2"), host("h3")]
    vms = [running("a", "h1", 40), running("b", "h2", 20)]
    # h1 in maintenance, h2 or h3 failed: one 64 GiB host is left for 60 GiB of VMs.
    assert failover_shortfall(HA(enabled=True), hosts, vms, "h1") is None
    shortfall = failover_shortfall(HA(enabled=True), hosts, [*vms, running("c", "h3", 8)], "h1")
    assert shortfall is not None and "hostFailuresToTolerate" in shortfall
    assert failover_shortfall(HA(enabled=False), hosts, vms * 3, "h1") is None


def test_a_vm_a_required_rule_keeps_on_the_host_refuses_maintenance() -> None:
    vm = running("licensed", "h1")
    state = ClusterState(
        hosts=(host("h1"), host("h2")), virtual_machines=(vm.load,),
        rules=(PlacementRule("stay", "VirtualMachinesToHosts", "Required", (vm.key,), ("h1",)),))
    refused = rule_refusal(evacuation_moves("h1", state))
    assert refused is not None and "stay" in refused
    free = ClusterState(hosts=state.hosts, virtual_machines=(vm.load,))
    assert rule_refusal(evacuation_moves("h1", free)) is None


def test_shutdown_powers_off_what_its_disk_pins_and_restarts_the_rest() -> None:
    assert shutdown_action("disk data is ReadWriteOnce on h1 (PVC db-root)") == "PowerOff"
    assert shutdown_action("cannot migrate VMI which does not use masquerade") == "Restart"


def test_remaining_vms_say_what_holds_them() -> None:
    vms = [running("db", "h1", reason="disk data is ReadWriteOnce on h1 (PVC db-root)"),
           running("web", "h1"), running("elsewhere", "h2")]
    state = ClusterState(hosts=(host("h1"), host("h2")),
                         virtual_machines=tuple(vm.load for vm in vms))
    evacuation = evacuation_moves("h1", state)
    remaining = {r.name: r.reason for r in remaining_on_host(vms, "h1", evacuation, {}, {})}
    assert remaining == {"db": "disk data is ReadWriteOnce on h1 (PVC db-root)",
                         "web": "migrating to h2"}


def test_one_migration_name_per_maintenance_and_vm() -> None:
    assert evacuation_migration_name("hm", "web") == "hm-web"
    long = evacuation_migration_name("m" * 60, "web")
    assert len(long) <= 63 and long == evacuation_migration_name("m" * 60, "web")
