"""The HA planner: restart order, placement under shortage, failover capacity, admission."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from controllers.computecluster.ha import (
    PRIORITY_ORDER,
    Demand,
    HostRoom,
    ProtectedVM,
    admission_rejection,
    failover_capacity,
    fits_after_losing,
    place_restarts,
    priority_rank,
    restart_tiers,
)
from controllers.computecluster.ha_models import AdmissionControl

GI = 2**30
priorities = st.sampled_from(["Disabled", "Lowest", "Low", "Medium", "High", "Highest"])


def vm(name: str, priority: str, cpu: int = 100, memory: int = GI) -> ProtectedVM:
    return ProtectedVM(("apps", name), priority, Demand(cpu, memory))  # type: ignore[arg-type]


def host(name: str, cpu: int, memory: int, used_cpu: int = 0, used_memory: int = 0) -> HostRoom:
    return HostRoom(name, Demand(cpu, memory), Demand(used_cpu, used_memory))


def test_tiers_run_highest_first_and_leave_disabled_out() -> None:
    tiers = restart_tiers([vm("a", "Low"), vm("b", "Highest"), vm("c", "Disabled"),
                           vm("d", "Medium"), vm("e", "Highest")])
    assert [priority for priority, _ in tiers] == ["Highest", "Medium", "Low"]
    assert [v.key[1] for v in tiers[0][1]] == ["b", "e"]


@given(st.lists(priorities, max_size=30))
def test_tiers_keep_every_restartable_vm_once_in_order(given_priorities: list[str]) -> None:
    vms = [vm(f"vm-{i}", priority) for i, priority in enumerate(given_priorities)]
    tiers = restart_tiers(vms)
    flat = [v for _, members in tiers for v in members]
    assert sorted(v.key for v in flat) == sorted(v.key for v in vms if v.priority != "Disabled")
    ranks = [priority_rank(priority) for priority, _ in tiers]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)


def test_short_of_room_the_highest_go_first_and_the_rest_wait_with_a_reason() -> None:
    placement = place_restarts(
        [vm("low", "Low", memory=3 * GI), vm("high", "High", memory=3 * GI)],
        [host("host-2", 32000, 4 * GI)],
    )
    assert placement.placed == {("apps", "high"): "host-2"}
    assert "no host has room" in placement.pending[("apps", "low")]
    assert "priority Low" in placement.pending[("apps", "low")]


@given(st.lists(st.tuples(priorities, st.integers(1, 8)), max_size=25),
       st.lists(st.integers(0, 16), min_size=1, max_size=5))
def test_placement_never_overfills_and_never_skips_a_higher_vm_that_fits(
    vms_given: list[tuple[str, int]], free_gi: list[int]
) -> None:
    vms = [vm(f"vm-{i}", priority, memory=size * GI)
           for i, (priority, size) in enumerate(vms_given)]
    hosts = [host(f"host-{i}", 10**6, free * GI) for i, free in enumerate(free_gi)]
    placement = place_restarts(vms, hosts)
    used: dict[str, int] = {}
    for key, target in placement.placed.items():
        size = next(v.demand.memory for v in vms if v.key == key)
        used[target] = used.get(target, 0) + size
    for candidate in hosts:
        assert used.get(candidate.name, 0) <= candidate.capacity.memory
    restartable = {v.key for v in vms if v.priority != "Disabled"}
    assert set(placement.placed) | set(placement.pending) == restartable
    assert not set(placement.placed) & set(placement.pending)
    # A pending VM fit nowhere at its turn, and later placements only took room away.
    for key in placement.pending:
        need = next(v.demand.memory for v in vms if v.key == key)
        assert all(h.capacity.memory - used.get(h.name, 0) < need for h in hosts)


def test_failover_capacity_counts_the_largest_hosts_lost() -> None:
    hosts = [host(f"host-{i}", 10000, 10 * GI, used_cpu=3000, used_memory=3 * GI)
             for i in range(4)]
    # 12 Gi in use: fits on 3 hosts (30), 2 hosts (20), 1 host (10 < 12: no).
    assert failover_capacity(hosts) == 2
    assert failover_capacity(hosts[:1]) == 0


@given(st.lists(st.tuples(st.integers(1, 64), st.integers(0, 64)), min_size=1, max_size=8))
def test_failover_capacity_is_the_largest_loss_the_load_survives(
    sizes: list[tuple[int, int]]
) -> None:
    hosts = [host(f"h{i}", capacity * 1000, capacity * GI, min(used, capacity) * 1000,
                  min(used, capacity) * GI) for i, (capacity, used) in enumerate(sizes)]
    load = Demand(sum(h.allocated.cpu for h in hosts), sum(h.allocated.memory for h in hosts))
    capacity = failover_capacity(hosts)
    assert 0 <= capacity < len(hosts) or (capacity == 0 and len(hosts) == 1)
    if capacity:
        assert fits_after_losing(hosts, capacity, load)
    if capacity + 1 < len(hosts):
        assert not fits_after_losing(hosts, capacity + 1, load)


def test_host_failures_to_tolerate_refuses_what_would_eat_the_reserve() -> None:
    hosts = [host(f"host-{i}", 10000, 10 * GI, used_memory=4 * GI) for i in range(3)]
    policy = AdmissionControl()
    # 12 Gi used; after losing the largest host 20 Gi remain: 8 Gi more fit, 9 do not.
    assert admission_rejection(policy, 1, hosts, Demand(100, 8 * GI)) is None
    refused = admission_rejection(policy, 1, hosts, Demand(100, 9 * GI))
    assert refused is not None and "hostFailuresToTolerate" in refused


def test_percentage_keeps_the_share_it_names() -> None:
    hosts = [host("host-1", 10000, 10 * GI, used_memory=6 * GI)]
    policy = AdmissionControl(policy="Percentage", cpu_percent=10, memory_percent=30)
    assert admission_rejection(policy, 1, hosts, Demand(100, GI)) is None
    refused = admission_rejection(policy, 1, hosts, Demand(100, 2 * GI))
    assert refused is not None and "30% of its memory" in refused


def test_disabled_admits_everything() -> None:
    hosts = [host("host-1", 1000, GI, used_memory=GI)]
    assert admission_rejection(AdmissionControl(policy="Disabled"), 1, hosts,
                               Demand(10**6, 10**12)) is None


@given(st.integers(0, 3), st.lists(st.integers(0, 16), min_size=2, max_size=6), st.integers(0, 16))
def test_an_admitted_power_on_still_leaves_room_for_the_tolerated_failures(
    failures: int, used: list[int], extra: int
) -> None:
    hosts = [host(f"h{i}", 16000, 16 * GI, used_memory=u * GI) for i, u in enumerate(used)]
    demand = Demand(0, extra * GI)
    if admission_rejection(AdmissionControl(), failures, hosts, demand) is None:
        load = Demand(0, sum(u for u in used) * GI + extra * GI)
        assert fits_after_losing(hosts, failures, load)


def test_priority_order_is_vspheres() -> None:
    assert PRIORITY_ORDER == ("Highest", "High", "Medium", "Low", "Lowest")
