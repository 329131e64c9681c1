"""RBAC authorization with kube-apiserver's semantics, as a pure function of the RBAC objects.

`RbacPolicy.build(...)` indexes Roles, RoleBindings, ClusterRoles and ClusterRoleBindings by
subject, so that `authorize(policy, attributes)` looks only at the bindings of the caller's
user name and groups (ServiceAccount subjects are indexed under their user name,
`system:serviceaccount:<ns>:<name>`, which is how kube matches them). Rule matching, the
order bindings are visited in (ClusterRoleBindings, then the RoleBindings of the request's
namespace), the "allowed by" reasons, the resolution errors of dangling role references and
the Forbidden message are kube's (plugin/pkg/auth/authorizer/rbac, pkg/registry/rbac/
validation, apiserver's responsewriters).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .authn import UserInfo
from .errors import ApiError
from .selectors import label_selector_from_dict

RBAC_GROUP = "rbac.authorization.k8s.io"
ALL = "*"


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do (kube's authorizer.Attributes)."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource requests only


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class Rule:
    """A PolicyRule, as sets for quick membership tests."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]
    non_resource_urls: tuple[str, ...]

    @classmethod
    def from_dict(cls, rule: Mapping[str, Any]) -> Rule:
        return cls(frozenset(rule.get("verbs") or ()), frozenset(rule.get("apiGroups") or ()),
                   frozenset(rule.get("resources") or ()),
                   frozenset(rule.get("resourceNames") or ()),
                   tuple(rule.get("nonResourceURLs") or ()))

    def allows(self, attributes: Attributes) -> bool:
        if not (attributes.verb in self.verbs or ALL in self.verbs):
            return False
        if not attributes.resource_request:
            return _url_matches(self.non_resource_urls, attributes.path)
        if not (attributes.group in self.api_groups or ALL in self.api_groups):
            return False
        subresource = attributes.subresource
        combined = f"{attributes.resource}/{subresource}" if subresource else attributes.resource
        if not (combined in self.resources or ALL in self.resources
                or (subresource and f"*/{subresource}" in self.resources)):
            return False
        return not self.resource_names or attributes.name in self.resource_names


def _url_matches(patterns: tuple[str, ...], path: str) -> bool:
    for pattern in patterns:
        if pattern in (ALL, path):
            return True
        if pattern.endswith("*") and path.startswith(pattern.rstrip("*")):
            return True
    return False


@dataclass(frozen=True)
class _Binding:
    kind: str  # RoleBinding | ClusterRoleBinding
    name: str
    namespace: str  # "" for a ClusterRoleBinding
    role_kind: str
    role_name: str
    subjects: tuple[Mapping[str, Any], ...]

    def describe(self, user: UserInfo) -> str:
        """kube's source description: `RoleBinding "rb/ns" of Role "r" to User "u"`."""
        subject = next((s for s in self.subjects if _applies(s, user, self.namespace)),
                       self.subjects[0])
        name = f"{self.name}/{self.namespace}" if self.kind == "RoleBinding" else self.name
        return f'{self.kind} "{name}" of {self.role_kind} "{self.role_name}" to ' + \
            _describe_subject(subject, self.namespace)


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _subject_key(subject: Mapping[str, Any], binding_namespace: str) -> str | None:
    """The index key of a binding subject: `user:<name>` or `group:<name>`."""
    kind, name = subject.get("kind"), subject.get("name") or ""
    if kind == "User":
        return f"user:{name}"
    if kind == "Group":
        return f"group:{name}"
    if kind == "ServiceAccount":
        # An unqualified ServiceAccount of a RoleBinding is in the binding's namespace.
        namespace = subject.get("namespace") or binding_namespace
        return f"user:system:serviceaccount:{namespace}:{name}" if namespace else None
    return None


