"""Whether held rules cover granted ones, and how a refusal lists what is missing: kube's
policy comparator and ConfirmNoEscalation, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.apiserver.rbac_escalation import (
    FULL_AUTHORITY,
    escalation_error,
    uncovered,
)


def rule(groups: list[str], resources: list[str], verbs: list[str],
         names: list[str] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        found["resourceNames"] = names
    return found


@pytest.mark.parametrize(("held", "granted"), [
    ([rule([""], ["pods"], ["get", "list"])], [rule([""], ["pods"], ["get"])]),
    ([rule(["*"], ["*"], ["*"])], [rule(["apps"], ["deployments/scale"], ["patch"])]),
    ([rule(["apps"], ["*/scale"], ["patch"])], [rule(["apps"], ["deployments/scale"],
                                                     ["patch"])]),
    ([rule([""], ["secrets"], ["get"])], [rule([""], ["secrets"], ["get"], ["a", "b"])]),
    ([rule([""], ["secrets"], ["get"], ["a", "b"])], [rule([""], ["secrets"], ["get"], ["a"])]),
    ([{"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]}],
     [{"nonResourceURLs": ["/healthz/etcd"], "verbs": ["get"]}]),
    (list(FULL_AUTHORITY), [rule(["x.io"], ["y"], ["bind"]),
                            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
], ids=["subset of verbs", "all of everything", "*/subresource", "any name covers names",
        "names covered one by one", "URL prefix", "full authority"])
def test_held_rules_cover(held: list[dict[str, Any]], granted: list[dict[str, Any]]) -> None:
    assert uncovered(held, granted) == []


@pytest.mark.parametrize(("held", "granted"), [
    ([rule([""], ["pods"], ["get"])], [rule([""], ["pods"], ["delete"])]),
    ([rule([""], ["pods"], ["get"])], [rule(["apps"], ["pods"], ["get"])]),
    ([rule([""], ["pods"], ["get"])], [rule([""], ["pods/log"], ["get"])]),
    ([rule([""], ["secrets"], ["get"], ["a"])], [rule([""], ["secrets"], ["get"])]),
    ([rule([""], ["pods"], ["*"])], [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
], ids=["another verb", "another group", "a subresource", "a name does not cover all",
        "resources do not cover URLs"])
def test_held_rules_do_not_cover(held: list[dict[str, Any]],
                                 granted: list[dict[str, Any]]) -> None:
    assert uncovered(held, granted) != []


def test_the_refusal_lists_missing_rules_compacted_and_sorted_as_kube_does() -> None:
    missing = uncovered([rule([""], ["pods"], ["get"])], [
        rule([""], ["secrets", "pods"], ["get", "list"]),
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    assert escalation_error("system:serviceaccount:ns:bot",
                            ["system:serviceaccounts", "system:authenticated"], missing, []) == (
        'user "system:serviceaccount:ns:bot" (groups=["system:serviceaccounts" '
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["list"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}\n'
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}')


def test_resolution_errors_are_appended_as_go_prints_them() -> None:
    message = escalation_error("u", [], [rule([""], ["pods"], ["get"])],
                               ['clusterrole.rbac.authorization.k8s.io "gone" not found'])
    assert message.endswith('; resolution errors: [clusterrole.rbac.authorization.k8s.io '
                            '"gone" not found]')
