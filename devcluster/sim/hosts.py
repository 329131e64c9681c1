"""Simulated hosts: their Node objects, Lease heartbeats and the kubelet that runs their pods.

Each host registers a Node (capacity, labels, NICs, pod CIDR), renews its Lease in
`kube-node-lease` every `node_status_seconds` and keeps its Ready condition True, as the
kubelet does. Its kubelet turns pods bound to it into Running pods (one status write) and
deletes pods deleted with a grace period (one delete with grace 0).

Faults come through the API: the annotation `sim.vdcos.io/power: "off"` on a Node powers
the host off (no heartbeats, its kubelet does nothing: pods stay as they are, Terminating
ones stay Terminating); `"on"` (or removing it) powers it back on, and the kubelet then
catches up with whatever happened meanwhile: its guests were lost with the power, so the
pods that were running there with restartPolicy Never (virt-launcher's) end Failed.

`sim.vdcos.io/network: isolated` on a Node cuts the host off the management network: its
Lease renewals and every kubelet write stop (node status, pod status, deletions), as for a
host whose heartbeats stop, but it stays powered and its guests keep running. Removing the
annotation reconnects it: the kubelet reports Ready again and stops the guests whose pods
were deleted meanwhile.

Each host keeps its own table of the guests it runs (`guest_table.py`), the ground truth
served by `guests_api.py`. Each host also has a BMC, reachable at the address in its Node
annotation `sim.vdcos.io/bmc-address` or as `<host>-bmc`, that the fencing emulation
(`fencing.py`) powers it off through.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from kubekit.informer import Key, key_of
from kubekit.resources import LEASES, NADS, NODES, PODS, PVCS
from kubekit.restclient import KubeError
from kubekit.tasks import cancel_and_wait
from kubekit.workqueue import WorkQueue

from .cni import (
    PodNetwork,
    no_network_found_message,
    pod_networks,
    sandbox_failure,
    sandbox_failure_message,
)
from .guest_table import GuestTable, guest_of
from .runtime import SIM_RETRY_DELAYS, SimRuntime, SimSettings, now_rfc3339

log = structlog.get_logger("devcluster.sim.hosts")

Obj = Mapping[str, Any]

POWER_ANNOTATION = "sim.vdcos.io/power"
NETWORK_ANNOTATION = "sim.vdcos.io/network"
NETWORK_ISOLATED = "isolated"
BMC_ANNOTATION = "sim.vdcos.io/bmc-address"
BMC_NETWORK = ipaddress.ip_network("172.19.0.0/16")  # the out-of-band management network
NICS_ANNOTATION = "sim.vdcos.io/nics"
HOST_LABEL = "sim.vdcos.io/host"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40  # the kubelet's default nodeLeaseDurationSeconds
KUBELET_VERSION = "v1.32.0"
POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")  # kind's default pod subnet
HOST_NETWORK = ipaddress.ip_network("172.18.0.0/16")  # kind's docker network
# What virt-handler's device plugins advertise on a KubeVirt node.
KUBEVIRT_DEVICES = {"devices.kubevirt.io/kvm": "1k", "devices.kubevirt.io/tun": "1k",
                    "devices.kubevirt.io/vhost-net": "1k"}
# eth0 carries the management and pod networks; eth1/eth2 are free for VM traffic (the
# distributed switch bridges them), as on a typical hypervisor with a bonded uplink pair.
NIC_NAMES = ("eth0", "eth1", "eth2")
NIC_SPEED_MBPS = 25000
NIC_MTU = 1500
# How soon the kubelet tries a failed pod sandbox again (its pod sync after an error).
SANDBOX_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class HostSpec:
    """Who a simulated host is: its name and addresses."""

    name: str
    index: int  # 1-based
    zone: str
    internal_ip: str
    pod_cidr: str
    bmc_ip: str = ""


def zone_name(index: int, zones: int) -> str:
    return f"zone-{chr(ord('a') + (index - 1) % max(zones, 1))}"


def host_specs(settings: SimSettings) -> list[HostSpec]:
    """host-1 .. host-N, spread round-robin over the zones, one /24 of pod IPs each."""
    return [
        HostSpec(
            name=f"host-{index}",
            index=index,
            zone=zone_name(index, settings.zones),
            internal_ip=str(HOST_NETWORK.network_address + 1 + index),
            bmc_ip=str(BMC_NETWORK.network_address + 1 + index),
            pod_cidr=str(ipaddress.ip_network(
                f"{POD_NETWORK.network_address + 256 * (index - 1)}/24")),
        )
        for index in range(1, settings.hosts + 1)
    ]


def nic_inventory(host: HostSpec) -> list[dict[str, Any]]:
    """The host's NICs, as nmstate's NodeNetworkState would list its ethernet interfaces."""
    nics: list[dict[str, Any]] = []
    for number, name in enumerate(NIC_NAMES):
        digest = hashlib.sha256(f"{host.name}/{name}".encode()).digest()
        nic: dict[str, Any] = {
            "name": name, "type": "ethernet", "state": "up", "mtu": NIC_MTU,
            "macAddress": ":".join(f"{b:02x}" for b in (0x52, 0x54, number, *digest[:3])),
            "speedMbps": NIC_SPEED_MBPS,
        }
        if name == "eth0":
            nic["ipv4"] = [{"ip": host.internal_ip, "prefixLength": HOST_NETWORK.prefixlen}]
        nics.append(nic)
    return nics


def ready_conditions(now: str) -> list[dict[str, Any]]:
    """The conditions a healthy kubelet posts."""
    healthy = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory",
         "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    return [{"type": type_, "status": status, "reason": reason, "message": message,
             "lastHeartbeatTime": now, "lastTransitionTime": now}
            for type_, status, reason, message in healthy]


def refreshed_conditions(node: Obj, now: str) -> list[dict[str, Any]]:
    """The node's conditions with a fresh lastHeartbeatTime (what a periodic report posts)."""
    return [{**c, "lastHeartbeatTime": now}
            for c in (node.get("status") or {}).get("conditions") or []]


