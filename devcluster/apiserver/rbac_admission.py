"""Escalation prevention on RBAC writes, where kube-apiserver's rbac storage does it
(pkg/registry/rbac/{role,clusterrole,rolebinding,clusterrolebinding}/policybased).

Creating or updating a Role or ClusterRole needs every permission it grants, or the
`escalate` verb on it; a RoleBinding or ClusterRoleBinding needs every permission of the
role it refers to, or the `bind` verb on that role; an aggregationRule needs cluster-admin's
authority. Members of system:masters, and the server's own writers (no requesting user:
bootstrap, the aggregation controller, garbage collection), are not checked, as in kube.

The requesting user reaches the check through a context variable, set per request when it
is authorized: the REST layer's admission hooks see only the object.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from .authn import UserInfo
from .errors import ApiError, Cause
from .rbac import RBAC_GROUP, Attributes, RbacPolicy
from .rbac_escalation import FULL_AUTHORITY, escalation_error, uncovered
from .store import Store

REQUESTING_USER: contextvars.ContextVar[UserInfo | None] = contextvars.ContextVar(
    "devcluster_requesting_user", default=None)

ROLE_KINDS = {"Role": "roles", "ClusterRole": "clusterroles"}
BINDING_KINDS = {"RoleBinding": "rolebindings", "ClusterRoleBinding": "clusterrolebindings"}
_NAMESPACED = ("Role", "RoleBinding")
# Metadata a write may change without a check: what garbage collection edits, and what the
# server sets on every write (kube's IsOnlyMutatingGCFields, compared after the server's).
_UNCHECKED_METADATA = ("ownerReferences", "finalizers", "resourceVersion", "managedFields",
                       "generation")
AGGREGATION_REFUSAL = "must have cluster-admin privileges to use the aggregationRule"


def set_requesting_user(user: UserInfo) -> None:
    """Record who the current request acts for (called once it is authenticated)."""
    REQUESTING_USER.set(user)


class RbacEscalationAdmission:
    """The admission hooks for the four RBAC kinds, reading roles and bindings from `store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def hooks(self) -> dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]]:
        """Per (group, kind): the validator the REST layer calls on every create and update."""
        return {(RBAC_GROUP, kind): self._hook(kind) for kind in (*ROLE_KINDS, *BINDING_KINDS)}

    def _hook(self, kind: str) -> Callable[[dict[str, Any]], list[Cause]]:
        def admit(obj: dict[str, Any]) -> list[Cause]:
            self.admit(kind, obj, REQUESTING_USER.get())
            return []
        return admit

    def admit(self, kind: str, obj: dict[str, Any], user: UserInfo | None) -> None:
        """Raise kube's 403 when `user` may not write `obj` (a `kind` object)."""
        if user is None or user.privileged:
            return
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        namespace = str(meta.get("namespace", "")) if kind in _NAMESPACED else ""
        plural = ROLE_KINDS.get(kind) or BINDING_KINDS[kind]
        old = self.store.get((RBAC_GROUP, plural), namespace, name)
        if old is not None and _only_unchecked_fields_differ(old, obj):
            return
        policy = self._policy()
        if kind in ROLE_KINDS:
            self._check_role(policy, user, kind, obj, namespace, name, creating=old is None)
        else:
            self._check_binding(policy, user, kind, obj, namespace, name)

    def _policy(self) -> RbacPolicy:
        return RbacPolicy.build(
            self.store.list((RBAC_GROUP, "roles")), self.store.list((RBAC_GROUP, "rolebindings")),
            self.store.list((RBAC_GROUP, "clusterroles")),
            self.store.list((RBAC_GROUP, "clusterrolebindings")))

    def _check_role(self, policy: RbacPolicy, user: UserInfo, kind: str, obj: dict[str, Any],
                    namespace: str, name: str, *, creating: bool) -> None:
        plural = ROLE_KINDS[kind]
        # kube asks about the request's own URL: a create (POST to the collection) has no name.
        escalate = Attributes(user, "escalate", group=RBAC_GROUP, resource=plural,
                              namespace=namespace, name="" if creating else name)
        if policy.authorize(escalate).allowed:
            return
        held, problems = policy.rules_for(user, namespace)
        rules = obj.get("rules") or []
        missing = uncovered(held, rules if isinstance(rules, list) else [])
        if missing:
            raise forbidden(plural, name, escalation_error(user.name, user.groups, missing,
                                                           problems))
        if kind == "ClusterRole" and obj.get("aggregationRule") and uncovered(
                held, FULL_AUTHORITY):
            raise forbidden(plural, name, AGGREGATION_REFUSAL)

    def _check_binding(self, policy: RbacPolicy, user: UserInfo, kind: str,
                       obj: dict[str, Any], namespace: str, name: str) -> None:
        plural = BINDING_KINDS[kind]
        role_ref = obj.get("roleRef") or {}
        role_kind, role_name = str(role_ref.get("kind", "")), str(role_ref.get("name", ""))
        if role_kind in ROLE_KINDS:
            bind = Attributes(user, "bind", group=RBAC_GROUP, resource=ROLE_KINDS[role_kind],
                              namespace=namespace, name=role_name)
            if policy.authorize(bind).allowed:
                return
        granted = self._referenced_rules(role_kind, role_name, namespace)
        if isinstance(granted, str):
            raise forbidden(plural, name, granted)
        held, problems = policy.rules_for(user, namespace)
        missing = uncovered(held, granted)
        if missing:
            raise forbidden(plural, name, escalation_error(user.name, user.groups, missing,
                                                           problems))

    def _referenced_rules(self, role_kind: str, role_name: str,
                          namespace: str) -> list[dict[str, Any]] | str:
        """The rules of a binding's role, or kube's error (GetRoleReferenceRules)."""
        if role_kind not in ROLE_KINDS:
            return f'unsupported role reference kind: "{role_kind}"'
        plural = ROLE_KINDS[role_kind]
        role = self.store.get((RBAC_GROUP, plural), namespace if role_kind == "Role" else "",
                              role_name)
        if role is None:
            return f'{plural}.{RBAC_GROUP} "{role_name}" not found'
        rules = role.get("rules") or []
        return rules if isinstance(rules, list) else []


def forbidden(plural: str, name: str, why: str) -> ApiError:
    """apierrors.NewForbidden(rbac resource, name, err)."""
    qualified = f"{plural}.{RBAC_GROUP}"
    message = f'{qualified} "{name}" is forbidden: {why}' if name else \
        f"{qualified} is forbidden: {why}"
    details: dict[str, Any] = {"group": RBAC_GROUP, "kind": plural}
    if name:
        details["name"] = name
    return ApiError(403, "Forbidden", message, details)


def _only_unchecked_fields_differ(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def comparable(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items()
                if k not in _UNCHECKED_METADATA}
        return {**{k: v for k, v in obj.items() if k != "apiVersion"}, "metadata": meta}
    return comparable(old) == comparable(new)
