"""Which namespaces a DistributedPortGroup admits: Kubernetes selector meaning."""

from __future__ import annotations

from typing import Any

from controllers.distributedportgroup.admission import admits_namespace
from controllers.distributedportgroup.models import DistributedPortGroupSpec


def port_group(**fields: Any) -> DistributedPortGroupSpec:
    return DistributedPortGroupSpec.model_validate({"switchName": "dvs", **fields})


def test_absent_selector_admits_no_namespace() -> None:
    assert not admits_namespace(port_group(), {})
    assert not admits_namespace(port_group(), {"tenant": "a"})


def test_empty_selector_admits_every_namespace() -> None:
    spec = port_group(namespaceSelector={})
    assert admits_namespace(spec, {})
    assert admits_namespace(spec, {"tenant": "b"})


def test_match_labels_and_expressions() -> None:
    spec = port_group(
        namespaceSelector={
            "matchLabels": {"tenant": "a"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["dmz"]}],
        }
    )
    assert admits_namespace(spec, {"tenant": "a"})
    assert admits_namespace(spec, {"tenant": "a", "tier": "app"})
    assert not admits_namespace(spec, {"tenant": "a", "tier": "dmz"})
    assert not admits_namespace(spec, {"tenant": "b"})