def node_manifest(host: HostSpec, settings: SimSettings, now: str) -> dict[str, Any]:
    """The Node a host's kubelet registers, with its status."""
    capacity = {"cpu": settings.host_cpu, "memory": settings.host_memory,
                "pods": str(settings.host_pods), "ephemeral-storage": "500Gi",
                "hugepages-1Gi": "0", "hugepages-2Mi": "0", **KUBEVIRT_DEVICES}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": host.name,
            "labels": {
                "kubernetes.io/hostname": host.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": host.zone,
                "node-role.kubernetes.io/worker": "", HOST_LABEL: "true",
            },
            "annotations": {
                NICS_ANNOTATION: json.dumps(nic_inventory(host), separators=(",", ":")),
                BMC_ANNOTATION: host.bmc_ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": host.pod_cidr, "podCIDRs": [host.pod_cidr],
                 "providerID": f"sim://{host.name}"},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": ready_conditions(now),
            "addresses": [{"type": "InternalIP", "address": host.internal_ip},
                          {"type": "Hostname", "address": host.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64", "bootID": "", "containerRuntimeVersion":
                "containerd://1.7.18", "kernelVersion": "6.8.0-sim", "kubeProxyVersion":
                KUBELET_VERSION, "kubeletVersion": KUBELET_VERSION, "machineID": "",
                "operatingSystem": "linux", "osImage": "vdcos simulated host",
                "systemUUID": "",
            },
        },
    }


def lease_manifest(node: Obj, now_micro: str) -> dict[str, Any]:
    meta = node["metadata"]
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": meta["name"], "namespace": LEASE_NAMESPACE,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                          "name": meta["name"], "uid": meta.get("uid", "")}]},
        "spec": {"holderIdentity": meta["name"], "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                 "renewTime": now_micro},
    }


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime wire form (leases)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_powered_on(node: Obj) -> bool:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(POWER_ANNOTATION, "on")).lower() != "off"


