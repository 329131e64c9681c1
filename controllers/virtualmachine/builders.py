"""Building the KubeVirt objects of a VDC VirtualMachine (pure, no I/O).

- `build_kubevirt_vm`: VDC VirtualMachine spec -> `kubevirt.io/v1` VirtualMachine, with one
  CDI DataVolume template per disk, Multus networks for port groups, and placement on the
  hosts of the VM's ComputeCluster.
- `build_priority_classes`: the PriorityClasses of the restart priorities.
- `unresolved_references`: the fields whose referent (cluster, policy, port group) is missing.

Planning what an apply changes is `changes.py`; the VDC status is `status.py`. The KubeVirt
rules mirrored here are in ../shared/notes/kubevirt-behaviour.md (sections 1, 2, 4 and 5): a
VM is live-migratable only with a masquerade pod interface and ReadWriteMany disks.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from controllers.computecluster.builders import ResolvedCluster, placement_for
from controllers.computecluster.rule_affinity import rule_placement
from controllers.storagepolicy.builders import PROVISIONING_ANNOTATION, ResolvedStoragePolicy
from controllers.virtualmachine.changes import APPLIED_DIGEST_ANNOTATION, hot_add_ceilings
from controllers.virtualmachine.disks import (
    DISK_LABEL,
    MIGRATION_STRATEGY,
    STORAGE_POLICY_LABEL,
    DiskPlacement,
    DiskPlan,
)
from controllers.virtualmachine.kubevirt_reading import nested
from controllers.virtualmachine.models import (
    CLOUD_INIT_VOLUME,
    OVF_ENVIRONMENT_VOLUME,
    CloneMode,
    Disk,
    OVFEnvironment,
    RestartPriority,
    VirtualMachineSpec,
)
from controllers.virtualmachine.nics import (
    WIRING_ANNOTATION,
    nic_devices,
    wiring_annotation,
)
from controllers.virtualmachine.nics import network_attachment_name as network_attachment_name
from controllers.virtualmachine.template_merge import clone_annotations
from kubekit.quantity import format_bytes, to_bytes

KUBEVIRT_API_VERSION: Final = "kubevirt.io/v1"
CDI_API_VERSION: Final = "cdi.kubevirt.io/v1beta1"

VM_LABEL: Final = "vdcos.io/vm"
CLUSTER_LABEL: Final = "vdcos.io/cluster"

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


def restart_priority(spec: VirtualMachineSpec, cluster: ResolvedCluster | None) -> RestartPriority:
    """The VM's own restartPriority, else its cluster's defaultRestartPriority, else Medium."""
    if spec.restart_priority is not None:
        return spec.restart_priority
    return cluster.spec.ha.default_restart_priority if cluster is not None else "Medium"


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


# --------------------------------------------------------------------------- references


def storage_policy_for(disk: Disk, default_storage_policy_name: str | None) -> str | None:
    """The StoragePolicy name a disk uses: its own, else the default policy."""
    return disk.storage_policy_name or default_storage_policy_name


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
    vm_name: str,
    namespace: str,
    disk: Disk,
    policy: ResolvedStoragePolicy,
    clone_mode: CloneMode = "Linked",
    *,
    name: str | None = None,
    clone_from: str | None = None,
) -> dict[str, Any]:
    """One `spec.dataVolumeTemplates` entry (a cdi.kubevirt.io/v1beta1 DataVolume).

    `name` is the DataVolume's (a disk moved by Storage vMotion has another than
    `<vm>-<disk>`); `clone_from` names the DataVolume an offline move copies. A disk cloned
    from a claim or DataSource with clone_mode Full asks CDI for a full copy.
    """
    source = (
        {"source": {"pvc": {"namespace": namespace, "name": clone_from}}}
        if clone_from is not None
        else _data_volume_source(disk, namespace)
    )
    cloned = clone_from is None and disk.source is not None and (
        disk.source.pvc is not None or disk.source.data_source is not None
    )
    annotations = {
        PROVISIONING_ANNOTATION: policy.provisioning,
        **(clone_annotations(clone_mode) if cloned else {}),
    }
    return {
        "apiVersion": CDI_API_VERSION,
        "kind": "DataVolume",
        "metadata": {
            "name": name or data_volume_name(vm_name, disk.name),
            "labels": {
                VM_LABEL: label_value(vm_name),
                DISK_LABEL: disk.name,
                STORAGE_POLICY_LABEL: label_value(policy.name),
            },
            "annotations": annotations,
        },
        "spec": {
            **source,
            "storage": {
                "storageClassName": policy.storage_class_name,
                "accessModes": [policy.access_mode],
                "volumeMode": policy.volume_mode,
                "resources": {"requests": {"storage": disk.size}},
            },
            "preallocation": policy.preallocated,
        },
    }


def _disk_device(disk: Disk, placement: DiskPlacement | None) -> dict[str, Any]:
    if placement is not None and placement.hotpluggable:
        # KubeVirt hot-plugs disks on the SCSI bus, and does not boot from them.
        return {"name": disk.name, "disk": {"bus": "scsi"}}
    device: dict[str, Any] = {"name": disk.name, "disk": {"bus": disk.bus}}
    if disk.boot_order is not None:
        device["bootOrder"] = disk.boot_order
    return device


def _disk_volume(vm_name: str, disk: Disk, placement: DiskPlacement | None) -> dict[str, Any]:
    if placement is None:
        return {"name": disk.name, "dataVolume": {"name": data_volume_name(vm_name, disk.name)}}
    source: dict[str, Any] = {"name": placement.data_volume}
    if placement.hotpluggable:
        source["hotpluggable"] = True
    return {"name": disk.name, "dataVolume": source}


def _disk_data_volumes(
    vm_name: str,
    namespace: str,
    disk: Disk,
    policy: ResolvedStoragePolicy,
    placement: DiskPlacement | None,
    live: Mapping[str, Any] | None,
    clone_mode: CloneMode = "Linked",
) -> list[dict[str, Any]]:
    """The disk's DataVolume templates: the one it uses, and during a move the other.

    A volume on another class than the policy's (the source of a move, or the disk a
    failed move returned to) keeps the template it was made with.
    """
    if placement is None:
        return [build_data_volume_template(vm_name, namespace, disk, policy, clone_mode)]
    live_templates = {
        str(nested(t, "metadata", "name")): t
        for t in nested(live, "spec", "dataVolumeTemplates") or []
    }
    templates = []
    for data_volume in placement.data_volumes:
        existing = live_templates.get(data_volume)
        existing_class = nested(existing, "spec", "storage", "storageClassName")
        if existing is not None and existing_class != policy.storage_class_name:
            templates.append(copy.deepcopy(dict(existing)))
            continue
        templates.append(
            build_data_volume_template(
                vm_name,
                namespace,
                disk,
                policy,
                clone_mode,
                name=data_volume,
                clone_from=placement.clone_from.get(data_volume)
                or _moved_from(existing, vm_name, disk.name),
            )
        )
    return templates


def _kept_data_volumes(
    live: Mapping[str, Any] | None, disk_plan: DiskPlan | None
) -> list[dict[str, Any]]:
    """Templates of removed disks the running guest still uses, as they were applied."""
    kept = set(disk_plan.kept_data_volumes) if disk_plan is not None else set()
    return [
        copy.deepcopy(dict(template))
        for template in nested(live, "spec", "dataVolumeTemplates") or []
        if nested(template, "metadata", "name") in kept
    ]


def _moved_from(template: Mapping[str, Any] | None, vm_name: str, disk_name: str) -> str | None:
    """The DataVolume an offline move cloned this one from (kept: a DataVolume's source
    does not change), or None when it was made otherwise."""
    source = nested(template, "spec", "source", "pvc", "name")
    if isinstance(source, str) and source.startswith(f"{vm_name}-{disk_name}"):
        return source
    return None


def resolve_disk_policies(
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
    mac_addresses: Mapping[str, str] | None = None,
    vmi: Mapping[str, Any] | None = None,
    port_group_wiring: Mapping[str, str] | None = None,
    vm_labels: Mapping[str, str] | None = None,
    ha_held: bool = False,
    disk_plan: DiskPlan | None = None,
) -> dict[str, Any]:
    """The kubevirt.io/v1 VirtualMachine for a VDC VirtualMachine (same name and namespace).

    `storage_policies` maps policy names to resolved policies; `cluster` is the resolved
    ComputeCluster (None when `spec.clusterName` is unset). `live` is the KubeVirt VM as it
    exists, so hot-add ceilings chosen at creation are kept (see `hot_add_ceilings`), and
    NICs removed from the spec are unplugged (`state: absent`) while `vmi` still has them.
    `mac_addresses` maps NIC names to MACs (`nics.resolve_macs`); without it NICs get none.
    `port_group_wiring` maps port groups to their wiring digests (`nics.port_group_wiring`).
    `vm_labels` (the VDC VM's labels) pick the cluster's rules it is in: their affinity.
    `disk_plan` (`disks.plan_disks`) places each disk: its DataVolume (a moved disk's),
    hot-pluggable or not, and the old volume a Storage vMotion still carries.
    Raises UnresolvedReferenceError naming the field when a reference is missing: call
    `unresolved_references` first to report them all in a condition.

    Ownership (ownerReferences) is left to the caller (`kopf.adopt`).
    """
    if spec.cluster_name is not None and (cluster is None or cluster.name != spec.cluster_name):
        raise UnresolvedReferenceError(
            f'spec.clusterName: ComputeCluster "{spec.cluster_name}" not found'
        )
    policies = resolve_disk_policies(spec, storage_policies, default_storage_policy_name)
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
    data_volume_templates: list[dict[str, Any]] = []
    for disk, policy in zip(spec.disks, policies, strict=True):
        placement = disk_plan.placement(disk.name) if disk_plan is not None else None
        disks.append(_disk_device(disk, placement))
        volumes.append(_disk_volume(name, disk, placement))
        data_volume_templates.extend(
            _disk_data_volumes(name, namespace, disk, policy, placement, live, spec.clone_mode)
        )
    if spec.cloud_init is not None:
        disks.append({"name": CLOUD_INIT_VOLUME, "disk": {"bus": "virtio"}})
        volumes.append(
            {
                "name": CLOUD_INIT_VOLUME,
                "cloudInitNoCloud": {"secretRef": {"name": spec.cloud_init.user_data_secret_name}},
            }
        )

    if spec.ovf_environment is not None:
        disks.append(ovf_environment_cdrom())
        volumes.append(ovf_environment_volume(spec.ovf_environment))

    networks, interfaces = nic_devices(spec, mac_addresses or {}, live, vmi)
    bootloader: dict[str, Any] = (
        {"efi": {"secureBoot": False}} if spec.firmware == "EFI" else {"bios": {}}
    )

    template_spec: dict[str, Any] = {
        "domain": {
            "cpu": cpu,
            "memory": memory,
            "firmware": {"bootloader": bootloader},
            "devices": {"disks": disks, "interfaces": interfaces},
        },
        "networks": networks,
        "volumes": volumes,
        # A drain live-migrates the VM, and waits (the eviction is denied, naming the VM)
        # when it cannot migrate: never a silent power-off. An RWO disk cannot follow the
        # VM to another host, so "restart elsewhere" would fail there anyway.
        "evictionStrategy": "LiveMigrate",
        "priorityClassName": priority_class_name(restart_priority(spec, cluster)),
    }
    template_labels = dict(labels)
    if cluster is not None:
        node_selector, affinity = placement_for(cluster.spec)
        rules = rule_placement(
            cluster.spec.rules, vm_labels or {}, label_value(cluster.name), affinity
        )
        affinity = rules.affinity
        template_labels.update(rules.labels)
        if node_selector:
            template_spec["nodeSelector"] = node_selector
        if affinity is not None:
            template_spec["affinity"] = affinity

    template_metadata: dict[str, Any] = {"labels": template_labels}
    wiring = wiring_annotation(spec, port_group_wiring or {})
    if wiring is not None:
        # The VMI starts with it, so the guest's wiring is known later (`rewired_port_groups`).
        template_metadata["annotations"] = {WIRING_ANNOTATION: wiring}

    built: dict[str, Any] = {
        "apiVersion": KUBEVIRT_API_VERSION,
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            # Manual while HA holds the VM of a failed host: KubeVirt then does not start it
            # again on its own, and HA releases it in priority order (docs/ha.md).
            "runStrategy": (
                "Halted" if spec.power_state == "PoweredOff" else "Manual" if ha_held else "Always"
            ),
            "dataVolumeTemplates": data_volume_templates + _kept_data_volumes(live, disk_plan),
            "template": {"metadata": template_metadata, "spec": template_spec},
        },
    }
    if (disk_plan is not None and disk_plan.live_migration) or nested(
        live, "spec", "updateVolumesStrategy"
    ) == MIGRATION_STRATEGY:
        # Kept once set: KubeVirt then migrates a volume whose claim changes (Storage
        # vMotion) instead of asking for a restart.
        built["spec"]["updateVolumesStrategy"] = MIGRATION_STRATEGY
    built["metadata"]["annotations"] = {APPLIED_DIGEST_ANNOTATION: digest_of(built)}
    return built


def ovf_environment_cdrom() -> dict[str, Any]:
    """The OVF `iso` transport: a read-only CD-ROM (sata: /dev/sr0, where cloud-init's OVF
    datasource looks for ovf-env.xml)."""
    return {"name": OVF_ENVIRONMENT_VOLUME, "cdrom": {"bus": "sata", "readonly": True}}


def ovf_environment_volume(environment: OVFEnvironment) -> dict[str, Any]:
    """KubeVirt makes an ISO of a configMap or secret volume, one file per key."""
    if environment.secret_name is not None:
        return {"name": OVF_ENVIRONMENT_VOLUME, "secret": {"secretName": environment.secret_name}}
    return {"name": OVF_ENVIRONMENT_VOLUME, "configMap": {"name": environment.config_map_name}}


def digest_of(obj: Mapping[str, Any]) -> str:
    """A digest of the object as built, so the next pass can tell whether the live VM was
    built from the same desired object (see `changes.plan_changes`)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]
