"""An exact oracle for the DRS planner (scipy.optimize.milp), and its own check by brute force.

The planner's imbalance is a square root of variances, which a MILP cannot take directly; on
instances where every host has the same allocatable and every load is a whole number of units,
it can exactly. The mean load per resource is then fixed by the VMs alone, so minimising the
imbalance is minimising the sum over hosts of (load in units)**2, and for whole-number loads
L**2 equals the largest of the secants through (j, j**2) and (j+1, (j+1)**2): a convex
piecewise-linear function, so `z >= every secant` makes z == L**2 at the optimum.

The oracle keeps the planner's hard limits: a VM goes only to a host that takes VMs; a target
must have room for its requests while the moved VMs still hold theirs on their sources; at most
`max_outbound` moves per source; VMs that cannot migrate stay. Placement rules are not modelled
(the quality tests use none); the planner's rule handling is tested on its own.

Also used by hack/bench_drs_plan.py for "imbalance vs optimum".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pytest

from controllers.computecluster.drs import ClusterState, Host, VirtualMachineLoad

try:
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp  # type: ignore[import-untyped]
    from scipy.sparse import lil_matrix  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - scipy is in the test extras
    np = None  # type: ignore[assignment]


@dataclass(frozen=True)
class UnitInstance:
    """A cluster of identical hosts in whole units: `state` is what the planner gets."""

    state: ClusterState
    cpu_unit: int  # millicores per unit
    memory_unit: int  # bytes per unit

    @property
    def hosts(self) -> tuple[Host, ...]:
        return self.state.hosts

    @property
    def vms(self) -> tuple[VirtualMachineLoad, ...]:
        return self.state.virtual_machines


def unit_instance(host_units: tuple[int, int], vms: list[tuple[int, int, int, int, int]],
                  hosts: int, cpu_unit: int = 250, memory_unit: int = 1024**3,
                  pinned: frozenset[str] = frozenset()) -> UnitInstance:
    """`vms`: (host index as a name suffix, cpu load, memory load, cpu request, memory request)
    in units; `pinned`: keys of VMs that cannot migrate."""
    host_list = tuple(
        Host(f"host-{index}", host_units[0] * cpu_unit, host_units[1] * memory_unit)
        for index in range(hosts)
    )
    loads = tuple(
        VirtualMachineLoad(
            key=f"ns/vm-{number:02d}", host=f"host-{where}",
            cpu_millicores=cpu * cpu_unit, memory_bytes=memory * memory_unit,
            cpu_request_millicores=cpu_request * cpu_unit,
            memory_request_bytes=memory_request * memory_unit,
            migratable=f"ns/vm-{number:02d}" not in pinned,
            not_migratable_reason="" if f"ns/vm-{number:02d}" not in pinned else "RWO disk",
        )
        for number, (where, cpu, memory, cpu_request, memory_request) in enumerate(vms)
    )
    return UnitInstance(ClusterState(host_list, loads), cpu_unit, memory_unit)


def imbalance_of_assignment(instance: UnitInstance, where: dict[str, str]) -> float:
    """The planner's imbalance for an assignment VM -> host (computed from scratch)."""
    deviations = []
    for resource in ("cpu", "memory"):
        loads = []
        for host in instance.hosts:
            capacity = host.cpu_millicores if resource == "cpu" else host.memory_bytes
            used = sum(
                (vm.cpu_millicores if resource == "cpu" else vm.memory_bytes)
                for vm in instance.vms if where[vm.key] == host.name
            )
            loads.append(used / capacity)
        mean = sum(loads) / len(loads)
        deviations.append(sum((load - mean) ** 2 for load in loads) / len(loads))
    return math.sqrt(sum(deviations) / 2)


@dataclass(frozen=True)
class OracleResult:
    imbalance: float
    moves: int
    assignment: dict[str, str]


