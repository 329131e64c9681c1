"""x-kubernetes-validations (CEL) rules, worded as kube-apiserver words their failures."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from devcluster.apiserver.cel_rules import compile_rule, evaluate, has_rules, validate_rules
from tests import upstream

NNCP_CRD = upstream.path("schemas/nmstate/nodenetworkconfigurationpolicies.yaml")


def _object_with_rules(*rules: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": {
        "type": "object", "x-kubernetes-validations": list(rules),
        "properties": properties or {"replicas": {"type": "integer"},
                                     "name": {"type": "string"}}}}}


@pytest.mark.skipif(not NNCP_CRD.exists(),
                    reason=f"upstream nmstate CRD not found: {upstream.HINT}")
def test_nmstate_node_selector_keys_must_be_qualified_names() -> None:
    crd = yaml.safe_load(NNCP_CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert has_rules(schema)
    bad = {"spec": {"nodeSelector": {"not a qualified name!": "x"}}}
    (cause,) = validate_rules(bad, schema)
    assert cause.field == "spec.nodeSelector"
    assert cause.message == (
        'Invalid value: "object": nodeSelector keys must be valid qualified names')
    good = {"spec": {"nodeSelector": {"kubernetes.io/hostname": "a", "role": "worker"}}}
    assert validate_rules(good, schema) == []


def test_failing_rule_without_message_says_which_rule() -> None:
    schema = _object_with_rules({"rule": "self.replicas <= 5"})
    (cause,) = validate_rules({"spec": {"replicas": 7}}, schema)
    assert (cause.field, cause.message) == (
        "spec", 'Invalid value: "object": failed rule: self.replicas <= 5')
    assert validate_rules({"spec": {"replicas": 3}}, schema) == []


def test_message_expression_field_path_and_reason() -> None:
    schema = _object_with_rules({
        "rule": "self.name.startsWith('vdc-')",
        "messageExpression": "'name ' + self.name + ' must start with vdc-'",
        "fieldPath": ".name", "reason": "FieldValueForbidden"})
    (cause,) = validate_rules({"spec": {"name": "web"}}, schema)
    assert (cause.field, cause.message, cause.reason) == (
        "spec.name", "Forbidden: name web must start with vdc-", "FieldValueForbidden")


def test_transition_rules_need_the_old_object() -> None:
    schema = _object_with_rules({"rule": "self.name == oldSelf.name",
                                 "message": "name is immutable"})
    new = {"spec": {"name": "b", "replicas": 1}}
    assert validate_rules(new, schema) == []  # a create: no oldSelf, rule not evaluated
    (cause,) = validate_rules(new, schema, old={"spec": {"name": "a"}})
    assert cause.message == 'Invalid value: "object": name is immutable'
    assert validate_rules(new, schema, old={"spec": {"name": "b"}}) == []


def test_rules_under_maps_and_lists_name_the_element() -> None:
    schema = {"type": "object", "properties": {"ports": {"type": "array", "items": {
        "type": "integer", "x-kubernetes-validations": [
            {"rule": "self > 0 && self < 65536", "message": "must be a port"}]}}}}
    (cause,) = validate_rules({"ports": [80, 70000]}, schema)
    assert (cause.field, cause.message) == ("ports[1]", 'Invalid value: "integer": must be a port')


@pytest.mark.parametrize(("rule", "value"), [
    ("self.all(k, !format.dns1123Label().validate(k).hasValue())", {"web-1": 1}),
    ("format.named('qualifiedName').value().validate(self.k).hasValue() == false",
     {"k": "example.com/name"}),
    ("format.dns1123Subdomain().validate(self.k).value()[0].contains('RFC 1123')",
     {"k": "Not_Valid"}),
    ("self.s.lowerAscii() == 'abc' && self.s.upperAscii() == 'ABC'", {"s": "aBc"}),
    ("self.s.split(',').size() == 3 && ['a', 'b'].join('-') == 'a-b'", {"s": "x,y,z"}),
    ("self.s.trim().replace('-', '_') == 'a_b' && self.s.indexOf('-') == 2", {"s": " a-b "}),
    ("self.l.isSorted() && self.l.sum() == 6", {"l": [1, 2, 3]}),
    ("self.s.matches('^[a-z]+$') && self.s.substring(1) == 'bc'", {"s": "abc"}),
    ("isQuantity(self.q) && !isQuantity('lots')", {"q": "512Mi"}),
    ("has(self.a) && !has(self.b)", {"a": 1}),
])
def test_kubernetes_library_functions(rule: str, value: Any) -> None:
    assert compile_rule(rule) is not None
    assert bool(evaluate(rule, value)) is True


def test_rules_celpy_cannot_compile_are_skipped() -> None:
    schema = _object_with_rules({"rule": "self.?name.orValue('') == 'x'"})
    assert compile_rule("self.?name.orValue('') == 'x'") is None
    assert validate_rules({"spec": {"name": "y"}}, schema) == []
