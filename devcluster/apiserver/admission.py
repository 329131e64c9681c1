"""What kube-apiserver's defaulting and built-in admission plugins do to new built-in objects."""

from __future__ import annotations

import base64
import ipaddress
import itertools
from typing import Any

from .resources import ResourceType

_DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


class ClusterIPAllocator:
    """Hands out Service cluster IPs from 10.96.0.0/12, as kind's default service CIDR."""

    def __init__(self) -> None:
        self._network = ipaddress.ip_network("10.96.0.0/12")
        self._next = itertools.count(10)
        self.used: set[str] = set()

    def allocate(self) -> str:
        while True:
            address = str(self._network[next(self._next)])
            if address not in self.used:
                self.used.add(address)
                return address


def default_new_object(
    resource: ResourceType, obj: dict[str, Any], cluster_ips: ClusterIPAllocator
) -> dict[str, Any]:
    """Defaults for a built-in object on create. `obj` is a fresh copy the caller owns."""
    kind = (resource.group, resource.kind)
    if kind == ("", "Namespace"):
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    elif kind == ("", "Pod"):
        _default_pod(obj)
    elif kind == ("", "Service"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None" and not spec.get("clusterIP"):
            spec["clusterIP"] = cluster_ips.allocate()
            spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == ("", "PersistentVolumeClaim"):
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}
    elif kind == ("", "PersistentVolume"):
        obj.setdefault("spec", {}).setdefault("persistentVolumeReclaimPolicy", "Retain")
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Available"}
    elif kind == ("", "Secret"):
        obj.setdefault("type", "Opaque")
    elif kind == ("storage.k8s.io", "StorageClass"):
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif kind == ("", "Node"):
        obj.setdefault("spec", {})
        obj.setdefault("status", {})
    elif kind == ("apps", "Deployment"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        obj.setdefault("status", {})
    return obj


def _default_pod(pod: dict[str, Any]) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault("securityContext", {})
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    tolerations = spec.setdefault("tolerations", [])
    # The DefaultTolerationSeconds admission plugin: tolerate not-ready/unreachable for 300 s.
    for default in _DEFAULT_TOLERATIONS:
        if not any(
            t.get("key") == default["key"] and t.get("effect") in (None, "", "NoExecute")
            for t in tolerations
        ):
            tolerations.append(dict(default))
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers", [])
    requests_any = False
    guaranteed = bool(containers)
    for container in containers:
        resources = container.get("resources", {})
        requests = resources.get("requests", {})
        limits = resources.get("limits", {})
        if requests or limits:
            requests_any = True
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits.get(name)) != limits.get(name):
                guaranteed = False
    if guaranteed:
        return "Guaranteed"
    return "Burstable" if requests_any else "BestEffort"


def fold_secret_string_data(secret: dict[str, Any]) -> dict[str, Any]:
    """Secret.stringData is write-only: its entries go base64-encoded into `data` on every write
    (they win over `data` entries of the same key) and it is never stored."""
    string_data = secret.get("stringData")
    if not isinstance(string_data, dict):
        return secret
    folded = {key: value for key, value in secret.items() if key != "stringData"}
    data = dict(secret.get("data") or {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    folded["data"] = data
    return folded