def is_isolated(node: Obj) -> bool:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(NETWORK_ANNOTATION, "")).lower() == NETWORK_ISOLATED


def reaches_api(node: Obj | None) -> bool:
    """Whether the host's kubelet and virt-handler can write to the API: powered on and
    not isolated."""
    return node is not None and is_powered_on(node) and not is_isolated(node)


def lost_pod_status(pod: Obj, now: str) -> dict[str, Any] | None:
    """What the kubelet posts after a power cycle for a pod whose containers died with
    the host and may not restart (restartPolicy Never): Failed, each container
    ContainerStatusUnknown. None for pods that restart or ended already."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("restartPolicy", "Always") != "Never" or \
            status.get("phase") in ("Succeeded", "Failed"):
        return None
    conditions = [{**c, "status": "False", "lastTransitionTime": now}
                  if c.get("type") in ("Ready", "ContainersReady") and c.get("status") == "True"
                  else dict(c) for c in status.get("conditions") or []]
    containers = [{**c, "ready": False, "started": False, "state": {"terminated": {
        "exitCode": 137, "reason": "ContainerStatusUnknown",
        "message": "The container could not be located when the pod was terminated",
        "startedAt": ((c.get("state") or {}).get("running") or {}).get("startedAt"),
        "finishedAt": now}}} for c in status.get("containerStatuses") or []]
    return {"phase": "Failed", "conditions": conditions, "containerStatuses": containers}


def ready_status(node: Obj) -> str:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status", "Unknown"))
    return "Unknown"


def _condition(type_: str, now: str, status: str = "True") -> dict[str, Any]:
    return {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": now}


def creating_pod_status(pod: Obj, host_ip: str, now: str) -> dict[str, Any]:
    """What the kubelet posts while it cannot create the pod's sandbox: Pending, every
    container waiting in ContainerCreating (`kubectl get pod` shows ContainerCreating)."""
    spec = pod.get("spec") or {}
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    names = [str(c["name"]) for c in spec.get("containers") or []]
    unready = f"containers with unready status: [{' '.join(names)}]"

    def not_ready(type_: str) -> dict[str, Any]:
        return {**_condition(type_, now, "False"), "reason": "ContainersNotReady",
                "message": unready}

    return {
        "phase": "Pending",
        "conditions": [_condition("PodReadyToStartContainers", now, "False"),
                       _condition("Initialized", now), not_ready("Ready"),
                       not_ready("ContainersReady"),
                       dict(old.get("PodScheduled") or _condition("PodScheduled", now))],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "startTime": now,
        "containerStatuses": [
            {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
             "started": False, "restartCount": 0, "lastState": {},
             "state": {"waiting": {"reason": "ContainerCreating"}}}
            for c in spec.get("containers") or []],
    }


def running_pod_status(pod: Obj, host_ip: str, pod_ip: str, now: str) -> dict[str, Any]:
    """The status the kubelet posts once every container of the pod runs."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    old = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = old.get("PodScheduled") or _condition("PodScheduled", now)
    started = status.get("startTime") or now
    uid = str((pod.get("metadata") or {}).get("uid", ""))

    def container_id(name: str) -> str:
        return "containerd://" + hashlib.sha256(f"{uid}/{name}".encode()).hexdigest()

    def image_id(image: str) -> str:
        return f"{image}@sha256:" + hashlib.sha256(image.encode()).hexdigest()

    containers = [
        {"name": c["name"], "image": c.get("image", ""), "imageID": image_id(c.get("image", "")),
         "containerID": container_id(c["name"]), "ready": True, "started": True,
         "restartCount": 0, "lastState": {}, "state": {"running": {"startedAt": started}}}
        for c in spec.get("containers") or []
    ]
    init_containers = [
        {"name": c["name"], "image": c.get("image", ""), "imageID": image_id(c.get("image", "")),
         "containerID": container_id(c["name"]), "ready": True, "started": False,
         "restartCount": 0, "lastState": {},
         "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                  "finishedAt": started,
                                  "containerID": container_id(c["name"])}}}
        for c in spec.get("initContainers") or []
    ]

    def keep(type_: str) -> dict[str, Any]:
        previous = old.get(type_)
        if previous is not None and previous.get("status") == "True":
            return dict(previous)
        return _condition(type_, now)

    result: dict[str, Any] = {
        "phase": "Running",
        "conditions": [keep("PodReadyToStartContainers"), keep("Initialized"), keep("Ready"),
                       keep("ContainersReady"), dict(scheduled)],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "containerStatuses": containers,
    }
    if init_containers:
        result["initContainerStatuses"] = init_containers
    return result


