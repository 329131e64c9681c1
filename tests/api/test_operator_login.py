"""The operator logs in as kubectl does: exec plugins, client certificates, a rotating
ServiceAccount token; its client retries what the server asks it to retry."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from controllers.common.kube import KubeClient, KubeError
from controllers.common.login import log_in, log_in_cluster
from kubekit.resources import ResourceRef
from tests.harness import REPO, DevCluster

SELF_SUBJECT_REVIEWS = ResourceRef("authentication.k8s.io", "v1", "selfsubjectreviews", False)
CONFIGMAPS = ResourceRef("", "v1", "configmaps")
STORAGE_CLASSES = ResourceRef("storage.k8s.io", "v1", "storageclasses", False)


@pytest.fixture(scope="module")
def cluster(apiserver: DevCluster) -> DevCluster:
    return apiserver


def _ca_file(cluster: DevCluster, directory: Path) -> Path:
    ca = base64.b64decode(cluster.config["clusters"][0]["cluster"]["certificate-authority-data"])
    path = directory / "ca.crt"
    path.write_bytes(ca)
    return path


def exec_kubeconfig(cluster: DevCluster, directory: Path) -> Path:
    """A kubeconfig whose user is an exec plugin printing an ExecCredential (as EKS does)."""
    plugin = directory / "token-plugin.py"
    calls = directory / "plugin-calls"
    plugin.write_text(textwrap.dedent(f"""\
        import json, sys
        with open({str(calls)!r}, "a") as calls:
            calls.write("called\\n")
        json.dump({{"apiVersion": "client.authentication.k8s.io/v1",
                   "kind": "ExecCredential",
                   "status": {{"token": {cluster.token!r}}}}}, sys.stdout)
        """))
    config = dict(cluster.config)
    config["users"] = [{"name": "exec-user", "user": {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": [str(plugin)],
        "interactiveMode": "Never",
    }}}]
    config["contexts"] = [{"name": "exec", "context": {
        "cluster": config["clusters"][0]["name"], "user": "exec-user"}}]
    config["current-context"] = "exec"
    path = directory / "exec.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_an_exec_plugin_logs_the_client_in(cluster: DevCluster, tmp_path: Path) -> None:
    login = await log_in(exec_kubeconfig(cluster, tmp_path))
    kube = KubeClient(login)
    try:
        review = await kube.create(SELF_SUBJECT_REVIEWS, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    finally:
        await kube.close()
    assert "system:masters" in review["status"]["userInfo"]["groups"]
    assert (tmp_path / "plugin-calls").read_text().count("called") >= 1


async def test_a_client_certificate_kubeconfig_is_read(tmp_path: Path) -> None:
    pem = base64.b64encode(b"not checked until connecting").decode()
    (tmp_path / "config").write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        current-context: kind
        contexts: [{{name: kind, context: {{cluster: c, user: u, namespace: apps}}}}]
        clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:6443/",
          certificate-authority-data: {pem}}}}}]
        users: [{{name: u, user: {{client-certificate-data: {pem}, client-key-data: {pem}}}}}]
        """))
    login = await log_in(tmp_path / "config")
    assert login.server == "https://127.0.0.1:6443"
    assert Path(login.configuration.cert_file).read_bytes() == b"not checked until connecting"
    assert await login.token() is None


def _service_account_token(cluster: DevCluster, name: str) -> str:
    cluster.kubectl("create", "serviceaccount", name, "-n", "default", check=False)
    cluster.kubectl("create", "clusterrolebinding", f"{name}-view", "--clusterrole=view",
                    f"--serviceaccount=default:{name}", check=False)
    return cluster.kubectl("create", "token", name, "-n", "default").stdout.strip()


async def test_a_rotated_service_account_token_is_picked_up(
    cluster: DevCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = cluster.url.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    _ca_file(cluster, tmp_path)
    (tmp_path / "token").write_text(_service_account_token(cluster, "before"))
    login = log_in_cluster(tmp_path, refresh_every=timedelta(0))
    kube = KubeClient(login)

    async def who() -> str:
        review = await kube.create(SELF_SUBJECT_REVIEWS, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        return str(review["status"]["userInfo"]["username"])

    try:
        assert await who() == "system:serviceaccount:default:before"
        # The kubelet rotates the projected token in place; the operator keeps running.
        (tmp_path / "token").write_text(_service_account_token(cluster, "after"))
        assert await who() == "system:serviceaccount:default:after"
        assert (await login.connection_info()).token == (tmp_path / "token").read_text()
    finally:
        await kube.close()


async def test_writes_name_our_field_manager_and_are_counted(cluster: DevCluster) -> None:
    kube = KubeClient(await log_in(cluster.kubeconfig))
    try:
        await kube.apply(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "applied", "namespace": "default"},
                                      "data": {"a": "1"}})
        live = await kube.get(CONFIGMAPS, "default", "applied")
        with pytest.raises(KubeError) as missing:
            await kube.patch(CONFIGMAPS, "default", "absent", {"data": {"a": "2"}})
    finally:
        await kube.close()
    assert live is not None
    assert [entry["manager"] for entry in live["metadata"]["managedFields"]] == ["vdcos-operator"]
    assert missing.value.status == 404
    assert kube.writes.by_resource() == {"PATCH configmaps": 2}


@pytest.fixture
def operator_with_exec_login(cluster: DevCluster, tmp_path: Path) -> Iterator[Path]:
    """`vdcos run` against a kubeconfig whose only credential is an exec plugin."""
    crds = subprocess.run([sys.executable, "-m", "controllers.cli", "crds"], check=True,
                          capture_output=True, text=True, cwd=REPO).stdout
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=crds)
    kubeconfig = exec_kubeconfig(cluster, tmp_path)
    log_path = tmp_path / "operator.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "controllers.cli", "run", "--standalone", "--log-json", "-v",
             "--kubeconfig", str(kubeconfig)],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield log_path
    finally:
        process.terminate()
        process.wait(30)


def _wait_for(check: Any, timeout: float, what: str, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)  # polling kubectl; the operator is another process
    raise AssertionError(f"{what} within {timeout}s:\n{log_path.read_text()[-3000:]}")


def test_vdcos_run_works_with_an_exec_plugin_kubeconfig(
    cluster: DevCluster, operator_with_exec_login: Path
) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=textwrap.dedent("""\
        apiVersion: vdcos.io/v1alpha1
        kind: StoragePolicy
        metadata: {name: exec-login}
        spec: {provisioner: kubevirt.io.hostpath-provisioner, provisioning: Thin}
        """))

    def storage_class_made() -> bool:
        answer = cluster.kubectl("get", "storageclass", "-o", "json")
        return any(item["metadata"]["name"].startswith("exec-login")
                   for item in json.loads(answer.stdout)["items"])

    _wait_for(storage_class_made, 60, "the operator made the policy's StorageClass",
              operator_with_exec_login)
    # The status write follows the StorageClass; both go through the exec-plugin login.
    cluster.kubectl("wait", "--for=condition=Ready", "sp/exec-login", "--timeout=60s",
                    timeout=70)


def test_every_log_line_of_vdcos_run_is_one_json_object(
    cluster: DevCluster, operator_with_exec_login: Path
) -> None:
    _wait_for(lambda: "Started vdcos operator" in operator_with_exec_login.read_text(), 60,
              "the operator started", operator_with_exec_login)
    lines = [line for line in operator_with_exec_login.read_text().splitlines() if line]
    records = [json.loads(line) for line in lines]  # fails on the first line that is not JSON
    loggers = {str(record.get("logger", "")).split(".")[0] for record in records}
    assert {"kopf", "vdcos"} <= loggers, loggers
