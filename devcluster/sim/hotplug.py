"""CPU/memory hot-plug and other live updates of a running VM (KubeVirt LiveUpdate rollout).

Mirrors `pkg/virt-controller/watch/vm/vm.go` (`syncRestartRequired`, NIC changes judged by
`nic_hotplug.network_restart_required`,
`handleCPUChangeRequest`, `VMICPUsPatch`, `handleMemoryHotplugRequest`, the node
selector/affinity/toleration patches), `pkg/defaults/defaults.go` (maxSockets/maxGuest)
and the VMI controller's HotVCPUChange/HotMemoryChange conditions. The result is a
JSON patch for the VMI, a RestartRequired message, or a sync error; never both a patch
and a restart.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devcluster.sim.launcher import DEFAULT_CPU_ALLOCATION_RATIO, guest_memory
from devcluster.sim.nic_hotplug import network_restart_required
from devcluster.sim.vm_status import is_migrating
from devcluster.sim.vmi_status import condition, find_condition
from devcluster.sim.volume_hotplug import without_hotplug_volumes
from devcluster.sim.volume_migration import migrates_volumes, without_migrated_claims
from kubekit.quantity import (
    format_bytes,
    format_millis,
    to_bytes,
    to_millis,
)

Obj = Mapping[str, Any]

DEFAULT_MAX_HOTPLUG_RATIO = 4
MAX_VCPUS = 512
GI = 1024**3
MI = 1024**2

MSG_NON_LIVE_UPDATABLE = "a non-live-updatable field was changed in the template spec"
MSG_CPU_ABOVE_MAX = "CPU sockets updated in template spec to a value higher than what's available"
MSG_CPU_REDUCTION = "Reduction of CPU socket count requires a restart"
MSG_CPU_ARM = "ARM doesn't support CPU hotplug"
MSG_MEMORY_FAILED = (
    "memory updated in template spec. Memory-hotplug failed and is not available for this VM "
    "configuration"
)
MSG_MEMORY_NOT_MIGRATABLE = (
    "memory updated in template spec. Memory-hotplug is only available for migratable VMs"
)
MSG_MEMORY_NO_MAX_GUEST = (
    "memory updated in template spec. Memory-hotplug is not available for this VM configuration"
)
MSG_MEMORY_BELOW_BOOT = (
    "memory updated in template spec to a value lower than what the VM started with"
)
MSG_MEMORY_ABOVE_MAX = "memory updated in template spec to a value higher than what's available"
ERR_CPU_IN_PROGRESS = "another CPU hotplug is in progress"
ERR_CPU_MIGRATING = "CPU hotplug is not allowed while VMI is migrating"
ERR_MEMORY_IN_PROGRESS = "another memory hotplug is in progress"
ERR_MEMORY_MIGRATING = "memory hotplug is not allowed while VMI is migrating"


@dataclass(frozen=True)
class LiveUpdatePlan:
    """What the VM controller does about a changed template while the VMI runs."""

    vmi_patch: list[dict[str, Any]] = field(default_factory=list)
    restart_required: str | None = None
    # A sync error (Failure condition reason HotPlugCPUError/HotPlugMemoryError).
    error: str | None = None
    error_reason: str | None = None


# --- defaults ---------------------------------------------------------------------------


def default_max_sockets(
    sockets: int,
    cores: int = 1,
    threads: int = 1,
    *,
    configured_max_sockets: int | None = None,
    max_hotplug_ratio: int = DEFAULT_MAX_HOTPLUG_RATIO,
) -> int:
    """`setupCPUHotplug`: cluster maxCpuSockets (at least sockets), else sockets x ratio,
    capped so maxSockets x cores x threads <= 512, never below sockets."""
    if configured_max_sockets is not None:
        return max(configured_max_sockets, sockets)
    maximum = sockets * max_hotplug_ratio
    per_socket = max(1, cores * threads)
    if maximum * per_socket > MAX_VCPUS:
        maximum = MAX_VCPUS // per_socket
    return max(maximum, sockets)


def validate_live_update_memory(
    spec: Obj, max_guest: int | None, *, arch: str = "amd64"
) -> str | None:
    """`ValidateLiveUpdateMemory` (pkg/liveupdate/memory/memory.go): the first failing
    check's message, or None when memory hot-plug is possible for this VMI spec."""
    domain = spec.get("domain") or {}
    cpu = domain.get("cpu") or {}
    memory = domain.get("memory") or {}
    if cpu.get("realtime") is not None:
        return "Memory hotplug is not compatible with realtime VMs"
    if (cpu.get("numa") or {}).get("guestMappingPassthrough") is not None:
        return "Memory hotplug is not compatible with guest mapping passthrough"
    if domain.get("launchSecurity") is not None:
        return "Memory hotplug is not compatible with encrypted VMs"
    one_gi_pages = (memory.get("hugepages") or {}).get("pageSize") == "1Gi"
    alignment, alignment_text = (GI, "1Gi") if one_gi_pages else (2 * MI, "2Mi")
    if memory.get("guest") is None:
        return "Guest memory must be configured when memory hotplug is enabled"
    if max_guest is None:
        return "Max guest memory must be configured when memory hotplug is enabled"
    guest = to_bytes(memory["guest"])
    if guest > max_guest:
        return "Guest memory is greater than the configured maxGuest memory"
    if guest % alignment != 0:
        return f"Guest memory must be {alignment_text} aligned"
    if max_guest % alignment != 0:
        return f"MaxGuest must be {alignment_text} aligned"
    if (spec.get("architecture") or arch) != "amd64":
        return "Memory hotplug is only available for x86_64 VMs"
    if guest < GI:
        return "Memory hotplug is only available for VMs with at least 1Gi of guest memory"
    return None


