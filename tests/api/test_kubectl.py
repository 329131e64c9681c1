"""kubectl (the machine's 1.32 and the pip 1.37) against the embedded API server, used as people
use it: apply, get, watch, wait, describe, patch, explain, replace, create, delete."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api import wire
from tests.harness import DevCluster, kubectl_params

pytestmark = pytest.mark.kubectl

BINARIES = kubectl_params()
_names = itertools.count(1)

Kubectl = Callable[..., Any]


@pytest.fixture(params=BINARIES)
def binary(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def kubectl(apiserver: DevCluster, binary: str) -> Kubectl:
    """kubectl bound to one binary: kubectl("get", "ns") -> CompletedProcess."""

    def run(*args: str, check: bool = True, stdin: str | None = None) -> Any:
        return apiserver.kubectl(*args, binary=binary, check=check, stdin=stdin)

    return run


@pytest.fixture(scope="module")
def widget_crd(apiserver: DevCluster) -> None:
    wire.install_crd(apiserver)


@pytest.fixture
def namespace(apiserver: DevCluster, widget_crd: None) -> Iterator[str]:
    """A fresh namespace per test (and binary), so the two kubectls never share objects."""
    name = f"kc-{next(_names)}"
    created = wire.request(apiserver, "POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert created.status == 201, created.body
    yield name


def apply_text(kubectl: Kubectl, text: str, *args: str, check: bool = True) -> Any:
    return kubectl("apply", "-f", "-", *args, stdin=text, check=check)


def widget_yaml(name: str, namespace: str, size: int = 3, **spec: Any) -> str:
    return yaml.safe_dump(wire.widget(name, namespace, size, **spec))


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def table(output: str) -> list[list[str]]:
    """kubectl's column output as rows of cells (header first)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


# ---- CRDs and apply ------------------------------------------------------------------------


def test_apply_crd_then_wait_established(apiserver: DevCluster, kubectl: Kubectl) -> None:
    applied = kubectl("apply", "-f", str(wire.WIDGET_CRD))
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.test" in applied.stdout
    waited = kubectl("wait", "--for", "condition=established", "--timeout=30s",
                     "crd/widgets.example.test")
    assert "condition met" in waited.stdout
    names = get_json(kubectl, "crd", "widgets.example.test")["status"]["acceptedNames"]
    assert names["kind"] == "Widget" and names["shortNames"] == ["wdg"]


