"""virt-handler on every simulated host: boots guests, migrates them, heartbeats its Node.

A powered-on host (Node annotation `sim.vdcos.io/power` is not "off") runs the domains of
the VMIs scheduled to it: Scheduled -> Running after `start_seconds`, with interfaces,
guest-agent details and the LiveMigratable condition. A live migration handed off by
virt-controller is carried out by the target host: it takes `migration_seconds` plus the
guest memory at `migration_bandwidth_gbps` (`migrations.py`), applies a
pending CPU/memory hot-plug, moves the VMI, and leaves the source launcher pod Succeeded.
Every `virt_handler_heartbeat_seconds` each powered-on host patches the
`kubevirt.io/heartbeat` annotation and `kubevirt.io/schedulable` label of its Node; a
powered-off host stops, which is how virt-controller learns it is gone.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog

from kubekit.informer import Key
from kubekit.resources import DATAVOLUMES, NADS, NODES, PODS, PVCS, VMIS
from kubekit.restclient import KubeError
from kubekit.tasks import cancel_and_wait
from kubekit.workqueue import WorkQueue

from .cni import assigns_address
from .hotplug import status_after_hotplug
from .launcher import nad_namespaced_name
from .migrations import migration_seconds
from .nic_hotplug import MIGRATION_REQUIRED, detached_from_domain
from .node_lifecycle import NODE_NAME_LABEL, heartbeat_patch
from .runtime import SIM_RETRY_DELAYS, SimRuntime
from .virt_controller import now_utc
from .vmi_status import (
    PHASE_RUNNING,
    PHASE_SCHEDULED,
    find_condition,
    paused_condition,
    ready_condition,
    rfc3339,
    running_status,
    set_condition,
)
from .written import WrittenCache

GUEST_AGENT_ANNOTATION = "sim.vdcos.io/guest-agent"

log = structlog.get_logger("devcluster.sim.virt-handler")

Obj = Mapping[str, Any]

POWER_ANNOTATION = "sim.vdcos.io/power"
SECONDARY_NETWORK_CIDR = "10.128.0.0/12"
# What virt-handler's node labeller finds on every simulated host (an Intel host-model CPU
# whose QEMU offers the q35 machine types).
NODE_LABELLER_LABELS = {
    "machine-type.node.kubevirt.io/q35": "true",
    "machine-type.node.kubevirt.io/pc-q35-rhel9.6.0": "true",
    "cpu-vendor.node.kubevirt.io/Intel": "true",
    "host-model-cpu.node.kubevirt.io/Skylake-Client-IBRS": "true",
    "cpu-model.node.kubevirt.io/Skylake-Client-IBRS": "true",
    "cpu-model-migration.node.kubevirt.io/Skylake-Client-IBRS": "true",
    "kubevirt.io/ksm-enabled": "false",
}


def is_powered_on(node: Obj | None) -> bool:
    """Whether this host's virt-handler acts through the API: powered on and not cut off
    by `sim.vdcos.io/network: isolated` (its guests run on, unseen; see hosts.py)."""
    if node is None:
        return False
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(POWER_ANNOTATION, "on")).lower() != "off" and \
        str(annotations.get("sim.vdcos.io/network", "")).lower() != "isolated"


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def _status(obj: Obj | None) -> Obj:
    status: Obj = (obj or {}).get("status") or {}
    return status


def _key(obj: Obj) -> Key:
    return (str(_meta(obj).get("namespace", "")), str(_meta(obj)["name"]))


def pool_index(uid: str) -> int:
    """A stable small number per VMI: the MACs of its interfaces derive from it."""
    return int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) % 60000


def secondary_address(uid: str, network_name: str) -> str:
    """The address a Multus network's IPAM would hand out: stable per VMI and network."""
    network = ipaddress.ip_network(SECONDARY_NETWORK_CIDR)
    digest = int(hashlib.sha256(f"{uid}/{network_name}".encode()).hexdigest()[:8], 16)
    return str(network.network_address + 2 + digest % (network.num_addresses - 4))


def node_internal_ip(node: Obj | None) -> str:
    for address in _status(node).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address", ""))
    return ""


