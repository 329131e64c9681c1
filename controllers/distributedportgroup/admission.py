"""Which namespaces a port group admits: its namespaceSelector, with Kubernetes meaning."""

from __future__ import annotations

from collections.abc import Mapping

from controllers.computecluster.builders import selector_matches
from controllers.distributedportgroup.models import DistributedPortGroupSpec


def admits_namespace(spec: DistributedPortGroupSpec, namespace_labels: Mapping[str, str]) -> bool:
    """Whether VMs of a namespace with these labels may attach to the port group.

    An absent namespaceSelector admits no namespace (a tenant only sees what it was given);
    an empty one ({}) admits every namespace.
    """
    if spec.namespace_selector is None:
        return False
    return selector_matches(spec.namespace_selector, namespace_labels)
