"""The medik8s FenceAgentsRemediation HA asks for (pure): built from the cluster's fencing
settings, validated against the real CRD's schema shape
(`fence-agents-remediation.medik8s.io/v1alpha1`), and its Succeeded condition read back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from controllers.computecluster.ha_models import Fencing
from kubekit.resources import ResourceRef

FENCE_AGENTS_REMEDIATIONS: Final = ResourceRef(
    "fence-agents-remediation.medik8s.io", "v1alpha1", "fenceagentsremediations"
)
FAR_API_VERSION: Final = "fence-agents-remediation.medik8s.io/v1alpha1"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
CLUSTER_LABEL: Final = "ha.vdcos.io/cluster"


def build_remediation(host: str, cluster: str, fencing: Fencing) -> dict[str, Any]:
    """The FenceAgentsRemediation for `host`: named after the node, as medik8s requires, with
    remediationStrategy OutOfServiceTaint (the taint lets the host's pods be force-deleted)."""
    agent = fencing.fence_agent
    spec: dict[str, Any] = {
        "agent": agent.agent,
        "remediationStrategy": "OutOfServiceTaint",
        "retrycount": agent.retry_count,
        "retryinterval": agent.retry_interval,
        "timeout": agent.timeout,
    }
    if agent.shared_parameters:
        spec["sharedparameters"] = dict(agent.shared_parameters)
    # nodeparameters: parameter -> node -> value (FenceAgentsRemediation's shape).
    node_parameters = {
        parameter: {host: by_node[host]}
        for parameter, by_node in agent.node_parameters.items()
        if host in by_node
    }
    if node_parameters:
        spec["nodeparameters"] = node_parameters
    if agent.shared_secret_name:
        spec["sharedSecretName"] = agent.shared_secret_name
    if host in agent.node_secret_names:
        spec["nodeSecretNames"] = {host: agent.node_secret_names[host]}
    return {
        "apiVersion": FAR_API_VERSION,
        "kind": "FenceAgentsRemediation",
        "metadata": {
            "name": host,
            "namespace": fencing.namespace,
            "labels": {MANAGED_BY_LABEL: "vdcos", CLUSTER_LABEL: cluster},
        },
        "spec": spec,
    }


def remediation_progress(remediation: Mapping[str, Any] | None) -> tuple[bool, str]:
    """(succeeded, what it says): Succeeded=True means the host is fenced."""
    if remediation is None:
        return False, "FenceAgentsRemediation not created yet"
    conditions = (remediation.get("status") or {}).get("conditions") or []
    by_type = {str(item.get("type")): item for item in conditions}
    succeeded = by_type.get("Succeeded")
    if succeeded is not None and succeeded.get("status") == "True":
        return True, str(succeeded.get("message") or "fenced")
    for kind in ("Succeeded", "FenceAgentActionSucceeded", "Processing"):
        item = by_type.get(kind)
        if item is not None and item.get("message"):
            return False, f"FenceAgentsRemediation {kind}={item.get('status')}: {item['message']}"
    return False, "FenceAgentsRemediation created; waiting for its Succeeded condition"