def default_max_guest(
    guest: int,
    *,
    configured_max_guest: int | None = None,
    max_hotplug_ratio: int = DEFAULT_MAX_HOTPLUG_RATIO,
    arch: str = "amd64",
) -> int | None:
    """`setupMemoryHotplug`: cluster maxGuest else guest x ratio, only when supported."""
    maximum = (
        configured_max_guest if configured_max_guest is not None else guest * max_hotplug_ratio
    )
    probe = {"architecture": arch, "domain": {"memory": {"guest": guest}}}
    if validate_live_update_memory(probe, maximum, arch=arch) is not None:
        return None
    return maximum


def apply_hotplug_defaults(
    vmi_spec: Obj,
    *,
    arch: str = "amd64",
    configured_max_sockets: int | None = None,
    configured_max_guest: int | None = None,
    max_hotplug_ratio: int = DEFAULT_MAX_HOTPLUG_RATIO,
) -> dict[str, Any]:
    """The VMI spec with maxSockets/maxGuest defaulted as the mutating webhook does."""
    spec = copy.deepcopy(dict(vmi_spec))
    if arch == "arm64":
        return spec
    domain = spec.setdefault("domain", {})
    cpu = domain.setdefault("cpu", {})
    sockets = int(cpu.get("sockets") or 1)
    cpu.setdefault("sockets", sockets)
    if not cpu.get("maxSockets"):
        cpu["maxSockets"] = default_max_sockets(
            sockets,
            int(cpu.get("cores") or 1),
            int(cpu.get("threads") or 1),
            configured_max_sockets=configured_max_sockets,
            max_hotplug_ratio=max_hotplug_ratio,
        )
    memory = domain.get("memory") or {}
    guest = guest_memory({"spec": spec})
    if guest and not memory.get("maxGuest"):
        maximum = default_max_guest(
            guest,
            configured_max_guest=configured_max_guest,
            max_hotplug_ratio=max_hotplug_ratio,
            arch=arch,
        )
        if maximum is not None:
            domain["memory"] = {
                **memory,
                "guest": memory.get("guest") or format_bytes(guest),
                "maxGuest": format_bytes(maximum),
            }
    return spec


# --- restart-required detection ---------------------------------------------------------


def _template_spec(vm: Obj) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(
        dict(((vm.get("spec") or {}).get("template") or {}).get("spec") or {})
    )
    return spec


