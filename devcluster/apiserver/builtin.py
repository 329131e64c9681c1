"""The built-in kinds the embedded API server stores and serves."""

from __future__ import annotations

from .resources import ALL_VERBS, ResourceType

_NO_WRITE = ("get", "list", "watch")


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    *,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        list_kind=f"{kind}List",
        short_names=short,
        categories=categories,
        verbs=verbs,
        subresources=frozenset(subresources),
        builtin=True,
    )


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _r("", "v1", "Namespace", "namespaces", False, short=("ns",),
       subresources=("status", "finalize"),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Node", "nodes", False, short=("no",), subresources=("status",)),
    _r("", "v1", "Pod", "pods", True, short=("po",), categories=("all",),
       subresources=("status", "binding", "eviction")),
    _r("", "v1", "Event", "events", True, short=("ev",)),
    _r("", "v1", "ConfigMap", "configmaps", True, short=("cm",)),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, short=("sa",)),
    _r("", "v1", "Service", "services", True, short=("svc",), categories=("all",),
       subresources=("status",)),
    _r("", "v1", "Endpoints", "endpoints", True, short=("ep",)),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, short=("pvc",),
       subresources=("status",)),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, short=("pv",),
       subresources=("status",)),
    _r("", "v1", "ResourceQuota", "resourcequotas", True, short=("quota",),
       subresources=("status",)),
    _r("", "v1", "LimitRange", "limitranges", True, short=("limits",)),
    _r("events.k8s.io", "v1", "Event", "events", True, short=("ev",)),
    _r("apps", "v1", "Deployment", "deployments", True, short=("deploy",),
       categories=("all",), subresources=("status", "scale")),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, short=("rs",), categories=("all",),
       subresources=("status", "scale")),
    _r("apps", "v1", "StatefulSet", "statefulsets", True, short=("sts",),
       categories=("all",), subresources=("status", "scale")),
    _r("apps", "v1", "DaemonSet", "daemonsets", True, short=("ds",), categories=("all",),
       subresources=("status",)),
    _r("batch", "v1", "Job", "jobs", True, categories=("all",), subresources=("status",)),
    _r("coordination.k8s.io", "v1", "Lease", "leases", True),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short=("sc",)),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, short=("pc",)),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, short=("pdb",),
       subresources=("status",)),
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
       False, short=("crd", "crds"), subresources=("status",)),
    _r("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
       "validatingwebhookconfigurations", False),
    _r("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration",
       "mutatingwebhookconfigurations", False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, short=("netpol",)),
    # Aggregated APIs (metrics.k8s.io): devcluster/apiserver/aggregation.py proxies to them.
    _r("apiregistration.k8s.io", "v1", "APIService", "apiservices", False,
       subresources=("status",)),
)

# Kinds whose names must be DNS-1123 labels rather than subdomains.
NAMESPACE_KEY = ("", "namespaces")
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
PODS_KEY = ("", "pods")
EVENTS_KEY = ("", "events")
