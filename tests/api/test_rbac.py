"""Authentication and RBAC as users meet them: ServiceAccounts, Roles and bindings made with
kubectl, `kubectl create token`, a kubeconfig holding that token, `kubectl auth can-i` and
`kubectl auth whoami`, and the 403s kube-apiserver answers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api import wire
from tests.harness import REPO, DevCluster, kubectl_params, restart, start_devcluster

pytestmark = pytest.mark.kubectl

BINARIES = kubectl_params()
_names = itertools.count(1)
Kubectl = Callable[..., Any]


@pytest.fixture(params=BINARIES)
def kubectl(apiserver: DevCluster, request: pytest.FixtureRequest) -> Kubectl:
    binary = str(request.param)

    def run(*args: str, check: bool = True, stdin: str | None = None) -> Any:
        return apiserver.kubectl(*args, binary=binary, check=check, stdin=stdin)

    return run


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    name = f"rbac-{next(_names)}"
    kubectl("create", "namespace", name)
    return name


def service_account_kubeconfig(cluster: DevCluster, token: str, path: Path) -> Path:
    """The admin kubeconfig with the user's token replaced: what a CI job would write."""
    config = cluster.config
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


def pod_reader(kubectl: Kubectl, namespace: str, account: str = "bot") -> str:
    """A ServiceAccount bound to a Role that reads pods, made the way people make them."""
    kubectl("-n", namespace, "create", "serviceaccount", account)
    kubectl("-n", namespace, "create", "role", "pod-reader", "--verb=get,list,watch",
            "--resource=pods")
    kubectl("-n", namespace, "create", "rolebinding", f"{account}-reads-pods",
            "--role=pod-reader", f"--serviceaccount={namespace}:{account}")
    token: str = kubectl("-n", namespace, "create", "token", account).stdout.strip()
    return token


def test_service_account_kubeconfig_can_do_what_its_role_allows_and_no_more(
    apiserver: DevCluster, kubectl: Kubectl, namespace: str, tmp_path: Path,
) -> None:
    token = pod_reader(kubectl, namespace)
    config = str(service_account_kubeconfig(apiserver, token, tmp_path / "bot.kubeconfig"))
    kubectl("-n", namespace, "run", "web", "--image=nginx", "--restart=Never")

    listed = kubectl("--kubeconfig", config, "-n", namespace, "get", "pods", "-o", "name")
    assert listed.stdout.split() == ["pod/web"]
    user = f"system:serviceaccount:{namespace}:bot"

    denied = kubectl("--kubeconfig", config, "-n", namespace, "delete", "pod", "web",
                     check=False)
    assert denied.returncode != 0
    assert (f'Error from server (Forbidden): pods "web" is forbidden: User "{user}" cannot '
            f'delete resource "pods" in API group "" in the namespace "{namespace}"'
            ) in denied.stderr
    elsewhere = kubectl("--kubeconfig", config, "-n", "default", "get", "pods", check=False)
    assert (f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" '
            f'in the namespace "default"') in elsewhere.stderr
    cluster_scope = kubectl("--kubeconfig", config, "get", "namespaces", check=False)
    assert (f'namespaces is forbidden: User "{user}" cannot list resource "namespaces" in API '
            f'group "" at the cluster scope') in cluster_scope.stderr
    grouped = kubectl("--kubeconfig", config, "-n", namespace, "get", "deployments.apps",
                      check=False)
    assert (f'deployments.apps is forbidden: User "{user}" cannot list resource "deployments" '
            f'in API group "apps" in the namespace "{namespace}"') in grouped.stderr
    # The pod is still there: the denied delete changed nothing.
    assert kubectl("-n", namespace, "get", "pod", "web", "-o", "name").stdout.strip() == \
        "pod/web"


def test_subresources_are_authorized_on_their_own(
    apiserver: DevCluster, kubectl: Kubectl, namespace: str,
) -> None:
    token = pod_reader(kubectl, namespace)
    answer = wire.request(apiserver, "GET", f"/api/v1/namespaces/{namespace}/pods/web/log",
                          token=token)
    assert answer.status == 403
    assert answer.body["message"] == (
        f'pods "web" is forbidden: User "system:serviceaccount:{namespace}:bot" cannot get '
        f'resource "pods/log" in API group "" in the namespace "{namespace}"')
    assert answer.body["details"] == {"kind": "pods", "name": "web"}


