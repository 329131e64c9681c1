"""Label and field selectors as kubectl users write them, with kube-apiserver's 400 messages."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.apiserver.errors import ApiError
from devcluster.apiserver.selectors import (
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
    supported_field_labels,
)

LABELS = {"app": "web", "tier": "frontend", "release": "3"}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (db, web)", True),
        ("app notin (db,web)", False),
        ("missing notin (x)", True),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("app=web,tier=frontend", True),
        ("app=web,tier=backend", False),
        ("release>2", True),
        ("release<2", False),
        ("app=", False),
        ("in in (in)", False),  # keywords are plain words where a key or value stands
    ],
)
def test_label_selector_matching(text: str, matches: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is matches


def test_empty_label_selector_is_empty_and_matches_unlabelled_objects() -> None:
    selector = parse_label_selector("")
    assert selector.empty
    assert selector.matches(None)
    assert not parse_label_selector("a").empty


def test_label_selector_exact_value_for_index_lookups() -> None:
    assert parse_label_selector("app=web,tier").requirement_for("app") == "web"
    assert parse_label_selector("app!=web").requirement_for("app") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("app in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a,", "found '', expected: identifier after ','"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("app in x", "unable to parse requirement: found 'x' expected: '('"),
        (
            "a=b_",
            'unable to parse requirement: values[0][a]: Invalid value: "b_": a valid label must '
            "be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
            "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            "-a=b",
            'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
    ],
)
def test_bad_label_selectors_are_400_with_kube_wording(text: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_label_selector(text)
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"
    assert caught.value.message == message


def test_label_selector_from_dict_combines_match_labels_and_expressions() -> None:
    selector = label_selector_from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "release", "operator": "Exists"},
            ],
        }
    )
    assert selector.matches(LABELS)
    assert not selector.matches({**LABELS, "canary": "true"})
    assert not selector.matches({"app": "web", "tier": "backend", "release": "1"})


def test_empty_label_selector_dict_matches_everything() -> None:
    assert label_selector_from_dict({}).empty
    assert label_selector_from_dict({}).matches({"any": "thing"})


def test_label_selector_dict_with_bad_operator_is_400() -> None:
    with pytest.raises(ApiError) as caught:
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Equals"}]})
    assert caught.value.message == '"Equals" is not a valid label selector operator'


POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "prod"},
    "spec": {"nodeName": "host-1", "hostNetwork": False},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name!=web-1", False),
        ("spec.nodeName=host-1,status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.hostNetwork=false", True),
        ("spec.host=host-1", True),  # the old name of spec.nodeName
        ("spec.schedulerName=", True),  # a missing field is the empty string
    ],
)
def test_pod_field_selectors(text: str, matches: bool) -> None:
    selector = parse_field_selector(text, supported_field_labels("", "Pod"))
    assert selector.matches(POD) is matches


def test_field_selector_exact_value_for_name_lookups() -> None:
    supported = supported_field_labels("", "ConfigMap")
    assert (
        parse_field_selector("metadata.name=a", supported).requirement_for("metadata.name") == "a"
    )
    assert (
        parse_field_selector("metadata.name!=a", supported).requirement_for("metadata.name") is None
    )


def test_describe_event_query_matches_the_involved_object() -> None:
    # What `kubectl describe` sends for the events of an object.
    involved = {"kind": "Pod", "name": "web-1", "namespace": "prod", "uid": "u-1"}
    event: dict[str, Any] = {
        "metadata": {"name": "e1", "namespace": "prod"},
        "involvedObject": involved,
        "source": {"component": "kubelet"},
        "type": "Normal",
    }
    selector = parse_field_selector(
        "involvedObject.name=web-1,involvedObject.namespace=prod,involvedObject.kind=Pod,"
        "involvedObject.uid=u-1",
        supported_field_labels("", "Event"),
    )
    assert selector.matches(event)
    assert not selector.matches({**event, "involvedObject": {**involved, "uid": "x"}})
    by_source = parse_field_selector(
        "source=kubelet,type=Normal", supported_field_labels("", "Event")
    )
    assert by_source.matches(event)


def test_events_k8s_io_selects_on_regarding() -> None:
    supported = supported_field_labels("events.k8s.io", "Event")
    event = {"metadata": {"name": "e"}, "regarding": {"name": "vm-1"}, "reportingController": "c"}
    assert parse_field_selector("regarding.name=vm-1,reportingController=c", supported).matches(
        event
    )
    with pytest.raises(ApiError):
        parse_field_selector("involvedObject.name=vm-1", supported)


def test_escaped_commas_and_equals_in_values() -> None:
    supported = supported_field_labels("", "Secret")
    selector = parse_field_selector(r"type=a\,b\=c", supported)
    assert selector.matches({"type": "a,b=c"})


@pytest.mark.parametrize(
    ("group", "kind", "text", "message"),
    [
        ("", "ConfigMap", "spec.nodeName=x", "field label not supported: spec.nodeName"),
        ("", "Node", "metadata.namespace=x", "field label not supported: metadata.namespace"),
        (
            "",
            "Pod",
            "status.phase",
            "invalid selector: 'status.phase'; can't understand 'status.phase'",
        ),
        ("", "Pod", r"status.phase=a\x", r"invalid field selector: invalid escape sequence: \x"),
    ],
)
def test_bad_field_selectors_are_400(group: str, kind: str, text: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_field_selector(text, supported_field_labels(group, kind))
    assert caught.value.code == 400
    assert caught.value.message == message


def test_supported_field_labels_per_kind() -> None:
    assert supported_field_labels("vdcos.io", "VirtualMachine") == {
        "metadata.name",
        "metadata.namespace",
    }
    assert "spec.unschedulable" in supported_field_labels("", "Node")
    assert "status.phase" in supported_field_labels("", "Namespace")
    assert "type" in supported_field_labels("", "Secret")
    assert {"spec.nodeName", "status.podIP"} <= supported_field_labels("", "Pod")


def test_crd_selectable_fields_are_supported_and_matched() -> None:
    supported = supported_field_labels("vdcos.io", "VirtualMachine", {".spec.powerState"})
    selector = parse_field_selector("spec.powerState=PoweredOn", supported)
    assert selector.matches({"spec": {"powerState": "PoweredOn"}})
    assert not selector.matches({"spec": {"powerState": "PoweredOff"}})
