"""The emulated CSI snapshot CRDs are external-snapshotter's own (its `client/config/crd`
files are the oracle, under schemas/external-snapshotter/): names, scope, the served v1
version's schema (CEL rules included), printer columns and subresources."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from devcluster.sim.snapshot_crds import default_snapshot_classes, snapshot_crds
from tests import upstream

SNAPSHOTTER_SCHEMAS = upstream.path("schemas/external-snapshotter")


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items()
                if k != "description" or not isinstance(v, str)}
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    return node


def upstream_crd(name: str) -> dict[str, Any]:
    group, plural = name.split(".", 1)[1], name.split(".", 1)[0]
    path = upstream.require(SNAPSHOTTER_SCHEMAS / f"{group}_{plural}.yaml")
    crd: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return crd


@pytest.mark.parametrize("ours", snapshot_crds(), ids=lambda c: c["metadata"]["name"])
def test_crd_matches_upstream(ours: dict[str, Any]) -> None:
    theirs = upstream_crd(ours["metadata"]["name"])
    assert ours["metadata"]["name"] == theirs["metadata"]["name"]
    assert ours["metadata"]["annotations"] == theirs["metadata"]["annotations"]
    assert ours["spec"]["group"] == theirs["spec"]["group"]
    assert ours["spec"]["scope"] == theirs["spec"]["scope"]
    assert ours["spec"]["names"] == theirs["spec"]["names"]
    served = [v for v in theirs["spec"]["versions"] if v["served"]]
    assert [v["name"] for v in ours["spec"]["versions"]] == [v["name"] for v in served] == ["v1"]
    mine, theirs_v1 = ours["spec"]["versions"][0], served[0]
    for key in ("served", "storage", "subresources", "additionalPrinterColumns"):
        assert mine.get(key) == without_descriptions(theirs_v1.get(key)), key
    assert mine["schema"]["openAPIV3Schema"] == \
        without_descriptions(theirs_v1["schema"]["openAPIV3Schema"])


def test_only_the_shared_driver_has_a_default_snapshot_class() -> None:
    classes = default_snapshot_classes()
    assert [c["driver"] for c in classes] == ["sim.vdcos.io/shared"]
    assert classes[0]["metadata"]["annotations"] == {
        "snapshot.storage.kubernetes.io/is-default-class": "true"}