def pod_is_running_and_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


def claim_names(pod: Obj) -> list[str]:
    return [str(v["persistentVolumeClaim"]["claimName"])
            for v in (pod.get("spec") or {}).get("volumes") or []
            if (v.get("persistentVolumeClaim") or {}).get("claimName")]


class PodAddresses:
    """Pod IPs per host, out of its pod CIDR (.1 is the host's bridge)."""

    def __init__(self) -> None:
        self._by_pod: dict[str, tuple[str, str]] = {}  # uid -> (node, ip)
        self._used: dict[str, set[str]] = {}

    def observe(self, node: str, uid: str, ip: str) -> None:
        if uid not in self._by_pod:
            self._by_pod[uid] = (node, ip)
            self._used.setdefault(node, set()).add(ip)

    def release(self, uid: str) -> None:
        found = self._by_pod.pop(uid, None)
        if found is not None:
            self._used.get(found[0], set()).discard(found[1])

    def allocate(self, node: str, uid: str, cidr: str) -> str:
        known = self._by_pod.get(uid)
        if known is not None and known[0] == node:
            return known[1]
        used = self._used.setdefault(node, set())
        network = ipaddress.ip_network(cidr)
        for offset in range(2, network.num_addresses - 1):
            candidate = str(network.network_address + offset)
            if candidate not in used:
                self.observe(node, uid, candidate)
                return candidate
        raise RuntimeError(f"no free pod IP left on {node} ({cidr})")