def test_client_side_apply_then_change(kubectl: Kubectl, namespace: str) -> None:
    first = apply_text(kubectl, widget_yaml("w", namespace, 3, owner="alice", tags=["a"]))
    assert "widget.example.test/w created" in first.stdout
    # The change: a new size, and `owner` dropped from the manifest.
    second = apply_text(kubectl, widget_yaml("w", namespace, 4, tags=["a", "b"]))
    assert "widget.example.test/w configured" in second.stdout
    obj = get_json(kubectl, "widget", "w", "-n", namespace)
    assert obj["spec"] == {"size": 4, "color": "blue", "tags": ["a", "b"]}
    last_applied = json.loads(
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last_applied["spec"] == {"size": 4, "tags": ["a", "b"]}
    assert obj["metadata"]["generation"] == 2
    again = apply_text(kubectl, widget_yaml("w", namespace, 4, tags=["a", "b"]))
    assert "widget.example.test/w unchanged" in again.stdout


def test_server_side_apply_conflict_and_force(kubectl: Kubectl, namespace: str) -> None:
    owned = apply_text(kubectl, widget_yaml("ssa", namespace, 5), "--server-side")
    assert "serverside-applied" in owned.stdout
    conflict = apply_text(kubectl, widget_yaml("ssa", namespace, 7), "--server-side",
                          "--field-manager=intruder", check=False)
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr and ".spec.size" in conflict.stderr
    assert get_json(kubectl, "widget", "ssa", "-n", namespace)["spec"]["size"] == 5
    forced = apply_text(kubectl, widget_yaml("ssa", namespace, 7), "--server-side",
                        "--field-manager=intruder", "--force-conflicts")
    assert "serverside-applied" in forced.stdout
    obj = get_json(kubectl, "widget", "ssa", "-n", namespace, "--show-managed-fields")
    assert obj["spec"]["size"] == 7
    size_owners = [entry["manager"] for entry in obj["metadata"]["managedFields"]
                   if "f:size" in (entry.get("fieldsV1") or {}).get("f:spec", {})]
    assert size_owners == ["intruder"]


def test_diff_and_server_dry_run_change_nothing(kubectl: Kubectl, namespace: str) -> None:
    apply_text(kubectl, widget_yaml("planned", namespace, 3))
    before = get_json(kubectl, "widget", "planned", "-n", namespace)
    changed = widget_yaml("planned", namespace, 9)
    diff = kubectl("diff", "-f", "-", stdin=changed, check=False)
    assert diff.returncode == 1, diff.stderr  # 1: differences found
    assert "-  size: 3" in diff.stdout and "+  size: 9" in diff.stdout
    dry = apply_text(kubectl, changed, "--dry-run=server")
    assert "configured (server dry run)" in dry.stdout
    dry_ssa = apply_text(kubectl, changed, "--server-side", "--dry-run=server",
                         "--force-conflicts")
    assert "serverside-applied (server dry run)" in dry_ssa.stdout
    deleted = kubectl("delete", "widget", "planned", "-n", namespace, "--dry-run=server")
    assert deleted.stdout.startswith('widget.example.test "planned" deleted')
    assert deleted.stdout.rstrip().endswith("(server dry run)")
    after = get_json(kubectl, "widget", "planned", "-n", namespace)
    assert after["spec"]["size"] == 3
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    same = kubectl("diff", "-f", "-", stdin=widget_yaml("planned", namespace, 3), check=False)
    assert same.returncode == 0 and same.stdout == ""


def test_moving_from_client_side_to_server_side_apply(kubectl: Kubectl, namespace: str) -> None:
    """kube docs: `kubectl apply --server-side` on an object managed by client-side apply
    transfers the fields it applied, without conflicts, when they still hold their
    last-applied values."""
    apply_text(kubectl, widget_yaml("migrated", namespace, 3))
    moved = apply_text(kubectl, widget_yaml("migrated", namespace, 4), "--server-side",
                       check=False)
    assert moved.returncode == 0, moved.stderr
    assert get_json(kubectl, "widget", "migrated", "-n", namespace)["spec"]["size"] == 4


# ---- get -------------------------------------------------------------------------------------


def test_get_printer_columns_wide_yaml_and_age(kubectl: Kubectl, namespace: str) -> None:
    apply_text(kubectl, widget_yaml("painted", namespace, 8, color="red", owner="bob"))
    rows = table(kubectl("get", "widgets", "-n", namespace).stdout)
    assert rows[0] == ["NAME", "SIZE", "COLOR", "PHASE", "AGE"]
    name, size, color, age = rows[1]  # PHASE is empty: no status yet
    assert (name, size, color) == ("painted", "8", "red")
    assert re.fullmatch(r"\d+s", age), age
    wide = table(kubectl("get", "wdg", "-n", namespace, "-o", "wide").stdout)
    assert wide[0] == ["NAME", "SIZE", "COLOR", "PHASE", "OWNER", "AGE"]
    assert wide[1][:4] == ["painted", "8", "red", "bob"]
    as_yaml = yaml.safe_load(kubectl("get", "widget/painted", "-n", namespace, "-o",
                                     "yaml").stdout)
    assert as_yaml["spec"] == {"size": 8, "color": "red", "owner": "bob"}
    assert as_yaml["metadata"]["uid"] and as_yaml["metadata"]["creationTimestamp"]


def test_get_with_label_and_field_selectors(kubectl: Kubectl, namespace: str) -> None:
    for name, tier in (("gold-1", "gold"), ("gold-2", "gold"), ("tin-1", "tin")):
        document = wire.widget(name, namespace)
        document["metadata"]["labels"] = {"tier": tier}
        apply_text(kubectl, yaml.safe_dump(document))
    by_label = kubectl("get", "widgets", "-n", namespace, "-l", "tier=gold", "-o", "name")
    assert by_label.stdout.split() == ["widget.example.test/gold-1", "widget.example.test/gold-2"]
    not_gold = kubectl("get", "widgets", "-n", namespace, "-l", "tier!=gold", "-o", "name")
    assert not_gold.stdout.split() == ["widget.example.test/tin-1"]
    by_field = kubectl("get", "widgets", "-n", namespace, "--field-selector",
                       "metadata.name=gold-2", "-o", "name")
    assert by_field.stdout.split() == ["widget.example.test/gold-2"]
    none = kubectl("get", "widgets", "-n", namespace, "-l", "tier=platinum")
    assert "No resources found" in none.stderr


def test_get_watch_prints_changes(apiserver: DevCluster, binary: str, kubectl: Kubectl,
                                  namespace: str) -> None:
    apply_text(kubectl, widget_yaml("watched", namespace, 1))
    process = wire.popen_kubectl(apiserver, binary, "get", "widgets", "-n", namespace, "-w")
    try:
        lines = wire.LineReader(process)
        first = lines.until(lambda line: line.startswith("watched"))
        assert first[0].split()[:3] == ["NAME", "SIZE", "COLOR"]
        kubectl("patch", "widget", "watched", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"size":42}}')
        changed = lines.until(lambda line: line.startswith("watched"))
        assert changed[-1].split()[1:3] == ["42", "blue"]
        apply_text(kubectl, widget_yaml("newcomer", namespace, 2))
        added = lines.until(lambda line: line.startswith("newcomer"))
        assert added[-1].split()[1] == "2"
    finally:
        process.kill()
        process.communicate()


