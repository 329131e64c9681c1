"""CustomResourceDefinitions of KubeVirt, CDI and Multus, and the default KubeVirt CR.

Written for the embedded datacenter (the upstream CRDs are not read at run time). Each
schema is structural: the top-level `spec` and `status` fields of the upstream types
(KubeVirt `api/openapi-spec/swagger.json`, CDI's swagger) are declared with their types,
and deep parts keep unknown fields, as the real CRDs of KubeVirt do
(`x-kubernetes-preserve-unknown-fields` on spec.template etc.). Names, short names,
categories and printer columns are those of KubeVirt 1.9 / CDI 1.66 / Multus.
"""

from __future__ import annotations

from typing import Any

KUBEVIRT_NAMESPACE = "kubevirt"
KUBEVIRT_CR_NAME = "kubevirt"
READY_JSONPATH = ".status.conditions[?(@.type=='Ready')].status"

# Field type codes: s string, b boolean, i integer, o object (unknown fields kept),
# a array of objects, as array of strings, m map of strings, q quantity (int-or-string).
_FIELDS: dict[str, str] = {
    "VirtualMachine.spec": (
        "dataVolumeTemplates:a instancetype:o preference:o runStrategy:s running:b "
        "template:o updateVolumesStrategy:s"
    ),
    "VirtualMachine.status": (
        "changedBlockTracking:o conditions:a created:b desiredGeneration:i instancetypeRef:o "
        "memoryDumpRequest:o observedGeneration:i preferenceRef:o printableStatus:s ready:b "
        "restoreInProgress:s runStrategy:s snapshotInProgress:s startFailure:o "
        "stateChangeRequests:a volumeRequests:a volumeSnapshotStatuses:a volumeUpdateState:o"
    ),
    "VirtualMachineInstance.spec": (
        "accessCredentials:a affinity:o architecture:s dnsConfig:o dnsPolicy:s domain:o "
        "evictionStrategy:s hostname:s livenessProbe:o networks:a nodeSelector:m "
        "priorityClassName:s readinessProbe:o resourceClaims:a schedulerName:s "
        "serviceAccountName:s startStrategy:s subdomain:s terminationGracePeriodSeconds:i "
        "tolerations:a topologySpreadConstraints:a utilityVolumes:a volumes:a"
    ),
    "VirtualMachineInstance.status": (
        "VSOCKCID:i activePods:m changedBlockTracking:o conditions:a currentCPUTopology:o "
        "evacuationNodeName:s fsFreezeStatus:s guestOSInfo:o interfaces:a kernelBootStatus:o "
        "launcherContainerImageVersion:s machine:o memory:o migratedVolumes:a "
        "migrationMethod:s migrationState:o migrationTransport:s nodeName:s phase:s "
        "phaseTransitionTimestamps:a qosClass:s reason:s runtimeUser:i selinuxContext:s "
        "topologyHints:o virtualMachineRevisionName:s volumeStatus:a"
    ),
    "VirtualMachineInstanceMigration.spec": (
        "addedNodeSelector:m priority:s receive:o sendTo:o vmiName:s"
    ),
    "VirtualMachineInstanceMigration.status": (
        "conditions:a migrationState:o phase:s phaseTransitionTimestamps:a "
        "synchronizationAddresses:as"
    ),
    "VirtualMachineInstanceReplicaSet.spec": "paused:b replicas:i selector:o template:o",
    "VirtualMachineInstanceReplicaSet.status": (
        "conditions:a labelSelector:s readyReplicas:i replicas:i"
    ),
    "VirtualMachineInstancePreset.spec": "domain:o selector:o",
    "VirtualMachinePool.spec": (
        "autohealing:o maxUnavailable:q nameGeneration:o paused:b replicas:i "
        "scaleInStrategy:o selector:o updateStrategy:o virtualMachineTemplate:o"
    ),
    "VirtualMachinePool.status": "conditions:a labelSelector:s readyReplicas:i replicas:i",
    "KubeVirt.spec": (
        "certificateRotateStrategy:o configuration:o customizeComponents:o imagePullPolicy:s "
        "imagePullSecrets:a imageRegistry:s imageTag:s infra:o monitorAccount:s "
        "monitorNamespace:s productComponent:s productName:s productVersion:s "
        "serviceMonitorNamespace:s synchronizationPort:s uninstallStrategy:s "
        "workloadUpdateStrategy:o workloads:o"
    ),
    "KubeVirt.status": (
        "conditions:a defaultArchitecture:s generations:a observedDeploymentConfig:s "
        "observedDeploymentID:s observedGeneration:i observedKubeVirtRegistry:s "
        "observedKubeVirtVersion:s operatorVersion:s outdatedVirtualMachineInstanceWorkloads:i "
        "phase:s synchronizationAddresses:as targetDeploymentConfig:s targetDeploymentID:s "
        "targetKubeVirtRegistry:s targetKubeVirtVersion:s"
    ),
    "MigrationPolicy.spec": (
        "allowAutoConverge:b allowPostCopy:b allowWorkloadDisruption:b "
        "bandwidthPerMigration:q completionTimeoutPerGiB:i experimental:o maxDowntimeMs:i "
        "selectors:o"
    ),
    "MigrationPolicy.status": "",
    "DataVolume.spec": (
        "checkpoints:a contentType:s finalCheckpoint:b preallocation:b priorityClassName:s "
        "pvc:o serviceAccountName:s source:o sourceRef:o storage:o"
    ),
    "DataVolume.status": "claimName:s conditions:a phase:s progress:s restartCount:i",
    "DataSource.spec": "source:o",
    "DataSource.status": "conditions:a source:o",
    "StorageProfile.spec": (
        "claimPropertySets:a cloneStrategy:s dataImportCronSourceFormat:s snapshotClass:s"
    ),
    "StorageProfile.status": (
        "claimPropertySets:a cloneStrategy:s dataImportCronSourceFormat:s provisioner:s "
        "snapshotClass:s storageClass:s"
    ),
    "NetworkAttachmentDefinition.spec": "config:s",
    "VirtualMachineSnapshot.spec": "deletionPolicy:s failureDeadline:s source:o",
    "VirtualMachineSnapshot.status": (
        "conditions:a creationTime:s error:o indications:as phase:s readyToUse:b "
        "snapshotVolumes:o sourceIndications:a sourceUID:s virtualMachineSnapshotContentName:s"
    ),
    "VirtualMachineSnapshotContent.spec": "source:o virtualMachineSnapshotName:s volumeBackups:a",
    "VirtualMachineSnapshotContent.status": (
        "creationTime:s error:o readyToUse:b volumeSnapshotStatus:a"
    ),
    "VirtualMachineRestore.spec": (
        "patches:as target:o targetReadinessPolicy:s virtualMachineSnapshotName:s "
        "volumeOwnershipPolicy:s volumeRestoreOverrides:a volumeRestorePolicy:s"
    ),
    "VirtualMachineRestore.status": (
        "complete:b conditions:a deletedDataVolumes:as restoreTime:s restores:a"
    ),
}


