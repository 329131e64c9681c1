"""HA admission control as the VirtualMachine controller applies it to a power-on."""

from __future__ import annotations

from typing import Any

from controllers.computecluster.builders import ResolvedCluster
from controllers.computecluster.models import ComputeClusterSpec
from controllers.virtualmachine.admission import failover_capacity_rejection
from controllers.virtualmachine.models import VirtualMachineSpec


def cluster(ha: dict[str, Any]) -> ResolvedCluster:
    return ResolvedCluster("prod", ComputeClusterSpec.model_validate(
        {"hostSelector": {}, "ha": ha}))


def status(*hosts: tuple[str, bool, str]) -> dict[str, Any]:
    """Hosts of 128Gi each: (name, ready, memory allocated)."""
    return {"hosts": [{"name": name, "ready": ready, "capacity": {"cpu": "32", "memory": "128Gi"},
                       "allocated": {"cpu": "1", "memory": used}} for name, ready, used in hosts]}


def vm(memory: str, power: str = "PoweredOn") -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate(
        {"clusterName": "prod", "powerState": power, "cpu": {"count": 1},
         "memory": {"size": memory}})


TWO_HOSTS = status(("host-1", True, "100Gi"), ("host-2", True, "0"))


def test_a_power_on_that_eats_the_reserve_is_refused_naming_the_cluster() -> None:
    refused = failover_capacity_rejection(vm("100Gi"), cluster({"enabled": True}), TWO_HOSTS,
                                          powering_on=True)
    assert refused is not None
    assert refused.reason == "InsufficientFailoverCapacity"
    assert 'ComputeCluster "prod"' in refused.message
    assert "hostFailuresToTolerate" in refused.message


def test_room_left_admits() -> None:
    assert failover_capacity_rejection(vm("20Gi"), cluster({"enabled": True}), TWO_HOSTS,
                                       powering_on=True) is None


def test_only_power_ons_of_ha_clusters_under_a_policy_are_judged() -> None:
    big = vm("100Gi")
    assert failover_capacity_rejection(big, cluster({"enabled": False}), TWO_HOSTS,
                                       powering_on=True) is None
    assert failover_capacity_rejection(big, cluster({"enabled": True}), TWO_HOSTS,
                                       powering_on=False) is None
    assert failover_capacity_rejection(vm("100Gi", "PoweredOff"), cluster({"enabled": True}),
                                       TWO_HOSTS, powering_on=True) is None
    disabled = cluster({"enabled": True, "admissionControl": {"policy": "Disabled"}})
    assert failover_capacity_rejection(big, disabled, TWO_HOSTS, powering_on=True) is None
    assert failover_capacity_rejection(big, None, TWO_HOSTS, powering_on=True) is None


def test_not_ready_hosts_do_not_count_as_room() -> None:
    hosts = status(("host-1", True, "0"), ("host-2", True, "0"), ("host-3", False, "0"))
    # Two Ready hosts of 128Gi: 100Gi fits after losing one; 130Gi does not.
    assert failover_capacity_rejection(vm("100Gi"), cluster({"enabled": True}), hosts,
                                       powering_on=True) is None
    assert failover_capacity_rejection(vm("130Gi"), cluster({"enabled": True}), hosts,
                                       powering_on=True) is not None


def test_percentage_policy() -> None:
    percent = cluster({"enabled": True, "admissionControl": {
        "policy": "Percentage", "cpuPercent": 0, "memoryPercent": 50}})
    hosts = status(("host-1", True, "100Gi"), ("host-2", True, "0"))
    assert failover_capacity_rejection(vm("28Gi"), percent, hosts, powering_on=True) is None
    refused = failover_capacity_rejection(vm("29Gi"), percent, hosts, powering_on=True)
    assert refused is not None and "50% of its memory" in refused.message