def _applies(subject: Mapping[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    key = _subject_key(subject, binding_namespace)
    return key is not None and key in _user_keys(user)


def _user_keys(user: UserInfo) -> list[str]:
    return [f"user:{user.name}", *(f"group:{group}" for group in user.groups)]


class RbacPolicy:
    """The RBAC objects, indexed by subject. Immutable once built; rebuild on any change."""

    def __init__(self) -> None:
        self._roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self._cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self._raw_rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._cluster_bindings: dict[str, list[_Binding]] = {}
        self._namespaced_bindings: dict[str, dict[str, list[_Binding]]] = {}

    @classmethod
    def build(
        cls,
        roles: Iterable[Mapping[str, Any]] = (),
        role_bindings: Iterable[Mapping[str, Any]] = (),
        cluster_roles: Iterable[Mapping[str, Any]] = (),
        cluster_role_bindings: Iterable[Mapping[str, Any]] = (),
    ) -> RbacPolicy:
        policy = cls()
        for role in roles:
            meta = role.get("metadata") or {}
            key = (meta.get("namespace", ""), meta.get("name", ""))
            policy._roles[key] = tuple(Rule.from_dict(r) for r in role.get("rules") or ())
            policy._raw_rules[("Role", *key)] = list(role.get("rules") or ())
        for cluster_role in cluster_roles:
            name = (cluster_role.get("metadata") or {}).get("name", "")
            rules = cluster_role.get("rules") or ()
            policy._cluster_roles[name] = tuple(Rule.from_dict(r) for r in rules)
            policy._raw_rules[("ClusterRole", "", name)] = list(rules)
        for binding in sorted(cluster_role_bindings, key=_name_of):
            policy._index(binding, "ClusterRoleBinding", "", policy._cluster_bindings)
        for binding in sorted(role_bindings, key=_name_of):
            namespace = (binding.get("metadata") or {}).get("namespace", "")
            policy._index(binding, "RoleBinding", namespace,
                          policy._namespaced_bindings.setdefault(namespace, {}))
        return policy

    def _index(self, binding: Mapping[str, Any], kind: str, namespace: str,
               index: dict[str, list[_Binding]]) -> None:
        subjects = tuple(binding.get("subjects") or ())
        if not subjects:
            return
        role_ref = binding.get("roleRef") or {}
        entry = _Binding(kind, _name_of(binding), namespace, str(role_ref.get("kind", "")),
                         str(role_ref.get("name", "")), subjects)
        for key in {_subject_key(subject, namespace) for subject in subjects}:
            if key is not None:
                index.setdefault(key, []).append(entry)

    def _bindings_for(self, user: UserInfo, namespace: str) -> Iterator[_Binding]:
        """ClusterRoleBindings, then RoleBindings of `namespace`, each once, in name order."""
        keys = _user_keys(user)
        indexes = [self._cluster_bindings]
        if namespace:
            indexes.append(self._namespaced_bindings.get(namespace, {}))
        for index in indexes:
            found = {id(b): b for key in keys for b in index.get(key, ())}
            yield from sorted(found.values(), key=lambda b: b.name)

    def _rules_of(self, binding: _Binding) -> tuple[Rule, ...] | str:
        """The rules a binding grants, or kube's error text when its role is missing."""
        if binding.role_kind == "Role":
            rules = self._roles.get((binding.namespace, binding.role_name))
            missing = f'role.{RBAC_GROUP} "{binding.role_name}" not found'
        elif binding.role_kind == "ClusterRole":
            rules = self._cluster_roles.get(binding.role_name)
            missing = f'clusterrole.{RBAC_GROUP} "{binding.role_name}" not found'
        else:
            return f'unsupported role reference kind: "{binding.role_kind}"'
        return missing if rules is None else rules

    def _raw_rules_of(self, binding: _Binding) -> list[dict[str, Any]]:
        namespace = binding.namespace if binding.role_kind == "Role" else ""
        return self._raw_rules.get((binding.role_kind, namespace, binding.role_name), [])

    def authorize(self, attributes: Attributes) -> Decision:
        """Allow with kube's `RBAC: allowed by ...` reason, or deny with the resolution errors
        met on the way (`RBAC: clusterrole... "x" not found`) or no reason at all."""
        if attributes.user.privileged:
            return Decision(True)
        problems: list[str] = []
        for binding in self._bindings_for(attributes.user, attributes.namespace):
            rules = self._rules_of(binding)
            if isinstance(rules, str):
                problems.append(rules)
                continue
            if any(rule.allows(attributes) for rule in rules):
                return Decision(True, f"RBAC: allowed by {binding.describe(attributes.user)}")
        return Decision(False, f"RBAC: {aggregate_errors(problems)}" if problems else "")

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Every PolicyRule that applies to `user` in `namespace`, and resolution errors
        (what SelfSubjectRulesReview reports)."""
        rules: list[dict[str, Any]] = []
        problems: list[str] = []
        for binding in self._bindings_for(user, namespace):
            resolved = self._rules_of(binding)
            if isinstance(resolved, str):
                problems.append(resolved)
            else:
                rules.extend(self._raw_rules_of(binding))
        return rules, problems


def _name_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def aggregate_errors(messages: list[str]) -> str:
    """apimachinery's utilerrors.Aggregate text: one message alone, else `[a, b]` deduped."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def forbidden(attributes: Attributes, reason: str = "") -> ApiError:
    """The 403 kube-apiserver answers (responsewriters.Forbidden + apierrors.NewForbidden)."""
    user = attributes.user.name
    if not attributes.resource_request:
        message = f'User "{user}" cannot {attributes.verb} path "{attributes.path}"'
    else:
        resource = attributes.resource
        if attributes.subresource:
            resource = f"{resource}/{attributes.subresource}"
        message = (f'User "{user}" cannot {attributes.verb} resource "{resource}" '
                   f'in API group "{attributes.group}"')
        if attributes.namespace:
            message += f' in the namespace "{attributes.namespace}"'
        else:
            message += " at the cluster scope"
    if reason:
        message = f"{message}: {reason}"
    qualified = attributes.resource if attributes.resource_request else ""
    if qualified and attributes.group:
        qualified = f"{qualified}.{attributes.group}"
    if not qualified:
        text = f"forbidden: {message}"
    elif attributes.name:
        text = f'{qualified} "{attributes.name}" is forbidden: {message}'
    else:
        text = f"{qualified} is forbidden: {message}"
    details: dict[str, Any] = {"kind": attributes.resource} if qualified else {}
    if qualified and attributes.group:
        details["group"] = attributes.group
    if qualified and attributes.name:
        details["name"] = attributes.name
    return ApiError(403, "Forbidden", text, details)


def aggregated_rules(cluster_role: Mapping[str, Any],
                     cluster_roles: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """The rules an aggregated ClusterRole should carry (kube's clusterrole-aggregation
    controller): the rules of every other ClusterRole its selectors match, in name order,
    without duplicates. None when the role has no aggregationRule."""
    aggregation = cluster_role.get("aggregationRule")
    if not aggregation:
        return None
    own_name = _name_of(cluster_role)
    candidates = sorted((r for r in cluster_roles if _name_of(r) != own_name), key=_name_of)
    rules: list[dict[str, Any]] = []
    for selector_dict in aggregation.get("clusterRoleSelectors") or ():
        selector = label_selector_from_dict(selector_dict or {})
        for candidate in candidates:
            if not selector.matches((candidate.get("metadata") or {}).get("labels")):
                continue
            for rule in candidate.get("rules") or ():
                if rule not in rules:
                    rules.append(dict(rule))
    return rules
