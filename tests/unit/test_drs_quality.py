"""How good the DRS planner's plans are, against the exact optimum (tests/unit/test_drs_oracle.py)
on skewed clusters of up to 8 hosts and 40 VMs:
- its imbalance after k moves is within 5% of the lowest any k moves reach;
- it reaches the target in at most 1.2x the fewest moves that can.

Both run with the planner's per-host and cluster limits matched in the oracle: outbound
migrations per host as KubeVirt's default (2) for the first, lifted for the second (with 2 a pass
rarely reaches the target, and the question is how many moves, not how many passes).
"""

from __future__ import annotations

import random

import pytest

from controllers.computecluster.drs import DrsSettings, plan
from tests.unit.test_drs_oracle import Oracle, UnitInstance, unit_instance

pytest.importorskip("scipy")


def skewed_instance(seed: int, hosts: int, vms: int) -> UnitInstance:
    """Identical hosts (16 cores, 64 GiB in units of 250m / 1 GiB); VMs of 1..6 units requested,
    using up to twice that; placed with a strong lean toward the first hosts."""
    rng = random.Random(seed)
    capacity = (64, 64)
    used = [[0, 0] for _ in range(hosts)]
    placed = []
    for _ in range(vms):
        cpu_request, memory_request = rng.randint(1, 6), rng.randint(1, 6)
        cpu, memory = (cpu_request + rng.randint(0, cpu_request),
                       memory_request + rng.randint(0, memory_request))
        for where in sorted(range(hosts), key=lambda h: rng.random() * (h + 1) ** 1.5):
            if (used[where][0] + cpu_request <= capacity[0]
                    and used[where][1] + memory_request <= capacity[1]):
                used[where][0] += cpu_request
                used[where][1] += memory_request
                placed.append((where, cpu, memory, cpu_request, memory_request))
                break
    return unit_instance(capacity, placed, hosts)


CASES = [(0, 8, 40), (1, 8, 40), (2, 8, 32), (3, 6, 24), (4, 4, 12)]


@pytest.mark.parametrize(("seed", "hosts", "vms"), CASES)
def test_imbalance_is_within_five_percent_of_the_optimum_with_as_many_moves(
        seed: int, hosts: int, vms: int) -> None:
    instance = skewed_instance(seed, hosts, vms)
    oracle = Oracle(instance, max_outbound=2)
    for budget in (2, 4):
        result = plan(instance.state, DrsSettings(
            migration_threshold=5, max_moves_per_pass=budget, max_parallel_in_cluster=budget))
        optimum = oracle.best_with_moves(len(result.moves))
        assert result.expected_imbalance <= 1.05 * optimum.imbalance + 1e-6, (
            budget, result.moves, optimum)


@pytest.mark.parametrize(("seed", "hosts", "vms"), CASES)
def test_the_target_is_reached_in_at_most_1_2_times_the_fewest_moves(
        seed: int, hosts: int, vms: int) -> None:
    instance = skewed_instance(seed, hosts, vms)
    unlimited = DrsSettings(max_moves_per_pass=vms, max_parallel_in_cluster=vms,
                            max_outbound_per_host=vms)
    result = plan(instance.state, unlimited)
    fewest = Oracle(instance, max_outbound=vms).fewest_moves_to(result.target_imbalance)
    assert fewest is not None, "the instance should be balanceable"
    assert result.expected_imbalance <= result.target_imbalance
    assert len(result.moves) <= 1.2 * fewest.moves, (len(result.moves), fewest.moves)
