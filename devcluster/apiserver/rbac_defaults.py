"""The ClusterRoles and ClusterRoleBindings kube-apiserver creates at start-up, and the
clusterrole-aggregation controller that fills `admin`, `edit` and `view`.

The rules are kube's bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy) for the
roles users reference: cluster-admin, admin, edit, view (aggregated from the
system:aggregate-to-* roles, as in kube), and the roles every authenticated user is bound to
(system:discovery, system:basic-user, system:public-info-viewer), which are what lets
ServiceAccounts read discovery and OpenAPI and ask `kubectl auth can-i`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from typing import Any

from .errors import ApiError
from .rbac import aggregated_rules
from .resources import Registry
from .rest import Rest, WriteOptions
from .store import Event, Store

CLUSTER_ROLES_KEY = ("rbac.authorization.k8s.io", "clusterroles")
CLUSTER_ROLE_BINDINGS_KEY = ("rbac.authorization.k8s.io", "clusterrolebindings")
_BOOTSTRAP = WriteOptions(field_manager="kube-apiserver")
_AGGREGATOR = WriteOptions(field_manager="clusterrole-aggregation-controller")
_AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

_RW = ["create", "delete", "deletecollection", "patch", "update"]
_READ = ["get", "list", "watch"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _urls(urls: list[str]) -> dict[str, Any]:
    return {"nonResourceURLs": urls, "verbs": ["get"]}


_AGGREGATE_TO_ADMIN = [
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"],
          ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
]
_AGGREGATE_TO_EDIT = [
    _rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                 "services/proxy"], _READ),
    _rule([""], ["serviceaccounts"], ["impersonate"]),
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], _RW),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                 "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                 "services/proxy"], _RW),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                     "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"],
          _RW),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], _RW),
    _rule(["batch"], ["cronjobs", "jobs"], _RW),
    _rule(["extensions"], ["daemonsets", "deployments", "deployments/rollback",
                           "deployments/scale", "ingresses", "networkpolicies", "replicasets",
                           "replicasets/scale", "replicationcontrollers/scale"], _RW),
    _rule(["policy"], ["poddisruptionbudgets"], _RW),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], _RW),
    _rule(["coordination.k8s.io"], ["leases"], ["create", "delete", "deletecollection", "get",
                                                "list", "patch", "update", "watch"]),
]
_AGGREGATE_TO_VIEW = [
    _rule([""], ["configmaps", "endpoints", "persistentvolumeclaims",
                 "persistentvolumeclaims/status", "pods", "replicationcontrollers",
                 "replicationcontrollers/scale", "serviceaccounts", "services",
                 "services/status"], _READ),
    _rule([""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log",
                 "pods/status", "replicationcontrollers/status", "resourcequotas",
                 "resourcequotas/status"], _READ),
    _rule([""], ["namespaces"], _READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], _READ),
    _rule(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                     "deployments/scale", "deployments/status", "replicasets",
                     "replicasets/scale", "replicasets/status", "statefulsets",
                     "statefulsets/scale", "statefulsets/status"], _READ),
    _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
          _READ),
    _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], _READ),
    _rule(["extensions"], ["daemonsets", "daemonsets/status", "deployments",
                           "deployments/scale", "deployments/status", "ingresses",
                           "ingresses/status", "networkpolicies", "replicasets",
                           "replicasets/scale", "replicasets/status",
                           "replicationcontrollers/scale"], _READ),
    _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], _READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], _READ),
]


def _cluster_role(name: str, rules: list[dict[str, Any]] | None = None,
                  aggregate_from: str = "", aggregate_to: str = "") -> dict[str, Any]:
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    if aggregate_to:
        labels[f"{_AGGREGATE_TO}{aggregate_to}"] = "true"
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules or [],
    }
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"{_AGGREGATE_TO}{aggregate_from}": "true"}}]}
    return role


DEFAULT_CLUSTER_ROLES: tuple[dict[str, Any], ...] = (
    _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]),
                                    {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
    _cluster_role("admin", aggregate_from="admin"),
    _cluster_role("edit", aggregate_from="edit", aggregate_to="admin"),
    _cluster_role("view", aggregate_from="view", aggregate_to="edit"),
    _cluster_role("system:aggregate-to-admin", _AGGREGATE_TO_ADMIN, aggregate_to="admin"),
    _cluster_role("system:aggregate-to-edit", _AGGREGATE_TO_EDIT, aggregate_to="edit"),
    _cluster_role("system:aggregate-to-view", _AGGREGATE_TO_VIEW, aggregate_to="view"),
    _cluster_role("system:discovery", [_urls([
        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
        "/readyz", "/version", "/version/"])]),
    _cluster_role("system:public-info-viewer", [_urls([
        "/healthz", "/livez", "/readyz", "/version", "/version/"])]),
    _cluster_role("system:basic-user", [
        _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
              ["create"]),
        _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"])]),
    _cluster_role("system:auth-delegator", [
        _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        _rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"])]),
)


def _binding(name: str, groups: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
                     for group in groups],
    }


DEFAULT_CLUSTER_ROLE_BINDINGS: tuple[dict[str, Any], ...] = (
    _binding("cluster-admin", ["system:masters"]),
    _binding("system:discovery", ["system:authenticated"]),
    _binding("system:basic-user", ["system:authenticated"]),
    _binding("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
)


def ensure_default_policy(store: Store, registry: Registry, rest: Rest) -> None:
    """Create the default roles and bindings that are missing (kept if a user changed them)."""
    for key, objects in ((CLUSTER_ROLES_KEY, DEFAULT_CLUSTER_ROLES),
                         (CLUSTER_ROLE_BINDINGS_KEY, DEFAULT_CLUSTER_ROLE_BINDINGS)):
        resource = registry.storage_version(*key)
        assert resource is not None
        for obj in objects:
            if store.get(key, "", obj["metadata"]["name"]) is None:
                rest.create(resource, "", obj, _BOOTSTRAP)


class ClusterRoleAggregator:
    """Keeps the rules of every ClusterRole with an aggregationRule equal to the union of the
    ClusterRoles its selectors pick (kube-controller-manager's clusterrole-aggregation)."""

    def __init__(self, store: Store, registry: Registry, rest: Rest) -> None:
        self.store = store
        self.registry = registry
        self.rest = rest
        self._scheduled = False
        store.on_event(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.key != CLUSTER_ROLES_KEY or self._scheduled:
            return
        self._scheduled = True
        # In a context of its own: it writes as the server, not as the user whose write
        # (in the same task, without persistence) triggered it.
        asyncio.get_running_loop().call_soon(self.reconcile, context=contextvars.Context())

    def reconcile(self) -> None:
        self._scheduled = False
        resource = self.registry.storage_version(*CLUSTER_ROLES_KEY)
        assert resource is not None
        cluster_roles = self.store.list(CLUSTER_ROLES_KEY)
        for role in cluster_roles:
            rules = aggregated_rules(role, cluster_roles)
            if rules is None or rules == (role.get("rules") or []):
                continue
            # A role deleted or changed meanwhile is reconciled again on its own event.
            with contextlib.suppress(ApiError):
                self.rest.update(resource, "", role["metadata"]["name"],
                                 {**role, "rules": rules}, _AGGREGATOR)