def _field_schema(code: str) -> dict[str, Any]:
    if code == "o":
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if code == "a":
        return {"type": "array", "items": {"type": "object",
                                           "x-kubernetes-preserve-unknown-fields": True}}
    if code == "as":
        return {"type": "array", "items": {"type": "string"}}
    if code == "m":
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if code == "q":
        return {"x-kubernetes-int-or-string": True}
    return {"type": {"s": "string", "b": "boolean", "i": "integer"}[code]}


def _section(kind: str, section: str, *, preserve: bool) -> dict[str, Any] | None:
    fields = _FIELDS.get(f"{kind}.{section}")
    if fields is None:
        return None
    properties = {}
    for item in fields.split():
        name, code = item.split(":")
        properties[name] = _field_schema(code)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if preserve or not properties:
        # Like KubeVirt's own CRDs, fields of newer versions are not pruned away.
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _column(name: str, json_path: str, type_: str = "string", priority: int = 0,
            description: str = "") -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "jsonPath": json_path, "type": type_}
    if priority:
        column["priority"] = priority
    if description:
        column["description"] = description
    return column


AGE = _column("Age", ".metadata.creationTimestamp", "date")


def crd(
    group: str, version: str, kind: str, plural: str, *,
    short_names: tuple[str, ...] = (), categories: tuple[str, ...] = (),
    namespaced: bool = True, columns: tuple[dict[str, Any], ...] = (),
    status: bool = True, preserve: bool = True, scale: bool = False,
) -> dict[str, Any]:
    """One CRD with a single served and stored version."""
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": {"type": "object"},
    }
    spec = _section(kind, "spec", preserve=preserve)
    if spec is not None:
        properties["spec"] = spec
    status_schema = _section(kind, "status", preserve=preserve)
    if status_schema is not None:
        properties["status"] = status_schema
    version_entry: dict[str, Any] = {
        "name": version, "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}},
    }
    subresources: dict[str, Any] = {}
    if status and status_schema is not None:
        subresources["status"] = {}
    if scale:
        subresources["scale"] = {"specReplicasPath": ".spec.replicas",
                                 "statusReplicasPath": ".status.replicas",
                                 "labelSelectorPath": ".status.labelSelector"}
    if subresources:
        version_entry["subresources"] = subresources
    if columns:
        version_entry["additionalPrinterColumns"] = list(columns)
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                             "singular": kind.lower()}
    if short_names:
        names["shortNames"] = list(short_names)
    if categories:
        names["categories"] = list(categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}",
                     "labels": {"app.kubernetes.io/component": group.split(".")[0]}},
        "spec": {"group": group, "scope": "Namespaced" if namespaced else "Cluster",
                 "names": names, "versions": [version_entry]},
    }