def test_get_all_and_a_category(kubectl: Kubectl, namespace: str) -> None:
    apply_text(kubectl, widget_yaml("listed", namespace))
    everything = kubectl("get", "all", "-n", namespace, "-o", "name").stdout.split()
    assert "widget.example.test/listed" in everything
    gadgets = kubectl("get", "gadgets", "-n", namespace, "-o", "name").stdout.split()
    assert gadgets == ["widget.example.test/listed"]


def test_api_resources_shows_short_names_and_categories(kubectl: Kubectl,
                                                        widget_crd: None) -> None:
    rows = table(kubectl("api-resources", "--api-group=example.test", "-o", "wide").stdout)
    header = rows[0]
    assert header[:5] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    row = dict(zip(header, rows[1], strict=True))
    assert row["NAME"] == "widgets" and row["SHORTNAMES"] == "wdg"
    assert row["APIVERSION"] == "example.test/v1" and row["KIND"] == "Widget"
    assert row["CATEGORIES"] == "all,gadgets"
    core = kubectl("api-resources", "--api-group=", "-o", "name").stdout.split()
    assert {"configmaps", "namespaces", "pods", "secrets"} <= set(core)


# ---- describe, wait, delete ------------------------------------------------------------------


def test_describe_shows_the_events_of_an_object(apiserver: DevCluster, kubectl: Kubectl,
                                                namespace: str) -> None:
    apply_text(kubectl, widget_yaml("described", namespace, 6))
    uid = get_json(kubectl, "widget", "described", "-n", namespace)["metadata"]["uid"]
    event = {
        "metadata": {"generateName": "described-", "namespace": namespace},
        "involvedObject": {"apiVersion": "example.test/v1", "kind": "Widget",
                           "name": "described", "namespace": namespace, "uid": uid},
        "reason": "Polished", "message": "the widget was polished", "type": "Normal",
        "source": {"component": "polisher"}, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
    }
    posted = wire.request(apiserver, "POST", f"/api/v1/namespaces/{namespace}/events", event)
    assert posted.status == 201, posted.body
    described = kubectl("describe", "widget", "described", "-n", namespace).stdout
    assert re.search(r"^Name:\s+described$", described, re.MULTILINE)
    assert re.search(r"^\s+Size:\s+6$", described, re.MULTILINE)
    events = described.split("Events:")[1]
    assert "Polished" in events and "the widget was polished" in events
    assert "polisher" in events


