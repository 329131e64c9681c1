"""Where kubernetes-nmstate's kinds live and how their objects read (pure).

A DistributedSwitch is written as a NodeNetworkConfigurationPolicy (NNCP); nmstate's handler
answers per node with a NodeNetworkConfigurationEnactment (NNCE, named `<node>.<policy>`,
labelled nmstate.io/policy and nmstate.io/node) and reports every node's interfaces in its
NodeNetworkState (NNS, named after the node). Field names follow kubernetes-nmstate's
api/ types and the CRDs in ../shared/schemas/nmstate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kubekit.resources import ResourceRef

POLICIES: Final = ResourceRef("nmstate.io", "v1", "nodenetworkconfigurationpolicies", False)
ENACTMENTS: Final = ResourceRef(
    "nmstate.io", "v1beta1", "nodenetworkconfigurationenactments", False
)
NODE_NETWORK_STATES: Final = ResourceRef("nmstate.io", "v1beta1", "nodenetworkstates", False)

#: Labels nmstate puts on every enactment.
ENACTMENT_POLICY_LABEL: Final = "nmstate.io/policy"
ENACTMENT_NODE_LABEL: Final = "nmstate.io/node"

#: The enactment condition types, most telling first: a node that failed says so even if an
#: older Available condition is still True.
ENACTMENT_STATES: Final = ("Failing", "Aborted", "Progressing", "Pending", "Available")


def slim_enactment(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the switch status reads of an enactment: node, policy generation, conditions."""
    metadata = body.get("metadata") or {}
    labels = metadata.get("labels") or {}
    status = body.get("status") or {}
    return {
        "node": labels.get(ENACTMENT_NODE_LABEL) or str(metadata.get("name", "")).split(".")[0],
        "policy": labels.get(ENACTMENT_POLICY_LABEL, ""),
        "policyGeneration": status.get("policyGeneration"),
        "conditions": [
            {
                "type": condition.get("type"),
                "status": condition.get("status"),
                "reason": condition.get("reason") or "",
                "message": condition.get("message") or "",
            }
            for condition in status.get("conditions") or []
        ],
    }


def enactment_state(enactment: Mapping[str, Any]) -> tuple[str, str, str]:
    """(state, reason, message) of an enactment: the first true condition by severity."""
    conditions = {
        condition["type"]: condition
        for condition in enactment.get("conditions") or []
        if condition.get("status") == "True"
    }
    for state in ENACTMENT_STATES:
        if state in conditions:
            condition = conditions[state]
            return state, str(condition.get("reason") or ""), str(condition.get("message") or "")
    return "Pending", "", "nmstate has not reported yet"


def slim_node_network_state(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A node's interfaces by name: {type, state, mtu}."""
    current = (body.get("status") or {}).get("currentState") or {}
    return {
        str(interface.get("name")): {
            "type": interface.get("type"),
            "state": interface.get("state"),
            "mtu": interface.get("mtu"),
        }
        for interface in current.get("interfaces") or []
        if interface.get("name")
    }