class Oracle:
    """The exact MILP for one unit instance; ask it either question below."""

    def __init__(self, instance: UnitInstance, max_outbound: int) -> None:
        if np is None:  # pragma: no cover
            pytest.skip("scipy is not installed")
        self.instance = instance
        self.max_outbound = max_outbound
        hosts, vms = instance.hosts, instance.vms
        self.host_names = [h.name for h in hosts]
        self.count_h, self.count_v = len(hosts), len(vms)
        self.cpu_units = [vm.cpu_millicores // instance.cpu_unit for vm in vms]
        self.memory_units = [vm.memory_bytes // instance.memory_unit for vm in vms]
        self.capacity = (hosts[0].cpu_millicores // instance.cpu_unit,
                         hosts[0].memory_bytes // instance.memory_unit)
        self.current = [self.host_names.index(vm.host) for vm in vms]

    # variable layout: x[v, h] at v * H + h, then z[h, r] at V * H + h * 2 + r
    def _x(self, v: int, h: int) -> int:
        return v * self.count_h + h

    def _z(self, h: int, r: int) -> int:
        return self.count_v * self.count_h + h * 2 + r

    def _constraints(self) -> tuple[list[LinearConstraint], int]:
        instance, count_h, count_v = self.instance, self.count_h, self.count_v
        size = count_v * count_h + 2 * count_h
        rows: list[tuple[dict[int, float], float, float]] = []
        for v in range(count_v):  # each VM on one host
            rows.append(({self._x(v, h): 1.0 for h in range(count_h)}, 1.0, 1.0))
        requests = [
            [vm.cpu_request_millicores // instance.cpu_unit for vm in instance.vms],
            [vm.memory_request_bytes // instance.memory_unit for vm in instance.vms],
        ]
        for h in range(count_h):
            for r, units in enumerate((self.cpu_units, self.memory_units)):
                # z[h, r] >= (2j + 1) L - j (j + 1) for every j: z == L**2 at whole numbers
                terms = {self._x(v, h): float(units[v]) for v in range(count_v)}
                top = sum(units)
                for j in range(top):
                    row = {key: -(2 * j + 1) * value for key, value in terms.items()}
                    row[self._z(h, r)] = 1.0
                    rows.append((row, float(-j * (j + 1)), math.inf))
                # room: what stays reserved on h plus what arrives fits
                stays = sum(requests[r][v] for v in range(count_v) if self.current[v] == h)
                arriving = {self._x(v, h): float(requests[r][v])
                            for v in range(count_v) if self.current[v] != h}
                rows.append((arriving, -math.inf, float(self.capacity[r] - stays)))
            leaving = {self._x(v, h): -1.0 for v in range(count_v) if self.current[v] == h}
            staying_count = sum(1 for v in range(count_v) if self.current[v] == h)
            rows.append((leaving, float(-staying_count), float(self.max_outbound - staying_count)))
        matrix = lil_matrix((len(rows), size))
        lower, upper = [], []
        for index, (row, low, high) in enumerate(rows):
            for key, value in row.items():
                matrix[index, key] = value
            lower.append(low)
            upper.append(high)
        return [LinearConstraint(matrix.tocsr(), lower, upper)], size

    def _bounds(self, size: int) -> Bounds:
        lower = np.zeros(size)
        upper = np.full(size, np.inf)
        upper[: self.count_v * self.count_h] = 1.0
        for v, vm in enumerate(self.instance.vms):
            host_ok = [h.accepts_virtual_machines for h in self.instance.hosts]
            for h in range(self.count_h):
                if (not vm.migratable and h != self.current[v]) or (
                        not host_ok[h] and h != self.current[v]):
                    upper[self._x(v, h)] = 0.0
        return Bounds(lower, upper)

    def _moves_row(self, size: int) -> tuple[np.ndarray, float]:
        """moves = V - sum_v x[v, current(v)] as coefficients and constant."""
        row = np.zeros(size)
        for v in range(self.count_v):
            row[self._x(v, self.current[v])] = -1.0
        return row, float(self.count_v)

    def _squares_row(self, size: int) -> np.ndarray:
        row = np.zeros(size)
        for h in range(self.count_h):
            row[self._z(h, 0)] = 1.0 / self.capacity[0] ** 2
            row[self._z(h, 1)] = 1.0 / self.capacity[1] ** 2
        return row

    def _result(self, solution: np.ndarray) -> OracleResult:
        where = {}
        moves = 0
        for v, vm in enumerate(self.instance.vms):
            h = max(range(self.count_h), key=lambda h: solution[self._x(v, h)])
            where[vm.key] = self.host_names[h]
            moves += h != self.current[v]
        return OracleResult(imbalance_of_assignment(self.instance, where), moves, where)

    def best_with_moves(self, moves: int) -> OracleResult:
        """The lowest imbalance reachable with at most `moves` moves."""
        constraints, size = self._constraints()
        row, constant = self._moves_row(size)
        constraints.append(LinearConstraint(row.reshape(1, -1), -math.inf, moves - constant))
        integrality = np.zeros(size)
        integrality[: self.count_v * self.count_h] = 1
        answer = milp(self._squares_row(size), constraints=constraints,
                      integrality=integrality, bounds=self._bounds(size),
                      options={"time_limit": 60})
        assert answer.success, answer.message
        return self._result(answer.x)

    def fewest_moves_to(self, target: float) -> OracleResult | None:
        """The fewest moves that bring the imbalance to `target` or below (None: none can)."""
        constraints, size = self._constraints()
        means = []
        for units, capacity in ((self.cpu_units, self.capacity[0]),
                                (self.memory_units, self.capacity[1])):
            means.append(sum(units) / capacity / self.count_h)
        # imbalance**2 = (sum_r (sum_h z[h,r] / A_r**2) / N - mean_r**2) / 2 <= target**2
        bound = self.count_h * (2 * target**2 + sum(mean**2 for mean in means))
        constraints.append(LinearConstraint(self._squares_row(size).reshape(1, -1),
                                            -math.inf, bound + 1e-9))
        row, _constant = self._moves_row(size)
        integrality = np.zeros(size)
        integrality[: self.count_v * self.count_h] = 1
        answer = milp(row, constraints=constraints, integrality=integrality,
                      bounds=self._bounds(size), options={"time_limit": 60})
        if answer.status == 2:  # infeasible
            return None
        assert answer.success, answer.message
        return self._result(answer.x)


def _brute_force(instance: UnitInstance, moves: int, max_outbound: int) -> float:
    """Every assignment with at most `moves` moves, checked like the planner checks them."""
    vms, hosts = instance.vms, [h.name for h in instance.hosts]
    best = math.inf
    for assignment in itertools.product(hosts, repeat=len(vms)):
        where = {vm.key: host for vm, host in zip(vms, assignment, strict=True)}
        moved = [vm for vm in vms if where[vm.key] != vm.host]
        if len(moved) > moves or any(not vm.migratable for vm in moved):
            continue
        if any(sum(1 for vm in moved if vm.host == h) > max_outbound for h in hosts):
            continue
        fits = True
        for host in instance.hosts:
            cpu = sum(vm.cpu_request_millicores for vm in vms
                      if vm.host == host.name or where[vm.key] == host.name)
            memory = sum(vm.memory_request_bytes for vm in vms
                         if vm.host == host.name or where[vm.key] == host.name)
            fits = fits and cpu <= host.cpu_millicores and memory <= host.memory_bytes
        if fits:
            best = min(best, imbalance_of_assignment(instance, where))
    return best


@pytest.mark.parametrize("moves", [0, 1, 2, 3])
def test_the_oracle_agrees_with_brute_force(moves: int) -> None:
    instance = unit_instance(
        (8, 8),
        [(0, 3, 2, 3, 2), (0, 2, 1, 2, 1), (0, 1, 3, 1, 3), (0, 2, 2, 2, 2),
         (1, 1, 1, 1, 1), (1, 2, 1, 2, 1), (2, 1, 2, 1, 2)],
        hosts=3, pinned=frozenset({"ns/vm-03"}),
    )
    exact = Oracle(instance, max_outbound=2).best_with_moves(moves)
    assert exact.moves <= moves
    assert exact.imbalance == pytest.approx(_brute_force(instance, moves, 2), abs=1e-9)


def test_the_oracle_finds_the_fewest_moves_to_a_target() -> None:
    instance = unit_instance(
        (8, 8), [(0, 2, 2, 2, 2)] * 4 + [(1, 1, 1, 1, 1)], hosts=3)
    oracle = Oracle(instance, max_outbound=4)
    one = oracle.best_with_moves(1).imbalance
    answer = oracle.fewest_moves_to(one)
    assert answer is not None and answer.moves == 1
    assert oracle.fewest_moves_to(0.0) is None  # 2+2+2+2+1 units never split evenly over 3
