"""Reading KubeVirt objects as the VirtualMachine controller sees them (pure, no I/O).

KubeVirt objects arrive as plain JSON mappings from the caches; these helpers read nested
fields, the VMI's phase and conditions, and quantities, tolerating absent parts (an object
being created has no status yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kubekit.quantity import QuantityError, to_bytes

#: VMI phases after which the guest no longer runs.
FINAL_VMI_PHASES: Final = frozenset({"Succeeded", "Failed"})


def nested(node: Any, *path: str) -> Any:
    """The value at `path` (mapping keys, or list indices as digits); None when absent."""
    for key in path:
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def template_field(kubevirt_vm: Mapping[str, Any] | None, *path: str) -> Any:
    """A field of the VM template's domain, e.g. ("cpu", "maxSockets")."""
    return nested(kubevirt_vm, "spec", "template", "spec", "domain", *path)


def bytes_or_none(value: Any) -> int | None:
    """A quantity in bytes; None when absent or not a quantity."""
    if value is None:
        return None
    try:
        return to_bytes(value)
    except QuantityError:
        return None


def vmi_running(vmi: Mapping[str, Any] | None) -> bool:
    """Whether a VMI exists whose guest has not finished (Pending, Scheduling, Running...)."""
    return vmi is not None and nested(vmi, "status", "phase") not in FINAL_VMI_PHASES


def vmi_condition(vmi: Mapping[str, Any] | None, condition_type: str) -> Mapping[str, Any] | None:
    """The VMI condition of that type, or None."""
    for condition in nested(vmi, "status", "conditions") or []:
        if condition.get("type") == condition_type:
            return dict(condition)
    return None
