"""Small helpers for the simulation's integration tests (kubectl in, JSON out)."""

from __future__ import annotations

import json
from typing import Any

from tests.harness import DevCluster


def get_json(cluster: DevCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def apply(cluster: DevCluster, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=manifest)


def busybox_pod(name: str, *, spec_extra: str = "", cpu: str = "100m") -> str:
    """A plain busybox Pod manifest, as a user would write it."""
    return f"""
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
    resources:
      requests: {{cpu: "{cpu}", memory: 64Mi}}
{spec_extra}
"""


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_]
    assert found, f"no {type_} condition in {obj.get('status')}"
    return dict(found[0])
