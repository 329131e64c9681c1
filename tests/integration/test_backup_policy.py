"""BackupPolicy driven with kubectl and `vdcos backup run` against `vdcos up`: runs take one
snapshot per selected VM and the retention keeps exactly what it says; a schedule with
seconds runs by itself; bad input is refused naming the field."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, get_json, wait
from tests.integration.test_snapshots import ready_snapshot, shared_policy, vm, wait_running

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

__all__ = ["shared_policy"]  # the module fixture: the StoragePolicy the VMs' disks use


def policy(name: str, schedule: str, retention: str, selector: str = "backup: nightly") -> str:
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: BackupPolicy
metadata:
  name: {name}
spec:
  schedule: "{schedule}"
  virtualMachineSelector:
    matchLabels: {{{selector}}}
  retention: {{{retention}}}
"""


def labelled_vm(name: str, label: str = "nightly") -> str:
    return vm(name).replace(f"  name: {name}\n",
                            f"  name: {name}\n  labels:\n    backup: {label}\n", 1)


def backup_run(cluster: DevCluster, namespace: str, name: str) -> str:
    """`vdcos backup run`, then the wait for the run it asked for."""
    result = subprocess.run(
        [sys.executable, "-m", "controllers.cli", "backup", "run", name, "-n", namespace,
         "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, check=True, timeout=60)
    token = result.stdout.strip().splitlines()[-1]
    wait(cluster, f"--for=jsonpath={{.status.lastRunToken}}={token}", f"bp/{name}", "-n",
         namespace)
    return token


def snapshots_of(cluster: DevCluster, namespace: str, policy_name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(
        cluster, "vdcsnap", "-n", namespace, "-l", f"vdcos.io/backup-policy={policy_name}"
    )["items"]
    return sorted(items, key=lambda s: s["metadata"]["name"])


def watch_policy(cluster: DevCluster, namespace: str, name: str,
                 done: Callable[[dict[str, Any]], bool], timeout: int = 60) -> dict[str, Any]:
    """The policy's status once `done(status)` holds, following its changes with a watch."""
    from kubernetes import client, watch

    api = client.CustomObjectsApi(cluster.api_client())
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        api.list_namespaced_custom_object, "vdcos.io", "v1alpha1", namespace,
        "backuppolicies", field_selector=f"metadata.name={name}", timeout_seconds=timeout)
    for event in stream:
        status: dict[str, Any] = event["object"].get("status") or {}
        if done(status):
            return status
    raise AssertionError(f"backuppolicy {name}: not reached in {timeout}s")


def test_runs_keep_exactly_what_the_retention_says(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, labelled_vm("web"), namespace)
    apply_yaml(datacenter, labelled_vm("scratch", "never"), namespace)
    wait_running(datacenter, namespace, "web")
    # Once a year: the runs of this test are the ones `vdcos backup run` asks for.
    apply_yaml(datacenter, policy("nightly", "0 0 1 1 *", "keepLast: 2, keepDaily: 1"),
               namespace)
    wait(datacenter, "--for=condition=Ready", "bp/nightly", "-n", namespace)

    taken: list[str] = []
    for run in range(4):
        backup_run(datacenter, namespace, "nightly")
        names = [s["metadata"]["name"] for s in snapshots_of(datacenter, namespace, "nightly")]
        new = [name for name in names if name not in taken]
        assert len(new) == 1 and new[0].startswith("web-nightly-"), (run, [
            (s["metadata"]["name"], s.get("status"))
            for s in snapshots_of(datacenter, namespace, "nightly")])
        ready_snapshot(datacenter, namespace, new[0])
        taken.append(new[0])
        # keepLast 2 (keepDaily 1 keeps today's newest, one of those): the two newest.
        wait(datacenter, f"--for=jsonpath={{.status.virtualMachines[0].kept}}="
                         f"{min(run + 1, 2)}", "bp/nightly", "-n", namespace)
        if run >= 2:
            wait(datacenter, "--for=delete", f"vdcsnap/{taken[run - 2]}", "-n", namespace)
        names = [s["metadata"]["name"] for s in snapshots_of(datacenter, namespace, "nightly")]
        assert names == sorted(taken[-2:]), (run, names)

    status = get_json(datacenter, "bp", "nightly", "-n", namespace)["status"]
    assert [(b["name"], b["result"], b["snapshotName"]) for b in status["virtualMachines"]] == [
        ("web", "Succeeded", taken[-1])]
    assert status["lastBackupTime"] and status["nextBackupTime"].endswith("-01-01T00:00:00Z")
    snapshot = get_json(datacenter, "vdcsnap", taken[-1], "-n", namespace)
    assert snapshot["spec"]["virtualMachineName"] == "web"
    assert snapshot["metadata"]["labels"]["vdcos.io/backup-vm"] == "web"


def test_a_schedule_with_seconds_runs_by_itself(datacenter: DevCluster, namespace: str) -> None:
    apply_yaml(datacenter, labelled_vm("db"), namespace)
    wait_running(datacenter, namespace, "db")
    apply_yaml(datacenter, policy("often", "* * * * * */5", "keepLast: 1"), namespace)
    wait(datacenter, "--for=jsonpath={.status.virtualMachines[0].result}=Succeeded",
         "bp/often", "-n", namespace, timeout=60)
    seen: set[str] = set()

    def two_runs(status: dict[str, Any]) -> bool:
        seen.add(str(status.get("lastBackupTime")))
        return len(seen - {"None"}) >= 2

    watch_policy(datacenter, namespace, "often", two_runs)
    datacenter.kubectl("patch", "bp", "often", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"suspend":true}}')
    suspended = watch_policy(datacenter, namespace, "often", lambda status: (
        "nextBackupTime" not in status and bool(status.get("virtualMachines"))
        and status["virtualMachines"][0]["result"] == "Succeeded"
        and status["virtualMachines"][0]["kept"] == 1))
    # keepLast 1: once the run in flight is done, only its snapshot remains.
    newest = suspended["virtualMachines"][0]["snapshotName"]
    ready_snapshot(datacenter, namespace, newest)
    for other in snapshots_of(datacenter, namespace, "often"):
        if other["metadata"]["name"] != newest:
            wait(datacenter, "--for=delete", f"vdcsnap/{other['metadata']['name']}", "-n",
                 namespace)
    assert [s["metadata"]["name"] for s in snapshots_of(datacenter, namespace, "often")] == [
        newest]


def test_a_schedule_that_does_not_parse_is_refused_naming_the_field(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, policy("bad", "61 * * * *", "keepLast: 1"), namespace)
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=InvalidSpec", "bp/bad", "-n", namespace)
    ready = next(c for c in get_json(datacenter, "bp", "bad", "-n", namespace)["status"][
        "conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["message"].startswith("spec.schedule: ") and "61 * * * *" in ready["message"]

    shapeless = apply_yaml(datacenter, policy("words", "every night", "keepLast: 1"),
                           namespace, check=False)
    assert shapeless.returncode != 0 and "spec.schedule" in shapeless.stderr


def test_a_retention_that_keeps_nothing_is_refused_by_the_schema(
    datacenter: DevCluster, namespace: str
) -> None:
    result = apply_yaml(datacenter, policy("nothing", "@daily", "keepLast: 0"), namespace,
                        check=False)
    assert result.returncode != 0
    assert "spec.retention" in result.stderr and "keeps nothing" in result.stderr


def test_a_backup_in_progress_does_not_hold_a_power_change(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, labelled_vm("app"), namespace)
    wait_running(datacenter, namespace, "app")
    apply_yaml(datacenter, policy("nightly", "0 0 1 1 *", "keepLast: 3"), namespace)
    backup_run(datacenter, namespace, "nightly")
    datacenter.kubectl("patch", "vdcvm", "app", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"PoweredOff"}}')
    wait(datacenter, "--for=jsonpath={.status.powerState}=PoweredOff", "vdcvm/app", "-n",
         namespace)
    [taken] = snapshots_of(datacenter, namespace, "nightly")
    ready_snapshot(datacenter, namespace, taken["metadata"]["name"])
    datacenter.kubectl("patch", "vdcvm", "app", "-n", namespace, "--type", "merge",
                       "-p", '{"spec":{"powerState":"PoweredOn"}}')
    wait_running(datacenter, namespace, "app")