def _without_live_fields(
    spec: dict[str, Any], current: Obj, vmi: Obj | None = None
) -> dict[str, Any]:
    """Copy the live-updatable fields of `current` over `spec` so they compare equal.

    NICs count as live-updatable unless `network_restart_required` says otherwise for the
    running `vmi` (hot-plug, `state: absent`).
    """
    result = copy.deepcopy(spec)
    domain = result.setdefault("domain", {})
    current_domain = current.get("domain") or {}
    if domain.get("cpu") is not None and current_domain.get("cpu") is not None:
        domain["cpu"]["sockets"] = current_domain["cpu"].get("sockets")
    current_guest = (current_domain.get("memory") or {}).get("guest")
    if current_guest is not None:
        domain.setdefault("memory", {})["guest"] = current_guest
    for key in ("nodeSelector", "affinity", "tolerations"):
        result.pop(key, None)
        if key in current:
            result[key] = copy.deepcopy(current[key])
    if vmi is not None and not network_restart_required(current, vmi):
        current_devices = current_domain.get("devices") or {}
        devices = domain.get("devices")
        if isinstance(devices, dict):
            devices.pop("interfaces", None)
        if "interfaces" in current_devices:
            domain.setdefault("devices", {})["interfaces"] = copy.deepcopy(
                current_devices["interfaces"]
            )
        result.pop("networks", None)
        if "networks" in current:
            result["networks"] = copy.deepcopy(current["networks"])
    return result


def needs_restart(
    last_started_template_spec: Obj | None, vm: Obj, vmi: Obj | None = None
) -> bool:
    """True when the template changed outside the live-updatable fields since VMI start."""
    if last_started_template_spec is None:
        return False
    current = _template_spec(vm)
    comparable = _without_live_fields(
        copy.deepcopy(dict(last_started_template_spec)), current, vmi
    )
    # Hot-plug volumes are live, and so is a volume pointed at another claim when the VM
    # migrates volumes (volume_hotplug.py, volume_migration.py).
    comparable, current = without_hotplug_volumes(comparable), without_hotplug_volumes(current)
    if migrates_volumes(vm):
        comparable = without_migrated_claims(comparable)
        current = without_migrated_claims(current)
    # Absent and null are the same, and so are absent and empty lists (apimachinery's
    # semantic DeepEqual equates nil and empty slices); an empty object may be a set
    # pointer ("efi: {}") and is kept.
    return bool(_prune(comparable) != _prune(current))


def _prune(value: Any) -> Any:
    if isinstance(value, Mapping):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


# --- the plan ---------------------------------------------------------------------------


def _cpu(spec: Obj) -> Obj:
    cpu: Obj = (spec.get("domain") or {}).get("cpu") or {}
    return cpu


def _vcpus(cpu: Obj) -> int:
    return int(cpu.get("sockets") or 1) * int(cpu.get("cores") or 1) * int(cpu.get("threads") or 1)


def _has_vmi_condition(vmi: Obj, type_: str, status: str) -> bool:
    found = find_condition(vmi, type_)
    return found is not None and found.get("status") == status


