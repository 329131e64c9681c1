"""What the HA controller reads, reduced to what it needs: Node Leases, hosts with their
taints and power annotations, and the launcher pods bound to each host."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Final

from controllers.common.controller import CacheSpec
from controllers.hostfailure.fencing import POWER_ANNOTATIONS
from kubekit.resources import LEASES, NODES, PODS

LEASE_NAMESPACE: Final = "kube-node-lease"


def _lease_entry(body: Mapping[str, Any]) -> dict[Hashable, str | None]:
    metadata = body.get("metadata") or {}
    if metadata.get("namespace") != LEASE_NAMESPACE:
        return {}
    return {str(metadata.get("name")): (body.get("spec") or {}).get("renewTime")}


def slim_ha_node(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    annotations = metadata.get("annotations") or {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": metadata.get("name"),
            "uid": metadata.get("uid"),
            "labels": dict(metadata.get("labels") or {}),
            "annotations": {key: annotations[key] for key in POWER_ANNOTATIONS
                            if key in annotations},
        },
        "spec": {
            "taints": list((body.get("spec") or {}).get("taints") or []),
            "unschedulable": bool((body.get("spec") or {}).get("unschedulable")),
        },
        "status": {
            "allocatable": dict(status.get("allocatable") or {}),
            "conditions": [
                {"type": "Ready", "status": item.get("status")}
                for item in status.get("conditions") or []
                if item.get("type") == "Ready"
            ],
        },
    }


def _launcher_entry(body: Mapping[str, Any]) -> dict[Hashable, dict[str, Any]]:
    metadata = body.get("metadata") or {}
    node = (body.get("spec") or {}).get("nodeName")
    vmi = next(
        (ref.get("name") for ref in metadata.get("ownerReferences") or []
         if ref.get("kind") == "VirtualMachineInstance"),
        None,
    )
    if not node or vmi is None:
        return {}
    return {
        str(node): {
            "namespace": metadata.get("namespace"),
            "name": metadata.get("name"),
            "vmi": vmi,
            "terminating": bool(metadata.get("deletionTimestamp")),
        }
    }


#: renewTime of each Node's Lease, by node name.
NODE_LEASES: Final = CacheSpec[str | None]("ha_node_leases", LEASES, _lease_entry)
#: Hosts as HA reads them (taints and power annotations too).
HA_NODES: Final = CacheSpec[dict[str, Any]](
    "ha_nodes", NODES, lambda body: {str((body.get("metadata") or {}).get("name")):
                                     slim_ha_node(body)}
)
#: KubeVirt launcher pods by the host they are bound to.
LAUNCHER_PODS_BY_NODE: Final = CacheSpec[dict[str, Any]](
    "ha_launcher_pods", PODS, _launcher_entry, labels={"kubevirt.io": "virt-launcher"}
)