def kubevirt_crds() -> list[dict[str, Any]]:
    ready = _column("Ready", READY_JSONPATH)
    return [
        crd("kubevirt.io", "v1", "VirtualMachine", "virtualmachines",
            short_names=("vm", "vms"), categories=("all",),
            columns=(AGE, _column("Status", ".status.printableStatus"), ready)),
        # KubeVirt's VMI CRD has no status subresource (`NewVirtualMachineInstanceCrd`):
        # virt-controller and virt-handler write a VMI's status and labels in one update.
        crd("kubevirt.io", "v1", "VirtualMachineInstance", "virtualmachineinstances",
            short_names=("vmi", "vmis"), categories=("all",), status=False,
            columns=(AGE, _column("Phase", ".status.phase"),
                     _column("IP", ".status.interfaces[0].ipAddress"),
                     _column("NodeName", ".status.nodeName"), ready,
                     _column("Live-Migratable",
                             ".status.conditions[?(@.type=='LiveMigratable')].status",
                             priority=1),
                     _column("Paused", ".status.conditions[?(@.type=='Paused')].status",
                             priority=1))),
        crd("kubevirt.io", "v1", "VirtualMachineInstanceMigration",
            "virtualmachineinstancemigrations", short_names=("vmim", "vmims"),
            categories=("all",),
            columns=(_column("Phase", ".status.phase"), _column("VMI", ".spec.vmiName"))),
        crd("kubevirt.io", "v1", "VirtualMachineInstanceReplicaSet",
            "virtualmachineinstancereplicasets", short_names=("vmirs", "vmirss"),
            categories=("all",), scale=True,
            columns=(_column("Desired", ".spec.replicas", "integer"),
                     _column("Current", ".status.replicas", "integer"),
                     _column("Ready", ".status.readyReplicas", "integer"), AGE)),
        crd("kubevirt.io", "v1", "VirtualMachineInstancePreset",
            "virtualmachineinstancepresets", short_names=("vmipreset", "vmipresets"),
            categories=("all",), status=False),
        crd("kubevirt.io", "v1", "KubeVirt", "kubevirts", short_names=("kv", "kvs"),
            categories=("all",),
            columns=(AGE, _column("Phase", ".status.phase"))),
        crd("pool.kubevirt.io", "v1beta1", "VirtualMachinePool", "virtualmachinepools",
            short_names=("vmpool", "vmpools"), categories=("all",), scale=True,
            columns=(_column("Desired", ".spec.replicas", "integer"),
                     _column("Current", ".status.replicas", "integer"),
                     _column("Ready", ".status.readyReplicas", "integer"), AGE)),
        crd("migrations.kubevirt.io", "v1alpha1", "MigrationPolicy", "migrationpolicies",
            namespaced=False, categories=("all",)),
        crd("cdi.kubevirt.io", "v1beta1", "DataVolume", "datavolumes",
            short_names=("dv", "dvs"), categories=("all",),
            columns=(_column("Phase", ".status.phase",
                             description="The phase the data volume is in"),
                     _column("Progress", ".status.progress",
                             description="Transfer progress in percentage if known, N/A "
                                         "otherwise"),
                     _column("Restarts", ".status.restartCount", "integer",
                             description="The number of times the transfer has been "
                                         "restarted."),
                     AGE)),
        crd("cdi.kubevirt.io", "v1beta1", "DataSource", "datasources",
            short_names=("das",), categories=("all",)),
        crd("cdi.kubevirt.io", "v1beta1", "StorageProfile", "storageprofiles",
            namespaced=False),
        *snapshot_crds(),
        crd("k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition",
            "network-attachment-definitions", short_names=("net-attach-def",),
            status=False, preserve=False),
    ]


