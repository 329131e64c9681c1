"""Pure builders of the VirtualMachine controller (no I/O).

- `build_kubevirt_vm`: VDC VirtualMachine spec -> `kubevirt.io/v1` VirtualMachine, with one
  CDI DataVolume template per disk, Multus networks for port groups, and placement on the
  hosts of the VM's ComputeCluster.
- `plan_changes`: what applying that object to the live one does: which changes KubeVirt
  hot-plugs (CPU sockets, memory, placement) and which wait for a restart.
- `vm_status_from`: the VDC status (powerState, host, IPs, conditions) from the KubeVirt
  VirtualMachine and VirtualMachineInstance.

The KubeVirt rules mirrored here are in ../shared/notes/kubevirt-behaviour.md (sections 1, 2,
4 and 5): a VM is live-migratable only with a masquerade pod interface and ReadWriteMany
disks, and CPU/memory hot-plug completes through a live migration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from controllers.common.conditions import (
    READY,
    Condition,
    mark_false,
    mark_true,
    mark_unknown,
    set_condition,
    summarize_ready,
)
from controllers.computecluster.builders import ResolvedCluster, placement_for
from controllers.storagepolicy.builders import PROVISIONING_ANNOTATION, ResolvedStoragePolicy
from controllers.virtualmachine.models import (
    CLOUD_INIT_VOLUME,
    HOT_ADD_MEMORY_ALIGNMENT_BYTES,
    HOT_ADD_MIN_MEMORY_BYTES,
    Disk,
    PowerState,
    RestartPriority,
    VirtualMachineSpec,
)
from kubeunits.quantity import (
    QuantityError,
    format_bytes,
    quantities_equal,
    to_bytes,
)

KUBEVIRT_API_VERSION: Final = "kubevirt.io/v1"
CDI_API_VERSION: Final = "cdi.kubevirt.io/v1beta1"

VM_LABEL: Final = "vdcos.io/vm"
CLUSTER_LABEL: Final = "vdcos.io/cluster"
DISK_LABEL: Final = "vdcos.io/disk"
STORAGE_POLICY_LABEL: Final = "vdcos.io/storage-policy"

#: Name of the NIC added when a VM declares none (KubeVirt would add a non-migratable bridge).
DEFAULT_POD_NETWORK: Final = "default"
#: KubeVirt's default maxHotplugRatio: hot-add ceilings are 4x the size a VM starts with.
HOT_ADD_RATIO: Final = 4
#: KubeVirt caps maxSockets x cores x threads at 512 vCPUs.
MAX_VCPUS: Final = 512

#: PriorityClass values per restart priority: HA restarts in this order, and the scheduler
#: preempts lower ones first when hosts run short. Disabled VMs get the lowest value.
RESTART_PRIORITY_VALUES: Final[dict[RestartPriority, int]] = {
    "Disabled": 100_000,
    "Lowest": 200_000,
    "Low": 300_000,
    "Medium": 400_000,
    "High": 500_000,
    "Highest": 600_000,
}

# Condition types of a VDC VirtualMachine.
REFERENCES_RESOLVED: Final = "ReferencesResolved"
DISKS_READY: Final = "DisksReady"
POWER_STATE_REACHED: Final = "PowerStateReached"
RUNNING: Final = "Running"
LIVE_MIGRATABLE: Final = "LiveMigratable"
RESTART_REQUIRED: Final = "RestartRequired"

_FINAL_VMI_PHASES: Final = frozenset({"Succeeded", "Failed"})


class UnresolvedReferenceError(LookupError):
    """The spec names an object that does not exist (yet). The message names the field."""


# --------------------------------------------------------------------------- names


def label_value(name: str) -> str:
    """A label value for an object name: names up to 253 chars, label values up to 63.

    Long names keep a 54-char prefix and 8 hex chars of their SHA-1, as KubeVirt does for
    `vmi.kubevirt.io/id`.
    """
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


def data_volume_name(vm_name: str, disk_name: str) -> str:
    """The DataVolume (and PVC) of a disk: `<vm>-<disk>`."""
    return f"{vm_name}-{disk_name}"


def priority_class_name(priority: RestartPriority) -> str:
    """The PriorityClass of a restart priority, e.g. `vdcos-restart-medium`."""
    return f"vdcos-restart-{priority.lower()}"


def build_priority_classes() -> list[dict[str, Any]]:
    """The scheduling.k8s.io/v1 PriorityClasses every VM names; installed with the operator.

    A launcher pod naming a missing PriorityClass is rejected by admission, so these must
    exist before any VM starts.
    """
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {
                "name": priority_class_name(priority),
                "labels": {"app.kubernetes.io/managed-by": "vdcos"},
            },
            "value": value,
            "globalDefault": False,
            "preemptionPolicy": "PreemptLowerPriority",
            "description": f"vdcos VMs with restartPriority {priority}.",
        }
        for priority, value in RESTART_PRIORITY_VALUES.items()
    ]


def network_attachment_name(port_group_name: str) -> str:
    """The NetworkAttachmentDefinition (in the VM's namespace) of a DistributedPortGroup."""
    return port_group_name


# --------------------------------------------------------------------------- references


def storage_policy_for(disk: Disk, default_storage_policy_name: str | None) -> str | None:
    """The StoragePolicy name a disk uses: its own, else the default policy."""
    return disk.storage_policy_name or default_storage_policy_name


def unresolved_references(
    spec: VirtualMachineSpec,
    *,
    storage_policies: Collection[str],
    default_storage_policy_name: str | None,
    cluster_exists: bool,
    port_groups: Collection[str] | None = None,
) -> list[str]:
    """Messages naming each field whose referent is missing; empty when all resolve.

    `port_groups` None skips the port-group check (when the caller cannot list them).
    """
    problems: list[str] = []
    if spec.cluster_name is not None and not cluster_exists:
        problems.append(f'spec.clusterName: ComputeCluster "{spec.cluster_name}" not found')
    for index, disk in enumerate(spec.disks):
        policy = storage_policy_for(disk, default_storage_policy_name)
        if policy is None:
            problems.append(
                f"spec.disks[{index}].storagePolicyName: unset and no StoragePolicy is "
                "marked default"
            )
        elif policy not in storage_policies:
            problems.append(
                f'spec.disks[{index}].storagePolicyName: StoragePolicy "{policy}" not found'
            )
    if port_groups is not None:
        for index, network in enumerate(spec.networks):
            name = network.port_group_name
            if name is not None and name not in port_groups:
                problems.append(
                    f'spec.networks[{index}].portGroupName: DistributedPortGroup "{name}" not found'
                )
    return problems


# --------------------------------------------------------------------------- builder


@dataclass(frozen=True)
class HotAddCeilings:
    """maxSockets and maxGuest of the KubeVirt template.

    Changing either is not live-updatable, so a ceiling chosen when the VM was created is
    kept as long as the requested size fits under it.
    """

    max_sockets: int
    max_guest_bytes: int | None


def _template_field(kubevirt_vm: Mapping[str, Any] | None, *path: str) -> Any:
    node: Any = kubevirt_vm
    for key in ("spec", "template", "spec", "domain", *path):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _bytes_or_none(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return to_bytes(value)
    except QuantityError:
        return None


def hot_add_ceilings(
    spec: VirtualMachineSpec, live: Mapping[str, Any] | None = None
) -> HotAddCeilings:
    """The ceilings for `spec`, keeping those of the `live` KubeVirt VM while they still fit.

    Without hot-add the ceiling is the size itself, so KubeVirt's LiveUpdate defaults (4x)
    cannot hot-plug a VM whose owner did not ask for it. KubeVirt accepts maxGuest only from
    1Gi of guest memory in whole 2Mi steps, so smaller VMs get none (and no memory hot-plug).
    """
    sockets = spec.cpu.sockets
    cores = spec.cpu.cores_per_socket
    if spec.cpu.hot_add:
        max_sockets = max(sockets, min(sockets * HOT_ADD_RATIO, MAX_VCPUS // cores))
        live_max_sockets = _template_field(live, "cpu", "maxSockets")
        live_sockets = _template_field(live, "cpu", "sockets")
        live_cores = _template_field(live, "cpu", "cores")
        if (
            isinstance(live_max_sockets, int)
            and isinstance(live_sockets, int)
            and live_cores == cores
            and sockets <= live_max_sockets
            # A ceiling equal to the size it was set with was not a hot-add ceiling.
            and live_max_sockets > live_sockets
        ):
            max_sockets = live_max_sockets
    else:
        max_sockets = sockets

    guest = to_bytes(spec.memory.size)
    max_guest: int | None = None
    if guest >= HOT_ADD_MIN_MEMORY_BYTES and guest % HOT_ADD_MEMORY_ALIGNMENT_BYTES == 0:
        max_guest = guest
        if spec.memory.hot_add:
            max_guest = guest * HOT_ADD_RATIO
            live_max_guest = _bytes_or_none(_template_field(live, "memory", "maxGuest"))
            live_guest = _bytes_or_none(_template_field(live, "memory", "guest"))
            if (
                live_max_guest is not None
                and live_guest is not None
                and guest <= live_max_guest
                and live_max_guest > live_guest
            ):
                max_guest = live_max_guest
    return HotAddCeilings(max_sockets=max_sockets, max_guest_bytes=max_guest)


def _data_volume_source(disk: Disk, namespace: str) -> dict[str, Any]:
    """`source` or `sourceRef` of the disk's DataVolume spec."""
    source = disk.source
    if source is None or source.blank is not None:
        return {"source": {"blank": {}}}
    if source.http is not None:
        return {"source": {"http": {"url": source.http.url}}}
    if source.registry is not None:
        return {"source": {"registry": {"url": source.registry.url}}}
    if source.pvc is not None:
        return {
            "source": {
                "pvc": {"namespace": source.pvc.namespace or namespace, "name": source.pvc.name}
            }
        }
    assert source.data_source is not None  # DiskSource validates exactly one
    return {
        "sourceRef": {
            "kind": "DataSource",
            "namespace": source.data_source.namespace or namespace,
            "name": source.data_source.name,
        }
    }


def build_data_volume_template(
    vm_name: str, namespace: str, disk: Disk, policy: ResolvedStoragePolicy
) -> dict[str, Any]:
    """One `spec.dataVolumeTemplates` entry (a cdi.kubevirt.io/v1beta1 DataVolume)."""
    return {
        "apiVersion": CDI_API_VERSION,
        "kind": "DataVolume",
        "metadata": {
            "name": data_volume_name(vm_name, disk.name),
            "labels": {
                VM_LABEL: label_value(vm_name),
                DISK_LABEL: disk.name,
                STORAGE_POLICY_LABEL: label_value(policy.name),
            },
            "annotations": {PROVISIONING_ANNOTATION: policy.provisioning},
        },
        "spec": {
            **_data_volume_source(disk, namespace),
            "storage": {
                "storageClassName": policy.storage_class_name,
                "accessModes": [policy.access_mode],
                "volumeMode": policy.volume_mode,
                "resources": {"requests": {"storage": disk.size}},
            },
            "preallocation": policy.preallocated,
        },
    }


def _networks_and_interfaces(
    spec: VirtualMachineSpec,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not spec.networks:
        # KubeVirt's own default would be a bridge binding, which cannot live-migrate.
        return (
            [{"name": DEFAULT_POD_NETWORK, "pod": {}}],
            [{"name": DEFAULT_POD_NETWORK, "masquerade": {}}],
        )
    networks: list[dict[str, Any]] = []
    interfaces: list[dict[str, Any]] = []
    for network in spec.networks:
        if network.pod_network is not None:
            networks.append({"name": network.name, "pod": {}})
            interfaces.append({"name": network.name, "masquerade": {}})
        else:
            assert network.port_group_name is not None  # Network validates exactly one
            nad = network_attachment_name(network.port_group_name)
            networks.append({"name": network.name, "multus": {"networkName": nad}})
            interfaces.append({"name": network.name, "bridge": {}})
    return networks, interfaces


def _resolve_disk_policies(
    spec: VirtualMachineSpec,
    storage_policies: Mapping[str, ResolvedStoragePolicy],
    default_storage_policy_name: str | None,
) -> list[ResolvedStoragePolicy]:
    resolved = []
    for index, disk in enumerate(spec.disks):
        name = storage_policy_for(disk, default_storage_policy_name)
        if name is None or name not in storage_policies:
            raise UnresolvedReferenceError(
                f"spec.disks[{index}].storagePolicyName: StoragePolicy "
                f'"{name or "<default>"}" not found'
            )
        resolved.append(storage_policies[name])
    return resolved


def build_kubevirt_vm(
    spec: VirtualMachineSpec,
    name: str,
    namespace: str,
    *,
    storage_policies: Mapping[str, ResolvedStoragePolicy],
    cluster: ResolvedCluster | None,
    default_storage_policy_name: str | None = None,
    live: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The kubevirt.io/v1 VirtualMachine for a VDC VirtualMachine (same name and namespace).

    `storage_policies` maps policy names to resolved policies; `cluster` is the resolved
    ComputeCluster (None when `spec.clusterName` is unset). `live` is the KubeVirt VM as it
    exists, so hot-add ceilings chosen at creation are kept (see `hot_add_ceilings`).
    Raises UnresolvedReferenceError naming the field when a reference is missing: call
    `unresolved_references` first to report them all in a condition.

    Ownership (ownerReferences) is left to the caller (`kopf.adopt`).
    """
    if spec.cluster_name is not None and (cluster is None or cluster.name != spec.cluster_name):
        raise UnresolvedReferenceError(
            f'spec.clusterName: ComputeCluster "{spec.cluster_name}" not found'
        )
    policies = _resolve_disk_policies(spec, storage_policies, default_storage_policy_name)
    ceilings = hot_add_ceilings(spec, live)

    labels = {VM_LABEL: label_value(name)}
    if cluster is not None:
        labels[CLUSTER_LABEL] = label_value(cluster.name)

    cpu: dict[str, Any] = {
        "sockets": spec.cpu.sockets,
        "cores": spec.cpu.cores_per_socket,
        "threads": 1,
        "maxSockets": ceilings.max_sockets,
    }
    guest_bytes = to_bytes(spec.memory.size)
    memory: dict[str, Any] = {"guest": format_bytes(guest_bytes)}
    if ceilings.max_guest_bytes is not None:
        memory["maxGuest"] = format_bytes(ceilings.max_guest_bytes)

    disks: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for disk in spec.disks:
        device: dict[str, Any] = {"name": disk.name, "disk": {"bus": disk.bus}}
        if disk.boot_order is not None:
            device["bootOrder"] = disk.boot_order
        disks.append(device)
        volumes.append(
            {"name": disk.name, "dataVolume": {"name": data_volume_name(name, disk.name)}}
        )
    if spec.cloud_init is not None:
        disks.append({"name": CLOUD_INIT_VOLUME, "disk": {"bus": "virtio"}})
        volumes.append(
            {
                "name": CLOUD_INIT_VOLUME,
                "cloudInitNoCloud": {"secretRef": {"name": spec.cloud_init.user_data_secret_name}},
            }
        )

    networks, interfaces = _networks_and_interfaces(spec)
    bootloader: dict[str, Any] = (
        {"efi": {"secureBoot": False}} if spec.firmware == "EFI" else {"bios": {}}
    )
    migratable_disks = all(policy.live_migratable for policy in policies)

    template_spec: dict[str, Any] = {
        "domain": {
            "cpu": cpu,
            "memory": memory,
            "firmware": {"bootloader": bootloader},
            "devices": {"disks": disks, "interfaces": interfaces},
        },
        "networks": networks,
        "volumes": volumes,
        # LiveMigrate denies a drain of a host whose VM cannot migrate; such VMs are shut
        # down and restarted elsewhere instead (LiveMigrateIfPossible).
        "evictionStrategy": "LiveMigrate" if migratable_disks else "LiveMigrateIfPossible",
        "priorityClassName": priority_class_name(spec.restart_priority),
    }
    if cluster is not None:
        node_selector, affinity = placement_for(cluster.spec)
        if node_selector:
            template_spec["nodeSelector"] = node_selector
        if affinity is not None:
            template_spec["affinity"] = affinity

    return {
        "apiVersion": KUBEVIRT_API_VERSION,
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "runStrategy": "Halted" if spec.power_state == "PoweredOff" else "Always",
            "dataVolumeTemplates": [
                build_data_volume_template(name, namespace, disk, policy)
                for disk, policy in zip(spec.disks, policies, strict=True)
            ],
            "template": {"metadata": {"labels": dict(labels)}, "spec": template_spec},
        },
    }


# --------------------------------------------------------------------------- change plan


@dataclass(frozen=True)
class ChangePlan:
    """What applying the desired KubeVirt VM over the live one does to a running guest.

    `live_updates` are applied without a restart (hot-plug, placement, labels);
    `restart_reasons` say what waits for the next restart. `power` describes a runStrategy
    change ("Halted -> Always"), `create` that no KubeVirt VM exists yet.
    """

    create: bool = False
    power: str | None = None
    live_updates: tuple[str, ...] = ()
    restart_reasons: tuple[str, ...] = ()
    deferred: tuple[str, ...] = field(default=())

    @property
    def restart_required(self) -> bool:
        return bool(self.restart_reasons)

    @property
    def changed(self) -> bool:
        return bool(
            self.create or self.power or self.live_updates or self.restart_reasons or self.deferred
        )


def _is_empty(value: Any) -> bool:
    """Values the API drops (Go omitempty slices). `{}` is kept: `bios: {}` means something."""
    return value is None or value == []


def _scalars_equal(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    if isinstance(desired, str | int) and isinstance(live, str | int):
        # Quantities are compared by value: "4Gi" and "4096Mi" are the same memory.
        try:
            return quantities_equal(desired, live) and not isinstance(desired, bool)
        except QuantityError:
            return False
    return False


def _differences(desired: Any, live: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths where `desired` differs from `live`.

    Only what `desired` sets is compared: fields KubeVirt defaults into the live object
    (firmware UUID, machine type, ...) are not ours and are not differences.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [] if _is_empty(desired) and _is_empty(live) else [path]
        found: list[tuple[str, ...]] = []
        for key, value in desired.items():
            if key not in live:
                if not _is_empty(value):
                    found.append((*path, key))
                continue
            found.extend(_differences(value, live[key], (*path, key)))
        return found
    if isinstance(desired, list):
        if not isinstance(live, list):
            return [] if _is_empty(desired) and _is_empty(live) else [path]
        if len(desired) != len(live):
            return [path]
        found = []
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            found.extend(_differences(want, have, (*path, str(index))))
        return found
    return [] if _scalars_equal(desired, live) else [path]


def _get(node: Any, *path: str) -> Any:
    for key in path:
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def _vmi_running(vmi: Mapping[str, Any] | None) -> bool:
    return vmi is not None and _get(vmi, "status", "phase") not in _FINAL_VMI_PHASES


def _vmi_condition(vmi: Mapping[str, Any] | None, condition_type: str) -> Mapping[str, Any] | None:
    for condition in _get(vmi, "status", "conditions") or []:
        if condition.get("type") == condition_type:
            return dict(condition)
    return None


_LIVE_TEMPLATE_FIELDS: Final = frozenset({"nodeSelector", "affinity", "tolerations"})
_WHY_RESTART: Final = "a non-live-updatable field was changed in the template spec"


def _cpu_change(
    desired_template: Mapping[str, Any],
    live_template: Mapping[str, Any],
    vmi: Mapping[str, Any] | None,
) -> tuple[str | None, str | None]:
    """(live update, restart reason) for a change of domain.cpu.sockets."""
    want = _get(desired_template, "domain", "cpu", "sockets")
    current = _get(vmi, "status", "currentCPUTopology", "sockets")
    if not isinstance(current, int):
        current = _get(live_template, "domain", "cpu", "sockets")
    ceiling = _get(live_template, "domain", "cpu", "maxSockets")
    if not isinstance(want, int) or not isinstance(current, int):
        return None, f"CPU sockets changed ({_WHY_RESTART})"
    if want == current:
        return f"CPU sockets {current} (already running)", None
    if isinstance(ceiling, int) and want > ceiling:
        return None, (
            f"CPU sockets updated to {want}, higher than the hot-add maximum of {ceiling}"
        )
    if want < current:
        return None, f"Reduction of CPU sockets from {current} to {want} requires a restart"
    migratable = _vmi_condition(vmi, LIVE_MIGRATABLE)
    if migratable is not None and migratable.get("status") == "False":
        return None, (
            "CPU hot-add completes through a live migration and the VM is not live-migratable"
            f" ({migratable.get('message') or migratable.get('reason')})"
        )
    return f"CPU sockets {current} -> {want} (hot-add)", None


def _memory_change(
    desired_template: Mapping[str, Any],
    live_template: Mapping[str, Any],
    vmi: Mapping[str, Any] | None,
) -> tuple[str | None, str | None]:
    """(live update, restart reason) for a change of domain.memory.guest."""
    want = _bytes_or_none(_get(desired_template, "domain", "memory", "guest"))
    at_boot = _bytes_or_none(_get(vmi, "status", "memory", "guestAtBoot"))
    if at_boot is None:
        at_boot = _bytes_or_none(_get(live_template, "domain", "memory", "guest"))
    ceiling = _bytes_or_none(_get(live_template, "domain", "memory", "maxGuest"))
    if want is None or at_boot is None:
        return None, f"memory changed ({_WHY_RESTART})"
    wanted = format_bytes(want)
    if want < at_boot:
        return None, (
            f"Memory updated to {wanted}, lower than the {format_bytes(at_boot)} the VM "
            "started with"
        )
    if ceiling is None:
        return None, "Memory hot-plug is not available for this VM configuration"
    if want > ceiling:
        return None, (
            f"Memory updated to {wanted}, higher than the hot-add maximum of "
            f"{format_bytes(ceiling)}"
        )
    migratable = _vmi_condition(vmi, LIVE_MIGRATABLE)
    if migratable is not None and migratable.get("status") == "False":
        return None, "Memory hot-plug is only available for live-migratable VMs"
    return f"memory -> {wanted} (hot-add)", None


def plan_changes(
    desired: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    vmi: Mapping[str, Any] | None = None,
) -> ChangePlan:
    """Which differences between the desired and live KubeVirt VMs apply live.

    Mirrors KubeVirt's LiveUpdate rules: CPU sockets may grow up to maxSockets, memory may
    grow up to maxGuest (never below the size at boot), and both need a live-migratable VM;
    nodeSelector, affinity, tolerations and template labels are live; any other template
    change sets RestartRequired. `vmi` is the running VirtualMachineInstance, None when the
    VM is not running: then nothing needs a restart and template changes are `deferred` to
    the next power-on.
    """
    if live is None:
        return ChangePlan(create=True)
    power = None
    desired_strategy = _get(desired, "spec", "runStrategy")
    live_strategy = _get(live, "spec", "runStrategy")
    if desired_strategy != live_strategy:
        power = f"{live_strategy} -> {desired_strategy}"

    desired_template = _get(desired, "spec", "template", "spec") or {}
    live_template = _get(live, "spec", "template", "spec") or {}
    differences = _differences(desired_template, live_template)
    metadata_differences = _differences(
        _get(desired, "spec", "template", "metadata") or {},
        _get(live, "spec", "template", "metadata") or {},
    )
    volume_differences = _differences(
        _get(desired, "spec", "dataVolumeTemplates") or [],
        _get(live, "spec", "dataVolumeTemplates") or [],
    )

    running = _vmi_running(vmi)
    live_updates: list[str] = []
    restart: list[str] = []
    deferred: list[str] = []
    if metadata_differences:
        live_updates.append("template labels")
    handled: set[tuple[str, ...]] = set()
    for path in differences:
        if path in handled:
            continue
        described = ".".join(path)
        if not running:
            deferred.append(described)
            continue
        if path[0] in _LIVE_TEMPLATE_FIELDS:
            live_updates.append(f"placement ({path[0]})")
        elif path == ("domain", "cpu", "sockets"):
            update, reason = _cpu_change(desired_template, live_template, vmi)
            live_updates.extend([update] if update else [])
            restart.extend([reason] if reason else [])
        elif path == ("domain", "memory", "guest"):
            update, reason = _memory_change(desired_template, live_template, vmi)
            live_updates.extend([update] if update else [])
            restart.extend([reason] if reason else [])
        else:
            restart.append(f"{described} changed")
        handled.add(path)
    if volume_differences:
        if running:
            restart.append("disks changed")
        else:
            deferred.append("disks")
    return ChangePlan(
        power=power,
        live_updates=tuple(dict.fromkeys(live_updates)),
        restart_reasons=tuple(dict.fromkeys(restart)),
        deferred=tuple(dict.fromkeys(deferred)),
    )


# --------------------------------------------------------------------------- status


def observed_power_state(vmi: Mapping[str, Any] | None) -> PowerState:
    """PoweredOn while the guest runs, Suspended while it is paused, else PoweredOff."""
    if vmi is None or _get(vmi, "status", "phase") != "Running":
        return "PoweredOff"
    paused = _vmi_condition(vmi, "Paused")
    if paused is not None and paused.get("status") == "True":
        return "Suspended"
    return "PoweredOn"


def ip_addresses(vmi: Mapping[str, Any] | None) -> list[str]:
    """IP addresses of the VMI's interfaces, in interface order, without duplicates."""
    found: dict[str, None] = {}
    for interface in _get(vmi, "status", "interfaces") or []:
        addresses = list(interface.get("ipAddresses") or [])
        if interface.get("ipAddress"):
            addresses.insert(0, interface["ipAddress"])
        for address in addresses:
            found.setdefault(str(address), None)
    return list(found)


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
    printable = _get(kubevirt_vm, "status", "printableStatus")
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
    ready = _vmi_condition(vmi, "DataVolumesReady")
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
    ready = _vmi_condition(vmi, "Ready")
    if ready is not None and ready.get("status") != "True":
        return mark_false(
            conditions,
            RUNNING,
            "NotReady",
            str(ready.get("message") or ready.get("reason") or "the guest is not ready"),
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
    if reason == "Starting" and printable and printable not in ("Stopped", "Starting"):
        # ErrorUnschedulable, CrashLoopBackOff, Provisioning... say why it is not starting.
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


def vm_status_from(
    spec: VirtualMachineSpec,
    name: str,
    namespace: str,
    generation: int,
    kubevirt_vm: Mapping[str, Any] | None,
    vmi: Mapping[str, Any] | None,
    *,
    previous_conditions: Sequence[Condition] = (),
    unresolved: Sequence[str] = (),
    plan: ChangePlan | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The VDC VirtualMachine status (camelCase) from what KubeVirt reports.

    `unresolved` are the messages of `unresolved_references`; `plan` the result of
    `plan_changes` for the last apply. Keys with nothing to report are None, so a merge
    patch of the result also clears stale values (a host after power-off).
    Conditions keep their lastTransitionTime unless their status changes.
    """
    conditions = list(previous_conditions)
    printable = _get(kubevirt_vm, "status", "printableStatus")
    printable_text = str(printable) if printable else None
    observed = observed_power_state(vmi)

    if unresolved:
        conditions = mark_false(
            conditions,
            REFERENCES_RESOLVED,
            "ReferenceNotFound",
            "; ".join(unresolved),
            observed_generation=generation,
            now=now,
        )
    else:
        conditions = mark_true(
            conditions,
            REFERENCES_RESOLVED,
            "Resolved",
            observed_generation=generation,
            now=now,
        )
    conditions = _disks_condition(conditions, kubevirt_vm, vmi, generation, now)
    conditions = _running_condition(conditions, vmi, printable_text, generation, now)
    conditions = _power_condition(
        conditions, spec.power_state, observed, printable_text, generation, now
    )
    migratable = _vmi_condition(vmi, LIVE_MIGRATABLE) if _vmi_running(vmi) else None
    conditions = _copied_condition(conditions, LIVE_MIGRATABLE, migratable, generation, now)

    reasons = list(plan.restart_reasons) if plan is not None else []
    kubevirt_restart = None
    for condition in _get(kubevirt_vm, "status", "conditions") or []:
        if condition.get("type") == RESTART_REQUIRED and condition.get("status") == "True":
            kubevirt_restart = str(condition.get("message") or _WHY_RESTART)
    if kubevirt_restart and kubevirt_restart not in reasons:
        reasons.append(kubevirt_restart)
    if reasons:
        conditions = mark_true(
            conditions,
            RESTART_REQUIRED,
            "PendingChanges",
            "; ".join(reasons) + ". " + restart_instructions(name, namespace),
            observed_generation=generation,
            now=now,
        )
    else:
        conditions = mark_false(
            conditions,
            RESTART_REQUIRED,
            "NoPendingChanges",
            "the running VM matches its spec",
            observed_generation=generation,
            now=now,
        )

    required = [REFERENCES_RESOLVED, DISKS_READY, POWER_STATE_REACHED]
    if spec.power_state == "PoweredOn":
        required.append(RUNNING)
    conditions = summarize_ready(
        conditions,
        required,
        observed_generation=generation,
        now=now,
        ready_message=f"the VM is {spec.power_state}",
    )
    conditions = [c for c in conditions if c["type"] != READY] + [
        c for c in conditions if c["type"] == READY
    ]
    host = _get(vmi, "status", "nodeName") if _vmi_running(vmi) else None
    return {
        "powerState": observed,
        "host": host or None,
        "ipAddresses": ip_addresses(vmi) if observed != "PoweredOff" else [],
        "kubevirtStatus": printable_text,
        "conditions": conditions,
        "observedGeneration": generation,
    }
