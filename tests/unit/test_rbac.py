"""The RBAC authorizer, request attributes, ServiceAccount tokens and impersonation, without a
server; and the project's own RBAC manifests (least privilege, no wildcards)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.apiserver.authn import (
    ADMIN,
    API_AUDIENCE,
    Authenticator,
    HeaderSource,
    TokenSigner,
    UserInfo,
    impersonation,
)
from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.rbac import Attributes, RbacPolicy, aggregated_rules, forbidden
from devcluster.apiserver.rbac_defaults import DEFAULT_CLUSTER_ROLES
from devcluster.apiserver.request_info import request_attributes

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"

BOT = UserInfo("system:serviceaccount:team-a:bot",
               ("system:serviceaccounts", "system:serviceaccounts:team-a",
                "system:authenticated"))
ALICE = UserInfo("alice", ("developers", "system:authenticated"))


def role(name: str, namespace: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": namespace},
            "rules": list(rules)}


def cluster_role(name: str, *rules: dict[str, Any], labels: dict[str, str] | None = None,
                 aggregate: dict[str, str] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "ClusterRole",
                           "metadata": {"name": name, "labels": labels or {}},
                           "rules": list(rules)}
    if aggregate is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": aggregate}]}
    return obj


def binding(name: str, namespace: str, role_kind: str, role_name: str,
            *subjects: dict[str, str]) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {"metadata": meta, "subjects": list(subjects),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                        "name": role_name}}


def rule(groups: list[str], resources: list[str], verbs: list[str],
         names: list[str] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        found["resourceNames"] = names
    return found


def sa(name: str, namespace: str = "") -> dict[str, str]:
    subject = {"kind": "ServiceAccount", "name": name}
    if namespace:
        subject["namespace"] = namespace
    return subject


def can(policy: RbacPolicy, user: UserInfo, verb: str, resource: str, namespace: str = "",
        group: str = "", name: str = "", subresource: str = "") -> bool:
    return policy.authorize(Attributes(user, verb, group=group, resource=resource,
                                       subresource=subresource, namespace=namespace,
                                       name=name)).allowed


# ---- rules ---------------------------------------------------------------------------------


def test_a_role_grants_exactly_its_verbs_resources_and_group() -> None:
    policy = RbacPolicy.build(
        roles=[role("reader", "team-a", rule([""], ["pods"], ["get", "list"]),
                    rule(["apps"], ["deployments"], ["patch"]))],
        role_bindings=[binding("bot-reader", "team-a", "Role", "reader", sa("bot", "team-a"))])
    assert can(policy, BOT, "get", "pods", "team-a", name="web")
    assert can(policy, BOT, "list", "pods", "team-a")
    assert not can(policy, BOT, "watch", "pods", "team-a")
    assert not can(policy, BOT, "delete", "pods", "team-a", name="web")
    assert can(policy, BOT, "patch", "deployments", "team-a", group="apps", name="web")
    assert not can(policy, BOT, "patch", "deployments", "team-a", group="", name="web")
    assert not can(policy, BOT, "get", "configmaps", "team-a", name="x")


def test_subresources_are_separate_resources_unless_the_rule_says_star_slash() -> None:
    policy = RbacPolicy.build(
        cluster_roles=[cluster_role("status-writer",
                                    rule(["vdcos.io"], ["virtualmachines/status"], ["patch"]),
                                    rule(["apps"], ["*/scale"], ["update"]),
                                    rule([""], ["pods"], ["get"]))],
        cluster_role_bindings=[binding("b", "", "ClusterRole", "status-writer",
                                       sa("bot", "team-a"))])
    assert can(policy, BOT, "patch", "virtualmachines", "ns", "vdcos.io", "vm",
               subresource="status")
    assert not can(policy, BOT, "patch", "virtualmachines", "ns", "vdcos.io", "vm")
    assert can(policy, BOT, "update", "deployments", "ns", "apps", "web", subresource="scale")
    assert can(policy, BOT, "update", "statefulsets", "ns", "apps", "db", subresource="scale")
    assert not can(policy, BOT, "update", "deployments", "ns", "apps", "web",
                   subresource="status")
    # `pods` does not cover pods/log.
    assert can(policy, BOT, "get", "pods", "ns", name="p")
    assert not can(policy, BOT, "get", "pods", "ns", name="p", subresource="log")


def test_resource_names_restrict_to_those_objects() -> None:
    policy = RbacPolicy.build(
        roles=[role("one-cm", "team-a", rule([""], ["configmaps"], ["get", "update"],
                                             ["settings"]))],
        role_bindings=[binding("b", "team-a", "Role", "one-cm", sa("bot"))])
    assert can(policy, BOT, "get", "configmaps", "team-a", name="settings")
    assert not can(policy, BOT, "get", "configmaps", "team-a", name="other")
    # A list has no name: resourceNames never allow it.
    assert not can(policy, BOT, "list", "configmaps", "team-a")


def test_wildcards_match_as_in_kube() -> None:
    policy = RbacPolicy.build(
        cluster_roles=[cluster_role("everything", rule(["*"], ["*"], ["*"]))],
        cluster_role_bindings=[binding("b", "", "ClusterRole", "everything",
                                       {"kind": "User", "name": "alice"})])
    assert can(policy, ALICE, "deletecollection", "widgets", "ns", "example.com")
    assert can(policy, ALICE, "get", "pods", "ns", name="p", subresource="log")
    assert can(policy, ALICE, "list", "nodes")


def test_non_resource_urls_exact_and_prefix() -> None:
    policy = RbacPolicy.build(
        cluster_roles=[cluster_role("discovery",
                                    {"nonResourceURLs": ["/apis/*", "/version"],
                                     "verbs": ["get"]})],
        cluster_role_bindings=[binding("b", "", "ClusterRole", "discovery",
                                       {"kind": "Group", "name": "system:authenticated"})])

    def path(verb: str, url: str) -> bool:
        return policy.authorize(Attributes(ALICE, verb, resource_request=False,
                                           path=url)).allowed

    assert path("get", "/version")
    assert path("get", "/apis/apps/v1")
    assert not path("get", "/apis")  # "/apis/*" needs the slash
    assert not path("post", "/version")
    assert not path("get", "/metrics")


# ---- bindings ------------------------------------------------------------------------------


def test_a_rolebinding_grants_only_in_its_namespace_even_for_a_cluster_role() -> None:
    policy = RbacPolicy.build(
        cluster_roles=[cluster_role("pod-reader", rule([""], ["pods"], ["list"]))],
        role_bindings=[binding("b", "team-a", "ClusterRole", "pod-reader", sa("bot"))])
    assert can(policy, BOT, "list", "pods", "team-a")
    assert not can(policy, BOT, "list", "pods", "team-b")
    assert not can(policy, BOT, "list", "pods", "")  # across all namespaces


def test_a_cluster_role_binding_grants_everywhere_and_at_cluster_scope() -> None:
    policy = RbacPolicy.build(
        cluster_roles=[cluster_role("node-reader", rule([""], ["nodes", "pods"], ["list"]))],
        cluster_role_bindings=[binding("b", "", "ClusterRole", "node-reader",
                                       sa("bot", "team-a"))])
    assert can(policy, BOT, "list", "nodes")
    assert can(policy, BOT, "list", "pods", "")
    assert can(policy, BOT, "list", "pods", "team-z")


def test_subjects_match_by_user_group_or_service_account() -> None:
    policy = RbacPolicy.build(
        cluster_roles=[cluster_role("cm", rule([""], ["configmaps"], ["get"]))],
        role_bindings=[
            binding("by-group", "dev", "ClusterRole", "cm",
                    {"kind": "Group", "name": "developers"}),
            binding("by-user", "ops", "ClusterRole", "cm", {"kind": "User", "name": "alice"}),
            # An unqualified ServiceAccount of a RoleBinding is in the binding's namespace.
            binding("by-sa", "team-a", "ClusterRole", "cm", sa("bot")),
            binding("other-sa", "team-b", "ClusterRole", "cm", sa("bot")),
        ])
    assert can(policy, ALICE, "get", "configmaps", "dev", name="x")
    assert can(policy, ALICE, "get", "configmaps", "ops", name="x")
    assert not can(policy, ALICE, "get", "configmaps", "team-a", name="x")
    assert can(policy, BOT, "get", "configmaps", "team-a", name="x")
    # team-b's binding names team-b's bot, not team-a's.
    assert not can(policy, BOT, "get", "configmaps", "team-b", name="x")
    # The ServiceAccounts group of a namespace works as a subject too.
    grouped = RbacPolicy.build(
        cluster_roles=[cluster_role("cm", rule([""], ["configmaps"], ["get"]))],
        cluster_role_bindings=[binding("all-sa", "", "ClusterRole", "cm",
                                       {"kind": "Group",
                                        "name": "system:serviceaccounts:team-a"})])
    assert can(grouped, BOT, "get", "configmaps", "anywhere", name="x")
    assert not can(grouped, ALICE, "get", "configmaps", "anywhere", name="x")


def test_system_masters_bypasses_rbac() -> None:
    assert can(RbacPolicy.build(), ADMIN, "delete", "nodes", name="host-1")


def test_allowed_reason_names_the_binding_and_denial_reports_a_missing_role() -> None:
    policy = RbacPolicy.build(
        roles=[role("reader", "team-a", rule([""], ["pods"], ["get"]))],
        role_bindings=[binding("bot-reader", "team-a", "Role", "reader", sa("bot")),
                       binding("dangling", "team-a", "ClusterRole", "gone", sa("bot"))])
    allowed = policy.authorize(Attributes(BOT, "get", resource="pods", namespace="team-a",
                                          name="p"))
    assert allowed.allowed
    assert allowed.reason == ('RBAC: allowed by RoleBinding "bot-reader/team-a" of Role '
                              '"reader" to ServiceAccount "bot/team-a"')
    denied = policy.authorize(Attributes(BOT, "delete", resource="pods", namespace="team-a",
                                         name="p"))
    assert not denied.allowed
    assert denied.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'


def test_rules_for_lists_what_applies_in_a_namespace() -> None:
    policy = RbacPolicy.build(
        roles=[role("reader", "team-a", rule([""], ["pods"], ["get"]))],
        cluster_roles=[cluster_role("discovery", {"nonResourceURLs": ["/api"],
                                                  "verbs": ["get"]})],
        role_bindings=[binding("b", "team-a", "Role", "reader", sa("bot"))],
        cluster_role_bindings=[binding("d", "", "ClusterRole", "discovery",
                                       {"kind": "Group", "name": "system:authenticated"})])
    rules, problems = policy.rules_for(BOT, "team-a")
    assert rule([""], ["pods"], ["get"]) in rules
    assert {"nonResourceURLs": ["/api"], "verbs": ["get"]} in rules
    assert problems == []
    elsewhere, _ = policy.rules_for(BOT, "team-b")
    assert rule([""], ["pods"], ["get"]) not in elsewhere


# ---- the Forbidden answer ------------------------------------------------------------------


@pytest.mark.parametrize(("attributes", "message"), [
    (Attributes(BOT, "list", resource="pods", namespace="team-a"),
     'pods is forbidden: User "system:serviceaccount:team-a:bot" cannot list resource "pods" '
     'in API group "" in the namespace "team-a"'),
    (Attributes(BOT, "delete", group="apps", resource="deployments", namespace="team-a",
                name="web"),
     'deployments.apps "web" is forbidden: User "system:serviceaccount:team-a:bot" cannot '
     'delete resource "deployments" in API group "apps" in the namespace "team-a"'),
    (Attributes(BOT, "list", resource="nodes"),
     'nodes is forbidden: User "system:serviceaccount:team-a:bot" cannot list resource '
     '"nodes" in API group "" at the cluster scope'),
    (Attributes(BOT, "get", resource="pods", subresource="log", namespace="team-a", name="p"),
     'pods "p" is forbidden: User "system:serviceaccount:team-a:bot" cannot get resource '
     '"pods/log" in API group "" in the namespace "team-a"'),
    (Attributes(BOT, "get", resource_request=False, path="/metrics"),
     'forbidden: User "system:serviceaccount:team-a:bot" cannot get path "/metrics"'),
])
def test_forbidden_message_is_kubes(attributes: Attributes, message: str) -> None:
    error = forbidden(attributes)
    assert (error.code, error.reason, error.message) == (403, "Forbidden", message)


def test_forbidden_appends_the_rbac_reason_and_details() -> None:
    error = forbidden(Attributes(BOT, "get", group="apps", resource="deployments",
                                 namespace="ns", name="web"),
                      'RBAC: role.rbac.authorization.k8s.io "x" not found')
    assert error.message.endswith(
        'in the namespace "ns": RBAC: role.rbac.authorization.k8s.io "x" not found')
    assert error.status()["details"] == {"kind": "deployments", "group": "apps", "name": "web"}


# ---- request attributes --------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "", "pods", "", "ns", "")),
    ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("watch", "", "pods", "", "ns", "")),
    ("GET", "/api/v1/pods", {}, ("list", "", "pods", "", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods/p", {}, ("get", "", "pods", "", "ns", "p")),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("get", "", "pods", "log", "ns", "p")),
    ("POST", "/apis/apps/v1/namespaces/ns/deployments", {},
     ("create", "apps", "deployments", "", "ns", "")),
    ("PUT", "/apis/apps/v1/namespaces/ns/deployments/d/scale", {},
     ("update", "apps", "deployments", "scale", "ns", "d")),
    ("PATCH", "/apis/vdcos.io/v1alpha1/namespaces/ns/virtualmachines/vm/status", {},
     ("patch", "vdcos.io", "virtualmachines", "status", "ns", "vm")),
    ("DELETE", "/api/v1/namespaces/ns/pods/p", {}, ("delete", "", "pods", "", "ns", "p")),
    ("DELETE", "/api/v1/namespaces/ns/pods", {}, ("deletecollection", "", "pods", "", "ns", "")),
    # A namespace is its own namespace, as kube's RequestInfo has it.
    ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "namespaces", "", "ns", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", {},
     ("update", "", "namespaces", "finalize", "ns", "ns")),
    ("GET", "/api/v1/namespaces", {}, ("list", "", "namespaces", "", "", "")),
    ("GET", "/apis/storage.k8s.io/v1/storageclasses/fast", {},
     ("get", "storage.k8s.io", "storageclasses", "", "", "fast")),
    # A list or watch of one object by field selector is authorized as that object.
    ("GET", "/api/v1/namespaces/ns/configmaps", {"fieldSelector": "metadata.name=settings"},
     ("list", "", "configmaps", "", "ns", "settings")),
    ("GET", "/api/v1/watch/namespaces/ns/pods", {}, ("watch", "", "pods", "", "ns", "")),
])
def test_request_attributes_map_http_to_verbs(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...],
) -> None:
    found = request_attributes(BOT, method, path, query)
    assert found.resource_request
    assert (found.verb, found.group, found.resource, found.subresource, found.namespace,
            found.name) == expected


@pytest.mark.parametrize("path", ["/api", "/apis", "/apis/apps", "/api/v1", "/apis/apps/v1",
                                  "/openapi/v3", "/version", "/metrics"])
def test_discovery_and_other_urls_are_non_resource_requests(path: str) -> None:
    found = request_attributes(BOT, "GET", path, {})
    assert not found.resource_request
    assert (found.verb, found.path) == ("get", path)


# ---- aggregation and the bootstrap roles ---------------------------------------------------


def test_aggregated_rules_union_the_selected_roles_without_duplicates() -> None:
    pods = rule([""], ["pods"], ["get"])
    secrets = rule([""], ["secrets"], ["get"])
    roles = [
        cluster_role("monitoring", aggregate={"example.com/aggregate-to-monitoring": "true"}),
        cluster_role("b-part", pods, secrets,
                     labels={"example.com/aggregate-to-monitoring": "true"}),
        cluster_role("a-part", pods, labels={"example.com/aggregate-to-monitoring": "true"}),
        cluster_role("unrelated", rule([""], ["nodes"], ["*"])),
    ]
    assert aggregated_rules(roles[0], roles) == [pods, secrets]
    assert aggregated_rules(roles[1], roles) is None


def test_default_view_edit_admin_aggregate_like_kube() -> None:
    roles = [dict(r) for r in DEFAULT_CLUSTER_ROLES]
    by_name = {r["metadata"]["name"]: r for r in roles}
    # Fill in aggregated roles until nothing changes, as the controller does.
    for _ in range(4):
        for obj in roles:
            rules = aggregated_rules(obj, roles)
            if rules is not None:
                obj["rules"] = rules
    policy = RbacPolicy.build(
        cluster_roles=roles,
        role_bindings=[binding("v", "ns", "ClusterRole", "view", sa("bot", "team-a")),
                       binding("e", "dev", "ClusterRole", "edit", sa("bot", "team-a")),
                       binding("a", "own", "ClusterRole", "admin", sa("bot", "team-a"))])
    assert can(policy, BOT, "list", "deployments", "ns", "apps")
    assert not can(policy, BOT, "get", "secrets", "ns", name="s")  # view hides secrets
    assert not can(policy, BOT, "create", "configmaps", "ns")
    assert can(policy, BOT, "create", "configmaps", "dev")
    assert can(policy, BOT, "list", "deployments", "dev", "apps")  # edit includes view
    assert not can(policy, BOT, "create", "rolebindings", "dev", "rbac.authorization.k8s.io")
    assert can(policy, BOT, "create", "rolebindings", "own", "rbac.authorization.k8s.io")
    assert can(policy, BOT, "get", "secrets", "own", name="s")  # admin includes edit
    assert by_name["cluster-admin"]["rules"][0] == rule(["*"], ["*"], ["*"])


# ---- tokens and impersonation --------------------------------------------------------------


def _authenticator(uids: dict[tuple[str, str], str]) -> tuple[TokenSigner, Authenticator]:
    signer = TokenSigner(b"k" * 32)
    return signer, Authenticator("admin-token", signer, lambda ns, name: uids.get((ns, name)))


def test_service_account_token_identifies_the_account_until_it_expires() -> None:
    signer, authenticator = _authenticator({("team-a", "bot"): "uid-1"})
    issued = signer.issue("team-a", "bot", "uid-1", [API_AUDIENCE], 3600, now=1000)
    user = authenticator.authenticate(f"Bearer {issued.token}", now=1001)
    assert user is not None
    assert user.name == "system:serviceaccount:team-a:bot"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team-a",
                           "system:authenticated")
    assert user.uid == "uid-1"
    assert authenticator.authenticate(f"Bearer {issued.token}", now=1000 + 3600) is None
    assert authenticator.authenticate("Bearer admin-token", now=0) is ADMIN


def test_tokens_are_rejected_when_forged_for_another_audience_or_account() -> None:
    signer, authenticator = _authenticator({("team-a", "bot"): "uid-2"})
    stale = signer.issue("team-a", "bot", "uid-1", [API_AUDIENCE], 3600, now=0)
    assert authenticator.authenticate(f"Bearer {stale.token}", now=1) is None  # re-created SA
    other = signer.issue("team-a", "bot", "uid-2", ["vault"], 3600, now=0)
    assert authenticator.authenticate(f"Bearer {other.token}", now=1) is None
    good = signer.issue("team-a", "bot", "uid-2", [API_AUDIENCE], 3600, now=0).token
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}AA"
    assert authenticator.authenticate(f"Bearer {tampered}", now=1) is None
    foreign = TokenSigner(b"x" * 32).issue("team-a", "bot", "uid-2", [API_AUDIENCE], 3600, 0)
    assert authenticator.authenticate(f"Bearer {foreign.token}", now=1) is None
    assert authenticator.authenticate("Bearer nonsense", now=1) is None


def test_impersonating_a_service_account_adds_its_groups_and_needs_impersonate() -> None:
    found = impersonation(HeaderSource([
        ("Impersonate-User", "system:serviceaccount:team-a:bot")]))
    assert found is not None
    assert found.user.name == "system:serviceaccount:team-a:bot"
    assert found.user.groups == BOT.groups
    check = found.checks[0]
    assert (check.resource, check.namespace, check.name) == ("serviceaccounts", "team-a", "bot")


def test_impersonating_a_user_with_groups_checks_each() -> None:
    found = impersonation(HeaderSource([("Impersonate-User", "jane"),
                                        ("Impersonate-Group", "developers"),
                                        ("impersonate-group", "qa")]))
    assert found is not None
    assert found.user.groups == ("developers", "qa", "system:authenticated")
    assert [(c.resource, c.name) for c in found.checks] == [
        ("users", "jane"), ("groups", "developers"), ("groups", "qa")]
    assert impersonation(HeaderSource([("Accept", "application/json")])) is None
    with pytest.raises(ApiError):
        impersonation(HeaderSource([("Impersonate-Group", "developers")]))


# ---- the project's manifests ---------------------------------------------------------------


def _manifest_documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_the_operator_rbac_has_no_wildcards() -> None:
    rbac = [d for d in _manifest_documents()
            if d.get("apiVersion", "").startswith("rbac.authorization.k8s.io/")]
    roles = [d for d in rbac if d["kind"] in ("Role", "ClusterRole")]
    assert roles, "manifests/ must define the operator's Role or ClusterRole"
    for document in rbac:
        wildcards = [s for s in _strings(document) if "*" in s]
        assert not wildcards, f"{document['kind']} {document['metadata']['name']}: {wildcards}"
    for document in roles:
        assert "aggregationRule" not in document
        for each in document.get("rules") or []:
            assert each.get("verbs"), f"a rule of {document['metadata']['name']} has no verbs"


def test_the_operator_rbac_binds_the_operator_service_account() -> None:
    documents = _manifest_documents()
    accounts = {(d["metadata"].get("namespace", ""), d["metadata"]["name"])
                for d in documents if d.get("kind") == "ServiceAccount"}
    bindings = [d for d in documents if d.get("kind") in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for document in bindings:
        for subject in document["subjects"]:
            if subject["kind"] == "ServiceAccount":
                assert (subject.get("namespace", ""), subject["name"]) in accounts
