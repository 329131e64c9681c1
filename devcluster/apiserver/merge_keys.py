"""Which lists of the built-in kinds merge, and by what key.

Two consumers read this table:
- strategic merge patch (`patching.py`) wants the Go struct tags `patchStrategy` and
  `patchMergeKey` of k8s.io/api;
- server-side apply (`managed_fields.py`) wants the list types that kube-openapi publishes:
  an explicit `+listType`/`+listMapKey` marker, else a list with patchStrategy merge is a map
  keyed by its merge key (a set when it has no key), else it is atomic; structs marked
  `+structType=atomic` and maps marked `+mapType=atomic` are replaced as a whole.

The table below was derived from the struct tags and markers of k8s.io/api (core, apps, batch,
rbac, storage, coordination, scheduling, events), k8s.io/apimachinery meta/v1 and
k8s.io/apiextensions-apiserver v1 as of mid 2026. It is a graph of the Go types: each type
lists only the fields that either carry a rule or lead to a type that does; any field not listed
has no rule, which means "replace" for strategic merge patch and "atomic" for apply. Notable
facts that differ from intuition: Pod `tolerations` and Node `spec.taints` are atomic (a patch
replaces the whole list); container `ports` merge by `containerPort` in a strategic merge patch
but are keyed by (`containerPort`, `protocol`) for apply; Service `ports` likewise by `port` vs
(`port`, `protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

ListType = Literal["atomic", "set", "map"]


@dataclass(frozen=True)
class MergeRule:
    """How one field of a built-in kind merges."""

    # The Go `patchStrategy` tag: "merge", "retainKeys", "merge,retainKeys" or "" (replace).
    patch_strategy: str = ""
    # The Go `patchMergeKey` tag; "" with strategy merge means a set of primitives.
    patch_merge_key: str = ""
    # x-kubernetes-list-type as server-side apply sees it.
    list_type: ListType = "atomic"
    # x-kubernetes-list-map-keys when list_type is "map".
    list_map_keys: tuple[str, ...] = ()
    # True for a struct or map that apply replaces as a whole (structType/mapType atomic).
    atomic_map: bool = False

    @property
    def merges_in_patch(self) -> bool:
        """True when a strategic merge patch merges this list instead of replacing it."""
        return "merge" in self.patch_strategy.split(",")


class _Field(NamedTuple):
    child_type: str | None  # the type of the field (of its items, for a list), if it has rules
    rule: MergeRule | None


def merge_key_for(type_key: str, path: tuple[str, ...]) -> MergeRule | None:
    """The rule of the field at `path` (list indices omitted) of kind `type_key`.

    `type_key` is "<group>/<Kind>", group "" for core ("/Pod", "apps/Deployment"). A kind not
    in the table still gets the rules of `metadata`, which every object shares.
    """
    type_name: str | None = _ROOTS.get(type_key, "_AnyObject")
    rule: MergeRule | None = None
    for name in path:
        if type_name is None:
            return None
        field = _TYPES.get(type_name, {}).get(name)
        if field is None:
            return None
        type_name, rule = field.child_type, field.rule
    return rule


def known_type_keys() -> tuple[str, ...]:
    """The built-in kinds the table describes."""
    return tuple(_ROOTS)


_TYPES: dict[str, dict[str, _Field]] = {
    "_AnyObject": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "apiextensions.CustomResourceDefinition": {
        "metadata": _Field("meta.ObjectMeta", None),
        "status": _Field("apiextensions.CustomResourceDefinitionStatus", None),
    },
    "apiextensions.CustomResourceDefinitionStatus": {
        "conditions": _Field(None, MergeRule(list_type="map", list_map_keys=("type",))),
    },
    "apps.ControllerRevision": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "apps.DaemonSet": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("apps.DaemonSetSpec", None),
        "status": _Field("apps.DaemonSetStatus", None),
    },
    "apps.DaemonSetSpec": {
        "selector": _Field(None, MergeRule(atomic_map=True)),
        "template": _Field("core.PodTemplateSpec", None),
    },
    "apps.DaemonSetStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
    },
    "apps.Deployment": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("apps.DeploymentSpec", None),
        "status": _Field("apps.DeploymentStatus", None),
    },
    "apps.DeploymentSpec": {
        "selector": _Field(None, MergeRule(atomic_map=True)),
        "strategy": _Field(None, MergeRule(patch_strategy="retainKeys")),
        "template": _Field("core.PodTemplateSpec", None),
    },
    "apps.DeploymentStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
    },
    "apps.ReplicaSet": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("apps.ReplicaSetSpec", None),
        "status": _Field("apps.ReplicaSetStatus", None),
    },
    "apps.ReplicaSetSpec": {
        "selector": _Field(None, MergeRule(atomic_map=True)),
        "template": _Field("core.PodTemplateSpec", None),
    },
    "apps.ReplicaSetStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
    },
    "apps.StatefulSet": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("apps.StatefulSetSpec", None),
        "status": _Field("apps.StatefulSetStatus", None),
    },
    "apps.StatefulSetSpec": {
        "selector": _Field(None, MergeRule(atomic_map=True)),
        "template": _Field("core.PodTemplateSpec", None),
        "volumeClaimTemplates": _Field("core.PersistentVolumeClaim", None),
    },
    "apps.StatefulSetStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
    },
    "batch.CronJob": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("batch.CronJobSpec", None),
    },
    "batch.CronJobSpec": {
        "jobTemplate": _Field("batch.JobTemplateSpec", None),
    },
    "batch.Job": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("batch.JobSpec", None),
        "status": _Field("batch.JobStatus", None),
    },
    "batch.JobSchedulingConfiguration": {
        "resourceClaims": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
    },
    "batch.JobSpec": {
        "podFailurePolicy": _Field("batch.PodFailurePolicy", None),
        "scheduling": _Field("batch.JobSchedulingConfiguration", None),
        "selector": _Field(None, MergeRule(atomic_map=True)),
        "template": _Field("core.PodTemplateSpec", None),
    },
    "batch.JobStatus": {
        "conditions": _Field(None, MergeRule(patch_strategy="merge", patch_merge_key="type")),
        "uncountedTerminatedPods": _Field("batch.UncountedTerminatedPods", None),
    },
    "batch.JobTemplateSpec": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("batch.JobSpec", None),
    },
    "batch.PodFailurePolicy": {
        "rules": _Field("batch.PodFailurePolicyRule", None),
    },
    "batch.PodFailurePolicyOnExitCodesRequirement": {
        "values": _Field(None, MergeRule(list_type="set")),
    },
    "batch.PodFailurePolicyRule": {
        "onExitCodes": _Field("batch.PodFailurePolicyOnExitCodesRequirement", None),
    },
    "batch.UncountedTerminatedPods": {
        "failed": _Field(None, MergeRule(list_type="set")),
        "succeeded": _Field(None, MergeRule(list_type="set")),
    },
    "coordination.Lease": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "core.Affinity": {
        "nodeAffinity": _Field("core.NodeAffinity", None),
        "podAffinity": _Field("core.PodAffinity", None),
        "podAntiAffinity": _Field("core.PodAntiAffinity", None),
    },
    "core.CSIPersistentVolumeSource": {
        "controllerExpandSecretRef": _Field(None, MergeRule(atomic_map=True)),
        "controllerPublishSecretRef": _Field(None, MergeRule(atomic_map=True)),
        "nodeExpandSecretRef": _Field(None, MergeRule(atomic_map=True)),
        "nodePublishSecretRef": _Field(None, MergeRule(atomic_map=True)),
        "nodeStageSecretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.CSIVolumeSource": {
        "nodePublishSecretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.CephFSPersistentVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.CephFSVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.CinderPersistentVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.CinderVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ClusterTrustBundleProjection": {
        "labelSelector": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ConfigMap": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "core.Container": {
        "env": _Field(
            "core.EnvVar",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "ports": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="containerPort",
                list_type="map",
                list_map_keys=("containerPort", "protocol"),
            ),
        ),
        "resources": _Field("core.ResourceRequirements", None),
        "restartPolicyRules": _Field("core.ContainerRestartRule", None),
        "volumeDevices": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="devicePath",
                list_type="map",
                list_map_keys=("devicePath",),
            ),
        ),
        "volumeMounts": _Field(
            "core.VolumeMount",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="mountPath",
                list_type="map",
                list_map_keys=("mountPath",),
            ),
        ),
    },
    "core.ContainerRestartRule": {
        "exitCodes": _Field("core.ContainerRestartRuleOnExitCodes", None),
    },
    "core.ContainerRestartRuleOnExitCodes": {
        "values": _Field(None, MergeRule(list_type="set")),
    },
    "core.ContainerStatus": {
        "allocatedResourcesStatus": _Field(
            "core.ResourceStatus",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "resources": _Field("core.ResourceRequirements", None),
        "volumeMounts": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="mountPath",
                list_type="map",
                list_map_keys=("mountPath",),
            ),
        ),
    },
    "core.DownwardAPIProjection": {
        "items": _Field("core.DownwardAPIVolumeFile", None),
    },
    "core.DownwardAPIVolumeFile": {
        "fieldRef": _Field(None, MergeRule(atomic_map=True)),
        "resourceFieldRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.DownwardAPIVolumeSource": {
        "items": _Field("core.DownwardAPIVolumeFile", None),
    },
    "core.EndpointAddress": {
        "targetRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.EndpointSubset": {
        "addresses": _Field("core.EndpointAddress", None),
        "notReadyAddresses": _Field("core.EndpointAddress", None),
    },
    "core.Endpoints": {
        "metadata": _Field("meta.ObjectMeta", None),
        "subsets": _Field("core.EndpointSubset", None),
    },
    "core.EnvVar": {
        "valueFrom": _Field("core.EnvVarSource", None),
    },
    "core.EnvVarSource": {
        "configMapKeyRef": _Field(None, MergeRule(atomic_map=True)),
        "fieldRef": _Field(None, MergeRule(atomic_map=True)),
        "fileKeyRef": _Field(None, MergeRule(atomic_map=True)),
        "resourceFieldRef": _Field(None, MergeRule(atomic_map=True)),
        "secretKeyRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.EphemeralContainer": {
        "env": _Field(
            "core.EnvVar",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "ports": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="containerPort",
                list_type="map",
                list_map_keys=("containerPort", "protocol"),
            ),
        ),
        "resources": _Field("core.ResourceRequirements", None),
        "restartPolicyRules": _Field("core.ContainerRestartRule", None),
        "volumeDevices": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="devicePath",
                list_type="map",
                list_map_keys=("devicePath",),
            ),
        ),
        "volumeMounts": _Field(
            "core.VolumeMount",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="mountPath",
                list_type="map",
                list_map_keys=("mountPath",),
            ),
        ),
    },
    "core.EphemeralVolumeSource": {
        "volumeClaimTemplate": _Field("core.PersistentVolumeClaimTemplate", None),
    },
    "core.Event": {
        "involvedObject": _Field(None, MergeRule(atomic_map=True)),
        "metadata": _Field("meta.ObjectMeta", None),
        "related": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.FlexPersistentVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.FlexVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ISCSIPersistentVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ISCSIVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.LimitRange": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "core.Namespace": {
        "metadata": _Field("meta.ObjectMeta", None),
        "status": _Field("core.NamespaceStatus", None),
    },
    "core.NamespaceStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
    },
    "core.Node": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.NodeSpec", None),
        "status": _Field("core.NodeStatus", None),
    },
    "core.NodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": _Field(
            "core.PreferredSchedulingTerm",
            None,
        ),
        "requiredDuringSchedulingIgnoredDuringExecution": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.NodeAllocatableResourceClaimStatus": {
        "containers": _Field(None, MergeRule(list_type="set")),
        "mapping": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "overhead": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
    },
    "core.NodePodPreemptionPolicy": {
        "disableResizePreemption": _Field(None, MergeRule(list_type="set")),
    },
    "core.NodeSpec": {
        "podCIDRs": _Field(None, MergeRule(patch_strategy="merge", list_type="set")),
        "podPreemptionPolicy": _Field("core.NodePodPreemptionPolicy", None),
    },
    "core.NodeStatus": {
        "addresses": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
    },
    "core.PersistentVolume": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.PersistentVolumeSpec", None),
    },
    "core.PersistentVolumeClaim": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.PersistentVolumeClaimSpec", None),
        "status": _Field("core.PersistentVolumeClaimStatus", None),
    },
    "core.PersistentVolumeClaimSpec": {
        "dataSource": _Field(None, MergeRule(atomic_map=True)),
        "selector": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.PersistentVolumeClaimStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
        "healthStatus": _Field("core.VolumeHealthStatus", None),
    },
    "core.PersistentVolumeClaimTemplate": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.PersistentVolumeClaimSpec", None),
    },
    "core.PersistentVolumeSpec": {
        "cephfs": _Field("core.CephFSPersistentVolumeSource", None),
        "cinder": _Field("core.CinderPersistentVolumeSource", None),
        "claimRef": _Field(None, MergeRule(atomic_map=True)),
        "csi": _Field("core.CSIPersistentVolumeSource", None),
        "flexVolume": _Field("core.FlexPersistentVolumeSource", None),
        "iscsi": _Field("core.ISCSIPersistentVolumeSource", None),
        "nodeAffinity": _Field("core.VolumeNodeAffinity", None),
        "rbd": _Field("core.RBDPersistentVolumeSource", None),
        "scaleIO": _Field("core.ScaleIOPersistentVolumeSource", None),
        "storageos": _Field("core.StorageOSPersistentVolumeSource", None),
    },
    "core.Pod": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.PodSpec", None),
        "status": _Field("core.PodStatus", None),
    },
    "core.PodAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": _Field(
            "core.WeightedPodAffinityTerm",
            None,
        ),
        "requiredDuringSchedulingIgnoredDuringExecution": _Field("core.PodAffinityTerm", None),
    },
    "core.PodAffinityTerm": {
        "labelSelector": _Field(None, MergeRule(atomic_map=True)),
        "namespaceSelector": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.PodAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": _Field(
            "core.WeightedPodAffinityTerm",
            None,
        ),
        "requiredDuringSchedulingIgnoredDuringExecution": _Field("core.PodAffinityTerm", None),
    },
    "core.PodSpec": {
        "affinity": _Field("core.Affinity", None),
        "containers": _Field(
            "core.Container",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "ephemeralContainers": _Field(
            "core.EphemeralContainer",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "evictionResponders": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "hostAliases": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="ip",
                list_type="map",
                list_map_keys=("ip",),
            ),
        ),
        "imagePullSecrets": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "initContainers": _Field(
            "core.Container",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "nodeSelector": _Field(None, MergeRule(atomic_map=True)),
        "resourceClaims": _Field(
            None,
            MergeRule(
                patch_strategy="merge,retainKeys",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "resources": _Field("core.ResourceRequirements", None),
        "schedulingGates": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "topologySpreadConstraints": _Field(
            "core.TopologySpreadConstraint",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="topologyKey",
                list_type="map",
                list_map_keys=("topologyKey", "whenUnsatisfiable"),
            ),
        ),
        "volumes": _Field(
            "core.Volume",
            MergeRule(
                patch_strategy="merge,retainKeys",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
    },
    "core.PodStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
        "containerStatuses": _Field("core.ContainerStatus", None),
        "ephemeralContainerStatuses": _Field("core.ContainerStatus", None),
        "hostIPs": _Field(None, MergeRule(patch_strategy="merge", patch_merge_key="ip")),
        "initContainerStatuses": _Field("core.ContainerStatus", None),
        "nodeAllocatableResourceClaimStatuses": _Field(
            "core.NodeAllocatableResourceClaimStatus",
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="resourceClaimName",
                list_type="map",
                list_map_keys=("resourceClaimName",),
            ),
        ),
        "podIPs": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="ip",
                list_type="map",
                list_map_keys=("ip",),
            ),
        ),
        "resourceClaimStatuses": _Field(
            None,
            MergeRule(
                patch_strategy="merge,retainKeys",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
        "resources": _Field("core.ResourceRequirements", None),
        "volumeHealth": _Field(
            "core.PodVolumeHealth",
            MergeRule(list_type="map", list_map_keys=("name",)),
        ),
    },
    "core.PodTemplate": {
        "metadata": _Field("meta.ObjectMeta", None),
        "template": _Field("core.PodTemplateSpec", None),
    },
    "core.PodTemplateSpec": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.PodSpec", None),
    },
    "core.PodVolumeHealth": {
        "healthConditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="status",
                list_type="map",
                list_map_keys=("status", "reason"),
            ),
        ),
    },
    "core.PreferredSchedulingTerm": {
        "preference": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ProjectedVolumeSource": {
        "sources": _Field("core.VolumeProjection", None),
    },
    "core.RBDPersistentVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.RBDVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ReplicationController": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.ReplicationControllerSpec", None),
        "status": _Field("core.ReplicationControllerStatus", None),
    },
    "core.ReplicationControllerSpec": {
        "selector": _Field(None, MergeRule(atomic_map=True)),
        "template": _Field("core.PodTemplateSpec", None),
    },
    "core.ReplicationControllerStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
    },
    "core.ResourceQuota": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.ResourceQuotaSpec", None),
    },
    "core.ResourceQuotaSpec": {
        "scopeSelector": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ResourceRequirements": {
        "claims": _Field(None, MergeRule(list_type="map", list_map_keys=("name",))),
    },
    "core.ResourceStatus": {
        "resources": _Field(None, MergeRule(list_type="map", list_map_keys=("resourceID",))),
    },
    "core.ScaleIOPersistentVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ScaleIOVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.Secret": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "core.Service": {
        "metadata": _Field("meta.ObjectMeta", None),
        "spec": _Field("core.ServiceSpec", None),
        "status": _Field("core.ServiceStatus", None),
    },
    "core.ServiceAccount": {
        "metadata": _Field("meta.ObjectMeta", None),
        "secrets": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="name",
                list_type="map",
                list_map_keys=("name",),
            ),
        ),
    },
    "core.ServiceSpec": {
        "ports": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="port",
                list_type="map",
                list_map_keys=("port", "protocol"),
            ),
        ),
        "selector": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.ServiceStatus": {
        "conditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="type",
                list_type="map",
                list_map_keys=("type",),
            ),
        ),
    },
    "core.StorageOSPersistentVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.StorageOSVolumeSource": {
        "secretRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.TopologySpreadConstraint": {
        "labelSelector": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.Volume": {
        "cephfs": _Field("core.CephFSVolumeSource", None),
        "cinder": _Field("core.CinderVolumeSource", None),
        "csi": _Field("core.CSIVolumeSource", None),
        "downwardAPI": _Field("core.DownwardAPIVolumeSource", None),
        "ephemeral": _Field("core.EphemeralVolumeSource", None),
        "flexVolume": _Field("core.FlexVolumeSource", None),
        "iscsi": _Field("core.ISCSIVolumeSource", None),
        "projected": _Field("core.ProjectedVolumeSource", None),
        "rbd": _Field("core.RBDVolumeSource", None),
        "scaleIO": _Field("core.ScaleIOVolumeSource", None),
        "storageos": _Field("core.StorageOSVolumeSource", None),
    },
    "core.VolumeHealthStatus": {
        "healthConditions": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="status",
                list_type="map",
                list_map_keys=("status", "reason"),
            ),
        ),
    },
    "core.VolumeMount": {
        "bindMountOptions": _Field(None, MergeRule(list_type="set")),
    },
    "core.VolumeNodeAffinity": {
        "required": _Field(None, MergeRule(atomic_map=True)),
    },
    "core.VolumeProjection": {
        "clusterTrustBundle": _Field("core.ClusterTrustBundleProjection", None),
        "downwardAPI": _Field("core.DownwardAPIProjection", None),
    },
    "core.WeightedPodAffinityTerm": {
        "podAffinityTerm": _Field("core.PodAffinityTerm", None),
    },
    "events.Event": {
        "metadata": _Field("meta.ObjectMeta", None),
        "regarding": _Field(None, MergeRule(atomic_map=True)),
        "related": _Field(None, MergeRule(atomic_map=True)),
    },
    "meta.ObjectMeta": {
        "finalizers": _Field(None, MergeRule(patch_strategy="merge", list_type="set")),
        "ownerReferences": _Field(
            None,
            MergeRule(
                patch_strategy="merge",
                patch_merge_key="uid",
                list_type="map",
                list_map_keys=("uid",),
            ),
        ),
    },
    "rbac.ClusterRole": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "rbac.ClusterRoleBinding": {
        "metadata": _Field("meta.ObjectMeta", None),
        "roleRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "rbac.Role": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "rbac.RoleBinding": {
        "metadata": _Field("meta.ObjectMeta", None),
        "roleRef": _Field(None, MergeRule(atomic_map=True)),
    },
    "scheduling.PriorityClass": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
    "storage.StorageClass": {
        "metadata": _Field("meta.ObjectMeta", None),
    },
}

_ROOTS: dict[str, str] = {
    "/Pod": "core.Pod",
    "/Node": "core.Node",
    "/Namespace": "core.Namespace",
    "/Service": "core.Service",
    "/ConfigMap": "core.ConfigMap",
    "/Secret": "core.Secret",
    "/ServiceAccount": "core.ServiceAccount",
    "/PersistentVolumeClaim": "core.PersistentVolumeClaim",
    "/PersistentVolume": "core.PersistentVolume",
    "/Event": "core.Event",
    "/ResourceQuota": "core.ResourceQuota",
    "/Endpoints": "core.Endpoints",
    "/LimitRange": "core.LimitRange",
    "/ReplicationController": "core.ReplicationController",
    "/PodTemplate": "core.PodTemplate",
    "apps/Deployment": "apps.Deployment",
    "apps/StatefulSet": "apps.StatefulSet",
    "apps/DaemonSet": "apps.DaemonSet",
    "apps/ReplicaSet": "apps.ReplicaSet",
    "apps/ControllerRevision": "apps.ControllerRevision",
    "batch/Job": "batch.Job",
    "batch/CronJob": "batch.CronJob",
    "rbac.authorization.k8s.io/Role": "rbac.Role",
    "rbac.authorization.k8s.io/ClusterRole": "rbac.ClusterRole",
    "rbac.authorization.k8s.io/RoleBinding": "rbac.RoleBinding",
    "rbac.authorization.k8s.io/ClusterRoleBinding": "rbac.ClusterRoleBinding",
    "storage.k8s.io/StorageClass": "storage.StorageClass",
    "coordination.k8s.io/Lease": "coordination.Lease",
    "scheduling.k8s.io/PriorityClass": "scheduling.PriorityClass",
    "events.k8s.io/Event": "events.Event",
    "apiextensions.k8s.io/CustomResourceDefinition": "apiextensions.CustomResourceDefinition",
}