def test_auth_can_i_as_admin_impersonating_and_as_the_service_account(
    apiserver: DevCluster, kubectl: Kubectl, namespace: str, tmp_path: Path,
) -> None:
    token = pod_reader(kubectl, namespace)
    account = f"--as=system:serviceaccount:{namespace}:bot"
    assert kubectl("auth", "can-i", "list", "pods", "-n", namespace, account).stdout.strip() \
        == "yes"
    refused = kubectl("auth", "can-i", "create", "pods", "-n", namespace, account, check=False)
    assert (refused.returncode, refused.stdout.strip()) == (1, "no")
    assert kubectl("auth", "can-i", "delete", "nodes").stdout.strip() == "yes"  # the admin

    config = str(service_account_kubeconfig(apiserver, token, tmp_path / "bot.kubeconfig"))
    assert kubectl("--kubeconfig", config, "auth", "can-i", "watch", "pods", "-n",
                   namespace).stdout.strip() == "yes"
    assert kubectl("--kubeconfig", config, "auth", "can-i", "get", "secrets", "-n", namespace,
                   check=False).stdout.strip() == "no"
    listed = kubectl("--kubeconfig", config, "auth", "can-i", "--list", "-n", namespace)
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert ["pods", "[]", "[]", "[get", "list", "watch]"] in rows
    # The service account may not impersonate (only cluster-admin may).
    impersonating = kubectl("--kubeconfig", config, "get", "pods", "-n", namespace,
                            "--as=jane", check=False)
    assert (f'users "jane" is forbidden: User "system:serviceaccount:{namespace}:bot" cannot '
            'impersonate resource "users" in API group "" at the cluster scope'
            ) in impersonating.stderr


def test_auth_whoami_for_admin_and_service_account(
    apiserver: DevCluster, kubectl: Kubectl, namespace: str, tmp_path: Path,
) -> None:
    admin = json.loads(kubectl("auth", "whoami", "-o", "json").stdout)
    assert admin["status"]["userInfo"] == {
        "username": "kubernetes-admin",
        "groups": ["system:masters", "system:authenticated"]}
    token = pod_reader(kubectl, namespace)
    config = str(service_account_kubeconfig(apiserver, token, tmp_path / "bot.kubeconfig"))
    info = json.loads(kubectl("--kubeconfig", config, "auth", "whoami", "-o", "json").stdout)
    account = json.loads(kubectl("-n", namespace, "get", "sa", "bot", "-o", "json").stdout)
    user = info["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:bot"
    assert user["uid"] == account["metadata"]["uid"]
    assert user["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                              "system:authenticated"]
    impersonated = json.loads(kubectl("auth", "whoami", "-o", "json", "--as=jane",
                                      "--as-group=qa").stdout)
    assert impersonated["status"]["userInfo"] == {
        "username": "jane", "groups": ["qa", "system:authenticated"]}


def test_token_request_answer_and_duration_limits(
    apiserver: DevCluster, kubectl: Kubectl, namespace: str,
) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "bot")
    answer = wire.request(apiserver, "POST",
                          f"/api/v1/namespaces/{namespace}/serviceaccounts/bot/token",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                           "spec": {"expirationSeconds": 1200}})
    assert answer.status == 201, answer.body
    assert answer.body["kind"] == "TokenRequest"
    assert answer.body["spec"]["expirationSeconds"] == 1200
    assert answer.body["status"]["token"].count(".") == 2  # a JWT
    assert answer.body["status"]["expirationTimestamp"].endswith("Z")
    short = kubectl("-n", namespace, "create", "token", "bot", "--duration=5m", check=False)
    assert "may not specify a duration less than 10 minutes" in short.stderr
    missing = kubectl("-n", namespace, "create", "token", "nobody", check=False)
    assert 'serviceaccounts "nobody" not found' in missing.stderr


def test_a_deleted_service_accounts_token_is_rejected(
    apiserver: DevCluster, kubectl: Kubectl, namespace: str,
) -> None:
    token = pod_reader(kubectl, namespace)
    path = f"/api/v1/namespaces/{namespace}/pods"
    assert wire.request(apiserver, "GET", path, token=token).status == 200
    kubectl("-n", namespace, "delete", "serviceaccount", "bot")
    kubectl("-n", namespace, "create", "serviceaccount", "bot")  # same name, new uid
    answer = wire.request(apiserver, "GET", path, token=token)
    assert answer.status == 401
    assert answer.body["reason"] == "Unauthorized"


def test_removing_a_binding_takes_effect_at_once(
    apiserver: DevCluster, kubectl: Kubectl, namespace: str,
) -> None:
    token = pod_reader(kubectl, namespace)
    path = f"/api/v1/namespaces/{namespace}/pods"
    assert wire.request(apiserver, "GET", path, token=token).status == 200
    kubectl("-n", namespace, "delete", "rolebinding", "bot-reads-pods")
    assert wire.request(apiserver, "GET", path, token=token).status == 403
    # A binding to a role that does not exist says so in the denial, as kube does.
    kubectl("-n", namespace, "create", "rolebinding", "dangling", "--role=nothing-here",
            f"--serviceaccount={namespace}:bot")
    answer = wire.request(apiserver, "GET", path, token=token)
    assert answer.status == 403
    assert answer.body["message"].endswith(
        ': RBAC: role.rbac.authorization.k8s.io "nothing-here" not found')


