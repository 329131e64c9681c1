"""VirtualMachineInstance status as virt-controller and virt-handler report it (KubeVirt 1.9).

virt-controller (`pkg/virt-controller/watch/vmi/lifecycle.go`) drives Pending -> Scheduling
-> Scheduled and fails VMIs whose launcher pod is gone; virt-handler
(`pkg/virt-handler/vm.go`) reports Running/Succeeded/Failed, interfaces, guest info and
the LiveMigratable condition. Every builder returns a new status dict.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from devcluster.sim.launcher import (
    guest_memory,
    hashed_pod_interface_name,
    memory_overhead,
    nad_namespaced_name,
)
from kubekit.quantity import format_bytes

Obj = Mapping[str, Any]

PHASE_PENDING = "Pending"
PHASE_SCHEDULING = "Scheduling"
PHASE_SCHEDULED = "Scheduled"
PHASE_RUNNING = "Running"
PHASE_SUCCEEDED = "Succeeded"
PHASE_FAILED = "Failed"
FINAL_PHASES = frozenset({PHASE_SUCCEEDED, PHASE_FAILED})

FAILED_CREATE = "FailedCreate"
FAILED_PVC_NOT_FOUND = "FailedPvcNotFound"
REASON_POD_NOT_EXISTS = "PodNotExists"
REASON_POD_TERMINATING = "PodTerminating"
REASON_GUEST_NOT_RUNNING = "GuestNotRunning"
REASON_POD_CONDITION_MISSING = "PodConditionMissing"
REASON_PAUSED_BY_USER = "PausedByUser"
REASON_INTERFACE_NOT_MIGRATABLE = "InterfaceNotLiveMigratable"
REASON_DISKS_NOT_MIGRATABLE = "DisksNotLiveMigratable"
MESSAGE_POD_NOT_EXISTS = "virt-launcher pod has not yet been scheduled"
MESSAGE_GUEST_NOT_RUNNING = "Guest VM is not reported as running"
MESSAGE_PAUSED_BY_USER = "VMI was paused by user"
MESSAGE_INTERFACE_NOT_MIGRATABLE = (
    "cannot migrate VMI which does not use masquerade or a migratable plugin to connect to "
    "the pod network"
)
ALLOW_POD_BRIDGE_MIGRATION_ANNOTATION = "kubevirt.io/allow-pod-bridge-network-live-migration"
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_LAUNCHER_IMAGE_VERSION = "v1.9.0"
DEFAULT_GUEST_OS_INFO = {
    "id": "fedora",
    "kernelRelease": "6.8.5-301.fc40.x86_64",
    "kernelVersion": "#1 SMP PREEMPT_DYNAMIC Thu Apr 11 20:00:10 UTC 2024",
    "machine": "x86_64",
    "name": "Fedora Linux",
    "prettyName": "Fedora Linux 40 (Cloud Edition)",
    "version": "40 (Cloud Edition)",
    "versionId": "40",
}


def rfc3339(moment: datetime) -> str:
    """metav1.Time wire form: second precision, UTC, "Z" suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def missing_nad_message(vmi_namespace: str, network_name: str) -> str:
    """The sync error KubeVirt records when a Multus NetworkAttachmentDefinition is missing."""
    namespace, name = nad_namespaced_name(vmi_namespace, network_name)
    return (
        "failed to render launch manifest: "
        f"failed to locate network attachment definition {namespace}/{name}"
    )


# --- conditions -------------------------------------------------------------------------


def condition(
    type_: str, status: str, now: datetime, *, reason: str = "", message: str = ""
) -> dict[str, Any]:
    """A VMI/VM condition as KubeVirt writes it (lastProbeTime null)."""
    result: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(now),
    }
    if reason:
        result["reason"] = reason
    if message:
        result["message"] = message
    return result


def find_condition(obj_or_status: Obj, type_: str) -> Obj | None:
    """The condition of `type_` in an object's status (or in a status dict itself)."""
    status = obj_or_status.get("status")
    holder = status if isinstance(status, Mapping) else obj_or_status
    for item in holder.get("conditions") or []:
        if item.get("type") == type_:
            found: Obj = item
            return found
    return None