class Hosts:
    """The simulated hosts and their kubelets."""

    name = "hosts"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.hosts = {host.name: host for host in host_specs(runtime.settings)}
        self.addresses = PodAddresses()
        self._powered: dict[str, bool] = {}
        self._isolated: dict[str, bool] = {}
        self._rebooted_while_isolated: set[str] = set()
        self.guests = GuestTable()
        self._nodes_queue = WorkQueue("hosts", self._reconcile_node, workers=2,
                                      retry_delays=SIM_RETRY_DELAYS)
        self._pods_queue = WorkQueue("kubelet", self._reconcile_pod, workers=8,
                                     retry_delays=SIM_RETRY_DELAYS)
        self._waiting_for_claims: dict[tuple[str, str], set[Key]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._reported: dict[str, float] = {}  # host -> loop time of its last status report
        self._sandbox_failures: dict[str, PodNetwork] = {}  # pod uid -> what failed

    async def start(self) -> None:
        nodes = self.runtime.informer(NODES)
        pods = self.runtime.informer(PODS)
        claims = self.runtime.informer(PVCS)
        await self.runtime.wait_synced(NODES, PODS, PVCS)
        for pod in pods.values():
            self._observe_pod("ADDED", pod)
        nodes.add_listener(self._on_node)
        pods.add_listener(self._observe_pod)
        claims.add_listener(self._on_claim)
        self._nodes_queue.start()
        self._pods_queue.start()
        for name in self.hosts:
            self._nodes_queue.enqueue(("", name))
        self._heartbeat = asyncio.get_running_loop().create_task(self._renew_leases())

    async def stop(self) -> None:
        await cancel_and_wait(self._heartbeat)
        await self._nodes_queue.stop()
        await self._pods_queue.stop()

    # --- observation ------------------------------------------------------------------

    def _on_node(self, kind: str, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        if name in self.hosts:
            self._nodes_queue.enqueue(("", name))

    def _observe_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        node = spec.get("nodeName")
        if kind == "DELETED":
            self.addresses.release(meta.get("uid", ""))
            self._sandbox_failures.pop(str(meta.get("uid", "")), None)
            if node in self.hosts and self._connected(node):
                self.guests.remove(node, str(meta.get("uid", "")))
            return
        if node not in self.hosts:
            return
        self._track_guest(node, pod)
        if status.get("podIP") and not spec.get("hostNetwork"):
            self.addresses.observe(node, meta.get("uid", ""), status["podIP"])
        self._pods_queue.enqueue(key_of(pod))

    def _on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        if (claim.get("status") or {}).get("phase") != "Bound":
            return
        waiting = self._waiting_for_claims.pop(key_of(claim), set())
        for key in waiting:
            self._pods_queue.enqueue(key)

    # --- what the host runs -----------------------------------------------------------

    def _connected(self, host: str) -> bool:
        return bool(self._powered.get(host)) and not self._isolated.get(host)

    def _guest_started(self, host: str, pod: Obj) -> None:
        """The kubelet started the pod's containers: its guest runs here from now on. Only
        what this host started counts (a pod still Running in the API after a power cut
        does not)."""
        status = pod.get("status") or {}
        # Since its pod started (the kubelet's startTime), as a restart reads it back.
        guest = guest_of(pod, host, str(status.get("startTime") or now_rfc3339()))
        if guest is not None:
            self.guests.add(guest)

    def _track_guest(self, host: str, pod: Obj) -> None:
        """A connected host's kubelet sees its pods end (a migration source Succeeded, a
        lost one Failed); an isolated one keeps what it runs whatever the API says."""
        if self._connected(host) and \
                (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self.guests.remove(host, str((pod.get("metadata") or {}).get("uid", "")))

    def _adopt_running_guests(self, host: str) -> None:
        """This process (re)started: the host runs what its pods say it runs, isolated or
        not (what it ran before, unseen by the API, is not known)."""
        for pod in self.runtime.informer(PODS).values():
            status = pod.get("status") or {}
            if (pod.get("spec") or {}).get("nodeName") != host or \
                    status.get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
                continue
            self._guest_started(host, pod)

    def _stop_orphaned_guests(self, host: str) -> None:
        """Back on the network, the kubelet kills the containers of pods deleted meanwhile."""
        pods = {str(p["metadata"].get("uid", "")): p for p in self.runtime.informer(PODS).values()
                if (p.get("spec") or {}).get("nodeName") == host}
        for guest in self.guests.on(host):
            pod = pods.get(guest.pod_uid)
            if pod is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                self.guests.remove(host, guest.pod_uid)
                log.info("Stopped the guest of a pod deleted while isolated", host=host,
                         vmi=f"{guest.namespace}/{guest.name}")

    async def _fail_lost_pods(self, host: str) -> None:
        """After a power cycle: what ran there died with the host."""
        now = now_rfc3339()
        for pod in self.runtime.informer(PODS).values():
            if (pod.get("spec") or {}).get("nodeName") != host or \
                    pod["metadata"].get("deletionTimestamp"):
                continue
            status = lost_pod_status(pod, now)
            if status is None or not (pod.get("status") or {}).get("containerStatuses"):
                continue
            meta = pod["metadata"]
            try:
                await self.kube.patch(PODS, meta["namespace"], meta["name"], {"status": status},
                                      subresource="status")
            except KubeError as error:
                if error.status != 404:
                    raise

    # --- the host ---------------------------------------------------------------------

    async def _reconcile_node(self, key: Key) -> float | None:
        host = self.hosts[key[1]]
        node = self.runtime.informer(NODES).get("", host.name)
        if node is None:
            created = await self.kube.create(
                NODES, node_manifest(host, self.runtime.settings, now_rfc3339()))
            await self._renew_lease(created)
            self._powered[host.name] = True
            print(f"Host {host.name} joined: {self.runtime.settings.host_cpu} CPU, "
                  f"{self.runtime.settings.host_memory} memory, zone {host.zone}", flush=True)
            return None
        powered = is_powered_on(node)
        was_powered = self._powered.get(host.name)
        self._powered[host.name] = powered
        isolated = is_isolated(node)
        was_isolated = self._isolated.get(host.name, False)
        self._isolated[host.name] = isolated
        if not powered:
            self.guests.clear(host.name)
            if was_powered:
                log.info("Host powered off", host=host.name)
                # Posted by the simulation (the host itself is gone), isolated or not.
                await self.runtime.event(node, "PoweredOff", f"Host {host.name} powered off",
                                         kind="Warning", component="sim")
            return None
        if was_powered is None:
            self._adopt_running_guests(host.name)
        if isolated:
            if not was_isolated:
                log.info("Host isolated from the network", host=host.name)
                await self.runtime.event(node, "NetworkIsolated",
                                         f"Host {host.name} lost its management network",
                                         kind="Warning", component="sim")
            if was_powered is False:
                self._rebooted_while_isolated.add(host.name)
            return None  # nothing the kubelet does reaches the API
        if was_powered is False or host.name in self._rebooted_while_isolated:
            self._rebooted_while_isolated.discard(host.name)
            log.info("Host powered on", host=host.name)
            await self.runtime.event(node, "Starting", "Starting kubelet.", component="kubelet")
            await self._renew_lease(node)
            await self._fail_lost_pods(host.name)
            self._resync_pods(host.name)
        elif was_isolated:
            log.info("Host reconnected", host=host.name)
            self._stop_orphaned_guests(host.name)
            await self._renew_lease(node)
            self._resync_pods(host.name)
        elif was_powered is None:
            await self._renew_lease(node)
            self._resync_pods(host.name)
        if ready_status(node) != "True":
            # The kubelet reports Ready again (after a power cycle, or after the node
            # lifecycle controller marked it Unknown while it was away).
            now = now_rfc3339()
            await self.kube.patch(NODES, None, host.name,
                                  {"status": {"conditions": ready_conditions(now)}},
                                  subresource="status")
            self._reported[host.name] = asyncio.get_running_loop().time()
            await self.runtime.event(node, "NodeReady",
                                     f"Node {host.name} status is now: NodeReady",
                                     component="kubelet")
        return None

    def _resync_pods(self, node_name: str) -> None:
        for pod in self.runtime.informer(PODS).values():
            if (pod.get("spec") or {}).get("nodeName") == node_name:
                self._pods_queue.enqueue(key_of(pod))

    async def _renew_lease(self, node: Obj) -> None:
        now = micro_time(datetime.now(UTC))
        name = node["metadata"]["name"]
        try:
            await self.kube.patch(LEASES, LEASE_NAMESPACE, name,
                                  {"spec": {"renewTime": now, "holderIdentity": name}})
        except KubeError as error:
            if error.status != 404:
                raise
            await self.kube.create(LEASES, lease_manifest(node, now), namespace=LEASE_NAMESPACE)

    async def _renew_leases(self) -> None:
        """The kubelets' heartbeat: renew every powered-on host's Lease each period, and
        re-post the node status when it is older than nodeStatusReportFrequency."""
        nodes = self.runtime.informer(NODES)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.runtime.settings.node_status_seconds)
            for name in self.hosts:
                node = nodes.get("", name)
                if node is None or not reaches_api(node) or not self._connected(name):
                    continue
                try:
                    await self._renew_lease(node)
                    last = self._reported.setdefault(name, loop.time())
                    if loop.time() - last >= self.runtime.settings.node_status_report_seconds:
                        self._reported[name] = loop.time()
                        await self.kube.patch(NODES, None, name, {"status": {
                            "conditions": refreshed_conditions(node, now_rfc3339())}},
                            subresource="status")
                except (KubeError, OSError) as error:
                    log.warning("Heartbeat failed", host=name, error=str(error))

    # --- the kubelet ------------------------------------------------------------------

    async def _reconcile_pod(self, key: Key) -> float | None:
        pod = self.runtime.informer(PODS).get(*key)
        if pod is None:
            return None
        meta, spec = pod["metadata"], pod.get("spec") or {}
        host = self.hosts.get(spec.get("nodeName", ""))
        node = self.runtime.informer(NODES).get("", host.name) if host else None
        if host is None or node is None or not reaches_api(node) or \
                not self._connected(host.name):
            return None  # not ours, or the host is off or cut off: nothing reaches the API
        if meta.get("deletionTimestamp"):
            # Containers stopped: the kubelet removes the pod for good.
            self.guests.remove(host.name, str(meta.get("uid", "")))
            await self.kube.delete(PODS, key[0], key[1], grace_seconds=0,
                                   uid=meta.get("uid", ""))
            self.addresses.release(meta.get("uid", ""))
            return None
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        if pod_is_running_and_ready(pod):
            return None
        if not self._claims_bound(key, pod):
            return None  # ContainerCreating until its volumes are bound
        if pod_networks(pod) and not spec.get("hostNetwork"):
            failed = await self._sandbox_failure(pod)
            if failed is not None:
                if not (pod.get("status") or {}).get("containerStatuses"):
                    await self.kube.patch(PODS, key[0], key[1], {
                        "metadata": {"resourceVersion": meta.get("resourceVersion")},
                        "status": creating_pod_status(pod, host.internal_ip, now_rfc3339()),
                    }, subresource="status")
                return SANDBOX_RETRY_SECONDS  # ContainerCreating until Multus can set it up
        if spec.get("hostNetwork"):
            pod_ip = host.internal_ip
        else:
            pod_ip = self.addresses.allocate(host.name, meta.get("uid", ""), host.pod_cidr)
        status = running_pod_status(pod, host.internal_ip, pod_ip, now_rfc3339())
        written = await self.kube.patch(PODS, key[0], key[1], {
            "metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": status,
        }, subresource="status")
        self._guest_started(host.name, written)
        return None

    async def _sandbox_failure(self, pod: dict[str, Any]) -> PodNetwork | None:
        """Multus' part of the pod's sandbox: every NAD the pod names must exist. A failure
        is reported once (Multus' NoNetworkFound and the kubelet's FailedCreatePodSandBox
        Events), then retried quietly."""
        await self.runtime.wait_synced(NADS)
        nads = self.runtime.informer(NADS)
        failed = sandbox_failure(pod, lambda ns, name: nads.get(ns, name) is not None)
        uid = str(pod["metadata"].get("uid", ""))
        if failed is None:
            self._sandbox_failures.pop(uid, None)
            return None
        if self._sandbox_failures.get(uid) != failed:
            self._sandbox_failures[uid] = failed
            involved = {**pod, "apiVersion": "v1", "kind": "Pod"}
            await self.runtime.event(involved, "NoNetworkFound",
                                     no_network_found_message(failed), kind="Warning",
                                     component="multus")
            await self.runtime.event(involved, "FailedCreatePodSandBox",
                                     sandbox_failure_message(pod, failed), kind="Warning",
                                     component="kubelet")
        return failed

    def _claims_bound(self, key: Key, pod: Obj) -> bool:
        claims = self.runtime.informer(PVCS)
        ready = True
        for claim_name in claim_names(pod):
            claim = claims.get(key[0], claim_name)
            if claim is None or (claim.get("status") or {}).get("phase") != "Bound":
                self._waiting_for_claims.setdefault((key[0], claim_name), set()).add(key)
                ready = False
        return ready
