"""medik8s Fence Agents Remediation's CustomResourceDefinition, as its operator installs it.

Written for the embedded datacenter (the upstream CRD is not read at run time): the schema
of fence-agents-remediation's controller-gen output (descriptions left out),
`fenceagentsremediations.fence-agents-remediation.medik8s.io` served as `v1alpha1`,
namespaced, with the status subresource. `tests/unit/sim/test_fencing_crds.py` compares it
with the upstream file.
"""

from __future__ import annotations

from typing import Any

from kubekit.resources import ResourceRef

GROUP = "fence-agents-remediation.medik8s.io"
VERSION = "v1alpha1"
FARS = ResourceRef(GROUP, VERSION, "fenceagentsremediations")

_STRING: dict[str, Any] = {"type": "string"}
_DURATION: dict[str, Any] = {"type": "string",
                             "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}


def _condition() -> dict[str, Any]:
    """metav1.Condition as controller-gen renders it."""
    return {
        "type": "object",
        "required": ["lastTransitionTime", "message", "reason", "status", "type"],
        "properties": {
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "message": {"type": "string", "maxLength": 32768},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "reason": {"type": "string", "maxLength": 1024, "minLength": 1,
                       "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "type": {"type": "string", "maxLength": 316,
                     "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*"
                                r"[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"},
        },
    }


def _spec() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["agent"],
        "properties": {
            "agent": {"type": "string", "pattern": "fence_.+"},
            "nodeSecretNames": {"type": "object", "additionalProperties": _STRING},
            "nodeparameters": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": _STRING}},
            "remediationStrategy": {"type": "string", "default": "ResourceDeletion",
                                    "enum": ["ResourceDeletion", "OutOfServiceTaint"]},
            "retrycount": {"type": "integer", "default": 5},
            "retryinterval": {**_DURATION, "default": "5s"},
            "sharedSecretName": _STRING,
            "sharedparameters": {"type": "object", "additionalProperties": _STRING},
            "timeout": {**_DURATION, "default": "60s"},
        },
    }


def _status() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "conditions": {"type": "array", "items": _condition(),
                           "x-kubernetes-list-map-keys": ["type"],
                           "x-kubernetes-list-type": "map"},
            "lastUpdateTime": {"type": "string", "format": "date-time"},
        },
    }


def fence_agents_remediation_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{FARS.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {"kind": "FenceAgentsRemediation",
                      "listKind": "FenceAgentsRemediationList",
                      "plural": FARS.plural, "shortNames": ["far"],
                      "singular": "fenceagentsremediation"},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"apiVersion": _STRING, "kind": _STRING,
                                   "metadata": {"type": "object"},
                                   "spec": _spec(), "status": _status()},
                }},
            }],
        },
    }


def fencing_crds() -> list[dict[str, Any]]:
    return [fence_agents_remediation_crd()]
