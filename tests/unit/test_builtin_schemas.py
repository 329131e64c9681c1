"""Schemas of built-in kinds from the official client's models, and Go-like decoding of them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devcluster.apiserver.builtin_schemas import decode, root_model, schema_for
from devcluster.apiserver.schema import prune, validate


def _deployment(**spec: Any) -> dict[str, Any]:
    container = {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                 "resources": {"limits": {"cpu": 1, "memory": "1Gi"},
                               "requests": {"cpu": "250m"}},
                 "readinessProbe": {"httpGet": {"port": "http", "path": "/"}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [container]}},
                     **spec}}


def _error(obj: dict[str, Any], group: str, kind: str) -> str:
    decoded = decode(obj, group, "v1", kind)
    assert decoded is not None
    return decoded.error


def test_the_kinds_map_to_the_client_models() -> None:
    assert root_model("", "v1", "ConfigMap") == "V1ConfigMap"
    assert root_model("apps", "v1", "Deployment") == "V1Deployment"
    assert root_model("", "v1", "Event") == "CoreV1Event"
    assert root_model("events.k8s.io", "v1", "Event") == "EventsV1Event"
    assert root_model("example.test", "v1", "Widget") is None


def test_a_well_formed_deployment_decodes_unchanged() -> None:
    deployment = _deployment()
    decoded = decode(deployment, "apps", "v1", "Deployment")
    assert decoded is not None
    assert (decoded.error, decoded.unknown) == ("", [])
    assert decoded.obj == deployment


@pytest.mark.parametrize(("obj", "group", "kind", "message"), [
    ({"data": {"a": 1}}, "", "ConfigMap",
     "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"),
    (_deployment(replicas="3"), "apps", "Deployment",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type "
     "int32"),
    (_deployment(replicas=2**31), "apps", "Deployment",
     "json: cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas"
     " of type int32"),
    (_deployment(paused="yes"), "apps", "Deployment",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool"),
    (_deployment(template="x"), "apps", "Deployment",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.template of type "
     "v1.PodTemplateSpec"),
    ({"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": True}]}]}}, "", "Pod",
     "json: cannot unmarshal bool into Go struct field EnvVar.spec.containers.env.value of type "
     "string"),
    ({"spec": {"containers": "c"}}, "", "Pod",
     "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type "
     "[]v1.Container"),
    ({"spec": {"ports": [{"port": 80, "targetPort": 1.5}]}}, "", "Service",
     "json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.targetPort "
     "of type int32"),
    ({"metadata": {"creationTimestamp": "yesterday"}}, "", "ConfigMap",
     'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as '
     '"2006"'),
    ({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}]}}, "",
     "Pod", "quantities must match the regular expression "
     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ({"data": {"key": "not base64!"}}, "", "Secret", "illegal base64 data at input byte 3"),
])
def test_wrong_types_fail_with_go_decoding_errors(
    obj: dict[str, Any], group: str, kind: str, message: str
) -> None:
    assert _error(obj, group, kind) == message


def test_quantities_and_int_or_strings_take_numbers_and_strings() -> None:
    pod = {"spec": {"containers": [{"name": "c", "resources": {
        "limits": {"cpu": 2, "memory": "512Mi"}, "requests": {"cpu": 0.5, "memory": "1e3"}},
        "livenessProbe": {"tcpSocket": {"port": 8080}}}]}}
    assert _error(pod, "", "Pod") == ""
    service = {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}
    assert _error(service, "", "Service") == ""


def test_unknown_fields_are_dropped_and_listed_with_list_indexes() -> None:
    deployment = _deployment(replica=3)
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyx"] = "Always"
    deployment["metadata"]["colour"] = "red"
    decoded = decode(deployment, "apps", "v1", "Deployment")
    assert decoded is not None and decoded.error == ""
    # In the order the decoder meets them (spec.replica comes last in this body).
    assert decoded.unknown == ["metadata.colour",
                               "spec.template.spec.containers[0].imagePullPolicyx",
                               "spec.replica"]
    assert "replica" not in decoded.obj["spec"] and "colour" not in decoded.obj["metadata"]
    assert "imagePullPolicyx" not in decoded.obj["spec"]["template"]["spec"]["containers"][0]


def test_nulls_are_left_out_like_go_zero_values() -> None:
    decoded = decode({"metadata": {"name": "a", "creationTimestamp": None}, "data": None},
                     "", "v1", "ConfigMap")
    assert decoded is not None and decoded.obj == {"metadata": {"name": "a"}}


def test_raw_json_fields_keep_anything() -> None:
    crd_version = {"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": {"type": "object", "default": {"a": [1]},
                                                  "x-kubernetes-preserve-unknown-fields": True}}
    }}}]}}
    decoded = decode(crd_version, "apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert decoded is not None and (decoded.error, decoded.unknown) == ("", [])
    assert decoded.obj == crd_version


def test_schema_is_structural_and_typed() -> None:
    schema = schema_for("apps", "v1", "Deployment")
    assert schema is not None
    spec = schema["properties"]["spec"]
    assert spec["properties"]["replicas"]["type"] == "integer"
    assert spec["properties"]["replicas"]["description"].startswith("Number of desired pods.")
    containers = spec["properties"]["template"]["properties"]["spec"]["properties"]["containers"]
    assert containers["type"] == "array"
    container = containers["items"]["properties"]
    assert container["resources"]["properties"]["limits"]["additionalProperties"][
        "x-kubernetes-int-or-string"] is True
    max_surge = spec["properties"]["strategy"]["properties"]["rollingUpdate"]["properties"][
        "maxSurge"]
    assert max_surge["x-kubernetes-int-or-string"] is True
    assert schema_for("apps", "v1", "Deployment") is schema  # cached


def test_schema_py_validates_and_prunes_with_a_built_in_schema() -> None:
    schema = schema_for("", "v1", "ConfigMap")
    assert schema is not None
    causes = validate({"data": {"a": 1}}, schema)
    assert [cause.field for cause in causes] == ["data.a"]
    deployment_schema = schema_for("apps", "v1", "Deployment")
    assert deployment_schema is not None
    deployment = _deployment(replica=3)
    assert validate(copy.deepcopy(deployment), deployment_schema) == []
    pruned, unknown = prune(deployment, deployment_schema)
    assert unknown == ["spec.replica"] and "replica" not in pruned["spec"]


def test_recursive_models_are_cut_in_the_schema() -> None:
    schema = schema_for("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert schema is not None
    props = (schema["properties"]["spec"]["properties"]["versions"]["items"]["properties"]
             ["schema"]["properties"]["openAPIV3Schema"]["properties"])
    assert props["type"]["type"] == "string"
    assert props["properties"]["additionalProperties"][
        "x-kubernetes-preserve-unknown-fields"] is True
