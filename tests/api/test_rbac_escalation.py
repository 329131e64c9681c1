"""RBAC escalation prevention, as kube-apiserver does it: a ServiceAccount that may create
roles or bindings cannot grant itself (or anyone) more than it holds, unless it holds the
`escalate` or `bind` verb; the refusals are kube's words, as kubectl prints them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.wire import newest_kubectl
from tests.harness import DevCluster

pytestmark = pytest.mark.kubectl

_names = itertools.count(1)
Kubectl = Callable[..., Any]
GROUPS = '["system:serviceaccounts" "system:serviceaccounts:{ns}" "system:authenticated"]'


@pytest.fixture
def admin(apiserver: DevCluster) -> Kubectl:
    binary = newest_kubectl()

    def run(*args: str, check: bool = True, stdin: str | None = None) -> Any:
        return apiserver.kubectl(*args, binary=binary, check=check, stdin=stdin)

    return run


@pytest.fixture
def namespace(admin: Kubectl) -> str:
    name = f"escalation-{next(_names)}"
    admin("create", "namespace", name)
    return name


def as_account(apiserver: DevCluster, admin: Kubectl, namespace: str, account: str,
               tmp_path: Path) -> Kubectl:
    """kubectl with the token of `account` (which the admin creates)."""
    admin("-n", namespace, "create", "serviceaccount", account)
    token = admin("-n", namespace, "create", "token", account).stdout.strip()
    config = apiserver.config
    config["users"][0]["user"] = {"token": token}
    path = tmp_path / f"{account}.kubeconfig"
    path.write_text(yaml.safe_dump(config))

    def run(*args: str, check: bool = True, stdin: str | None = None) -> Any:
        return admin("--kubeconfig", str(path), *args, check=check, stdin=stdin)

    return run


def grant(admin: Kubectl, namespace: str, account: str, role: str, *rule: str) -> None:
    admin("-n", namespace, "create", "role", role, *rule)
    admin("-n", namespace, "create", "rolebinding", f"{account}-{role}", f"--role={role}",
          f"--serviceaccount={namespace}:{account}")


def test_an_account_allowed_only_to_create_rolebindings_cannot_bind_itself_cluster_admin(
    apiserver: DevCluster, admin: Kubectl, namespace: str, tmp_path: Path,
) -> None:
    grant(admin, namespace, "binder", "binds", "--verb=create", "--resource=rolebindings")
    binder = as_account(apiserver, admin, namespace, "binder", tmp_path)
    admin("-n", namespace, "create", "secret", "generic", "hidden", "--from-literal=k=v")

    refused = binder("-n", namespace, "create", "rolebinding", "takeover",
                     "--clusterrole=cluster-admin", f"--serviceaccount={namespace}:binder",
                     check=False)
    assert refused.returncode != 0
    user = f"system:serviceaccount:{namespace}:binder"
    assert (f'rolebindings.rbac.authorization.k8s.io "takeover" is forbidden: user "{user}" '
            f"(groups={GROUPS.format(ns=namespace)}) is attempting to grant RBAC permissions "
            "not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n"
            '{NonResourceURLs:["*"], Verbs:["*"]}') in refused.stderr
    assert admin("-n", namespace, "get", "rolebinding", "takeover",
                 check=False).returncode != 0
    read = binder("-n", namespace, "get", "secret", "hidden", check=False)
    assert read.returncode != 0 and "Forbidden" in read.stderr

    # The same binding is fine for what it holds: a role granting `create rolebindings`.
    binder("-n", namespace, "create", "rolebinding", "same-again", "--role=binds",
           f"--serviceaccount={namespace}:binder")


def test_roles_may_grant_only_what_their_author_holds_or_with_escalate(
    apiserver: DevCluster, admin: Kubectl, namespace: str, tmp_path: Path,
) -> None:
    grant(admin, namespace, "author", "writes-roles", "--verb=create,update,get",
          "--resource=roles")
    grant(admin, namespace, "author", "reads-pods", "--verb=get,list", "--resource=pods")
    author = as_account(apiserver, admin, namespace, "author", tmp_path)

    author("-n", namespace, "create", "role", "pod-getter", "--verb=get", "--resource=pods")
    refused = author("-n", namespace, "create", "role", "secret-reader", "--verb=get,list",
                     "--resource=secrets,pods", check=False)
    assert refused.returncode != 0
    assert ('roles.rbac.authorization.k8s.io "secret-reader" is forbidden: user '
            f'"system:serviceaccount:{namespace}:author"') in refused.stderr
    assert ('is attempting to grant RBAC permissions not currently held:\n'
            '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}') in refused.stderr
    assert "pods" not in refused.stderr.split("not currently held:")[1]

    # Updating a role to grant more is refused the same way, and changes nothing.
    widened = admin("-n", namespace, "get", "role", "pod-getter", "-o", "yaml").stdout
    widened = widened.replace("- get", "- delete")
    refused = author("-n", namespace, "replace", "-f", "-", stdin=widened, check=False)
    assert refused.returncode != 0
    assert '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}' in refused.stderr
    kept = admin("-n", namespace, "get", "role", "pod-getter", "-o",
                 "jsonpath={.rules[0].verbs}").stdout
    assert kept == '["get"]'

    grant(admin, namespace, "author", "escalates", "--verb=escalate", "--resource=roles")
    author("-n", namespace, "create", "role", "secret-reader", "--verb=get,list",
           "--resource=secrets")


def test_the_bind_verb_allows_binding_a_role_one_does_not_hold(
    apiserver: DevCluster, admin: Kubectl, namespace: str, tmp_path: Path,
) -> None:
    grant(admin, namespace, "binder", "binds", "--verb=create", "--resource=rolebindings")
    binder = as_account(apiserver, admin, namespace, "binder", tmp_path)
    admin("-n", namespace, "create", "role", "deleter", "--verb=delete", "--resource=pods")
    refused = binder("-n", namespace, "create", "rolebinding", "deleters", "--role=deleter",
                     f"--serviceaccount={namespace}:binder", check=False)
    assert refused.returncode != 0
    assert '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}' in refused.stderr
    missing = binder("-n", namespace, "create", "rolebinding", "ghost", "--role=no-such-role",
                     f"--serviceaccount={namespace}:binder", check=False)
    assert ('rolebindings.rbac.authorization.k8s.io "ghost" is forbidden: '
            'roles.rbac.authorization.k8s.io "no-such-role" not found') in missing.stderr

    admin("-n", namespace, "create", "role", "may-bind-deleter", "--verb=bind",
          "--resource=roles", "--resource-name=deleter")
    admin("-n", namespace, "create", "rolebinding", "binder-may-bind", "--role=may-bind-deleter",
          f"--serviceaccount={namespace}:binder")
    binder("-n", namespace, "create", "rolebinding", "deleters", "--role=deleter",
           f"--serviceaccount={namespace}:binder")
    # `bind` is per role: another role it does not hold is still refused.
    admin("-n", namespace, "create", "role", "creator", "--verb=create", "--resource=pods")
    assert binder("-n", namespace, "create", "rolebinding", "creators", "--role=creator",
                  f"--serviceaccount={namespace}:binder", check=False).returncode != 0


def test_cluster_roles_and_aggregation_need_the_authority_they_grant(
    apiserver: DevCluster, admin: Kubectl, namespace: str, tmp_path: Path,
) -> None:
    account = "cluster-author"
    admin("create", "clusterrole", f"{namespace}-writes-clusterroles", "--verb=create",
          "--resource=clusterroles")
    admin("create", "clusterrolebinding", f"{namespace}-author",
          f"--clusterrole={namespace}-writes-clusterroles",
          f"--serviceaccount={namespace}:{account}")
    author = as_account(apiserver, admin, namespace, account, tmp_path)
    author("create", "clusterrole", f"{namespace}-same", "--verb=create",
           "--resource=clusterroles")
    aggregated = author("create", "clusterrole", f"{namespace}-gathers",
                        "--aggregation-rule=example.test/x=true", check=False)
    assert aggregated.returncode != 0
    assert (f'clusterroles.rbac.authorization.k8s.io "{namespace}-gathers" is forbidden: must '
            "have cluster-admin privileges to use the aggregationRule") in aggregated.stderr
    nodes = author("create", "clusterrole", f"{namespace}-nodes", "--verb=get",
                   "--resource=nodes", check=False)
    assert '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}' in nodes.stderr
    # The admin (system:masters) is never checked; the default roles still aggregate.
    admin("create", "clusterrole", f"{namespace}-gathers",
          "--aggregation-rule=example.test/x=true")
    admin("create", "clusterrole", f"{namespace}-part", "--verb=get", "--resource=nodes")
    admin("label", "clusterrole", f"{namespace}-part", "example.test/x=true")
    admin("wait", "--for=jsonpath={.rules[0].resources[0]}=nodes", "--timeout=20s",
          f"clusterrole/{namespace}-gathers")
