"""The operator's ClusterRole grants what its controllers declare, and no wildcard."""

from __future__ import annotations

from pathlib import Path

import yaml

from controllers.operator import CONTROLLERS, declared_caches
from kubekit.resources import ResourceRef

RBAC = Path(__file__).resolve().parent.parent.parent / "manifests" / "rbac.yaml"


def granted() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) the vdcos-operator ClusterRole grants."""
    role = next(document for document in yaml.safe_load_all(RBAC.read_text())
                if document["kind"] == "ClusterRole")
    return {(group, resource, verb)
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]}


def test_every_watched_or_cached_resource_may_be_listed_and_watched() -> None:
    resources: set[ResourceRef] = {spec.resource for spec in declared_caches(CONTROLLERS).values()}
    resources |= {watch.resource for controller in CONTROLLERS for watch in controller.watches()}
    rules = granted()
    missing = sorted(f"{resource.group or 'core'}/{resource.plural} {verb}"
                     for resource in resources for verb in ("list", "watch")
                     if (resource.group, resource.plural, verb) not in rules)
    assert missing == []


def test_every_served_kind_may_have_its_status_patched() -> None:
    rules = granted()
    for controller in CONTROLLERS:
        if controller.kind is not None:
            resource = controller.kind.resource
            assert (resource.group, f"{resource.plural}/status", "patch") in rules


def test_no_wildcards() -> None:
    assert not [rule for rule in granted() if "*" in rule]
