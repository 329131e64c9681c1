"""Bad requests get a 4xx metav1.Status that says what is wrong, change nothing, and leave the
server answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.api import wire
from tests.harness import DevCluster

WIDGETS = "/apis/example.test/v1/namespaces/default/widgets"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def cluster(apiserver: DevCluster) -> DevCluster:
    wire.install_crd(apiserver)
    return apiserver


def store_state(cluster: DevCluster) -> tuple[str, list[str], list[str]]:
    """The global resourceVersion and the names in the two collections the tests write to."""
    widgets = wire.request(cluster, "GET", WIDGETS).body
    configmaps = wire.request(cluster, "GET", CONFIGMAPS).body
    return (configmaps["metadata"]["resourceVersion"],
            [item["metadata"]["name"] for item in widgets["items"]],
            [item["metadata"]["name"] for item in configmaps["items"]])


@pytest.fixture
def unchanged(cluster: DevCluster) -> Iterator[None]:
    """The test's bad requests must not change the store, and the server must still answer."""
    before = store_state(cluster)
    yield
    assert store_state(cluster) == before
    version = wire.request(cluster, "GET", "/version")
    assert version.status == 200 and version.body["major"] == "1"


def assert_status(answer: wire.Answer, code: int, reason: str, *fragments: str) -> dict[str, Any]:
    assert answer.status == code, (answer.status, answer.raw[:500])
    assert answer.headers.get_content_type() == "application/json"
    status: dict[str, Any] = answer.body
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["code"] == code and status["reason"] == reason
    for fragment in fragments:
        assert fragment in status["message"], status["message"]
    return status


# ---- authentication --------------------------------------------------------------------------


def test_no_token_is_401(cluster: DevCluster, unchanged: None) -> None:
    assert_status(wire.request(cluster, "GET", "/api/v1/namespaces", token=None),
                  401, "Unauthorized")
    assert_status(wire.request(cluster, "POST", CONFIGMAPS, {"metadata": {"name": "x"}},
                               token=None), 401, "Unauthorized")


def test_wrong_token_is_401_and_kubectl_says_so(cluster: DevCluster, unchanged: None) -> None:
    assert_status(wire.request(cluster, "GET", "/api", token="not-the-token"),
                  401, "Unauthorized")
    binary = wire.newest_kubectl()
    denied = cluster.kubectl("get", "configmaps", "--token=not-the-token", binary=binary,
                             check=False)
    assert denied.returncode != 0
    assert "You must be logged in to the server" in denied.stderr


# ---- undecodable bodies --------------------------------------------------------------------


def test_malformed_json_is_400(cluster: DevCluster, unchanged: None) -> None:
    answer = wire.request(cluster, "POST", CONFIGMAPS, '{"metadata": {"name": "broken"')
    assert_status(answer, 400, "BadRequest", "json")


def test_malformed_yaml_apply_patch_is_400(cluster: DevCluster, unchanged: None) -> None:
    answer = wire.request(cluster, "PATCH", f"{CONFIGMAPS}/broken?fieldManager=test",
                          "metadata:\n  name: [broken\n",
                          content_type="application/apply-patch+yaml")
    assert_status(answer, 400, "BadRequest", "yaml")


@pytest.mark.parametrize("body", ["[1, 2]", '"a string"', "42", ""],
                         ids=["array", "string", "number", "empty"])
def test_a_body_that_is_not_an_object_is_400(cluster: DevCluster, unchanged: None,
                                             body: str) -> None:
    assert_status(wire.request(cluster, "POST", CONFIGMAPS, body), 400, "BadRequest")


def test_kind_of_another_resource_is_400(cluster: DevCluster, unchanged: None) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "misrouted"}}
    assert_status(wire.request(cluster, "POST", CONFIGMAPS, secret), 400, "BadRequest",
                  "Secret", "ConfigMap")


def test_unknown_patch_media_type_is_415(cluster: DevCluster) -> None:
    created = wire.request(cluster, "POST", WIDGETS, wire.widget("mediatype", "default"))
    assert created.status == 201
    try:
        refused = wire.request(cluster, "PATCH", f"{WIDGETS}/mediatype", "{}",
                               content_type="text/plain")
        assert_status(refused, 415, "UnsupportedMediaType")
        current = wire.request(cluster, "GET", f"{WIDGETS}/mediatype").body
        assert current["metadata"]["resourceVersion"] == created.body["metadata"][
            "resourceVersion"]
    finally:
        wire.request(cluster, "DELETE", f"{WIDGETS}/mediatype")


