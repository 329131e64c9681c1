"""DRS end to end: kubectl and `vdcos drs` against `vdcos up` (API server, hosts, operator).

VM load is set as a user of the embedded datacenter sets it: `kubectl annotate vmi` with
`sim.vdcos.io/cpu-usage` / `memory-usage`, which metrics.k8s.io then reports (as `kubectl top
pods` shows). A pass is asked for with `vdcos drs run` instead of waiting intervalSeconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import EXAMPLES, REPO, apply_yaml, get_json, start_vdcos_up, wait

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

HOSTS = 4


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Four hosts of 8 cores and 32Gi: a few busy VMs make a clear imbalance."""
    cluster = start_vdcos_up(
        tmp_path_factory.mktemp("vdcos-up-drs"),
        "--hosts", str(HOSTS), "--host-cpu", "8", "--host-memory", "32Gi",
        "--node-status-seconds", "1", "--migration-seconds", "0.5",
    )
    yield cluster
    cluster.stop()


def vdcos(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "controllers.cli", *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, f"vdcos {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def compute_cluster(name: str, level: str, *, rules: str = "", threshold: int = 3) -> str:
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata:
  name: {name}
spec:
  hostSelector:
    matchLabels:
      kubernetes.io/os: linux
  drs:
    enabled: true
    automationLevel: {level}
    migrationThreshold: {threshold}
    intervalSeconds: 3600
{rules}
"""


def vm(name: str, cluster: str, labels: dict[str, str] | None = None) -> str:
    label_lines = "".join(f"\n    {key}: {value}" for key, value in (labels or {}).items())
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
  labels:
    drs-test: "true"{label_lines}
spec:
  clusterName: {cluster}
  cpu:
    count: 1
  memory:
    size: 1Gi
"""


def start_vms(cluster: DevCluster, namespace: str, names: list[str], cluster_name: str,
              labels: dict[str, str] | None = None) -> None:
    apply_yaml(cluster, "---".join(vm(name, cluster_name, labels) for name in names), namespace)
    wait(cluster, "--for=condition=Ready", "vdcvm", *names, "-n", namespace, timeout=120)


def hosts_of(cluster: DevCluster, namespace: str) -> dict[str, str]:
    """VM name -> the host its VMI runs on."""
    vmis = get_json(cluster, "vmi", "-n", namespace)["items"]
    return {vmi["metadata"]["name"]: vmi["status"]["nodeName"] for vmi in vmis}


def set_load(cluster: DevCluster, namespace: str, name: str, cpu: str, memory: str) -> None:
    cluster.kubectl("annotate", "--overwrite", "vmi", name, "-n", namespace,
                    f"sim.vdcos.io/cpu-usage={cpu}", f"sim.vdcos.io/memory-usage={memory}")


def drs_status(cluster: DevCluster, name: str) -> dict[str, Any]:
    status: dict[str, Any] = get_json(cluster, "cc", name)["status"]
    return status


def run_pass(cluster: DevCluster, name: str) -> dict[str, Any]:
    """Asks for a pass (`vdcos drs run`) and returns the status it wrote."""
    token = vdcos(cluster, "drs", "run", name).stdout.split()[-1]
    try:
        wait(cluster, f"--for=jsonpath={{.status.drs.lastRequest}}={token}", f"cc/{name}")
    except AssertionError:
        raise AssertionError(f"{token}: {get_json(cluster, 'cc', name)}") from None
    return drs_status(cluster, name)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(dict(c) for c in status.get("conditions", []) if c["type"] == kind)


def skew(cluster: DevCluster, namespace: str) -> str:
    """Makes every VM on the busiest host heavy (1.5 of its 8 cores and 6 of its 32Gi each);
    returns that host."""
    placement = hosts_of(cluster, namespace)
    by_host: dict[str, list[str]] = {}
    for name, host in sorted(placement.items()):
        by_host.setdefault(host, []).append(name)
    busiest = max(sorted(by_host), key=lambda host: len(by_host[host]))
    for name in by_host[busiest]:
        set_load(cluster, namespace, name, "1.5", "6Gi")
    return busiest


def test_manual_only_recommends_and_drs_apply_applies(datacenter: DevCluster,
                                                      namespace: str) -> None:
    apply_yaml(datacenter, compute_cluster("manual", "Manual"))
    names = [f"m{index}" for index in range(2 * HOSTS)]
    start_vms(datacenter, namespace, names, "manual")
    busiest = skew(datacenter, namespace)

    status = run_pass(datacenter, "manual")
    drs = status["drs"]
    assert float(drs["imbalance"]) > float(drs["targetImbalance"]), drs
    assert drs["targetImbalance"] == "0.100"  # 0.1 * (5 - 3) / sqrt(4)
    assert condition(status, "Balanced")["status"] == "False"
    recommendations = drs["recommendations"]
    assert recommendations, drs
    first = recommendations[0]
    assert first["reason"] == "Balance"
    assert first["sourceHost"] == busiest
    assert first["targetHost"] != busiest
    assert float(first["expectedImbalance"]) < float(drs["imbalance"])
    assert first["migration"]["kind"] == "VirtualMachineMigration"
    assert first["migration"]["spec"] == {"virtualMachineName": first["virtualMachine"]["name"],
                                          "targetHost": first["targetHost"]}
    # Manual: nothing moved.
    assert get_json(datacenter, "vdcvmm", "-n", namespace)["items"] == []

    applied = vdcos(datacenter, "drs", "apply", "manual")
    assert "virtualmachinemigration.vdcos.io/" in applied.stdout
    migrations = get_json(datacenter, "vdcvmm", "-n", namespace)["items"]
    assert len(migrations) == len(recommendations)
    assert {m["metadata"]["labels"]["vdcos.io/requested-by"] for m in migrations} == {"drs"}
    assert {(m["spec"]["virtualMachineName"], m["spec"]["targetHost"]) for m in migrations} == {
        (r["virtualMachine"]["name"], r["targetHost"]) for r in recommendations}
    reasons = [m["metadata"]["annotations"]["vdcos.io/drs-reason"] for m in migrations]
    assert all(reason.startswith("balance, imbalance ") for reason in reasons), reasons


def test_status_columns(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, compute_cluster("columns", "Manual"))
    start_vms(datacenter, namespace, ["c0", "c1"], "columns")
    set_load(datacenter, namespace, "c0", "4", "8Gi")
    status = run_pass(datacenter, "columns")
    table = datacenter.kubectl("get", "cc", "columns", "-o", "wide").stdout.splitlines()
    header = table[0].split()
    for column in ("HOSTS", "READY", "ALLOC%", "USE%", "IMBALANCE", "DRS", "TARGET"):
        assert column in header, table
    row = table[1]
    assert status["drs"]["imbalance"] in row
    assert "Manual" in row and status["drs"]["targetImbalance"] in row
    assert f" {HOSTS} " in row
    narrow = datacenter.kubectl("get", "cc", "columns").stdout.splitlines()[0]
    assert "IMBALANCE" in narrow and "TARGET" not in narrow
    # Use is what metrics.k8s.io measures (kubectl top): c0's 4 of the 32 cores, 8Gi of 128Gi
    # (c1 idles, and counts at its requests: 100m, about 1Gi).
    usage = status["drs"]["usagePercent"]
    assert usage["cpu"] == 12 and usage["memory"] in (6, 7), usage
    host = hosts_of(datacenter, namespace)["c0"]
    loads = {entry["name"]: entry for entry in status["drs"]["hostLoads"]}
    assert float(loads[host]["cpu"]) >= 0.5, loads
    assert f"{usage['cpu']}" in row


def wait_migrations_done(cluster: DevCluster, namespace: str) -> list[dict[str, Any]]:
    """Every VirtualMachineMigration of the namespace, once each has finished."""
    migrations: list[dict[str, Any]] = get_json(cluster, "vdcvmm", "-n", namespace)["items"]
    for migration in migrations:
        wait(cluster, "--for=jsonpath={.status.phase}=Succeeded",
             f"vdcvmm/{migration['metadata']['name']}", "-n", namespace, timeout=90)
    done: list[dict[str, Any]] = get_json(cluster, "vdcvmm", "-n", namespace)["items"]
    return done


def events_of_vm(cluster: DevCluster, namespace: str, name: str) -> list[str]:
    events = get_json(cluster, "events", "-n", namespace,
                      f"--field-selector=involvedObject.name={name},"
                      "involvedObject.kind=VirtualMachine")["items"]
    return [e["message"] for e in events
            if e["involvedObject"].get("apiVersion", "").startswith("vdcos.io")]


def test_fully_automated_balances_skewed_load_within_three_passes(
        datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, compute_cluster("auto", "FullyAutomated"))
    # Four VMs a host: the heavy ones can be spread one a host, which meets the target.
    names = [f"a{index}" for index in range(4 * HOSTS)]
    start_vms(datacenter, namespace, names, "auto")
    busiest = skew(datacenter, namespace)

    passes = 0
    status = drs_status(datacenter, "auto")
    while passes < 3:
        status = run_pass(datacenter, "auto")
        passes += 1
        if condition(status, "Balanced")["status"] == "True":
            break
        wait_migrations_done(datacenter, namespace)
    drs = status["drs"]
    assert condition(status, "Balanced")["status"] == "True", (passes, drs)
    assert float(drs["imbalance"]) <= float(drs["targetImbalance"])
    migrations = get_json(datacenter, "vdcvmm", "-n", namespace)["items"]
    assert migrations, "balancing moved nothing"
    assert all(m["metadata"]["labels"]["vdcos.io/requested-by"] == "drs" for m in migrations)
    assert busiest in {m["status"]["sourceHost"] for m in migrations}, migrations
    # Each move is told on its VM, with the reason and the imbalance before and after.
    moved = migrations[0]
    messages = events_of_vm(datacenter, namespace, moved["spec"]["virtualMachineName"])
    expected = (f"Migrated by DRS from {moved['status']['sourceHost']} to "
                f"{moved['status']['targetHost']}: balance, imbalance ")
    assert any(message.startswith(expected) for message in messages), messages
    # Under unchanged load the next pass moves nothing.
    again = run_pass(datacenter, "auto")
    assert again["drs"]["recommendations"] == []
    assert len(get_json(datacenter, "vdcvmm", "-n", namespace)["items"]) == len(migrations)


def co_locate(cluster: DevCluster, namespace: str, names: list[str], cluster_name: str,
              labels: dict[str, str]) -> str:
    """Starts the VMs on one host (the others cordoned meanwhile); returns that host."""
    hosts = [f"host-{index}" for index in range(1, HOSTS + 1)]
    cluster.kubectl("cordon", *hosts[1:])
    try:
        start_vms(cluster, namespace, names, cluster_name, labels)
    finally:
        cluster.kubectl("uncordon", *hosts[1:])
    placement = hosts_of(cluster, namespace)
    assert {placement[name] for name in names} == {hosts[0]}, placement
    return hosts[0]


def rule_status(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(dict(rule) for rule in status.get("rules", []) if rule["name"] == name)


@pytest.mark.parametrize("enforcement", ["Required", "Preferred"])
def test_separation_rule_added_to_co_located_vms_is_repaired(
        datacenter: DevCluster, namespace: str, enforcement: str) -> None:
    name = f"apart-{enforcement.lower()}"
    apply_yaml(datacenter, compute_cluster(name, "FullyAutomated"))
    co_locate(datacenter, namespace, ["p0", "p1"], name, {"app": f"pair-{enforcement.lower()}"})
    apply_yaml(datacenter, compute_cluster(name, "FullyAutomated", rules=f"""
  rules:
    - name: pair-apart
      type: SeparateVirtualMachines
      enforcement: {enforcement}
      virtualMachineSelector:
        matchLabels:
          app: pair-{enforcement.lower()}
"""))
    status = run_pass(datacenter, name)
    broken = rule_status(status, "pair-apart")
    assert not broken["satisfied"]
    assert sorted(broken["violatingVirtualMachines"])
    recommendation = status["drs"]["recommendations"][0]
    assert recommendation["reason"] == "RuleViolation"
    assert recommendation["rule"] == "pair-apart"
    expected_priority = 1 if enforcement == "Required" else 2
    assert recommendation["priority"] == expected_priority
    wait_migrations_done(datacenter, namespace)
    placement = hosts_of(datacenter, namespace)
    assert placement["p0"] != placement["p1"], placement
    repaired = run_pass(datacenter, name)
    assert rule_status(repaired, "pair-apart")["satisfied"] is True
    # The broken rule was announced once on the cluster.
    events = get_json(datacenter, "events", f"--field-selector=involvedObject.name={name}",
                      "-A")["items"]
    assert [e["reason"] for e in events if e["reason"] == "RuleViolated"] == ["RuleViolated"]
    # The KubeVirt VMs now carry the rule as anti-affinity, for their next start.
    template = get_json(datacenter, "vm", "p0", "-n", namespace)["spec"]["template"]
    anti = template["spec"]["affinity"]["podAntiAffinity"]
    mode = ("requiredDuringSchedulingIgnoredDuringExecution" if enforcement == "Required"
            else "preferredDuringSchedulingIgnoredDuringExecution")
    assert mode in anti, anti
    assert template["metadata"]["labels"]["vdcos.io/rule.pair-apart"] == name


def test_preferred_keep_together_is_kept_while_balancing(datacenter: DevCluster,
                                                         namespace: str) -> None:
    rules = """
  rules:
    - name: pair-together
      type: KeepTogether
      enforcement: Preferred
      virtualMachineSelector:
        matchLabels:
          app: together
"""
    apply_yaml(datacenter, compute_cluster("keep", "FullyAutomated", rules=rules))
    host = co_locate(datacenter, namespace, ["k0", "k1"], "keep", {"app": "together"})
    others = [f"o{index}" for index in range(HOSTS)]
    start_vms(datacenter, namespace, others, "keep")
    # The pair's host is the busy one: balancing would like to move one of them.
    for vm_name in ("k0", "k1"):
        set_load(datacenter, namespace, vm_name, "2", "8Gi")
    for vm_name, vm_host in hosts_of(datacenter, namespace).items():
        if vm_host == host and vm_name in others:
            set_load(datacenter, namespace, vm_name, "1", "4Gi")
    status = run_pass(datacenter, "keep")
    assert rule_status(status, "pair-together")["satisfied"] is True
    wait_migrations_done(datacenter, namespace)
    placement = hosts_of(datacenter, namespace)
    assert placement["k0"] == placement["k1"], placement
    after = run_pass(datacenter, "keep")
    assert rule_status(after, "pair-together")["satisfied"] is True
    moved = {m["spec"]["virtualMachineName"]
             for m in get_json(datacenter, "vdcvmm", "-n", namespace)["items"]}
    assert moved, "the busy host was not relieved"
    assert moved.isdisjoint({"k0", "k1"}) or placement["k0"] == placement["k1"]


def test_the_examples_keep_their_rule(datacenter: DevCluster, namespace: str) -> None:
    datacenter.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    wait(datacenter, "--for=condition=Ready", "vdcvm", "web-01", "db-01", "-n", namespace,
         timeout=120)
    status = run_pass(datacenter, "production")
    rule = rule_status(status, "web-and-db-apart")
    assert (rule["satisfied"], rule["violatingVirtualMachines"], rule["disabled"]) == (
        True, [], False), rule
    placement = hosts_of(datacenter, namespace)
    assert placement["web-01"] != placement["db-01"], placement
    # Balanced or not is the load's business; the rule is not what holds it back.
    assert condition(status, "Balanced")["reason"] != "RuleViolated"
