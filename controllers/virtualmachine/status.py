"""Computing the status of a VDC VirtualMachine (pure, no I/O).

`vm_status_from` is the whole status (camelCase) from what KubeVirt reports, the controller's
admission of the spec and the change plan: powerState, host, IPs, the CPUs and memory the
guest runs with, and the conditions, with Ready summarised here and nowhere else.
`migration_event` says when the status shows a live migration that just finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from controllers.common.conditions import (
    READY,
    Condition,
    find_condition,
    mark_false,
    mark_true,
    mark_unknown,
    set_condition,
    summarize_ready,
)
from controllers.virtualmachine.admission import MissingReference, Rejection
from controllers.virtualmachine.changes import VMI_LIVE_MIGRATABLE, WHY_RESTART, ChangePlan
from controllers.virtualmachine.kubevirt_reading import (
    bytes_or_none,
    nested,
    vmi_condition,
    vmi_running,
)
from controllers.virtualmachine.models import PowerState, VirtualMachineSpec
from controllers.virtualmachine.nics import ABSENT, kept_macs, nic_names, template_nics
from kubekit.quantity import format_bytes

# Condition types of a VDC VirtualMachine.
ADMITTED: Final = "Admitted"
REFERENCES_RESOLVED: Final = "ReferencesResolved"
DISKS_READY: Final = "DisksReady"
POWER_STATE_REACHED: Final = "PowerStateReached"
RUNNING: Final = "Running"
LIVE_MIGRATABLE: Final = "LiveMigratable"
RESTART_REQUIRED: Final = "RestartRequired"

#: printableStatus of a KubeVirt VM whose guest runs (a live migration keeps it running).
_RUNNING_PRINTABLE: Final = frozenset({"Running", "Migrating"})

#: Every field of the status, so a merge patch of a computed status replaces it whole
#: (None clears a stale value, e.g. the host after power-off).
STATUS_FIELDS: Final = (
    "powerState",
    "host",
    "ipAddresses",
    "nics",
    "cpu",
    "memory",
    "kubevirtStatus",
    "disks",
    "conditions",
    "observedGeneration",
)


def observed_power_state(vmi: Mapping[str, Any] | None) -> PowerState:
    """PoweredOn while the guest runs, Suspended while it is paused, else PoweredOff."""
    if vmi is None or nested(vmi, "status", "phase") != "Running":
        return "PoweredOff"
    paused = vmi_condition(vmi, "Paused")
    if paused is not None and paused.get("status") == "True":
        return "Suspended"
    return "PoweredOn"


def ip_addresses(vmi: Mapping[str, Any] | None) -> list[str]:
    """IP addresses of the VMI's interfaces, in interface order, without duplicates."""
    found: dict[str, None] = {}
    for interface in nested(vmi, "status", "interfaces") or []:
        addresses = list(interface.get("ipAddresses") or [])
        if interface.get("ipAddress"):
            addresses.insert(0, interface["ipAddress"])
        for address in addresses:
            found.setdefault(str(address), None)
    return list(found)


def _addresses(interface: Mapping[str, Any]) -> list[str]:
    addresses = [str(a) for a in interface.get("ipAddresses") or []]
    first = interface.get("ipAddress")
    if first and str(first) not in addresses:
        addresses.insert(0, str(first))
    return addresses