def snapshot_crds() -> list[dict[str, Any]]:
    """snapshot.kubevirt.io: KubeVirt serves v1alpha1 too; the emulation serves the stored
    v1beta1 only (`NewVirtualMachineSnapshotCrd` and siblings in virt-operator)."""
    error = _column("Error", ".status.error.message")
    return [
        crd("snapshot.kubevirt.io", "v1beta1", "VirtualMachineSnapshot",
            "virtualmachinesnapshots", short_names=("vmsnapshot", "vmsnapshots"),
            categories=("all",),
            columns=(_column("SourceKind", ".spec.source.kind"),
                     _column("SourceName", ".spec.source.name"),
                     _column("Phase", ".status.phase"),
                     _column("ReadyToUse", ".status.readyToUse", "boolean"),
                     _column("CreationTime", ".status.creationTime", "date"), error)),
        crd("snapshot.kubevirt.io", "v1beta1", "VirtualMachineSnapshotContent",
            "virtualmachinesnapshotcontents",
            short_names=("vmsnapshotcontent", "vmsnapshotcontents"), categories=("all",),
            columns=(_column("ReadyToUse", ".status.readyToUse", "boolean"),
                     _column("CreationTime", ".status.creationTime", "date"), error)),
        crd("snapshot.kubevirt.io", "v1beta1", "VirtualMachineRestore",
            "virtualmachinerestores", short_names=("vmrestore", "vmrestores"),
            categories=("all",),
            columns=(_column("TargetKind", ".spec.target.kind"),
                     _column("TargetName", ".spec.target.name"),
                     _column("Complete", ".status.complete", "boolean"),
                     _column("RestoreTime", ".status.restoreTime", "date"))),
    ]


def default_kubevirt_cr() -> dict[str, Any]:
    """The one documented place where the simulated KubeVirt is configured like vdcos's
    kind installation: CPU/memory hot-plug and updates roll out by live migration."""
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "KubeVirt",
        "metadata": {"name": KUBEVIRT_CR_NAME, "namespace": KUBEVIRT_NAMESPACE},
        "spec": {
            "certificateRotateStrategy": {},
            "configuration": {
                "developerConfiguration": {"featureGates": []},
                "vmRolloutStrategy": "LiveUpdate",
            },
            "customizeComponents": {},
            "imagePullPolicy": "IfNotPresent",
            "workloadUpdateStrategy": {"workloadUpdateMethods": ["LiveMigrate"]},
        },
    }
