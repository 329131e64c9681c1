"""What one reconcile pass of a VDC VM looks at, and the shapes its caches keep (pure).

The caches (watches) hold slimmed copies of the objects: what the reconciler reads and no
more, so 5,000 VMs fit in the operator's memory. Of a KubeVirt VM the cache keeps what our
field manager manages (its managedFields projection), not what KubeVirt defaulted, so the
change planner compares the desired object with what we applied.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from controllers.common.kube import FIELD_MANAGER
from controllers.computecluster.models import ComputeClusterSpec
from controllers.distributedportgroup.models import DistributedPortGroupSpec
from controllers.hostfailure.annotations import ha_annotations
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.changes import APPLIED_DIGEST_ANNOTATION
from controllers.virtualmachine.managed_view import applied_fields, managed_view
from controllers.virtualmachine.nics import TEMPLATE_NICS, WIRING_ANNOTATION
from controllers.virtualmachine.revert import RestoreView, SnapshotView
from controllers.virtualmachine.template_merge import TemplateView

Key = tuple[str, str]

#: Of a VMI's migrationState, what tells where the guest went and whether it arrived.
_MIGRATION_FIELDS: Final = ("sourceNode", "targetNode", "completed", "failed")


@dataclass(frozen=True)
class Observed:
    """Everything one pass looks at, read from the caches."""

    vdc_vm: Mapping[str, Any]
    kubevirt_vm: Mapping[str, Any] | None
    vmi: Mapping[str, Any] | None
    storage_policies: Mapping[str, StoragePolicySpec]
    clusters: Mapping[str, ComputeClusterSpec]
    storage_classes: frozenset[str]
    #: DistributedPortGroups by name; None for one whose spec does not parse.
    port_groups: Mapping[str, DistributedPortGroupSpec | None]
    nodes: tuple[Mapping[str, Any], ...]
    #: Labels of the VM's namespace (what port groups' namespaceSelectors match).
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    #: Wiring digest of each port group (`nics.port_group_wiring`).
    port_group_wiring: Mapping[str, str] = field(default_factory=dict)
    #: The VMs (keys) whose KubeVirt VM has a NIC with this MAC address.
    mac_users: Callable[[str], Collection[Key]] = lambda mac: ()
    #: Each ComputeCluster's status (hosts, capacity, allocation): HA admission control.
    cluster_statuses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: StorageClasses with allowVolumeExpansion (disks on them grow online).
    expandable_classes: frozenset[str] = frozenset()
    #: The cluster's one default StorageClass (policies naming no class use it).
    default_storage_class: str | None = None
    #: The VM's VirtualMachineTemplate (spec.templateName); None when unset or missing.
    template: TemplateView | None = None
    #: The DataVolume of the boot disk cloned from the template (how CDI cloned it).
    boot_data_volume: Mapping[str, Any] | None = None
    #: Its claim (CDI notes a clone's fallback reason there).
    boot_claim: Mapping[str, Any] | None = None
    #: The VDC VirtualMachineSnapshot of this namespace with that name (reverts, restores).
    snapshot: Callable[[str], SnapshotView | None] = lambda name: None
    #: The KubeVirt VirtualMachineRestores reverting this VM.
    restores: tuple[RestoreView, ...] = ()


def slim_vdc_vm(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconciler keeps of a VDC VirtualMachine."""
    metadata = body.get("metadata", {})
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "generation": metadata.get("generation"),
            "deletionTimestamp": metadata.get("deletionTimestamp"),
            "labels": dict(metadata.get("labels") or {}),  # pick the cluster's rules
            # HA's hold and failover state (controllers/hostfailure/annotations.py).
            "annotations": ha_annotations(metadata),
        },
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def slim_kubevirt_vm(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconciler keeps of a KubeVirt VirtualMachine.

    spec, labels and the digest annotation are those our field manager applied; a VM whose
    server keeps no managedFields is kept whole.
    """
    metadata = body.get("metadata", {})
    status = body.get("status") or {}
    fields = applied_fields(body, FIELD_MANAGER)
    ours: Mapping[str, Any] = managed_view(body, fields) if fields is not None else body
    our_metadata = ours.get("metadata") or {}
    annotations = our_metadata.get("annotations") or {}
    template = ((body.get("spec") or {}).get("template") or {}).get("spec") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "labels": dict(our_metadata.get("labels") or {}),
            "annotations": {
                key: value for key, value in annotations.items() if key == APPLIED_DIGEST_ANNOTATION
            },
            # Ownership is judged on every reference, whoever set it.
            "ownerReferences": list(metadata.get("ownerReferences") or []),
            "deletionTimestamp": metadata.get("deletionTimestamp"),
        },
        "spec": dict(ours.get("spec") or {}),
        # The NICs as they are, whoever wrote them last: KubeVirt rewrites the interface
        # list when it drops unplugged NICs, and the MACs assigned live there.
        TEMPLATE_NICS: {
            "interfaces": list((template.get("domain") or {}).get("devices", {}).get(
                "interfaces") or []),
            "networks": list(template.get("networks") or []),
        },
        "status": {
            "printableStatus": status.get("printableStatus"),
            "conditions": list(status.get("conditions") or []),
        },
    }


def slim_vmi(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconciler keeps of a VirtualMachineInstance."""
    metadata = body.get("metadata", {})
    status = body.get("status") or {}
    slim: dict[str, Any] = {
        key: status[key]
        for key in ("phase", "nodeName", "interfaces", "conditions", "currentCPUTopology", "memory")
        if key in status
    }
    # Which claim each volume runs on, and how far a hot-plug got (disks.plan_disks).
    slim["volumeStatus"] = [
        {
            "name": entry.get("name"),
            "phase": entry.get("phase"),
            "persistentVolumeClaimInfo": {
                "claimName": (entry.get("persistentVolumeClaimInfo") or {}).get("claimName")
            },
        }
        for entry in status.get("volumeStatus") or []
    ]
    migration = status.get("migrationState")
    if isinstance(migration, Mapping):
        slim["migrationState"] = {
            key: migration[key] for key in _MIGRATION_FIELDS if key in migration
        }
    interfaces = ((body.get("spec") or {}).get("domain") or {}).get("devices", {}).get(
        "interfaces"
    ) or []
    annotations = metadata.get("annotations") or {}
    return {
        "metadata": {
            "uid": metadata.get("uid"),
            "deletionTimestamp": metadata.get("deletionTimestamp"),
            # How the guest's port-group NICs were wired when it started.
            "annotations": {
                key: value for key, value in annotations.items() if key == WIRING_ANNOTATION
            },
        },
        # Which NICs the instance has, and which it is unplugging.
        "spec": {
            "interfaces": [
                {key: i[key] for key in ("name", "state") if key in i} for i in interfaces
            ],
            "volumes": [
                {"name": v.get("name")} for v in (body.get("spec") or {}).get("volumes") or []
            ],
        },
        "status": slim,
    }


def vm_references(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, name) of what a VDC VM spec refers to; ("policy", "") for the default policy."""
    found: list[tuple[str, str]] = []
    if spec.get("templateName"):
        found.append(("template", str(spec["templateName"])))
    if spec.get("clusterName"):
        found.append(("cluster", str(spec["clusterName"])))
    for disk in spec.get("disks") or []:
        found.append(("policy", str(disk.get("storagePolicyName") or "")))
    for network in spec.get("networks") or []:
        if network.get("portGroupName"):
            found.append(("portgroup", str(network["portGroupName"])))
    return list(dict.fromkeys(found))

