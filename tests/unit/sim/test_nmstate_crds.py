"""The emulated nmstate CRDs are kubernetes-nmstate's own (upstream's CRD files are the
oracle): same names, scope, versions, printer columns, subresources and schemas."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from devcluster.sim.nmstate_crds import nmstate_crds
from tests import upstream

NMSTATE_SCHEMAS = upstream.path("schemas/nmstate")


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items()
                if k != "description" or not isinstance(v, str)}
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    return node


def upstream_crd(plural: str) -> dict[str, Any]:
    path = upstream.require(NMSTATE_SCHEMAS / f"{plural}.yaml")
    crd: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return crd


@pytest.mark.parametrize("ours", nmstate_crds(), ids=lambda c: c["metadata"]["name"])
def test_crd_matches_upstream(ours: dict[str, Any]) -> None:
    theirs = upstream_crd(ours["spec"]["names"]["plural"])
    assert ours["metadata"]["name"] == theirs["metadata"]["name"]
    assert ours["spec"]["group"] == theirs["spec"]["group"]
    assert ours["spec"]["scope"] == theirs["spec"]["scope"] == "Cluster"
    assert ours["spec"]["names"] == theirs["spec"]["names"]
    our_versions = {v["name"]: v for v in ours["spec"]["versions"]}
    their_versions = {v["name"]: v for v in theirs["spec"]["versions"]}
    assert sorted(our_versions) == sorted(their_versions)
    for name, theirs_version in their_versions.items():
        mine = our_versions[name]
        for key in ("served", "storage", "subresources", "deprecated"):
            assert mine.get(key) == theirs_version.get(key), (name, key)
        assert mine.get("additionalPrinterColumns") == \
            theirs_version.get("additionalPrinterColumns"), name
        assert mine["schema"]["openAPIV3Schema"] == \
            without_descriptions(theirs_version["schema"]["openAPIV3Schema"]), name