def test_oversized_body_is_413(cluster: DevCluster, unchanged: None) -> None:
    big = {"metadata": {"name": "huge"}, "data": {"blob": "x" * (3 * 1024 * 1024 + 1)}}
    assert_status(wire.request(cluster, "POST", CONFIGMAPS, big), 413, "RequestEntityTooLarge")


# ---- invalid objects -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Upper", "under_score", "-dash", "dot.", "a" * 254],
                         ids=["upper", "underscore", "leading-dash", "trailing-dot", "too-long"])
def test_names_that_are_not_dns_1123_are_422(cluster: DevCluster, unchanged: None,
                                             name: str) -> None:
    answer = wire.request(cluster, "POST", CONFIGMAPS, {"metadata": {"name": name}})
    status = assert_status(answer, 422, "Invalid", "metadata.name")
    assert status["details"]["causes"][0]["field"] == "metadata.name"


def test_namespace_names_must_be_labels(cluster: DevCluster, unchanged: None) -> None:
    answer = wire.request(cluster, "POST", "/api/v1/namespaces",
                          {"metadata": {"name": "has.dots"}})
    assert_status(answer, 422, "Invalid", "metadata.name", "must not contain dots")


def test_wrong_types_in_a_custom_resource_are_422(cluster: DevCluster, unchanged: None) -> None:
    body = wire.widget("typed", "default")
    body["spec"]["size"] = "big"
    body["spec"]["tags"] = "not-a-list"
    status = assert_status(wire.request(cluster, "POST", WIDGETS, body), 422, "Invalid",
                           "spec.size", "integer", "spec.tags", "array")
    assert {cause["field"] for cause in status["details"]["causes"]} == {"spec.size",
                                                                       "spec.tags"}


def test_schema_violations_are_422_naming_the_field(cluster: DevCluster,
                                                    unchanged: None) -> None:
    missing = {"apiVersion": "example.test/v1", "kind": "Widget",
               "metadata": {"name": "incomplete"}, "spec": {"color": "red"}}
    assert_status(wire.request(cluster, "POST", WIDGETS, missing), 422, "Invalid",
                  "spec.size", "Required value")
    too_big = wire.widget("too-big", "default", 101)
    assert_status(wire.request(cluster, "POST", WIDGETS, too_big), 422, "Invalid",
                  "spec.size", "less than or equal to 100")
    off_palette = wire.widget("off-palette", "default", 1, color="mauve")
    assert_status(wire.request(cluster, "POST", WIDGETS, off_palette), 422, "Invalid",
                  "spec.color", "Unsupported value", '"mauve"')


def test_wrong_types_in_a_built_in_kind_are_rejected(cluster: DevCluster) -> None:
    answer = wire.request(cluster, "POST", CONFIGMAPS,
                          {"metadata": {"name": "numbers"}, "data": {"a": 1}})
    try:
        assert answer.status == 400, answer.body
        assert answer.body["reason"] == "BadRequest"
        assert answer.body["message"] == (
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal '
            "number into Go struct field ConfigMap.data of type string")
    finally:
        wire.request(cluster, "DELETE", f"{CONFIGMAPS}/numbers")


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx",
                                                           "resources": {"limits": {"cpu": 1}},
                                                           "ports": [{"containerPort": 80}]}]}},
                     **spec}}


def test_unknown_fields_of_a_built_in_kind_follow_field_validation(cluster: DevCluster,
                                                                   unchanged: None) -> None:
    typo = deployment("typo", replica=3)
    strict = wire.request(cluster, "POST", f"{DEPLOYMENTS}?fieldValidation=Strict", typo)
    assert_status(strict, 400, "BadRequest",
                  'Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
                  'error: unknown field "spec.replica"')
    warned = wire.request(cluster, "POST", f"{DEPLOYMENTS}?fieldValidation=Warn&dryRun=All", typo)
    assert warned.status == 201, warned.body
    assert warned.warnings() == ['299 - "unknown field \\"spec.replica\\""']
    assert "replica" not in warned.body["spec"]  # dropped, as kube's decoder drops it
    ignored = wire.request(cluster, "POST", f"{DEPLOYMENTS}?fieldValidation=Ignore&dryRun=All",
                           typo)
    assert ignored.status == 201 and ignored.warnings() == []
    assert "replica" not in ignored.body["spec"]