def nic_statuses(
    spec: VirtualMachineSpec | None,
    kubevirt_vm: Mapping[str, Any] | None,
    vmi: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """status.nics: each NIC of the spec, then those being unplugged, with MAC and IPs.

    The MAC is the one the KubeVirt VM carries (given or assigned), else what the guest
    reports. While the guest runs, a NIC the VMI reports through its domain is Attached, one
    it does not report yet is Attaching (hot-plug), one removed from the spec is Detaching.
    """
    running = vmi_running(vmi)
    reported = {
        str(i.get("name")): i for i in nested(vmi, "status", "interfaces") or [] if running
    }
    macs = kept_macs(kubevirt_vm)
    live = template_nics(kubevirt_vm)
    port_groups = {
        str(n.get("name")): str(nested(n, "multus", "networkName"))
        for n in live.get("networks") or []
        if nested(n, "multus", "networkName")
    }
    declared = {n.name: n for n in spec.networks} if spec is not None else {}
    names = nic_names(spec) if spec is not None else list(reported)
    absent = [
        str(i.get("name"))
        for i in live.get("interfaces") or []
        if i.get("state") == ABSENT and str(i.get("name")) in reported
    ]
    result: list[dict[str, Any]] = []
    for name in [*names, *(n for n in absent if n not in names)]:
        network = declared.get(name)
        guest = reported.get(name) or {}
        entry: dict[str, Any] = {"name": name}
        mac = macs.get(name) or (network.mac_address if network else None) or guest.get("mac")
        if mac:
            entry["macAddress"] = str(mac).lower()
        port_group = network.port_group_name if network is not None else port_groups.get(name)
        if port_group:
            entry["portGroupName"] = port_group
        addresses = _addresses(guest)
        if addresses:
            entry["ipAddress"] = addresses[0]
            entry["ipAddresses"] = addresses
        if running:
            if name not in names:
                entry["state"] = "Detaching"
            elif "domain" in str(guest.get("infoSource") or "domain") and guest:
                entry["state"] = "Attached"
            else:
                entry["state"] = "Attaching"
        result.append(entry)
    return result


def restart_instructions(name: str, namespace: str) -> str:
    """How a user restarts a VDC VM, for the RestartRequired message."""
    return (
        "To apply, restart the VM: set spec.powerState to PoweredOff, wait for "
        "status.powerState PoweredOff, then set PoweredOn (kubectl patch vdcvm "
        f'{name} -n {namespace} --type merge -p \'{{"spec":{{"powerState":"PoweredOff"}}}}\''
        "), or run: virtctl restart "
        f"{name} -n {namespace}"
    )


_DISK_PROBLEMS: Final[dict[str, str]] = {
    "DataVolumeError": "a disk failed to import; see its DataVolume (kubectl get datavolumes)",
    "ErrorPvcNotFound": "a disk's PersistentVolumeClaim is missing",
    "Provisioning": "disks are being provisioned",
    "WaitingForVolumeBinding": "disks are waiting for their volumes to bind",
}


def _disks_condition(
    conditions: list[Condition],
    kubevirt_vm: Mapping[str, Any] | None,
    vmi: Mapping[str, Any] | None,
    generation: int,
    now: datetime,
) -> list[Condition]:
    printable = nested(kubevirt_vm, "status", "printableStatus")
    if kubevirt_vm is None:
        return mark_unknown(
            conditions,
            DISKS_READY,
            "NotCreated",
            "the KubeVirt VirtualMachine does not exist yet",
            observed_generation=generation,
            now=now,
        )
    if printable in _DISK_PROBLEMS:
        return mark_false(
            conditions,
            DISKS_READY,
            str(printable),
            _DISK_PROBLEMS[str(printable)],
            observed_generation=generation,
            now=now,
        )
    ready = vmi_condition(vmi, "DataVolumesReady")
    if ready is not None and ready.get("status") != "True":
        return mark_false(
            conditions,
            DISKS_READY,
            str(ready.get("reason") or "NotAllDVsReady"),
            str(ready.get("message") or "not all disks are ready"),
            observed_generation=generation,
            now=now,
        )
    return mark_true(conditions, DISKS_READY, "DisksReady", observed_generation=generation, now=now)


def _running_condition(
    conditions: list[Condition],
    vmi: Mapping[str, Any] | None,
    printable: str | None,
    generation: int,
    now: datetime,
) -> list[Condition]:
    power = observed_power_state(vmi)
    if power == "Suspended":
        return mark_false(
            conditions,
            RUNNING,
            "Paused",
            "the guest is paused",
            observed_generation=generation,
            now=now,
        )
    if power == "PoweredOff":
        reason = printable or "Stopped"
        return mark_false(
            conditions,
            RUNNING,
            reason,
            f"the guest is not running (KubeVirt: {reason})",
            observed_generation=generation,
            now=now,
        )
    ready = vmi_condition(vmi, "Ready")
    if ready is not None and ready.get("status") != "True":
        return mark_false(
            conditions,
            RUNNING,
            "NotReady",
            str(ready.get("message") or ready.get("reason") or "the guest is not ready"),
            observed_generation=generation,
            now=now,
        )
    if printable not in _RUNNING_PRINTABLE:
        # The guest runs but the KubeVirt VM still says Starting: KubeVirt's two objects agree
        # moments later. Waiting for that means one status write (Ready with the final
        # kubevirtStatus) instead of Ready now and kubevirtStatus again after.
        reason = printable or "Starting"
        return mark_false(
            conditions,
            RUNNING,
            reason,
            f"the guest runs; KubeVirt reports the VirtualMachine {reason}",
            observed_generation=generation,
            now=now,
        )
    return mark_true(conditions, RUNNING, "Running", observed_generation=generation, now=now)


def _power_condition(
    conditions: list[Condition],
    desired: PowerState,
    observed: PowerState,
    printable: str | None,
    generation: int,
    now: datetime,
) -> list[Condition]:
    if desired == observed:
        return mark_true(
            conditions,
            POWER_STATE_REACHED,
            desired,
            f"the VM is {desired}",
            observed_generation=generation,
            now=now,
        )
    transitions: dict[tuple[PowerState, PowerState], str] = {
        ("PoweredOff", "PoweredOn"): "Stopping",
        ("PoweredOff", "Suspended"): "Stopping",
        ("PoweredOn", "PoweredOff"): "Starting",
        ("PoweredOn", "Suspended"): "Resuming",
        ("Suspended", "PoweredOn"): "Suspending",
        ("Suspended", "PoweredOff"): "Starting",
    }
    reason = transitions[(desired, observed)]
    if (
        reason == "Starting"
        and printable
        and printable not in {"Stopped", "Starting"} | _RUNNING_PRINTABLE
    ):
        # ErrorUnschedulable, CrashLoopBackOff, Provisioning... say why it is not starting.
        # (A KubeVirt VM already saying Running is only ahead of its VMI: still Starting.)
        reason = printable
    return mark_false(
        conditions,
        POWER_STATE_REACHED,
        reason,
        f"powerState is {observed}, {desired} requested (KubeVirt: {printable or 'no VM'})",
        observed_generation=generation,
        now=now,
    )


def _copied_condition(
    conditions: list[Condition],
    condition_type: str,
    source: Mapping[str, Any] | None,
    generation: int,
    now: datetime,
) -> list[Condition]:
    if source is None:
        return mark_unknown(
            conditions,
            condition_type,
            "NotRunning",
            "reported while the VM runs",
            observed_generation=generation,
            now=now,
        )
    status = str(source.get("status") or "Unknown")
    reason = str(source.get("reason") or condition_type)
    message = str(source.get("message") or "")
    new = Condition(
        type=condition_type,
        status="True" if status == "True" else "False" if status == "False" else "Unknown",
        reason=reason,
        message=message,
        lastTransitionTime="",
        observedGeneration=generation,
    )
    return set_condition(conditions, new, now=now)


def running_cpus(vmi: Mapping[str, Any] | None) -> int | None:
    """The vCPUs the guest runs with (sockets x cores x threads of the VMI); None when off."""
    if observed_power_state(vmi) == "PoweredOff":
        return None
    topology = nested(vmi, "status", "currentCPUTopology") or {}
    sockets = topology.get("sockets")
    if not isinstance(sockets, int):
        return None
    cores, threads = topology.get("cores") or 1, topology.get("threads") or 1
    return sockets * int(cores) * int(threads)


def running_memory(vmi: Mapping[str, Any] | None) -> str | None:
    """The guest memory the guest has now (after hot-plug); None when off or unreported."""
    if observed_power_state(vmi) == "PoweredOff":
        return None
    current = bytes_or_none(nested(vmi, "status", "memory", "guestCurrent"))
    return format_bytes(current) if current is not None else None


def _references_condition(
    conditions: list[Condition],
    unresolved: Sequence[MissingReference],
    generation: int,
    now: datetime,
) -> list[Condition]:
    if not unresolved:
        return mark_true(
            conditions, REFERENCES_RESOLVED, "Resolved", observed_generation=generation, now=now
        )
    return mark_false(
        conditions,
        REFERENCES_RESOLVED,
        unresolved[0].reason,
        "; ".join(missing.message for missing in unresolved),
        observed_generation=generation,
        now=now,
    )


def _admitted_condition(
    conditions: list[Condition], rejection: Rejection | None, generation: int, now: datetime
) -> list[Condition]:
    if rejection is None:
        return mark_true(conditions, ADMITTED, "Admitted", observed_generation=generation, now=now)
    return mark_false(
        conditions,
        ADMITTED,
        rejection.reason,
        rejection.message,
        observed_generation=generation,
        now=now,
    )


def _restart_condition(
    conditions: list[Condition],
    kubevirt_vm: Mapping[str, Any] | None,
    plan: ChangePlan | None,
    name: str,
    namespace: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    reasons = list(plan.restart_reasons) if plan is not None else []
    for condition in nested(kubevirt_vm, "status", "conditions") or []:
        if condition.get("type") == RESTART_REQUIRED and condition.get("status") == "True":
            message = str(condition.get("message") or WHY_RESTART)
            if message not in reasons:
                reasons.append(message)
    if reasons:
        return mark_true(
            conditions,
            RESTART_REQUIRED,
            "PendingChanges",
            "; ".join(reasons) + ". " + restart_instructions(name, namespace),
            observed_generation=generation,
            now=now,
        )
    return mark_false(
        conditions,
        RESTART_REQUIRED,
        "NoPendingChanges",
        "the running VM matches its spec",
        observed_generation=generation,
        now=now,
    )


def _ready(
    conditions: list[Condition], spec: VirtualMachineSpec | None, generation: int, now: datetime
) -> list[Condition]:
    """Ready summarises Admitted and, for an admitted spec, references, disks and power."""
    required = [ADMITTED]
    if spec is not None:
        required += [REFERENCES_RESOLVED, DISKS_READY, POWER_STATE_REACHED]
        if spec.power_state == "PoweredOn":
            required.append(RUNNING)
    summarized = summarize_ready(
        conditions,
        required,
        observed_generation=generation,
        now=now,
        ready_message=f"the VM is {spec.power_state}" if spec is not None else "",
    )
    # Ready last, as kubectl describe lists it after what it summarises.
    return [c for c in summarized if c["type"] != READY] + [
        c for c in summarized if c["type"] == READY
    ]


def vm_status_from(
    spec: VirtualMachineSpec | None,
    name: str,
    namespace: str,
    generation: int,
    kubevirt_vm: Mapping[str, Any] | None,
    vmi: Mapping[str, Any] | None,
    *,
    previous_conditions: Sequence[Condition] = (),
    unresolved: Sequence[MissingReference] = (),
    rejection: Rejection | None = None,
    plan: ChangePlan | None = None,
    disks: Sequence[Mapping[str, Any]] | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The VDC VirtualMachine status (camelCase, every field of STATUS_FIELDS).

    `spec` is None when it could not be parsed (`rejection` then says why): only what KubeVirt
    reports is observed, and the conditions that judge the spec keep their last value.
    `unresolved` are the missing references, `rejection` a spec the controller refuses, `plan`
    the restart reasons of the last apply, `disks` where each disk is and its move
    (`disks.disk_statuses`; None keeps none). Conditions keep their lastTransitionTime unless
    their status changes, so the same inputs give the same status, whatever `now` is.
    """
    conditions = list(previous_conditions)
    printable = nested(kubevirt_vm, "status", "printableStatus")
    printable_text = str(printable) if printable else None
    observed = observed_power_state(vmi)

    conditions = _admitted_condition(conditions, rejection, generation, now)
    if spec is not None:
        conditions = _references_condition(conditions, unresolved, generation, now)
        conditions = _disks_condition(conditions, kubevirt_vm, vmi, generation, now)
        conditions = _running_condition(conditions, vmi, printable_text, generation, now)
        conditions = _power_condition(
            conditions, spec.power_state, observed, printable_text, generation, now
        )
        migratable = vmi_condition(vmi, VMI_LIVE_MIGRATABLE) if vmi_running(vmi) else None
        conditions = _copied_condition(conditions, LIVE_MIGRATABLE, migratable, generation, now)
        conditions = _restart_condition(
            conditions, kubevirt_vm, plan, name, namespace, generation, now
        )
    conditions = _ready(conditions, spec, generation, now)
    host = nested(vmi, "status", "nodeName") if vmi_running(vmi) else None
    return {
        "powerState": observed,
        "host": host or None,
        "ipAddresses": ip_addresses(vmi) if observed != "PoweredOff" else [],
        "nics": nic_statuses(spec, kubevirt_vm, vmi),
        "cpu": running_cpus(vmi),
        "memory": running_memory(vmi),
        "kubevirtStatus": printable_text,
        "disks": [dict(disk) for disk in disks or []],
        "conditions": conditions,
        "observedGeneration": generation,
    }


def admitted_rejection(status: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of the rejection a status already reports; None when admitted."""
    admitted = find_condition(status.get("conditions") or [], ADMITTED)
    if admitted is None or admitted["status"] != "False":
        return None
    return admitted["reason"], admitted["message"]


def migration_event(
    previous: Mapping[str, Any], status: Mapping[str, Any], vmi: Mapping[str, Any] | None
) -> tuple[str, str] | None:
    """(reason, message) of the Event for a live migration the status now shows finished.

    The host moved while the guest kept running, and the VMI's migrationState says it went
    from the old host to the new one (a hot-add or a drain migrates the guest).
    """
    before, after = previous.get("host"), status.get("host")
    if not before or not after or before == after:
        return None
    state = nested(vmi, "status", "migrationState") or {}
    if not (
        state.get("completed")
        and not state.get("failed")
        and state.get("sourceNode") == before
        and state.get("targetNode") == after
    ):
        return None
    addresses = ", ".join(status.get("ipAddresses") or []) or "none reported"
    return "Migrated", f"Live-migrated from {before} to {after} (IP {addresses})"