def test_wait_for_a_condition_set_later(apiserver: DevCluster, binary: str, kubectl: Kubectl,
                                        namespace: str) -> None:
    apply_text(kubectl, widget_yaml("slow", namespace))
    waiter = wire.popen_kubectl(apiserver, binary, "wait", "--for=condition=Ready",
                                "--timeout=60s", "-n", namespace, "widget/slow")
    # The condition appears after kubectl started waiting: it must see it on its watch.
    kubectl("patch", "widget", "slow", "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": {"phase": "Ready", "conditions": [
                {"type": "Ready", "status": "True", "reason": "Polished",
                 "message": "ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}))
    code, out, err = wire.finish(waiter, timeout=60)
    assert code == 0, err
    assert "widget.example.test/slow condition met" in out
    row = table(kubectl("get", "widget", "slow", "-n", namespace).stdout)[1]
    assert row[3] == "Ready"


def test_delete_of_an_object_held_by_a_finalizer(apiserver: DevCluster, binary: str,
                                                 kubectl: Kubectl, namespace: str) -> None:
    held = wire.widget("held", namespace)
    held["metadata"]["finalizers"] = ["example.test/hold"]
    apply_text(kubectl, yaml.safe_dump(held))
    gone_waiter = wire.popen_kubectl(apiserver, binary, "wait", "--for=delete",
                                     "--timeout=60s", "-n", namespace, "widget/held")
    deleter = wire.popen_kubectl(apiserver, binary, "delete", "widget", "held",
                                 "-n", namespace)
    kubectl("wait", "--for=jsonpath={.metadata.deletionTimestamp}", "--timeout=30s",
            "-n", namespace, "widget/held")
    obj = get_json(kubectl, "widget", "held", "-n", namespace)
    assert obj["metadata"]["deletionTimestamp"] and obj["metadata"]["finalizers"]
    assert deleter.poll() is None, "kubectl delete returned while the finalizer holds the object"
    assert gone_waiter.poll() is None
    kubectl("patch", "widget", "held", "-n", namespace, "--type=json",
            "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    code, out, err = wire.finish(deleter)
    assert code == 0, err
    assert 'widget.example.test "held" deleted' in out
    code, out, err = wire.finish(gone_waiter)
    assert code == 0, err
    missing = kubectl("get", "widget", "held", "-n", namespace, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_delete_namespace_removes_its_content(apiserver: DevCluster, kubectl: Kubectl,
                                              widget_crd: None) -> None:
    doomed = f"doomed-{next(_names)}"
    kubectl("create", "namespace", doomed)
    kubectl("create", "configmap", "settings", "-n", doomed, "--from-literal=a=b")
    apply_text(kubectl, widget_yaml("inside", doomed))
    deleted = kubectl("delete", "namespace", doomed, "--timeout=60s")
    assert f'namespace "{doomed}" deleted' in deleted.stdout
    # kubectl waits for the namespace to be gone: nothing of it is left.
    missing = kubectl("get", "namespace", doomed, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    for kind in ("configmaps", "widgets"):
        listed = kubectl("get", kind, "-A", "--field-selector", f"metadata.namespace={doomed}",
                         "-o", "name")
        assert listed.stdout.strip() == "", kind


# ---- patch, replace, create ----------------------------------------------------------------


def test_patch_types_on_a_custom_resource(kubectl: Kubectl, namespace: str) -> None:
    apply_text(kubectl, widget_yaml("patched", namespace, 1, tags=["x"]))
    kubectl("patch", "widget", "patched", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"size":2,"owner":"carol"}}')
    kubectl("patch", "widget", "patched", "-n", namespace, "--type=json",
            "-p", '[{"op":"add","path":"/spec/tags/-","value":"y"},'
                  '{"op":"replace","path":"/spec/size","value":3}]')
    spec = get_json(kubectl, "widget", "patched", "-n", namespace)["spec"]
    assert spec == {"size": 3, "owner": "carol", "color": "blue", "tags": ["x", "y"]}
    strategic = kubectl("patch", "widget", "patched", "-n", namespace,
                        "-p", '{"spec":{"size":9}}', check=False)
    assert strategic.returncode != 0
    assert "application/strategic-merge-patch+json is not supported" in strategic.stderr
    assert "unknown format" in strategic.stderr
    assert get_json(kubectl, "widget", "patched", "-n", namespace)["spec"]["size"] == 3
    invalid = kubectl("patch", "widget", "patched", "-n", namespace, "--type=merge",
                      "-p", '{"spec":{"size":1000}}', check=False)
    assert invalid.returncode != 0
    assert "spec.size" in invalid.stderr and "less than or equal to 100" in invalid.stderr


def test_strategic_patch_of_built_in_kinds(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=a=1")
    kubectl("patch", "configmap", "settings", "-n", namespace, "-p", '{"data":{"b":"2"}}')
    assert get_json(kubectl, "cm", "settings", "-n", namespace)["data"] == {"a": "1", "b": "2"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1"},
                                    {"name": "sidecar", "image": "envoy:1"}]}}},
    }
    apply_text(kubectl, yaml.safe_dump(deployment))
    # Strategic merge: containers merge by name, so the sidecar stays.
    kubectl("patch", "deployment", "web", "-n", namespace, "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}')
    containers = get_json(kubectl, "deploy", "web", "-n", namespace)["spec"]["template"][
        "spec"]["containers"]
    assert {c["name"]: c["image"] for c in containers} == {"nginx": "nginx:2",
                                                          "sidecar": "envoy:1"}
    # ... and the $patch: delete directive removes one by its key.
    kubectl("patch", "deployment", "web", "-n", namespace, "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}')
    containers = get_json(kubectl, "deploy", "web", "-n", namespace)["spec"]["template"][
        "spec"]["containers"]
    assert [c["name"] for c in containers] == ["nginx"]


def test_scale_a_deployment_and_a_custom_resource(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "deployment", "web", "-n", namespace, "--image=nginx")
    assert "deployment.apps/web scaled" in kubectl("scale", "deployment", "web", "-n", namespace,
                                                    "--replicas=3").stdout
    assert get_json(kubectl, "deploy", "web", "-n", namespace)["spec"]["replicas"] == 3
    stale = kubectl("scale", "deployment", "web", "-n", namespace, "--current-replicas=1",
                    "--replicas=5", check=False)
    assert stale.returncode != 0 and "Expected replicas to be 1, was 3" in stale.stderr
    # A custom resource scales through the path its CRD names (spec.size for widgets) ...
    apply_text(kubectl, widget_yaml("scaled", namespace, 2))
    assert "widget.example.test/scaled scaled" in kubectl("scale", "widget", "scaled", "-n",
                                                          namespace, "--replicas=7").stdout
    assert get_json(kubectl, "widget", "scaled", "-n", namespace)["spec"]["size"] == 7
    # ... and within its schema.
    too_many = kubectl("scale", "widget", "scaled", "-n", namespace, "--replicas=500",
                       check=False)
    assert too_many.returncode != 0 and "spec.size" in too_many.stderr
    assert get_json(kubectl, "widget", "scaled", "-n", namespace)["spec"]["size"] == 7


def test_replace_with_a_stale_copy_conflicts(kubectl: Kubectl, namespace: str,
                                             tmp_path: Path) -> None:
    apply_text(kubectl, widget_yaml("contested", namespace, 1))
    stale = get_json(kubectl, "widget", "contested", "-n", namespace)
    kubectl("patch", "widget", "contested", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"size":2}}')
    stale["spec"]["size"] = 50
    path = tmp_path / "stale.json"
    path.write_text(json.dumps(stale))
    replaced = kubectl("replace", "-f", str(path), check=False)
    assert replaced.returncode != 0
    assert "Conflict" in replaced.stderr and "the object has been modified" in replaced.stderr
    assert get_json(kubectl, "widget", "contested", "-n", namespace)["spec"]["size"] == 2
    fresh = get_json(kubectl, "widget", "contested", "-n", namespace)
    fresh["spec"]["size"] = 50
    path.write_text(json.dumps(fresh))
    assert "replaced" in kubectl("replace", "-f", str(path)).stdout
    assert get_json(kubectl, "widget", "contested", "-n", namespace)["spec"]["size"] == 50


def test_create_generators_send_protobuf(kubectl: Kubectl, namespace: str) -> None:
    """`create namespace|configmap|secret` post protobuf bodies; the objects come back whole."""
    extra = f"{namespace}-extra"
    assert f"namespace/{extra} created" in kubectl("create", "namespace", extra).stdout
    assert get_json(kubectl, "namespace", extra)["status"]["phase"] == "Active"
    kubectl("create", "configmap", "generated", "-n", namespace, "--from-literal=color=red",
            "--from-literal=size=3")
    configmap = get_json(kubectl, "configmap", "generated", "-n", namespace)
    assert configmap["data"] == {"color": "red", "size": "3"}
    kubectl("create", "secret", "generic", "credentials", "-n", namespace,
            "--from-literal=password=s3cr3t")
    secret = get_json(kubectl, "secret", "credentials", "-n", namespace)
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["password"]) == b"s3cr3t"
    again = kubectl("create", "configmap", "generated", "-n", namespace,
                    "--from-literal=color=blue", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_explain_shows_the_field_descriptions(kubectl: Kubectl, widget_crd: None) -> None:
    kind = kubectl("explain", "widgets").stdout
    assert "KIND:" in kind and "Widget" in kind
    assert "A Widget is a small test object with a size and a colour." in kind
    spec = kubectl("explain", "widget.spec").stdout
    assert "The desired state of the widget." in spec
    assert re.search(r"size\s+<integer> -required-", spec)
    assert "How many units the widget has (1 to 100)." in spec
    assert "The paint of the widget." in spec
    field = kubectl("explain", "wdg.spec.color").stdout
    assert "The paint of the widget." in field


def test_explain_describes_built_in_kinds(kubectl: Kubectl) -> None:
    spec = kubectl("explain", "deployment.spec").stdout
    assert "DeploymentSpec is the specification of the desired behavior" in spec
    assert re.search(r"replicas\s+<integer>", spec), spec
    assert "Number of desired pods." in spec
    limits = kubectl("explain", "pod.spec.containers.resources.limits").stdout
    assert "Limits describes the maximum amount of compute resources allowed." in limits


def test_wrong_types_in_a_built_in_manifest_are_refused(kubectl: Kubectl,
                                                        namespace: str) -> None:
    manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "typed", "namespace": namespace},
                               "data": {"count": 1}})
    refused = apply_text(kubectl, manifest, check=False)
    assert refused.returncode != 0
    assert "cannot unmarshal number into Go struct field ConfigMap.data of type string" in (
        refused.stderr), refused.stderr