def set_condition(conditions: Iterable[Obj], new: Obj) -> list[dict[str, Any]]:
    """Replace or add `new`; keep the old lastTransitionTime when status did not change."""
    result: list[dict[str, Any]] = []
    replaced = False
    for existing in conditions:
        if existing.get("type") != new.get("type"):
            result.append(dict(existing))
            continue
        merged = dict(new)
        if existing.get("status") == new.get("status"):
            merged["lastTransitionTime"] = existing.get("lastTransitionTime")
        result.append(merged)
        replaced = True
    if not replaced:
        result.append(dict(new))
    return result


def remove_condition(conditions: Iterable[Obj], type_: str) -> list[dict[str, Any]]:
    return [dict(c) for c in conditions if c.get("type") != type_]


def pod_scheduled_condition(pod: Obj | None) -> dict[str, Any] | None:
    """The pod's PodScheduled condition when False (copied verbatim onto the VMI)."""
    if pod is None:
        return None
    found = find_condition(pod, "PodScheduled")
    if found is None or found.get("status") != "False":
        return None
    copied = dict(found)
    copied.setdefault("lastProbeTime", None)
    return copied


def _pod_is_down(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed") or bool(pod["metadata"].get("deletionTimestamp"))


def ready_condition(vmi_phase: str, pod: Obj | None, now: datetime) -> dict[str, Any]:
    """`syncReadyConditionFromPod`: copy the pod's Ready once the guest runs."""
    if pod is None:
        return condition(
            "Ready", "False", now, reason=REASON_POD_NOT_EXISTS, message=MESSAGE_POD_NOT_EXISTS
        )
    if _pod_is_down(pod):
        return condition("Ready", "False", now, reason=REASON_POD_TERMINATING)
    if vmi_phase != PHASE_RUNNING:
        return condition(
            "Ready",
            "False",
            now,
            reason=REASON_GUEST_NOT_RUNNING,
            message=MESSAGE_GUEST_NOT_RUNNING,
        )
    pod_ready = find_condition(pod, "Ready")
    if pod_ready is None:
        return condition("Ready", "False", now, reason=REASON_POD_CONDITION_MISSING)
    copied: dict[str, Any] = {
        "type": "Ready",
        "status": pod_ready.get("status", "Unknown"),
        "lastProbeTime": pod_ready.get("lastProbeTime"),
        "lastTransitionTime": pod_ready.get("lastTransitionTime") or rfc3339(now),
    }
    for key in ("reason", "message"):
        if pod_ready.get(key):
            copied[key] = pod_ready[key]
    return copied


def synchronized_failure(reason: str, message: str, now: datetime) -> dict[str, Any]:
    """`Synchronized=False` with a sync-error reason (e.g. FailedCreate, ErrImagePull)."""
    return condition("Synchronized", "False", now, reason=reason, message=message)


def agent_connected_condition(now: datetime) -> dict[str, Any]:
    return condition("AgentConnected", "True", now)


def paused_condition(now: datetime, *, reason: str = REASON_PAUSED_BY_USER) -> dict[str, Any]:
    message = MESSAGE_PAUSED_BY_USER if reason == REASON_PAUSED_BY_USER else ""
    return condition("Paused", "True", now, reason=reason, message=message)


def _pod_network_name(vmi: Obj) -> str | None:
    for network in (vmi.get("spec") or {}).get("networks") or []:
        if "pod" in network:
            return str(network.get("name"))
    return None


def _interfaces(vmi: Obj) -> list[Obj]:
    devices = ((vmi.get("spec") or {}).get("domain") or {}).get("devices") or {}
    interfaces: list[Obj] = list(devices.get("interfaces") or [])
    return interfaces


def _pvc_volume_claims(vmi: Obj) -> list[str]:
    claims: list[str] = []
    for volume in (vmi.get("spec") or {}).get("volumes") or []:
        if "persistentVolumeClaim" in volume:
            claims.append(str(volume["persistentVolumeClaim"].get("claimName")))
        elif "dataVolume" in volume:
            claims.append(str(volume["dataVolume"].get("name")))
    return claims


def live_migratable_condition(vmi: Obj, pvcs: Mapping[str, Obj], now: datetime) -> dict[str, Any]:
    """`calculateLiveMigrationCondition` for the checks a simulated VM can fail.

    Pod network: masquerade or passt binding (or bridge with the allow annotation).
    Disks: every PVC/DataVolume volume's claim must allow ReadWriteMany. `pvcs` maps
    claim name to the PVC object (missing claims are treated as not shared).
    """
    pod_network = _pod_network_name(vmi)
    annotations = (vmi.get("metadata") or {}).get("annotations") or {}
    for interface in _interfaces(vmi):
        if interface.get("name") != pod_network:
            continue
        binding_plugin = (interface.get("binding") or {}).get("name")
        migratable = (
            "masquerade" in interface
            or "passt" in interface
            or binding_plugin == "passt"
            or ("bridge" in interface and ALLOW_POD_BRIDGE_MIGRATION_ANNOTATION in annotations)
        )
        if not migratable:
            return condition(
                "LiveMigratable",
                "False",
                now,
                reason=REASON_INTERFACE_NOT_MIGRATABLE,
                message=MESSAGE_INTERFACE_NOT_MIGRATABLE,
            )
    for claim in _pvc_volume_claims(vmi):
        pvc = pvcs.get(claim) or {}
        modes = (
            (pvc.get("status") or {}).get("accessModes")
            or (pvc.get("spec") or {}).get("accessModes")
            or []
        )
        if "ReadWriteMany" not in modes:
            return condition(
                "LiveMigratable",
                "False",
                now,
                reason=REASON_DISKS_NOT_MIGRATABLE,
                message=(
                    f"cannot migrate VMI: PVC {claim} is not shared, live migration requires "
                    "that all PVCs must be shared (using ReadWriteMany access mode)"
                ),
            )
    return condition("LiveMigratable", "True", now)


# --- phases and fields ------------------------------------------------------------------


def with_phase(status: Obj, phase: str, now: datetime) -> dict[str, Any]:
    """Set `phase`, appending a phaseTransitionTimestamp when it changes."""
    result = copy.deepcopy(dict(status))
    if result.get("phase") == phase:
        return result
    result["phase"] = phase
    result["phaseTransitionTimestamps"] = [
        *result.get("phaseTransitionTimestamps", []),
        {"phase": phase, "phaseTransitionTimestamp": rfc3339(now)},
    ]
    return result


def cpu_topology(vmi: Obj) -> dict[str, int]:
    cpu = ((vmi.get("spec") or {}).get("domain") or {}).get("cpu") or {}
    return {
        "cores": int(cpu.get("cores") or 1),
        "sockets": int(cpu.get("sockets") or 1),
        "threads": int(cpu.get("threads") or 1),
    }


def memory_status(vmi: Obj, *, guest_current: int | None = None) -> dict[str, str]:
    guest = guest_memory(vmi)
    return {
        "guestAtBoot": format_bytes(guest),
        "guestCurrent": format_bytes(guest if guest_current is None else guest_current),
        "guestRequested": format_bytes(guest),
        "memoryOverhead": format_bytes(memory_overhead(vmi)),
    }


def pending_status(vmi: Obj, now: datetime) -> dict[str, Any]:
    """What the VMI mutating webhook stores on create: Pending plus the topology defaults."""
    status: dict[str, Any] = {
        "guestOSInfo": {},
        "currentCPUTopology": cpu_topology(vmi),
        "memory": {k: v for k, v in memory_status(vmi).items() if k != "memoryOverhead"},
        "runtimeUser": 107,
    }
    return with_phase(status, PHASE_PENDING, now)


def allocate_pod_ip(pool_index: int, cidr: str = DEFAULT_POD_CIDR) -> str:
    """Deterministic pod IP: host number pool_index + 2 of the CIDR (skips .0 and .1)."""
    network = ipaddress.ip_network(cidr)
    host = pool_index + 2
    if host >= network.num_addresses - 1:
        raise ValueError(f"pool index {pool_index} outside {cidr}")
    return str(network.network_address + host)


def allocate_mac(pool_index: int, interface_index: int = 0) -> str:
    """Deterministic locally administered MAC: 02:<iface>:<index as 4 bytes>."""
    raw = [0x02, interface_index & 0xFF, *pool_index.to_bytes(4, "big")]
    return ":".join(f"{b:02x}" for b in raw)


def _pod_ready_for_handoff(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
        return False
    for container in status.get("containerStatuses") or []:
        if container.get("name") == "compute":
            if "running" not in (container.get("state") or {}):
                return False
        elif not container.get("ready"):
            return False
    return True


def controller_status(
    vmi: Obj,
    pod: Obj | None,
    now: datetime,
    *,
    render_error: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """One virt-controller sync of a VMI's status given its launcher pod (or None).

    `render_error` is a (reason, message) the controller hit rendering the pod, e.g.
    (FAILED_CREATE, missing_nad_message(ns, name)); it becomes `Synchronized=False`.
    """
    status: dict[str, Any] = copy.deepcopy(dict(vmi.get("status") or {}))
    phase = status.get("phase") or PHASE_PENDING
    if not status.get("phase"):
        status = with_phase(status, PHASE_PENDING, now)
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    if render_error is not None:
        conditions = set_condition(conditions, synchronized_failure(*render_error, now=now))
    else:
        conditions = remove_condition(conditions, "Synchronized")

    if phase in FINAL_PHASES:
        pass
    elif phase == PHASE_PENDING:
        if vmi["metadata"].get("deletionTimestamp"):
            status = with_phase(status, PHASE_FAILED, now)
        elif pod is not None:
            status = with_phase(status, PHASE_SCHEDULING, now)
            phase = PHASE_SCHEDULING
    if phase == PHASE_SCHEDULING and status["phase"] == PHASE_SCHEDULING:
        if pod is None or _pod_is_down(pod):
            status = with_phase(status, PHASE_FAILED, now)
        else:
            scheduled = pod_scheduled_condition(pod)
            if scheduled is not None:
                conditions = set_condition(conditions, scheduled)
            else:
                conditions = remove_condition(conditions, "PodScheduled")
            if _pod_ready_for_handoff(pod):
                status = with_phase(status, PHASE_SCHEDULED, now)
                node = str(pod["spec"].get("nodeName", ""))
                status["nodeName"] = node
                status["qosClass"] = (pod.get("status") or {}).get("qosClass", "Burstable")
                status["migrationTransport"] = "Unix"
                status["activePods"] = {str(pod["metadata"].get("uid", "")): node}
    elif phase in (PHASE_SCHEDULED, PHASE_RUNNING) and pod is None:
        status = with_phase(status, PHASE_FAILED, now)
    conditions = set_condition(conditions, ready_condition(status["phase"], pod, now))
    status["conditions"] = conditions
    return status


def _interface_statuses(
    vmi: Obj,
    *,
    pool_index: int,
    pod_cidr: str,
    agent_connected: bool,
    secondary_ips: Mapping[str, Sequence[str]],
) -> list[dict[str, Any]]:
    networks = {n.get("name"): n for n in (vmi.get("spec") or {}).get("networks") or []}
    result: list[dict[str, Any]] = []
    for index, interface in enumerate(_interfaces(vmi)):
        if interface.get("state") == "absent":
            continue  # unplugged: the domain this status describes does not have it
        name = str(interface.get("name", ""))
        network = networks.get(name) or {}
        entry: dict[str, Any] = {
            "name": name,
            "interfaceName": f"eth{index}",
            "mac": interface.get("macAddress") or allocate_mac(pool_index, index),
            "queueCount": 1,
            "linkState": "up",
        }
        sources = ["domain"]
        if agent_connected:
            sources.append("guest-agent")
        if "pod" in network:
            ip = allocate_pod_ip(pool_index, pod_cidr)
            entry.update({"ipAddress": ip, "ipAddresses": [ip], "podInterfaceName": "eth0"})
        elif "multus" in network:
            sources.append("multus-status")
            entry["podInterfaceName"] = hashed_pod_interface_name(name)
            ips = list(secondary_ips.get(name) or [])
            if ips and agent_connected:
                entry.update({"ipAddress": ips[0], "ipAddresses": ips})
        if not agent_connected:
            # Without the agent, the guest's interface name is unknown.
            entry.pop("interfaceName")
        entry["infoSource"] = ", ".join(sources)
        result.append(entry)
    return result


def running_status(
    vmi: Obj,
    now: datetime,
    *,
    pool_index: int,
    pvcs: Mapping[str, Obj] | None = None,
    agent_connected: bool = True,
    pod_cidr: str = DEFAULT_POD_CIDR,
    secondary_ips: Mapping[str, Sequence[str]] | None = None,
    launcher_image_version: str = DEFAULT_LAUNCHER_IMAGE_VERSION,
    guest_os_info: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """virt-handler's report once the domain runs: phase Running and the guest's details."""
    status = with_phase(vmi.get("status") or {}, PHASE_RUNNING, now)
    status["interfaces"] = _interface_statuses(
        vmi,
        pool_index=pool_index,
        pod_cidr=pod_cidr,
        agent_connected=agent_connected,
        secondary_ips=secondary_ips or {},
    )
    status["guestOSInfo"] = dict(guest_os_info or DEFAULT_GUEST_OS_INFO) if agent_connected else {}
    status["currentCPUTopology"] = cpu_topology(vmi)
    status["memory"] = memory_status(vmi)
    status["launcherContainerImageVersion"] = (
        f"quay.io/kubevirt/virt-launcher:{launcher_image_version}"
    )
    machine = ((vmi.get("spec") or {}).get("domain") or {}).get("machine") or {}
    status["machine"] = {
        "type": "pc-q35-rhel9.6.0" if machine.get("type", "q35") == "q35" else machine["type"]
    }
    status["volumeStatus"] = volume_statuses(vmi, pvcs or {})
    claims = _pvc_volume_claims(vmi)
    status["migrationMethod"] = (
        "LiveMigration"
        if all("ReadWriteMany" in _access_modes((pvcs or {}).get(c)) for c in claims)
        and len(claims) == len((vmi.get("spec") or {}).get("volumes") or [])
        else "BlockMigration"
    )
    conditions = list(status.get("conditions") or [])
    conditions = set_condition(conditions, live_migratable_condition(vmi, pvcs or {}, now))
    if agent_connected:
        conditions = set_condition(conditions, agent_connected_condition(now))
    else:
        conditions = remove_condition(conditions, "AgentConnected")
    status["conditions"] = conditions
    return status


def _access_modes(pvc: Obj | None) -> list[str]:
    if not pvc:
        return []
    modes: list[str] = (
        (pvc.get("status") or {}).get("accessModes")
        or (pvc.get("spec") or {}).get("accessModes")
        or []
    )
    return modes


def volume_statuses(vmi: Obj, pvcs: Mapping[str, Obj]) -> list[dict[str, Any]]:
    """`status.volumeStatus[]`: one entry per volume, PVC details for claim-backed ones."""
    spec = vmi.get("spec") or {}
    disks = ((spec.get("domain") or {}).get("devices") or {}).get("disks") or []
    targets: dict[str, str] = {}
    for index, disk in enumerate(disks):
        bus = next((d.get("bus") for k, d in disk.items() if isinstance(d, Mapping)), None)
        prefix = "sd" if bus in ("sata", "scsi") else "vd"
        targets[str(disk.get("name"))] = f"{prefix}{chr(ord('a') + index)}"
    result: list[dict[str, Any]] = []
    for volume in spec.get("volumes") or []:
        name = str(volume.get("name"))
        entry: dict[str, Any] = {"name": name, "target": targets.get(name, "")}
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName") or (
            volume.get("dataVolume") or {}
        ).get("name")
        if claim:
            pvc = pvcs.get(str(claim)) or {}
            pvc_spec = pvc.get("spec") or {}
            info: dict[str, Any] = {
                "claimName": str(claim),
                "accessModes": _access_modes(pvc),
                "volumeMode": pvc_spec.get("volumeMode", "Filesystem"),
                "requests": dict((pvc_spec.get("resources") or {}).get("requests") or {}),
                "capacity": dict((pvc.get("status") or {}).get("capacity") or {}),
                "filesystemOverhead": "0.06",
            }
            entry["persistentVolumeClaimInfo"] = info
        result.append(entry)
    return result


def final_status(
    vmi: Obj, phase: str, now: datetime, *, reason: str | None = None
) -> dict[str, Any]:
    """Succeeded or Failed (e.g. reason NodeUnresponsive); Ready goes False."""
    if phase not in FINAL_PHASES:
        raise ValueError(f"{phase} is not a final phase")
    status = with_phase(vmi.get("status") or {}, phase, now)
    if reason:
        status["reason"] = reason
    status["conditions"] = set_condition(
        status.get("conditions") or [],
        condition("Ready", "False", now, reason=REASON_POD_TERMINATING),
    )
    status["conditions"] = remove_condition(status["conditions"], "AgentConnected")
    return status