def _cpu_plan(
    template: Obj, vmi: Obj, *, arch: str, cpu_allocation_ratio: int, now: datetime
) -> LiveUpdatePlan | None:
    vmi_spec = vmi.get("spec") or {}
    wanted, running = _cpu(template), _cpu(vmi_spec)
    if not wanted or not running or wanted.get("sockets") == running.get("sockets"):
        return None
    if _has_vmi_condition(vmi, "HotVCPUChange", "True"):
        return LiveUpdatePlan(error=ERR_CPU_IN_PROGRESS, error_reason="HotPlugCPUError")
    if is_migrating(vmi, now):
        return LiveUpdatePlan(error=ERR_CPU_MIGRATING, error_reason="HotPlugCPUError")
    sockets, current = int(wanted.get("sockets") or 1), int(running.get("sockets") or 1)
    if sockets > int(running.get("maxSockets") or 0):
        return LiveUpdatePlan(restart_required=MSG_CPU_ABOVE_MAX)
    if sockets < current:
        return LiveUpdatePlan(restart_required=MSG_CPU_REDUCTION)
    if arch == "arm64":
        return LiveUpdatePlan(restart_required=MSG_CPU_ARM)
    patch: list[dict[str, Any]] = [
        {"op": "test", "path": "/spec/domain/cpu/sockets", "value": current},
        {"op": "replace", "path": "/spec/domain/cpu/sockets", "value": sockets},
    ]
    delta_millis = (_vcpus(wanted) - _vcpus(running)) * (1000 // cpu_allocation_ratio)
    template_resources = (template.get("domain") or {}).get("resources") or {}
    vmi_resources = (vmi_spec.get("domain") or {}).get("resources") or {}
    for section in ("requests", "limits"):
        if (template_resources.get(section) or {}).get("cpu") is None:
            continue
        old = (vmi_resources.get(section) or {}).get("cpu", "0")
        new = format_millis(to_millis(old) + delta_millis)
        path = f"/spec/domain/resources/{section}/cpu"
        patch += [
            {"op": "test", "path": path, "value": old},
            {"op": "replace", "path": path, "value": new},
        ]
    return LiveUpdatePlan(vmi_patch=patch)


def _memory_plan(template: Obj, vmi: Obj, *, arch: str, now: datetime) -> LiveUpdatePlan | None:
    vmi_spec = vmi.get("spec") or {}
    wanted_guest = ((template.get("domain") or {}).get("memory") or {}).get("guest")
    vmi_memory = (vmi_spec.get("domain") or {}).get("memory") or {}
    status_memory = (vmi.get("status") or {}).get("memory") or {}
    if wanted_guest is None or vmi_memory.get("guest") is None:
        return None
    if status_memory.get("guestCurrent") is None:
        return None
    if _has_vmi_condition(vmi, "HotMemoryChange", "False"):
        return LiveUpdatePlan(restart_required=MSG_MEMORY_FAILED)
    wanted = to_bytes(wanted_guest)
    if wanted == to_bytes(vmi_memory["guest"]):
        return None
    if not _has_vmi_condition(vmi, "LiveMigratable", "True"):
        return LiveUpdatePlan(restart_required=MSG_MEMORY_NOT_MIGRATABLE)
    if vmi_memory.get("maxGuest") is None:
        return LiveUpdatePlan(restart_required=MSG_MEMORY_NO_MAX_GUEST)
    if _has_vmi_condition(vmi, "HotMemoryChange", "True"):
        return LiveUpdatePlan(error=ERR_MEMORY_IN_PROGRESS, error_reason="HotPlugMemoryError")
    if is_migrating(vmi, now):
        return LiveUpdatePlan(error=ERR_MEMORY_MIGRATING, error_reason="HotPlugMemoryError")
    max_guest = to_bytes(vmi_memory["maxGuest"])
    invalid = validate_live_update_memory(template, max_guest, arch=arch)
    if invalid is not None:
        return LiveUpdatePlan(restart_required=f"memory hotplug not supported, {invalid}")
    at_boot = status_memory.get("guestAtBoot")
    if at_boot is not None and wanted < to_bytes(at_boot):
        return LiveUpdatePlan(restart_required=MSG_MEMORY_BELOW_BOOT)
    if wanted > max_guest:
        return LiveUpdatePlan(restart_required=MSG_MEMORY_ABOVE_MAX)
    delta = wanted - to_bytes(status_memory["guestCurrent"])
    patch: list[dict[str, Any]] = [
        {"op": "test", "path": "/spec/domain/memory/guest", "value": vmi_memory["guest"]},
        {
            "op": "replace",
            "path": "/spec/domain/memory/guest",
            "value": format_bytes(wanted),
        },
    ]
    vmi_resources = (vmi_spec.get("domain") or {}).get("resources") or {}
    old_request = (vmi_resources.get("requests") or {}).get("memory")
    if old_request is not None and to_bytes(old_request) != 0:
        new_request = to_bytes(old_request) + delta
        if new_request < wanted:
            # Hot-unplug may not release everything: requests never drop below the guest.
            new_request = wanted
            delta = wanted - new_request
        patch += [
            {"op": "test", "path": "/spec/domain/resources/requests/memory", "value": old_request},
            {
                "op": "replace",
                "path": "/spec/domain/resources/requests/memory",
                "value": format_bytes(new_request),
            },
        ]
    template_limit = (
        ((template.get("domain") or {}).get("resources") or {}).get("limits") or {}
    ).get("memory")
    if template_limit is not None and to_bytes(template_limit) != 0:
        old_limit = (vmi_resources.get("limits") or {}).get("memory", "0")
        patch += [
            {"op": "test", "path": "/spec/domain/resources/limits/memory", "value": old_limit},
            {
                "op": "replace",
                "path": "/spec/domain/resources/limits/memory",
                "value": format_bytes(to_bytes(old_limit) + delta),
            },
        ]
    return LiveUpdatePlan(vmi_patch=patch)


def _placement_patch(template: Obj, vmi_spec: Obj) -> list[dict[str, Any]]:
    """nodeSelector, affinity and tolerations are patched straight into the VMI."""
    patch: list[dict[str, Any]] = []
    for key in ("nodeSelector", "affinity", "tolerations"):
        wanted, current = template.get(key), vmi_spec.get(key)
        if _prune(wanted) == _prune(current):
            continue
        path = f"/spec/{key}"
        if wanted is None:
            patch.append({"op": "remove", "path": path})
        elif current is None:
            patch.append({"op": "add", "path": path, "value": copy.deepcopy(wanted)})
        else:
            patch += [
                {"op": "test", "path": path, "value": copy.deepcopy(current)},
                {"op": "replace", "path": path, "value": copy.deepcopy(wanted)},
            ]
    return patch


def plan_live_update(
    vm: Obj,
    vmi: Obj,
    last_started_template_spec: Obj | None,
    now: datetime,
    *,
    arch: str = "amd64",
    cpu_allocation_ratio: int = DEFAULT_CPU_ALLOCATION_RATIO,
) -> LiveUpdatePlan:
    """Decide how a template change reaches a running VMI (LiveUpdate rollout strategy).

    `last_started_template_spec` is the template spec the VMI was started from (the
    `revision-start-vm-*` ControllerRevision); the VMI's own spec carries webhook
    defaults and cannot serve for that comparison.
    """
    existing = find_condition(vm, "RestartRequired")
    if needs_restart(last_started_template_spec, vm, vmi):
        return LiveUpdatePlan(restart_required=MSG_NON_LIVE_UPDATABLE)
    if existing is not None:
        # Nothing is live-updated while a restart is pending.
        return LiveUpdatePlan(restart_required=str(existing.get("message", "")))
    if (vmi.get("metadata") or {}).get("deletionTimestamp"):
        return LiveUpdatePlan()
    template = _template_spec(vm)
    patch: list[dict[str, Any]] = []
    cpu = _cpu_plan(template, vmi, arch=arch, cpu_allocation_ratio=cpu_allocation_ratio, now=now)
    if cpu is not None:
        if cpu.restart_required or cpu.error:
            return cpu
        patch += cpu.vmi_patch
    memory = _memory_plan(template, vmi, arch=arch, now=now)
    if memory is not None:
        if memory.restart_required or memory.error:
            return memory
        patch += memory.vmi_patch
    patch += _placement_patch(template, vmi.get("spec") or {})
    return LiveUpdatePlan(vmi_patch=patch)


def restart_required_condition(message: str, now: datetime) -> dict[str, Any]:
    """VM condition `RestartRequired=True` with the message and no reason."""
    return condition("RestartRequired", "True", now, message=message)


# --- VMI side ---------------------------------------------------------------------------


def hotplug_conditions(vmi: Obj, now: datetime) -> list[dict[str, Any]]:
    """The HotVCPUChange/HotMemoryChange conditions the VMI controller adds while Running."""
    result: list[dict[str, Any]] = []
    spec = vmi.get("spec") or {}
    status = vmi.get("status") or {}
    if status.get("phase") != "Running":
        return result
    cpu = _cpu(spec)
    topology = status.get("currentCPUTopology") or {}
    if cpu.get("maxSockets") and topology and _vcpus(cpu) != _vcpus(topology):
        result.append(condition("HotVCPUChange", "True", now))
    memory = (spec.get("domain") or {}).get("memory") or {}
    requested = (status.get("memory") or {}).get("guestRequested")
    if (
        memory.get("maxGuest")
        and memory.get("guest")
        and requested is not None
        and to_bytes(memory["guest"]) != to_bytes(requested)
    ):
        result.append(condition("HotMemoryChange", "True", now))
    return result


def status_after_hotplug(vmi: Obj) -> dict[str, Any]:
    """What the migration target's virt-handler reports once it applied the new topology."""
    status: dict[str, Any] = copy.deepcopy(dict(vmi.get("status") or {}))
    cpu = _cpu(vmi.get("spec") or {})
    if cpu:
        status["currentCPUTopology"] = {
            "cores": int(cpu.get("cores") or 1),
            "sockets": int(cpu.get("sockets") or 1),
            "threads": int(cpu.get("threads") or 1),
        }
    guest = guest_memory(vmi)
    if guest and status.get("memory"):
        status["memory"] = {
            **status["memory"],
            "guestRequested": format_bytes(guest),
            "guestCurrent": format_bytes(guest),
        }
    status["conditions"] = [
        c
        for c in status.get("conditions") or []
        if c.get("type") not in ("HotVCPUChange", "HotMemoryChange")
    ]
    return status