def _seconds_since(stamp: str | None, now: datetime) -> float:
    if not stamp:
        return 0.0
    return (now - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()


def _transition(vmi: Obj, phase: str) -> str | None:
    for item in _status(vmi).get("phaseTransitionTimestamps") or []:
        if item.get("phase") == phase:
            return str(item.get("phaseTransitionTimestamp"))
    return None


class VirtHandlers:
    """The virt-handler DaemonSet: one logical handler per host, in one component."""

    name = "virt-handler"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.settings = runtime.settings
        self.vmis = runtime.informer(VMIS)
        self.pods = runtime.informer(PODS)
        self.nodes = runtime.informer(NODES)
        self.pvcs = runtime.informer(PVCS)
        self.dvs = runtime.informer(DATAVOLUMES)
        self.nads = runtime.informer(NADS)
        self.queue = WorkQueue("virt-handler", self._sync_vmi, workers=4,
                               retry_delays=SIM_RETRY_DELAYS)
        self._powered: dict[str, bool] = {}
        self.written = WrittenCache()
        self._heartbeat_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.vmis.add_listener(lambda _kind, vmi: self.queue.enqueue(_key(vmi)))
        self.pods.add_listener(self._on_pod)
        self.nodes.add_listener(self._on_node)
        self.dvs.add_listener(self._on_dv)
        self.queue.start()
        await self.runtime.wait_synced(VMIS, PODS, NODES, PVCS, DATAVOLUMES)
        for vmi in self.vmis.values():
            self.queue.enqueue(_key(vmi))
        for node in self.nodes.values():
            self._on_node("ADDED", node)
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeats())

    async def stop(self) -> None:
        await cancel_and_wait(self._heartbeat_task)
        await self.queue.stop()

    def _on_pod(self, _kind: str, pod: dict[str, Any]) -> None:
        for ref in _meta(pod).get("ownerReferences") or []:
            if ref.get("kind") == "VirtualMachineInstance":
                self.queue.enqueue((str(_meta(pod).get("namespace", "")), str(ref.get("name"))))

    def _on_dv(self, _kind: str, dv: dict[str, Any]) -> None:
        for ref in _meta(dv).get("ownerReferences") or []:
            if ref.get("kind") == "VirtualMachine":
                self.queue.enqueue((str(_meta(dv).get("namespace", "")), str(ref.get("name"))))

    def _on_node(self, kind: str, node: dict[str, Any]) -> None:
        name = str(_meta(node)["name"])
        powered = is_powered_on(node) and kind != "DELETED"
        previous = self._powered.get(name)
        self._powered[name] = powered
        if powered and previous is not True:
            # A handler starting (or its host powered back on) reports at once.
            asyncio.get_running_loop().create_task(self._beat(name))
        if powered != previous:
            for vmi in self.vmis.values():
                if _status(vmi).get("nodeName") == name or (
                        (_status(vmi).get("migrationState") or {}).get("targetNode") == name):
                    self.queue.enqueue(_key(vmi))

    # ---- heartbeat ---------------------------------------------------------------------

    async def _beat(self, node_name: str) -> None:
        node = self.nodes.get("", node_name)
        if node is None or not is_powered_on(node):
            return
        patch = heartbeat_patch(now_utc())
        labels = _meta(node).get("labels") or {}
        missing = {k: v for k, v in NODE_LABELLER_LABELS.items() if labels.get(k) != v}
        patch["metadata"]["labels"].update(missing)
        try:
            await self.kube.patch(NODES, None, node_name, patch, kind="strategic")
        except (KubeError, OSError) as error:
            log.warning("Heartbeat failed", node=node_name, error=str(error))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.virt_handler_heartbeat_seconds)
            for node in self.nodes.values():
                await self._beat(str(_meta(node)["name"]))

    # ---- domains -----------------------------------------------------------------------

    def _pod_on(self, vmi: Obj, node_name: str) -> dict[str, Any] | None:
        uid = _meta(vmi).get("uid")
        for pod in self.pods.values():
            labels = _meta(pod).get("labels") or {}
            if labels.get("kubevirt.io/created-by") == uid and \
                    (pod.get("spec") or {}).get("nodeName") == node_name and \
                    _status(pod).get("phase") == "Running":
                return pod
        return None

    def _claims(self, vmi: Obj) -> dict[str, Obj]:
        namespace = str(_meta(vmi).get("namespace", ""))
        claims: dict[str, Obj] = {}
        for volume in (vmi.get("spec") or {}).get("volumes") or []:
            name = (volume.get("persistentVolumeClaim") or {}).get("claimName") or (
                volume.get("dataVolume") or {}).get("name")
            if name:
                pvc = self.pvcs.get(namespace, str(name))
                if pvc is not None:
                    claims[str(name)] = pvc
        return claims

    def _disks_ready(self, vmi: Obj) -> bool:
        namespace = str(_meta(vmi).get("namespace", ""))
        for volume in (vmi.get("spec") or {}).get("volumes") or []:
            dv_name = (volume.get("dataVolume") or {}).get("name")
            if dv_name:
                dv = self.dvs.get(namespace, str(dv_name))
                if dv is not None and _status(dv).get("phase") != "Succeeded":
                    return False
        return True

    async def _sync_vmi(self, key: Key) -> float | None:
        vmi = self.written.latest(VMIS, self.vmis, key)
        if vmi is None or _meta(vmi).get("deletionTimestamp"):
            return None
        phase = _status(vmi).get("phase")
        node_name = str(_status(vmi).get("nodeName", ""))
        node = self.nodes.get("", node_name) if node_name else None
        if phase == PHASE_SCHEDULED and is_powered_on(node):
            return await self._boot(vmi, node_name)
        if phase == PHASE_RUNNING:
            state = _status(vmi).get("migrationState") or {}
            target = self.nodes.get("", str(state.get("targetNode", "")))
            if state and not state.get("completed") and not state.get("failed") and \
                    is_powered_on(target) and is_powered_on(node):
                return await self._migrate(vmi, state)
            if is_powered_on(node):
                await self._unplug_from_domain(vmi)
        return None

    async def _unplug_from_domain(self, vmi: Obj) -> None:
        """virt-launcher detaches NICs set absent from the running domain at once."""
        interfaces = detached_from_domain(vmi)
        if interfaces is None:
            return
        namespace, name = _key(vmi)
        self.written.remember(VMIS, await self.kube.patch(
            VMIS, namespace, name, {"status": {"interfaces": interfaces}}))

    def _running_status(self, vmi: Obj, pod: Obj, now: datetime) -> dict[str, Any]:
        uid = str(_meta(vmi).get("uid", ""))
        namespace = str(_meta(vmi).get("namespace", ""))
        # Only a network whose IPAM hands out addresses gives the guest one (`ipam: {}`: L2).
        secondary = {
            str(network.get("name")): [secondary_address(uid, str(network.get("name")))]
            for network in (vmi.get("spec") or {}).get("networks") or []
            if "multus" in network and assigns_address(self.nads.get(*nad_namespaced_name(
                namespace, str(network["multus"].get("networkName", "")))))
        }
        # A guest without qemu-guest-agent: the VM template's annotation says so.
        agent = (_meta(vmi).get("annotations") or {}).get(GUEST_AGENT_ANNOTATION) != "false"
        status = running_status(vmi, now, pool_index=pool_index(uid), pvcs=self._claims(vmi),
                                secondary_ips=secondary, agent_connected=agent)
        pod_ip = str(_status(pod).get("podIP", ""))
        pod_networks = {str(n.get("name")) for n in (vmi.get("spec") or {}).get("networks") or []
                        if "pod" in n}
        for interface in status.get("interfaces") or []:
            if interface.get("name") in pod_networks and pod_ip:
                interface["ipAddress"] = pod_ip
                interface["ipAddresses"] = [pod_ip]
        return status

    async def _boot(self, vmi: Obj, node_name: str) -> float | None:
        now = now_utc()
        waited = _seconds_since(_transition(vmi, PHASE_SCHEDULED), now)
        if waited < self.settings.start_seconds:
            return self.settings.start_seconds - waited
        if not self._disks_ready(vmi):
            return None  # the DataVolume listener wakes us up
        pod = self._pod_on(vmi, node_name)
        if pod is None:
            return None
        status = self._running_status(vmi, pod, now)
        # virt-controller copies the pod's Ready once the VMI runs; reporting it with the
        # phase saves the VMI a write.
        status["conditions"] = set_condition(status["conditions"],
                                             ready_condition(PHASE_RUNNING, pod, now))
        if (vmi.get("spec") or {}).get("startStrategy") == "Paused":
            status["conditions"] = set_condition(status["conditions"], paused_condition(now))
        namespace, name = _key(vmi)
        # Only the phase must still be Scheduled: virt-controller may have touched other
        # parts of the object meanwhile (labels, its own conditions, which it re-syncs).
        patch: list[dict[str, Any]] = [
            {"op": "test", "path": "/status/phase", "value": PHASE_SCHEDULED}]
        patch += [{"op": "add", "path": f"/status/{field}", "value": value}
                  for field, value in status.items() if _status(vmi).get(field) != value]
        try:
            written = await self.kube.patch(VMIS, namespace, name, patch, kind="json")
        except KubeError as error:
            if error.status == 422:
                return None  # no longer Scheduled: nothing to boot
            raise
        self.written.remember(VMIS, written)
        await self.runtime.event(dict(vmi), "Started", "VirtualMachineInstance started.",
                                 component="virt-handler")
        return None

    async def _migrate(self, vmi: Obj, state: Mapping[str, Any]) -> float | None:
        """The target handler's part of a live migration, after the controller's handoff."""
        now = now_utc()
        namespace, name = _key(vmi)
        target_node = str(state.get("targetNode", ""))
        duration = migration_seconds(vmi, self.settings.migration_seconds,
                                     self.settings.migration_bandwidth_gbps)
        if not state.get("startTimestamp"):
            started = {**state, "targetNodeAddress": node_internal_ip(
                self.nodes.get("", target_node)), "targetNodeDomainDetected": True,
                "startTimestamp": rfc3339(now)}
            self.written.remember(VMIS, await self.kube.patch(
                VMIS, namespace, name, {"status": {"migrationState": started}}))
            return duration
        elapsed = _seconds_since(str(state.get("startTimestamp")), now)
        if elapsed < duration:
            return duration - elapsed
        target_pod = self._pod_on(vmi, target_node)
        if target_pod is None:
            failed = {**state, "failed": True, "endTimestamp": rfc3339(now),
                      "failureReason": "target virt-launcher pod is not running"}
            self.written.remember(VMIS, await self.kube.patch(
                VMIS, namespace, name, {"status": {"migrationState": failed}}))
            return None
        source_pod = self._pod_on(vmi, str(state.get("sourceNode", "")))
        status = status_after_hotplug(vmi)
        moved = {**vmi, "status": status}
        fresh = self._running_status(moved, target_pod, now)
        status.update({k: fresh[k] for k in ("interfaces", "volumeStatus")})
        status["nodeName"] = target_node
        status.pop("evacuationNodeName", None)
        status["activePods"] = {str(_meta(target_pod).get("uid", "")): target_node}
        status["migrationState"] = {
            **copy.deepcopy(dict(state)), "completed": True, "endTimestamp": rfc3339(now),
            "targetNodeDomainReadyTimestamp": rfc3339(now)}
        # The target domain runs with the NICs plugged and unplugged: no migration needed.
        status["conditions"] = [c for c in status.get("conditions") or []
                                if c.get("type") not in ("EvictionRequested", MIGRATION_REQUIRED)]
        # The target handler takes the VMI over: the node label moves with the status
        # (`migration-target.go`), in the same write.
        meta = {**_meta(vmi), "labels": {**(_meta(vmi).get("labels") or {}),
                                         NODE_NAME_LABEL: target_node}}
        written = await self.kube.request("PUT", VMIS.path(namespace, name),
                                          body={**vmi, "metadata": meta, "status": status})
        self.written.remember(VMIS, written)
        if source_pod is not None:
            await self._complete_source_pod(source_pod, now)
        await self.runtime.event(dict(vmi), "Migrated",
                                 f"The VirtualMachineInstance migrated to node {target_node}.",
                                 component="virt-handler")
        return None

    async def _complete_source_pod(self, pod: Obj, now: datetime) -> None:
        """The source virt-launcher exits once the guest left: its pod ends Succeeded."""
        stamp = rfc3339(now)
        containers = [
            {**c, "ready": False, "started": False,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                      "startedAt": (c.get("state") or {}).get(
                                          "running", {}).get("startedAt", stamp),
                                      "finishedAt": stamp}}}
            for c in _status(pod).get("containerStatuses") or []
        ]
        conditions = [
            {**c, "status": "False", "reason": "PodCompleted", "lastTransitionTime": stamp}
            if c.get("type") in ("Ready", "ContainersReady") else dict(c)
            for c in _status(pod).get("conditions") or []
        ]
        namespace, name = _key(pod)
        await self.kube.patch(PODS, namespace, name, {"status": {
            "phase": "Succeeded", "containerStatuses": containers, "conditions": conditions}},
            subresource="status")


def paused(vmi: Obj) -> bool:
    found = find_condition(vmi, "Paused")
    return bool(found and found.get("status") == "True")
