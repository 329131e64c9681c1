"""devcluster's fault API (/debug/devcluster/faults, devcluster/apiserver/faults.py) from tests."""

from __future__ import annotations

import json
import ssl
import urllib.request
from typing import Any

from tests.harness import DevCluster

FAULTS_PATH = "/debug/devcluster/faults"


def _call(cluster: DevCluster, method: str, body: Any = None) -> dict[str, Any]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(
        cluster.url + FAULTS_PATH, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {cluster.token}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found


def get_faults(cluster: DevCluster) -> dict[str, Any]:
    """{"settings": ..., "injected": {"409": n, ...}, "watchCuts": n}"""
    return _call(cluster, "GET")


def put_faults(cluster: DevCluster, settings: dict[str, Any]) -> dict[str, Any]:
    return _call(cluster, "PUT", settings)
