"""ObjectMeta validation: the causes a user sees in kube-apiserver's 422 answers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devcluster.apiserver.errors import ApiError, Cause, invalid
from devcluster.apiserver.object_meta import (
    GENERATED_SUFFIX_ALPHABET,
    ensure_namespace_matches,
    finalizer_warnings,
    generate_name,
    name_rule_for,
    validate_name,
    validate_object_meta,
)

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def configmap(**metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


def create_causes(obj: dict[str, Any], *, namespaced: bool = True) -> list[Cause]:
    return validate_object_meta(
        obj, namespaced=namespaced, name_rule="dns1123-subdomain", is_create=True
    )


def test_valid_metadata_has_no_causes() -> None:
    obj = configmap(
        name="web.config",
        namespace="prod",
        labels={"app.kubernetes.io/name": "web", "tier": ""},
        annotations={"Example.COM/Note": "anything at all"},
        finalizers=["vdcos.io/cleanup"],
        ownerReferences=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "1"}],
    )
    assert create_causes(obj) == []


def test_subdomain_name_message_is_kubes() -> None:
    assert validate_name("Web", rule="dns1123-subdomain") == [SUBDOMAIN_MESSAGE]
    assert validate_name("a" * 254, rule="dns1123-subdomain") == [
        "must be no more than 253 characters"
    ]


def test_invalid_name_cause_and_the_full_422_message() -> None:
    causes = create_causes(configmap(name="Web_1", namespace="prod"))
    assert causes == [
        Cause("metadata.name", f'Invalid value: "Web_1": {SUBDOMAIN_MESSAGE}', "FieldValueInvalid")
    ]
    error: ApiError = invalid("ConfigMap", "", "Web_1", causes)
    assert error.message == (
        f'ConfigMap "Web_1" is invalid: metadata.name: Invalid value: "Web_1": {SUBDOMAIN_MESSAGE}'
    )


@pytest.mark.parametrize(
    ("rule", "name", "expected"),
    [
        ("dns1123-label", "a.b", ["must not contain dots"]),
        ("dns1123-label", "my-ns", []),
        ("dns1035-label", "1abc", ["a DNS-1035 label must consist of lower case"]),
        ("path-segment", "a/b", ["may not contain '/'"]),
        ("path-segment", "..", ["may not be '..'"]),
        ("path-segment", "system:admin", []),
    ],
)
def test_name_rules(rule: Any, name: str, expected: list[str]) -> None:
    errors = validate_name(name, rule=rule)
    assert len(errors) == len(expected)
    for error, start in zip(errors, expected, strict=True):
        assert error.startswith(start)


def test_name_rule_per_kind() -> None:
    assert name_rule_for("", "Namespace") == "dns1123-label"
    assert name_rule_for("", "Service") == "dns1035-label"
    assert name_rule_for("rbac.authorization.k8s.io", "ClusterRole") == "path-segment"
    assert name_rule_for("", "ConfigMap") == "dns1123-subdomain"
    assert name_rule_for("vdcos.io", "VirtualMachine") == "dns1123-subdomain"


def test_name_or_generate_name_is_required() -> None:
    assert create_causes(configmap(namespace="prod")) == [
        Cause(
            "metadata.name",
            "Required value: name or generateName is required",
            "FieldValueRequired",
        )
    ]
    assert create_causes(configmap(generateName="web-", namespace="prod")) == []


def test_generate_name_prefix_may_end_with_a_dash_but_not_hold_capitals() -> None:
    causes = create_causes(configmap(generateName="Web-", namespace="prod"))
    assert [cause.field for cause in causes] == ["metadata.generateName"]


def test_namespace_required_for_namespaced_and_forbidden_otherwise() -> None:
    assert create_causes(configmap(name="a")) == [
        Cause("metadata.namespace", "Required value", "FieldValueRequired")
    ]
    assert create_causes(configmap(name="a", namespace="x"), namespaced=False) == [
        Cause("metadata.namespace", "Forbidden: not allowed on this type", "FieldValueForbidden")
    ]


def test_bad_label_key_and_value() -> None:
    causes = create_causes(
        configmap(name="a", namespace="p", labels={"bad key": "ok", "k": "x" * 64})
    )
    messages = [cause.message for cause in causes]
    assert all(cause.field == "metadata.labels" for cause in causes)
    assert messages[0].startswith('Invalid value: "bad key": name part must consist of')
    assert messages[1] == 'Invalid value: "' + "x" * 64 + '": must be no more than 63 bytes'


def test_label_key_prefix_must_be_a_subdomain() -> None:
    causes = create_causes(configmap(name="a", namespace="p", labels={"Example.com/a": "b"}))
    assert causes[0].message.startswith(
        'Invalid value: "Example.com/a": prefix part a lowercase RFC 1123 subdomain'
    )


def test_annotations_total_size_limit() -> None:
    big = {"a": "x" * (256 * 1024)}
    assert create_causes(configmap(name="a", namespace="p", annotations=big)) == [
        Cause(
            "metadata.annotations",
            "Too long: may not be more than 262144 bytes",
            "FieldValueTooLong",
        )
    ]


def test_owner_references_need_their_fields_and_one_controller() -> None:
    first = {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "1", "controller": True}
    second = {"apiVersion": "v1", "kind": "Secret", "name": "b", "uid": "2", "controller": True}
    causes = create_causes(
        configmap(name="x", namespace="p", ownerReferences=[first, second, {"kind": "K"}])
    )
    fields = [cause.field for cause in causes]
    assert fields == [
        "metadata.ownerReferences",
        "metadata.ownerReferences[2].apiVersion",
        "metadata.ownerReferences[2].name",
        "metadata.ownerReferences[2].uid",
    ]
    assert causes[0].message.endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "ConfigMap/a and Secret/b"
    )
    assert causes[1].message == "Required value: must not be empty"


def test_finalizers_must_be_qualified_names_and_not_both_deletion_modes() -> None:
    causes = create_causes(
        configmap(name="x", namespace="p", finalizers=["orphan", "foregroundDeletion", "a b"])
    )
    assert [cause.field for cause in causes] == ["metadata.finalizers", "metadata.finalizers"]
    assert causes[1].message.endswith("finalizer orphan and foregroundDeletion cannot be both set")


def test_finalizer_warning_for_names_without_a_path() -> None:
    obj = configmap(finalizers=["vdcos.io", "vdcos.io/cleanup", "kubernetes"])
    assert finalizer_warnings(obj) == [
        'metadata.finalizers: "vdcos.io": prefer a domain-qualified finalizer name including a '
        "path (/) to avoid accidental conflicts with other finalizer writers"
    ]


def test_update_checks_resource_version_and_immutable_fields() -> None:
    old = configmap(name="a", namespace="p", uid="u1", resourceVersion="5")
    new = configmap(name="a", namespace="p", uid="u2")
    causes = validate_object_meta(
        new, namespaced=True, name_rule="dns1123-subdomain", is_create=False, old=old
    )
    assert [(cause.field, cause.message) for cause in causes] == [
        ("metadata.resourceVersion", 'Invalid value: "": must be specified for an update'),
        ("metadata.uid", 'Invalid value: "u2": field is immutable'),
    ]


def test_no_new_finalizers_while_deleting() -> None:
    old = configmap(name="a", resourceVersion="5", deletionTimestamp="2024-01-01T00:00:00Z")
    new = configmap(
        name="a", resourceVersion="5", deletionTimestamp="2024-01-01T00:00:00Z", finalizers=["x/y"]
    )
    causes = validate_object_meta(
        new, namespaced=False, name_rule="dns1123-subdomain", is_create=False, old=old
    )
    assert causes == [
        Cause(
            "metadata.finalizers",
            "Forbidden: no new finalizers can be added if the object is being deleted, "
            'found new finalizers []string{"x/y"}',
            "FieldValueForbidden",
        )
    ]


def test_generate_name_appends_five_characters_of_kubes_alphabet() -> None:
    name = generate_name("web-")
    assert re.fullmatch(f"web-[{GENERATED_SUFFIX_ALPHABET}]{{5}}", name)
    assert len(generate_name("x" * 80)) == 63
    assert generate_name("x" * 80).startswith("x" * 58)


def test_ensure_namespace_matches_request() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "a"}}
    ensure_namespace_matches(obj, "prod", namespaced=True)
    assert obj["metadata"]["namespace"] == "prod"
    cluster_scoped: dict[str, Any] = {"metadata": {"name": "n", "namespace": "prod"}}
    ensure_namespace_matches(cluster_scoped, "", namespaced=False)
    assert "namespace" not in cluster_scoped["metadata"]
    with pytest.raises(ApiError) as caught:
        ensure_namespace_matches({"metadata": {"namespace": "dev"}}, "prod", namespaced=True)
    assert caught.value.code == 400
    assert caught.value.message == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )
