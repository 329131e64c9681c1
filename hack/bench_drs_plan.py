"""DRS planner benchmark for `hack/bench.py drs` (the plan part). Pure: no cluster. Figures only.

For each scale (default 64 hosts / 1,000 VMs and 256 hosts / 10,000 VMs), a cluster whose usage
leans hard on a few hosts:
- one pass with the default settings (threshold 3, 5 moves, 2 outbound per host): plan time
  (median of --repeats), imbalance before / after / target, moves;
- passes until the target (each pass's moves done before the next, as DRS does every
  intervalSeconds): passes, moves, plan time per pass;
- one pass with rules (a Required keep-apart rule per 20 VMs, a Preferred VM-host rule per 100);
- one pass with the limits lifted (how many moves the planner needs to reach the target, and
  its time at that size).
At 8 hosts / 40 VMs it also compares with the exact optimum (scipy, as tests/unit/test_drs_oracle.py
does) when scipy is installed: imbalance after 4 moves vs the optimum with 4, and moves to the
target vs the fewest.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from dataclasses import replace
from typing import Any

from controllers.computecluster.drs import (
    ClusterState,
    DrsPlan,
    DrsSettings,
    Host,
    PlacementRule,
    VirtualMachineLoad,
    imbalance_of,
    plan,
)

GIB = 1024**3
DEFAULT_SCALES = "64x1000,256x10000"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scales", default=DEFAULT_SCALES,
                        help=f"HOSTSxVMS,... for the plan part (default {DEFAULT_SCALES})")
    parser.add_argument("--repeats", type=int, default=3, help="plan timings per scale")
    parser.add_argument("--max-passes", type=int, default=100,
                        help="give up reaching the target after this many passes")
    parser.add_argument("--seed", type=int, default=1)


def skewed_cluster(hosts: int, vms: int, seed: int) -> ClusterState:
    """Identical hosts (64 cores and 4 GiB a core, more when needed to keep the requests near
    half the cluster); VMs of 0.5-4 vCPU / 2-16 GiB requested, using 0.5-2x their CPU request;
    placed mostly on the first eighth of the hosts, as after a rolling upgrade brought the
    others back empty."""
    rng = random.Random(seed)
    mean_request_cores = 1.875  # of 0.5, 1, 2, 4
    cores = max(64, math.ceil(vms / hosts * mean_request_cores * 2 / 16) * 16)
    host_list = tuple(Host(f"host-{i:03d}", cores * 1000, cores * 4 * GIB) for i in range(hosts))
    free = {h.name: [h.cpu_millicores, h.memory_bytes] for h in host_list}
    hot = max(1, hosts // 8)
    loads = []
    for number in range(vms):
        cpu_request = rng.choice([500, 1000, 2000, 4000])
        memory_request = rng.choice([2, 4, 8, 16]) * GIB
        preferred = rng.randrange(hot) if rng.random() < 0.7 else rng.randrange(hosts)
        for offset in range(hosts):
            name = host_list[(preferred + offset) % hosts].name
            if free[name][0] >= cpu_request and free[name][1] >= memory_request:
                free[name][0] -= cpu_request
                free[name][1] -= memory_request
                loads.append(VirtualMachineLoad(
                    f"bench/vm-{number:05d}", name,
                    cpu_millicores=max(cpu_request, int(cpu_request * rng.uniform(0.5, 2.0))),
                    memory_bytes=memory_request,
                    cpu_request_millicores=cpu_request, memory_request_bytes=memory_request))
                break
    return ClusterState(host_list, tuple(loads))


def _timed(state: ClusterState, settings: DrsSettings, repeats: int) -> tuple[DrsPlan, float]:
    times = []
    result = plan(state, settings)
    for _ in range(repeats):
        started = time.perf_counter()
        result = plan(state, settings)
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def _completed(state: ClusterState, result: DrsPlan, now: float) -> ClusterState:
    targets = {move.vm: move.target for move in result.moves}
    return replace(state, virtual_machines=tuple(
        replace(vm, host=targets[vm.key], last_moved_at=now) if vm.key in targets else vm
        for vm in state.virtual_machines))


def _until_target(state: ClusterState, max_passes: int) -> dict[str, Any]:
    settings = DrsSettings()
    moves = 0
    times = []
    for number in range(max_passes):
        started = time.perf_counter()
        result = plan(state, replace(settings, now=number * 60.0))
        times.append(time.perf_counter() - started)
        if not result.moves:
            return {"passes": number, "moves": moves,
                    "reached_target": result.imbalance <= result.target_imbalance,
                    "final_imbalance": round(result.imbalance, 4),
                    "plan_seconds_per_pass_median": round(statistics.median(times), 4)}
        moves += len(result.moves)
        state = _completed(state, result, number * 60.0)
    return {"passes": max_passes, "moves": moves, "reached_target": False,
            "final_imbalance": round(imbalance_of(state), 4)}


def with_rules(state: ClusterState, seed: int) -> ClusterState:
    """The same cluster with a Required keep-apart rule per 20 VMs (5 VMs each) and a Preferred
    VM-host rule per 100 VMs (20 VMs to half the hosts)."""
    rng = random.Random(seed)
    keys = [vm.key for vm in state.virtual_machines]
    names = [host.name for host in state.hosts]
    rules = [PlacementRule(f"apart-{i}", "SeparateVirtualMachines", "Required",
                           tuple(rng.sample(keys, min(5, len(keys)))), order=i)
             for i in range(len(keys) // 20)]
    rules += [PlacementRule(f"zone-{i}", "VirtualMachinesToHosts", "Preferred",
                            tuple(rng.sample(keys, min(20, len(keys)))),
                            tuple(rng.sample(names, max(1, len(names) // 2))),
                            order=len(rules) + i)
              for i in range(len(keys) // 100)]
    return replace(state, rules=tuple(rules))


def bench_scale(hosts: int, vms: int, args: argparse.Namespace) -> dict[str, Any]:
    state = skewed_cluster(hosts, vms, args.seed)
    one_pass, seconds = _timed(state, DrsSettings(), args.repeats)
    unlimited = DrsSettings(max_moves_per_pass=vms, max_parallel_in_cluster=vms,
                            max_outbound_per_host=vms)
    lifted, lifted_seconds = _timed(state, unlimited, 1)
    ruled_state = with_rules(state, args.seed)
    ruled, ruled_seconds = _timed(ruled_state, DrsSettings(), args.repeats)
    return {
        "vms_placed": len(state.virtual_machines),
        "host_cores": state.hosts[0].cpu_millicores // 1000,
        "one_pass": {
            "plan_seconds": round(seconds, 4),
            "imbalance": round(one_pass.imbalance, 4),
            "target_imbalance": round(one_pass.target_imbalance, 4),
            "expected_imbalance": round(one_pass.expected_imbalance, 4),
            "moves": len(one_pass.moves),
        },
        "one_pass_with_rules": {
            "rules": len(ruled_state.rules),
            "plan_seconds": round(ruled_seconds, 4),
            "moves": len(ruled.moves),
            "rule_violation_moves": sum(m.reason == "RuleViolation" for m in ruled.moves),
            "rules_unsatisfied_before": sum(not r.satisfied for r in ruled.rules),
            "rules_disabled": sum(r.disabled_by is not None for r in ruled.rules),
        },
        "passes_to_target": _until_target(state, args.max_passes),
        "limits_lifted": {
            "plan_seconds": round(lifted_seconds, 4),
            "moves": len(lifted.moves),
            "expected_imbalance": round(lifted.expected_imbalance, 4),
            "reached_target": lifted.expected_imbalance <= lifted.target_imbalance,
        },
    }


def bench_vs_optimum(seed: int) -> dict[str, Any]:
    try:
        from tests.unit.test_drs_oracle import Oracle
        from tests.unit.test_drs_quality import skewed_instance
    except ImportError:  # scipy or pytest missing: not computable here
        return {"skipped": "scipy is not installed"}
    instance = skewed_instance(seed, 8, 40)
    four = plan(instance.state, DrsSettings(migration_threshold=5, max_moves_per_pass=4))
    optimum = Oracle(instance, max_outbound=2).best_with_moves(len(four.moves))
    unlimited = DrsSettings(max_moves_per_pass=40, max_parallel_in_cluster=40,
                            max_outbound_per_host=40)
    reach = plan(instance.state, unlimited)
    fewest = Oracle(instance, max_outbound=40).fewest_moves_to(reach.target_imbalance)
    return {
        "hosts": 8, "vms": 40,
        "imbalance_after_4_moves": round(four.expected_imbalance, 4),
        "optimum_with_4_moves": round(optimum.imbalance, 4),
        "ratio": round(four.expected_imbalance / optimum.imbalance, 4),
        "moves_to_target": len(reach.moves),
        "fewest_moves_to_target": None if fewest is None else fewest.moves,
    }


def bench_drs_plan(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scale in args.scales.split(","):
        hosts, vms = (int(part) for part in scale.lower().split("x"))
        results[f"{hosts}_hosts_{vms}_vms"] = bench_scale(hosts, vms, args)
    results["vs_optimum"] = bench_vs_optimum(args.seed)
    return results
