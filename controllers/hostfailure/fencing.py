"""Fencing: making a failed host safe before any of its VMs runs elsewhere.

One interface (`Fencer`), one class per `spec.ha.fencing.method`; another method (a BMC over
Redfish) is one more class. `fence` is called on every pass until it reports the host
fenced; `unfence` when the host is back.

- FenceAgentsRemediation: a medik8s FenceAgentsRemediation for the node; fenced when its
  Succeeded condition is True (its controller has powered the host off and tainted it).
- OutOfServiceTaint: someone else powers the host off; once its power is known off (the
  Node annotation `vdcos.io/power: "off"`, or the simulation's `sim.vdcos.io/power`), HA
  taints it `node.kubernetes.io/out-of-service`.
- None: an admin fences the host; HA waits for the out-of-service taint and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from controllers.common.kube import KubeClient, KubeError
from controllers.computecluster.ha_models import Fencing
from controllers.hostfailure.far import (
    FENCE_AGENTS_REMEDIATIONS,
    build_remediation,
    remediation_progress,
)
from kubekit.resources import NODES

OUT_OF_SERVICE_TAINT: Final = "node.kubernetes.io/out-of-service"
#: Annotations that say a host's power is off (an admin's or a tool's; the simulation's).
POWER_ANNOTATIONS: Final = ("vdcos.io/power", "sim.vdcos.io/power")


@dataclass(frozen=True)
class FenceProgress:
    fenced: bool
    message: str
    #: True when a person has to act (status and the cluster's condition say so).
    awaiting_admin: bool = False


def has_out_of_service_taint(node: Mapping[str, Any]) -> bool:
    return any(taint.get("key") == OUT_OF_SERVICE_TAINT for taint in node_taints(node))


def node_taints(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((node.get("spec") or {}).get("taints") or [])


def power_known_off(node: Mapping[str, Any]) -> bool:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return any(str(annotations.get(key, "")).lower() == "off" for key in POWER_ANNOTATIONS)


def taints_with_out_of_service(taints: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    kept = [dict(taint) for taint in taints if taint.get("key") != OUT_OF_SERVICE_TAINT]
    return [*kept, {"key": OUT_OF_SERVICE_TAINT, "value": "nodeshutdown", "effect": "NoExecute"}]


def taints_without_out_of_service(taints: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(taint) for taint in taints if taint.get("key") != OUT_OF_SERVICE_TAINT]


class Fencer(Protocol):
    async def fence(self, node: Mapping[str, Any]) -> FenceProgress: ...

    async def unfence(self, node: Mapping[str, Any]) -> None: ...


class _TaintRemoval:
    kube: KubeClient

    async def remove_taint(self, node: Mapping[str, Any]) -> None:
        if not has_out_of_service_taint(node):
            return
        taints = taints_without_out_of_service(node_taints(node))
        try:
            await self.kube.patch(NODES, None, node["metadata"]["name"],
                                  {"spec": {"taints": taints or None}})
        except KubeError as error:
            if error.status != 404:
                raise


class FenceAgentsRemediationFencer:
    def __init__(self, kube: KubeClient, cluster: str, fencing: Fencing) -> None:
        self.kube = kube
        self.cluster = cluster
        self.fencing = fencing

    async def fence(self, node: Mapping[str, Any]) -> FenceProgress:
        host = str(node["metadata"]["name"])
        remediation = await self.kube.get(FENCE_AGENTS_REMEDIATIONS, self.fencing.namespace, host)
        if remediation is None:
            try:
                remediation = await self.kube.create(
                    FENCE_AGENTS_REMEDIATIONS, build_remediation(host, self.cluster, self.fencing)
                )
            except KubeError as error:
                if error.status == 404:
                    return FenceProgress(
                        False,
                        "the FenceAgentsRemediation CRD (medik8s) is not installed; install "
                        "it or set spec.ha.fencing.method",
                        awaiting_admin=True,
                    )
                if error.status != 409:
                    raise
        fenced, message = remediation_progress(remediation)
        return FenceProgress(fenced, message)

    async def unfence(self, node: Mapping[str, Any]) -> None:
        host = str(node["metadata"]["name"])
        # Its controller removes the out-of-service and NoSchedule taints it added; patching
        # the taint list here too could put back one it had just removed.
        try:
            await self.kube.delete(FENCE_AGENTS_REMEDIATIONS, self.fencing.namespace, host)
        except KubeError as error:
            if error.status != 404:
                raise


class OutOfServiceTaintFencer(_TaintRemoval):
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    async def fence(self, node: Mapping[str, Any]) -> FenceProgress:
        host = str(node["metadata"]["name"])
        if has_out_of_service_taint(node):
            return FenceProgress(True, f"{host} is tainted {OUT_OF_SERVICE_TAINT}")
        if not power_known_off(node):
            return FenceProgress(
                False,
                f"waiting for {host}'s power to be known off (annotation vdcos.io/power=off)",
                awaiting_admin=True,
            )
        taints = taints_with_out_of_service(node_taints(node))
        await self.kube.patch(NODES, None, host, {"spec": {"taints": taints}})
        return FenceProgress(True, f"{host} is powered off; tainted {OUT_OF_SERVICE_TAINT}")

    async def unfence(self, node: Mapping[str, Any]) -> None:
        await self.remove_taint(node)


class AdminFencer(_TaintRemoval):
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    async def fence(self, node: Mapping[str, Any]) -> FenceProgress:
        host = str(node["metadata"]["name"])
        if has_out_of_service_taint(node):
            return FenceProgress(True, f"an admin tainted {host} {OUT_OF_SERVICE_TAINT}")
        return FenceProgress(
            False,
            f"fencing method None: waiting for an admin to power {host} off and run "
            f"kubectl taint node {host} {OUT_OF_SERVICE_TAINT}=nodeshutdown:NoExecute",
            awaiting_admin=True,
        )

    async def unfence(self, node: Mapping[str, Any]) -> None:
        await self.remove_taint(node)


def fencer_for(kube: KubeClient, cluster: str, fencing: Fencing) -> Fencer:
    """The fencer of the cluster's `spec.ha.fencing.method`."""
    if fencing.method == "FenceAgentsRemediation":
        return FenceAgentsRemediationFencer(kube, cluster, fencing)
    if fencing.method == "OutOfServiceTaint":
        return OutOfServiceTaintFencer(kube)
    return AdminFencer(kube)