def test_wrong_type_in_a_deployment_names_the_go_field(cluster: DevCluster,
                                                       unchanged: None) -> None:
    answer = wire.request(cluster, "POST", DEPLOYMENTS, deployment("typed", replicas="3"))
    assert_status(answer, 400, "BadRequest",
                  "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
                  "of type int32")


# ---- field validation ----------------------------------------------------------------------


def test_unknown_field_strict_is_400_naming_the_field(cluster: DevCluster,
                                                      unchanged: None) -> None:
    body = wire.widget("strict", "default", 2, bogus=1)
    body["extra"] = {"x": 1}
    answer = wire.request(cluster, "POST", f"{WIDGETS}?fieldValidation=Strict", body)
    assert_status(answer, 400, "BadRequest", "strict decoding error",
                  'unknown field "spec.bogus"', 'unknown field "extra"')


def test_unknown_field_warn_creates_with_a_warning_header(cluster: DevCluster) -> None:
    body = wire.widget("warned", "default", 2, bogus=1)
    answer = wire.request(cluster, "POST", f"{WIDGETS}?fieldValidation=Warn&dryRun=All", body)
    assert answer.status == 201, answer.body
    assert answer.warnings() == ['299 - "unknown field \\"spec.bogus\\""']
    assert "bogus" not in answer.body["spec"]  # pruned, as kube-apiserver prunes
    ignored = wire.request(cluster, "POST", f"{WIDGETS}?fieldValidation=Ignore&dryRun=All",
                           body)
    assert ignored.status == 201 and ignored.warnings() == []
    assert wire.request(cluster, "GET", f"{WIDGETS}/warned").status == 404  # dry run


def test_kubectl_prints_the_unknown_field_warning(cluster: DevCluster, tmp_path: Any) -> None:
    binary = wire.newest_kubectl()
    manifest = tmp_path / "warned.yaml"
    manifest.write_text(yaml.safe_dump(wire.widget("kubectl-warned", "default", 2, bogus=1)))
    warned = cluster.kubectl("create", "--validate=warn", "--dry-run=server", "-f",
                             str(manifest), binary=binary)
    assert 'Warning: unknown field "spec.bogus"' in warned.stderr
    refused = cluster.kubectl("create", "-f", str(manifest), binary=binary, check=False)
    assert refused.returncode != 0 and 'unknown field "spec.bogus"' in refused.stderr


def test_invalid_field_validation_value_is_400(cluster: DevCluster, unchanged: None) -> None:
    answer = wire.request(cluster, "POST", f"{CONFIGMAPS}?fieldValidation=Loud",
                          {"metadata": {"name": "loud"}})
    assert_status(answer, 400, "BadRequest", "fieldValidation")


# ---- preconditions -------------------------------------------------------------------------


def test_failed_json_patch_test_is_422_and_stale_put_is_409(cluster: DevCluster) -> None:
    created = wire.request(cluster, "POST", CONFIGMAPS,
                           {"metadata": {"name": "guarded"}, "data": {"a": "1"}})
    assert created.status == 201
    path = f"{CONFIGMAPS}/guarded"
    try:
        before = store_state(cluster)
        patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
                 {"op": "replace", "path": "/data/a", "value": "2"}]
        failed = wire.request(cluster, "PATCH", path, json.dumps(patch),
                              content_type="application/json-patch+json")
        assert_status(failed, 422, "Invalid")
        stale = {**created.body, "data": {"a": "3"}}
        wire.request(cluster, "PATCH", path, {"data": {"b": "x"}},
                     content_type="application/merge-patch+json")
        assert_status(wire.request(cluster, "PUT", path, stale), 409, "Conflict",
                      "the object has been modified")
        assert store_state(cluster)[1:] == before[1:]
        assert wire.request(cluster, "GET", path).body["data"] == {"a": "1", "b": "x"}
    finally:
        wire.request(cluster, "DELETE", path)


def test_unknown_paths_are_404_status(cluster: DevCluster, unchanged: None) -> None:
    assert_status(wire.request(cluster, "GET", "/apis/nosuch.example/v1/things"),
                  404, "NotFound")
    assert_status(wire.request(cluster, "GET", f"{CONFIGMAPS}/absent"), 404, "NotFound",
                  'configmaps "absent" not found')
