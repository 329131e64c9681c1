"""kubernetes-nmstate's CustomResourceDefinitions, as its handler installs them.

Written for the embedded datacenter (the upstream CRDs are not read at run time); the
schemas are those of kubernetes-nmstate's controller-gen output (descriptions left out):
NodeNetworkConfigurationPolicy served as `nmstate.io/v1` (stored) and `v1beta1`
(deprecated), NodeNetworkConfigurationEnactment and NodeNetworkState as `v1beta1`; all
cluster-scoped, with the status subresource and upstream's printer columns. The test
`tests/unit/sim/test_nmstate_crds.py` compares them with the upstream files.
"""

from __future__ import annotations

import copy
from typing import Any

from kubekit.resources import ResourceRef

GROUP = "nmstate.io"
NNCPS = ResourceRef(GROUP, "v1", "nodenetworkconfigurationpolicies", namespaced=False)
NNCES = ResourceRef(GROUP, "v1beta1", "nodenetworkconfigurationenactments", namespaced=False)
NNSES = ResourceRef(GROUP, "v1beta1", "nodenetworkstates", namespaced=False)

_STRING: dict[str, Any] = {"type": "string"}
_DATE_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_PRESERVED_OBJECT: dict[str, Any] = {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": True}
_META_INFO: dict[str, Any] = {"type": "object",
                              "properties": {"time": _DATE_TIME, "version": _STRING}}


def _conditions() -> dict[str, Any]:
    return {"type": "array", "items": {
        "type": "object", "required": ["status", "type"],
        "properties": {"lastHeartbeatTime": _DATE_TIME, "lastTransitionTime": _DATE_TIME,
                       "message": _STRING, "reason": _STRING, "status": _STRING,
                       "type": _STRING}}}


def _top_level(**sections: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "apiVersion": _STRING, "kind": _STRING, "metadata": {"type": "object"}, **sections}}


def _status_column(*, age: bool = False) -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = [
        {"name": "Status", "type": "string", "description": "Status",
         "jsonPath": '.status.conditions[?(@.status=="True")].type'}]
    if age:
        columns.append({"name": "Status Age", "type": "date", "description": "Status Age",
                        "jsonPath": '.status.conditions[?(@.status=="True")]'
                                    '.lastTransitionTime'})
    columns.append({"name": "Reason", "type": "string", "description": "Reason",
                    "jsonPath": '.status.conditions[?(@.status=="True")].reason'})
    return columns


def _policy_schema() -> dict[str, Any]:
    spec = {"type": "object", "properties": {
        "capture": {"type": "object", "additionalProperties": _STRING},
        "desiredState": _PRESERVED_OBJECT,
        "maxUnavailable": {"anyOf": [{"type": "integer"}, {"type": "string"}],
                           "x-kubernetes-int-or-string": True},
        "nodeSelector": {
            "type": "object", "additionalProperties": _STRING, "maxProperties": 256,
            "x-kubernetes-validations": [{
                "message": "nodeSelector keys must be valid qualified names",
                "rule": "self.all(k, !format.qualifiedName().validate(k).hasValue())"}]},
    }}
    status = {"type": "object", "properties": {
        "conditions": _conditions(),
        "lastUnavailableNodeCountUpdate": _DATE_TIME,
        "unavailableNodeCount": {"type": "integer"},
        "unavailableNodeCountMap": {"type": "object",
                                    "additionalProperties": {"type": "integer"}},
    }}
    return _top_level(spec=spec, status=status)


def _enactment_schema() -> dict[str, Any]:
    status = {"type": "object", "properties": {
        "capturedStates": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"metaInfo": _META_INFO,
                                             "state": _PRESERVED_OBJECT}}},
        "conditions": _conditions(),
        "desiredState": _PRESERVED_OBJECT,
        "desiredStateMetaInfo": _META_INFO,
        "features": {"type": "array", "items": _STRING},
        "policyGeneration": {"type": "integer", "format": "int64"},
        "retryCount": {"type": "object", "additionalProperties": {"type": "integer"}},
    }}
    schema = _top_level(status=status)
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _state_schema() -> dict[str, Any]:
    status = {"type": "object", "properties": {
        "conditions": _conditions(),
        "currentState": _PRESERVED_OBJECT,
        "handlerNetworkManagerVersion": _STRING,
        "handlerNmstateVersion": _STRING,
        "hostNetworkManagerVersion": _STRING,
        "lastSuccessfulUpdateTime": _DATE_TIME,
    }}
    return _top_level(status=status)


def _crd(kind: str, plural: str, short: str,
         versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}",
                     "labels": {"app.kubernetes.io/component": "nmstate"}},
        "spec": {"group": GROUP, "scope": "Cluster",
                 "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                           "singular": kind.lower(), "shortNames": [short]},
                 "versions": versions},
    }


def _version(name: str, schema: dict[str, Any], columns: list[dict[str, Any]] | None, *,
             storage: bool = True, deprecated: bool = False) -> dict[str, Any]:
    version: dict[str, Any] = {"name": name, "served": True, "storage": storage,
                               "schema": {"openAPIV3Schema": schema},
                               "subresources": {"status": {}}}
    if columns:
        version["additionalPrinterColumns"] = columns
    if deprecated:
        version["deprecated"] = True
    return version


def nmstate_crds() -> list[dict[str, Any]]:
    """NNCP, NNCE and NNS, as kubernetes-nmstate installs them."""
    policy = _policy_schema()
    return [
        _crd("NodeNetworkConfigurationPolicy", NNCPS.plural, "nncp", [
            _version("v1", policy, _status_column()),
            _version("v1beta1", copy.deepcopy(policy), _status_column(), storage=False,
                     deprecated=True)]),
        _crd("NodeNetworkConfigurationEnactment", NNCES.plural, "nnce", [
            _version("v1beta1", _enactment_schema(), _status_column(age=True))]),
        _crd("NodeNetworkState", NNSES.plural, "nns", [
            _version("v1beta1", _state_schema(), None)]),
    ]
