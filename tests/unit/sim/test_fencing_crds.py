"""The emulated FenceAgentsRemediation CRD is medik8s' own (the upstream CRD file is the
oracle): same name, group, scope, names, versions, subresources and schema."""

from __future__ import annotations

from typing import Any

import yaml

from devcluster.sim.fencing_crds import fence_agents_remediation_crd
from tests import upstream

FAR_SCHEMA = upstream.path("schemas/medik8s/fenceagentsremediations.yaml")


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items()
                if k != "description" or not isinstance(v, str)}
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    return node


def test_crd_matches_upstream() -> None:
    theirs = yaml.safe_load(upstream.require(FAR_SCHEMA).read_text(encoding="utf-8"))
    ours = fence_agents_remediation_crd()
    assert ours["metadata"]["name"] == theirs["metadata"]["name"]
    for key in ("group", "scope", "names"):
        assert ours["spec"][key] == theirs["spec"][key], key
    assert [v["name"] for v in ours["spec"]["versions"]] == \
        [v["name"] for v in theirs["spec"]["versions"]]
    for mine, upstream_version in zip(ours["spec"]["versions"], theirs["spec"]["versions"],
                                      strict=True):
        for key in ("served", "storage", "subresources", "additionalPrinterColumns"):
            assert mine.get(key) == upstream_version.get(key), key
        assert mine["schema"]["openAPIV3Schema"] == \
            without_descriptions(upstream_version["schema"]["openAPIV3Schema"])
