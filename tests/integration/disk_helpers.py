"""What the disk tests (test_vm_disks.py, test_storage_vmotion.py) share: VMs with disks,
policies, and kubectl reads of where each disk is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from tests.harness import DevCluster
from tests.integration.conftest import get_json

T = TypeVar("T")


def vm_with_disks(name: str, disks: str, power: str = "PoweredOn") -> str:
    """A VM (pod network only) with the given `disks:` entries."""
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  powerState: {power}
  cpu:
    count: 1
  memory:
    size: 1Gi
  disks:
{disks}
"""


def disk(name: str, policy: str, size: str = "1Gi") -> str:
    return f"""  - name: {name}
    size: {size}
    storagePolicyName: {policy}
"""


def policy(name: str, spec: str) -> str:
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: {name}
spec:
{spec}
"""


def poll(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Reads with kubectl until `check` answers (a user's `kubectl get` loop)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def get_or_none(cluster: DevCluster, *args: str) -> Any:
    found = cluster.kubectl("get", *args, "-o", "json", check=False)
    if found.returncode != 0:
        return None
    return get_json(cluster, *args)


def vmi_volume(cluster: DevCluster, namespace: str, vm: str, volume: str) -> dict[str, Any]:
    vmi = get_or_none(cluster, "vmi", vm, "-n", namespace) or {}
    for entry in (vmi.get("status") or {}).get("volumeStatus") or []:
        if entry.get("name") == volume:
            found: dict[str, Any] = entry
            return found
    return {}


def disk_status(cluster: DevCluster, namespace: str, vm: str, name: str) -> dict[str, Any]:
    body = get_json(cluster, "vdcvm", vm, "-n", namespace)
    for entry in (body.get("status") or {}).get("disks") or []:
        if entry.get("name") == name:
            found: dict[str, Any] = entry
            return found
    return {}


def vdc_condition(cluster: DevCluster, kind: str, name: str, condition_type: str,
                  namespace: str | None = None) -> dict[str, Any]:
    args = [kind, name, *(["-n", namespace] if namespace else [])]
    for entry in (get_json(cluster, *args).get("status") or {}).get("conditions") or []:
        if entry.get("type") == condition_type:
            found: dict[str, Any] = entry
            return found
    return {}


def vmi_uid(cluster: DevCluster, namespace: str, vm: str) -> str:
    return str(get_json(cluster, "vmi", vm, "-n", namespace)["metadata"]["uid"])