def test_service_accounts_read_discovery_and_default_roles_aggregate(
    apiserver: DevCluster, kubectl: Kubectl, namespace: str, tmp_path: Path,
) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "viewer")
    kubectl("-n", namespace, "create", "rolebinding", "viewer-view", "--clusterrole=view",
            f"--serviceaccount={namespace}:viewer")
    token = kubectl("-n", namespace, "create", "token", "viewer").stdout.strip()
    config = str(service_account_kubeconfig(apiserver, token, tmp_path / "viewer.kubeconfig"))
    kubectl("-n", namespace, "create", "configmap", "settings", "--from-literal=a=b")
    # Discovery (system:discovery for every authenticated user) and `view`'s rules.
    resources = kubectl("--kubeconfig", config, "api-resources", "-o", "name").stdout.split()
    assert "deployments.apps" in resources
    shown = kubectl("--kubeconfig", config, "-n", namespace, "get", "configmaps", "-o", "name")
    assert "configmap/settings" in shown.stdout.split()
    secrets = kubectl("--kubeconfig", config, "-n", namespace, "get", "secrets", check=False)
    assert "cannot list resource \"secrets\"" in secrets.stderr
    view = json.loads(kubectl("get", "clusterrole", "view", "-o", "json").stdout)
    assert {"apiGroups": ["apps"], "resources": ["controllerrevisions", "daemonsets",
            "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
            "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
            "statefulsets/scale", "statefulsets/status"],
            "verbs": ["get", "list", "watch"]} in view["rules"]
    admin = json.loads(kubectl("get", "clusterrole", "admin", "-o", "json").stdout)
    assert len(admin["rules"]) > len(view["rules"])  # admin aggregates edit aggregates view


def test_subject_access_review_answers_for_another_user(apiserver: DevCluster) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": "jane", "groups": ["system:masters"],
                       "resourceAttributes": {"verb": "delete", "resource": "nodes"}}}
    answer = wire.request(apiserver, "POST",
                          "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    assert answer.status == 201, answer.body
    assert answer.body["status"]["allowed"] is True
    review["spec"] = {"user": "jane",
                      "nonResourceAttributes": {"verb": "get", "path": "/metrics"}}
    denied = wire.request(apiserver, "POST",
                          "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    assert denied.body["status"]["allowed"] is False


def test_the_operator_manifests_grant_what_the_operator_needs(
    apiserver: DevCluster, kubectl: Kubectl,
) -> None:
    manifests = REPO / "manifests"
    kubectl("apply", "-f", str(REPO / "crds"))  # kubectl maps resource names by discovery
    for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        kubectl("apply", "-f", str(manifests / name))
    operator = "--as=system:serviceaccount:vdcos-system:vdcos-operator"

    def can_i(*args: str) -> str:
        return str(kubectl("auth", "can-i", *args, operator, check=False).stdout.strip())

    assert can_i("watch", "virtualmachines.vdcos.io", "--all-namespaces") == "yes"
    assert can_i("patch", "virtualmachines.vdcos.io", "--subresource=status", "-n", "x") == \
        "yes"
    assert can_i("create", "events", "-n", "x") == "yes"
    # Least privilege: users' spec is not the operator's to write, nor are secrets readable.
    assert can_i("update", "virtualmachines.vdcos.io", "-n", "x") == "no"
    assert can_i("get", "secrets", "-n", "vdcos-system") == "no"


def test_tokens_outlive_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    cluster = start_devcluster(tmp_path / "run", "--no-sim", "--data-dir",
                               str(tmp_path / "data"))
    try:
        cluster.kubectl("create", "serviceaccount", "bot")
        cluster.kubectl("create", "rolebinding", "bot-view", "--clusterrole=view",
                        "--serviceaccount=default:bot")
        token = cluster.kubectl("create", "token", "bot").stdout.strip()
        path = "/api/v1/namespaces/default/configmaps"
        assert wire.request(cluster, "GET", path, token=token).status == 200
        cluster = restart(cluster)
        assert wire.request(cluster, "GET", path, token=token).status == 200
        assert wire.request(cluster, "GET", "/api/v1/namespaces/default/secrets",
                            token=token).status == 403
    finally:
        cluster.stop()
