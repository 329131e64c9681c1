"""CRD structural schemas: kube-worded validation, pruning, defaulting, CRD checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devcluster.apiserver.errors import Cause
from devcluster.apiserver.schema import apply_defaults, check_crd, go_float, prune, validate

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1.5},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "short": {"type": "string", "minLength": 3},
                "power": {"type": "string", "enum": ["PoweredOn", "PoweredOff"]},
                "level": {"type": "integer", "enum": [1, 2]},
                "hosts": {
                    "type": "array",
                    "maxItems": 2,
                    "minItems": 1,
                    "items": {"type": "string"},
                },
                "labels": {
                    "type": "object",
                    "maxProperties": 2,
                    "additionalProperties": {"type": "string", "maxLength": 3},
                },
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "id": {"type": "string", "format": "uuid"},
                "when": {"type": "string", "format": "date-time"},
                "anything": {"type": "string", "format": "made-up"},
                "count": {"type": "integer", "format": "int32"},
                "tags": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "disks": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "choice": {"type": "integer", "anyOf": [{"minimum": 5}, {"maximum": 1}]},
            },
        }
    },
}


def check(spec: dict[str, Any]) -> list[Cause]:
    body = {"apiVersion": "vdcos.io/v1alpha1", "kind": "Thing", "metadata": {"name": "x"}}
    return validate({**body, "spec": {"name": "abc", **spec}}, SPEC_SCHEMA)


def one(spec: dict[str, Any]) -> tuple[str, str, str]:
    causes = check(spec)
    assert len(causes) == 1, causes
    return causes[0].field, causes[0].message, causes[0].reason


def test_valid_object_has_no_causes() -> None:
    assert check({"size": 3, "power": "PoweredOn", "port": "http", "note": None}) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"size": 0},
            (
                "spec.size",
                "Invalid value: 0: spec.size in body should be greater than or equal to 1",
                "FieldValueInvalid",
            ),
        ),
        (
            {"size": 11},
            (
                "spec.size",
                "Invalid value: 11: spec.size in body should be less than or equal to 10",
                "FieldValueInvalid",
            ),
        ),
        (
            {"ratio": 1.5},
            (
                "spec.ratio",
                "Invalid value: 1.5: spec.ratio in body should be less than 1.5",
                "FieldValueInvalid",
            ),
        ),
        (
            {"size": "string"},
            (
                "spec.size",
                'Invalid value: "string": spec.size in body must be of type integer: "string"',
                "FieldValueTypeInvalid",
            ),
        ),
        (
            {"name": "ABC"},
            (
                "spec.name",
                "Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'",
                "FieldValueInvalid",
            ),
        ),
        (
            {"name": "abcdefg"},
            ("spec.name", "Too long: may not be more than 5 bytes", "FieldValueTooLong"),
        ),
        (
            {"short": "ab"},
            (
                "spec.short",
                'Invalid value: "ab": spec.short in body should be at least 3 chars long',
                "FieldValueInvalid",
            ),
        ),
        (
            {"power": "Off"},
            (
                "spec.power",
                'Unsupported value: "Off": supported values: "PoweredOn", "PoweredOff"',
                "FieldValueNotSupported",
            ),
        ),
        (
            {"level": 3},
            (
                "spec.level",
                'Unsupported value: 3: supported values: "1", "2"',
                "FieldValueNotSupported",
            ),
        ),
        (
            {"hosts": ["a", "b", "c"]},
            ("spec.hosts", "Too many: 3: must have at most 2 items", "FieldValueTooMany"),
        ),
        (
            {"hosts": []},
            (
                "spec.hosts",
                "Invalid value: 0: spec.hosts in body should have at least 1 items",
                "FieldValueInvalid",
            ),
        ),
        (
            {"labels": {"a": "1", "b": "2", "c": "3"}},
            ("spec.labels", "Too many: 3: must have at most 2 items", "FieldValueTooMany"),
        ),
        (
            {"labels": {"a": "long"}},
            ("spec.labels.a", "Too long: may not be more than 3 bytes", "FieldValueTooLong"),
        ),
        (
            {"port": True},
            (
                "spec.port",
                'Invalid value: "boolean": '
                'spec.port in body must be of type integer,string: "boolean"',
                "FieldValueTypeInvalid",
            ),
        ),
        (
            {"short": None},
            (
                "spec.short",
                'Invalid value: "null": spec.short in body must be of type string: "null"',
                "FieldValueTypeInvalid",
            ),
        ),
        (
            {"id": "nope"},
            (
                "spec.id",
                'Invalid value: "nope": spec.id in body must be of type uuid: "nope"',
                "FieldValueTypeInvalid",
            ),
        ),
        (
            {"when": "yesterday"},
            (
                "spec.when",
                'Invalid value: "yesterday": '
                'spec.when in body must be of type date-time: "yesterday"',
                "FieldValueTypeInvalid",
            ),
        ),
        (
            {"count": 2**31},
            (
                "",
                'Invalid value: "": '
                "Checked value must be of type integer with format int32 in spec.count",
                "FieldValueInvalid",
            ),
        ),
        (
            {"tags": ["a", "b", "a"]},
            ("spec.tags[2]", 'Duplicate value: "a"', "FieldValueDuplicate"),
        ),
        (
            {"disks": [{"name": "d"}, {"name": "d"}]},
            ("spec.disks[1]", 'Duplicate value: {"name":"d"}', "FieldValueDuplicate"),
        ),
        (
            {"template": {"kind": "Pod"}},
            ("spec.template.apiVersion", "Required value", "FieldValueRequired"),
        ),
    ],
)
def test_kube_wording(spec: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert one(spec) == expected


def test_required_field_is_reported_with_its_path() -> None:
    causes = validate({"spec": {}}, SPEC_SCHEMA)
    assert causes == [Cause("spec.name", "Required value", "FieldValueRequired")]


def test_unsupported_formats_are_ignored_and_valid_formats_pass() -> None:
    spec = {
        "anything": "whatever",
        "id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "when": "2024-01-02T03:04:05Z",
    }
    assert check(spec) == []


def test_any_of_failure_names_the_path_and_the_closest_alternative() -> None:
    causes = check({"choice": 3})
    assert causes[0] == Cause(
        "", 'Invalid value: "": "spec.choice" must validate at least one schema (anyOf)'
    )
    assert causes[1].field == "spec.choice"
    assert causes[1].message.startswith("Invalid value: 3: spec.choice in body should be")


def test_metadata_at_the_root_is_not_checked_by_the_schema() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object"}}}
    assert validate({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": 5}}, schema) == []


def test_floats_print_like_go() -> None:
    assert [go_float(v) for v in (1.0, 2.5, 1e6, 123456.0, 1e-5)] == [
        "1",
        "2.5",
        "1e+06",
        "123456",
        "1e-05",
    ]


PRUNE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "known": {"type": "string"},
                "free": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "strict": {"type": "object", "properties": {"a": {"type": "string"}}}
                    },
                },
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"n": {"type": "integer"}}},
                },
                "vm": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {
                        "spec": {"type": "object", "properties": {"x": {"type": "string"}}}
                    },
                },
                "maybe": {"type": "string"},
                "nullable": {"type": "string", "nullable": True},
            },
        }
    },
}


def test_prune_drops_unknown_fields_and_reports_kube_paths() -> None:
    obj = {
        "apiVersion": "vdcos.io/v1alpha1",
        "kind": "Thing",
        "metadata": {"name": "a"},
        "extra": 1,
        "spec": {
            "known": "k",
            "foo": 1,
            "free": {"anything": {"deep": 1}, "strict": {"a": "x", "b": "y"}},
            "items": [{"n": 1, "m": 2}],
            "vm": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"x": "1", "y": 2},
            },
            "maybe": None,
            "nullable": None,
        },
    }
    original = copy.deepcopy(obj)
    pruned, unknown = prune(obj, PRUNE_SCHEMA)
    assert obj == original
    assert unknown == [
        "extra",
        "spec.foo",
        "spec.free.strict.b",
        "spec.items[0].m",
        "spec.vm.spec.y",
    ]
    assert pruned["metadata"] == {"name": "a"}
    assert pruned["spec"]["free"] == {"anything": {"deep": 1}, "strict": {"a": "x"}}
    assert pruned["spec"]["items"] == [{"n": 1}]
    assert pruned["spec"]["vm"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"x": "1"},
    }
    assert "maybe" not in pruned["spec"]
    assert pruned["spec"]["nullable"] is None


DEFAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "default": {},
            "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "Auto"},
                "policy": {
                    "type": "object",
                    "default": {"level": 3, "junk": True},
                    "properties": {"level": {"type": "integer"}},
                },
                "nics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"mtu": {"type": "integer", "default": 1500}},
                    },
                },
                "disks": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"bus": {"type": "string", "default": "virtio"}},
                    },
                },
            },
        }
    },
}


def test_defaults_fill_absent_fields_everywhere_and_are_pruned() -> None:
    obj = {"spec": {"mode": "Manual", "nics": [{}, {"mtu": 9000}], "disks": {"root": {}}}}
    result = apply_defaults(obj, DEFAULT_SCHEMA)
    assert obj == {"spec": {"mode": "Manual", "nics": [{}, {"mtu": 9000}], "disks": {"root": {}}}}
    assert result["spec"]["replicas"] == 1
    assert result["spec"]["mode"] == "Manual"
    assert result["spec"]["policy"] == {"level": 3}
    assert result["spec"]["nics"] == [{"mtu": 1500}, {"mtu": 9000}]
    assert result["spec"]["disks"] == {"root": {"bus": "virtio"}}


def test_missing_spec_is_defaulted_then_its_fields() -> None:
    assert apply_defaults({}, DEFAULT_SCHEMA)["spec"] == {
        "replicas": 1,
        "mode": "Auto",
        "policy": {"level": 3},
    }


def test_null_in_a_defaulted_field_gets_the_default() -> None:
    assert apply_defaults({"spec": {"replicas": None}}, DEFAULT_SCHEMA)["spec"]["replicas"] == 1


def crd(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.vdcos.io"},
        "spec": {
            "group": "vdcos.io",
            "scope": "Namespaced",
            "names": {
                "plural": "things",
                "singular": "thing",
                "kind": "Thing",
                "listKind": "ThingList",
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object"}},
                        }
                    },
                }
            ],
        },
    }
    body["spec"].update(overrides)
    return body


def test_a_good_crd_passes() -> None:
    assert check_crd(crd()) == []


def test_crd_name_must_be_plural_dot_group() -> None:
    body = crd()
    body["metadata"]["name"] = "things.example.com"
    assert check_crd(body) == [
        Cause(
            "metadata.name",
            'Invalid value: "things.example.com": must be spec.names.plural+"."+spec.group',
        )
    ]


def test_crd_schema_must_be_structural() -> None:
    body = crd()
    body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
        "properties": {}
    }
    assert check_crd(body) == [
        Cause(
            "spec.validation.openAPIV3Schema.properties[spec].type",
            "Required value: must not be empty for specified object fields",
            "FieldValueRequired",
        )
    ]


def test_crd_with_different_version_schemas_reports_per_version() -> None:
    good = {"openAPIV3Schema": {"type": "object"}}
    bad = {"openAPIV3Schema": {"type": "object", "properties": {"spec": {}}}}
    versions = [
        {"name": "v1", "served": True, "storage": True, "schema": good},
        {"name": "v2", "served": True, "storage": False, "schema": bad},
    ]
    fields = [c.field for c in check_crd(crd(versions=versions))]
    assert fields == ["spec.versions[1].schema.openAPIV3Schema.properties[spec].type"]


def test_crd_needs_exactly_one_storage_version_and_good_names() -> None:
    versions = [
        {
            "name": "v1",
            "served": True,
            "storage": False,
            "schema": {"openAPIV3Schema": {"type": "object"}},
        }
    ]
    names = {"plural": "Things", "singular": "thing", "kind": "Thing", "listKind": "Thing"}
    causes = check_crd(crd(versions=versions, names=names, group="vdcos"))
    by_field = {c.field: c.message for c in causes}
    assert by_field["spec.versions"].endswith(
        "must have exactly one version marked as storage version"
    )
    assert (
        by_field["spec.group"] == 'Invalid value: "vdcos": should be a domain with at least one dot'
    )
    assert by_field["spec.names.plural"].startswith(
        'Invalid value: "Things": a DNS-1035 label must consist'
    )
    assert "(e.g. 'my-name',  or 'abc-123'" in by_field["spec.names.plural"]
    assert (
        by_field["spec.names.listKind"]
        == 'Invalid value: "Thing": kind and listKind may not be the same'
    )
