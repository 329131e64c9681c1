"""A simulated datacenter with short KubeVirt timings, and helpers to drive it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.harness import DevCluster, start_devcluster

T = TypeVar("T")

FAST_TIMINGS = (
    "--virt-handler-heartbeat-seconds", "1", "--virt-handler-timeout-seconds", "6",
    "--node-grace-seconds", "4", "--node-status-seconds", "1", "--node-monitor-seconds", "1",
    "--pod-gc-seconds", "1", "--migration-seconds", "0.5", "--import-seconds", "1",
    "--vmi-start-seconds", "0.2",
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """One simulated datacenter (3 hosts) per test module."""
    started = start_devcluster(tmp_path_factory.mktemp("kubevirt"), *FAST_TIMINGS)
    try:
        wait_for(lambda: started.kubectl("get", "kubevirt", "-n", "kubevirt", "kubevirt",
                                         check=False).returncode == 0, timeout=60)
        yield started
    finally:
        started.stop()


def wait_for(check: Callable[[], T | None], timeout: float = 30.0,
             message: str = "condition", interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy (the user's `kubectl get` loop)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def get(cluster: DevCluster, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return {}
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            found: dict[str, Any] = item
            return found
    return {}


def apply(cluster: DevCluster, manifest: str, namespace: str = "default") -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest)


def subresource(cluster: DevCluster, kind: str, name: str, action: str,
                body: dict[str, Any] | None = None, namespace: str = "default") -> int:
    """PUT a subresources.kubevirt.io action as virtctl does; returns the HTTP status."""
    client = cluster.api_client()
    path = (f"/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/{kind}/{name}/"
            f"{action}")
    try:
        method, url, headers, payload, _ = client.param_serialize(
            "PUT", path, header_params={"Content-Type": "application/json"},
            body=body or {}, auth_settings=["BearerToken"])
        response = client.call_api(method, url, headers, payload)
        return int(response.status)
    finally:
        client.close()


def vm_manifest(name: str, *, run_strategy: str = "Always", sockets: int = 1,
                guest: str = "1Gi", extra_spec: str = "") -> str:
    return f"""
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  runStrategy: {run_strategy}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      evictionStrategy: LiveMigrate
      domain:
        cpu:
          sockets: {sockets}
        devices:
          interfaces:
          - name: default
            masquerade: {{}}
        memory:
          guest: {guest}
      networks:
      - name: default
        pod: {{}}
{extra_spec}
"""


