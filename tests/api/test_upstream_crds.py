"""The upstream CRDs of Multus and kubernetes-nmstate apply with kubectl, and objects under them
are accepted or rejected as kube-apiserver would (the CRD schema is the oracle)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import upstream
from tests.api import wire
from tests.harness import DevCluster

SCHEMAS = upstream.path("schemas")
MULTUS_CRD = SCHEMAS / "multus" / "networks-crd.yaml"
NMSTATE_CRDS = sorted((SCHEMAS / "nmstate").glob("*.yaml"))
NADS = "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions"
NNCPS = "/apis/nmstate.io/v1/nodenetworkconfigurationpolicies"

pytestmark = [
    pytest.mark.skipif(
        not MULTUS_CRD.exists() or not NMSTATE_CRDS,
        reason=f"upstream CRDs not found under {SCHEMAS}: {upstream.HINT}",
    ),
]


@pytest.fixture(scope="module")
def cluster(apiserver: DevCluster) -> DevCluster:
    binary = wire.newest_kubectl()
    for manifest in [MULTUS_CRD, *NMSTATE_CRDS]:
        applied = apiserver.kubectl("apply", "-f", str(manifest), binary=binary)
        assert "created" in applied.stdout, applied.stdout
    waited = apiserver.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd",
                               "network-attachment-definitions.k8s.cni.cncf.io",
                               "nodenetworkconfigurationpolicies.nmstate.io",
                               "nodenetworkconfigurationenactments.nmstate.io",
                               "nodenetworkstates.nmstate.io", binary=binary)
    assert waited.stdout.count("condition met") == 4
    return apiserver


def nad(name: str, config: Any) -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name}, "spec": {"config": config}}


def nncp(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "nmstate.io/v1", "kind": "NodeNetworkConfigurationPolicy",
            "metadata": {"name": name}, "spec": spec}


BRIDGE_CONFIG = json.dumps({"cniVersion": "0.3.1", "name": "vlan-10", "type": "bridge",
                            "bridge": "br1", "vlan": 10, "ipam": {}})
DESIRED_STATE = {"interfaces": [{
    "name": "br1", "type": "linux-bridge", "state": "up",
    "bridge": {"options": {"stp": {"enabled": False}},
               "port": [{"name": "eth1", "vlan": {"mode": "trunk",
                                                  "trunk-tags": [{"id-range": {
                                                      "min": 10, "max": 20}}]}}]},
}]}


def test_the_crds_are_served_as_their_authors_declared(cluster: DevCluster) -> None:
    binary = wire.newest_kubectl()
    resources = cluster.kubectl("api-resources", "--api-group=nmstate.io", "-o", "name",
                                binary=binary).stdout.split()
    assert sorted(resources) == ["nodenetworkconfigurationenactments.nmstate.io",
                                 "nodenetworkconfigurationpolicies.nmstate.io",
                                 "nodenetworkstates.nmstate.io"]
    short = cluster.kubectl("api-resources", "--api-group=k8s.cni.cncf.io", binary=binary)
    assert "net-attach-def" in short.stdout
    # nmstate serves v1 (storage) and v1beta1 of the policy.
    group = wire.request(cluster, "GET", "/apis/nmstate.io").body
    assert group["preferredVersion"]["version"] == "v1"
    assert {"v1", "v1beta1"} <= {v["version"] for v in group["versions"]}


def test_network_attachment_definitions(cluster: DevCluster, tmp_path: Path) -> None:
    binary = wire.newest_kubectl()
    manifest = tmp_path / "nad.yaml"
    manifest.write_text(yaml.safe_dump(nad("vlan-10", BRIDGE_CONFIG)))
    assert "created" in cluster.kubectl("apply", "-f", str(manifest), binary=binary).stdout
    got = wire.request(cluster, "GET", f"{NADS}/vlan-10").body
    assert json.loads(got["spec"]["config"])["vlan"] == 10
    listed = cluster.kubectl("get", "net-attach-def", "-o", "name", binary=binary)
    assert listed.stdout.split() == [
        "networkattachmentdefinition.k8s.cni.cncf.io/vlan-10"]
    # config is a string in the schema: an object is a type error (as kube-apiserver says).
    wrong = wire.request(cluster, "POST", NADS, nad("as-object", {"type": "bridge"}))
    assert wrong.status == 422, wrong.body
    assert wrong.body["details"]["causes"][0]["field"] == "spec.config"
    assert "must be of type string" in wrong.body["message"]
    # An unknown field under spec: Strict refuses it; the default (Warn) prunes it.
    extra = nad("extra", BRIDGE_CONFIG)
    extra["spec"]["mtu"] = 9000
    strict = wire.request(cluster, "POST", f"{NADS}?fieldValidation=Strict", extra)
    assert strict.status == 400 and 'unknown field "spec.mtu"' in strict.body["message"]
    pruned = wire.request(cluster, "POST", NADS, extra)
    assert pruned.status == 201 and "mtu" not in pruned.body["spec"]


def test_node_network_configuration_policies(cluster: DevCluster) -> None:
    valid = nncp("br1-policy", {"nodeSelector": {"kubernetes.io/hostname": "host-1"},
                                "maxUnavailable": "50%", "desiredState": DESIRED_STATE})
    created = wire.request(cluster, "POST", NNCPS, valid)
    assert created.status == 201, created.body
    # desiredState preserves unknown fields: nmstate's whole document is kept as written.
    assert created.body["spec"]["desiredState"] == DESIRED_STATE
    as_number = nncp("by-count", {"maxUnavailable": 3, "desiredState": {}})
    assert wire.request(cluster, "POST", NNCPS, as_number).status == 201

    def refused(spec: dict[str, Any]) -> dict[str, Any]:
        answer = wire.request(cluster, "POST", NNCPS, nncp("refused", spec))
        assert answer.status == 422, answer.body
        return dict(answer.body)

    # int-or-string takes neither a boolean nor a list.
    assert "spec.maxUnavailable" in refused({"maxUnavailable": True})["message"]
    # desiredState is an object; nodeSelector values are strings.
    assert "spec.desiredState" in refused({"desiredState": "up"})["message"]
    assert "spec.nodeSelector" in refused({"nodeSelector": {"zone": 1}})["message"]
    assert "spec.capture" in refused({"capture": {"base": ["not", "a", "string"]}})["message"]
    too_many = {f"label-{i}": "x" for i in range(257)}
    assert "spec.nodeSelector" in refused({"nodeSelector": too_many})["message"]
    # Status is behind the subresource: a status on create is dropped.
    with_status = nncp("with-status", {"desiredState": {}})
    with_status["status"] = {"unavailableNodeCount": 1}
    stored = wire.request(cluster, "POST", NNCPS, with_status)
    assert stored.status == 201 and "status" not in stored.body
    bad_status = wire.request(cluster, "PATCH", f"{NNCPS}/with-status/status",
                              {"status": {"unavailableNodeCount": "many"}},
                              content_type="application/merge-patch+json")
    assert bad_status.status == 422
    assert "status.unavailableNodeCount" in bad_status.body["message"]


def test_the_older_policy_version_reads_the_same_objects(cluster: DevCluster) -> None:
    created = wire.request(cluster, "POST", NNCPS, nncp("versioned", {"desiredState": {}}))
    assert created.status == 201
    old = wire.request(cluster, "GET",
                       "/apis/nmstate.io/v1beta1/nodenetworkconfigurationpolicies/versioned")
    assert old.status == 200
    assert old.body["apiVersion"] == "nmstate.io/v1beta1"
    assert old.body["metadata"]["uid"] == created.body["metadata"]["uid"]


def test_cel_rule_on_node_selector_keys(cluster: DevCluster) -> None:
    answer = wire.request(cluster, "POST", f"{NNCPS}?dryRun=All",
                          nncp("cel", {"nodeSelector": {"not a qualified name!": "x"}}))
    assert answer.status == 422
    assert ('spec.nodeSelector: Invalid value: "object": nodeSelector keys must be valid '
            "qualified names") in answer.body["message"]
    valid = wire.request(cluster, "POST", f"{NNCPS}?dryRun=All",
                         nncp("cel", {"nodeSelector": {"kubernetes.io/hostname": "node-1"}}))
    assert valid.status == 201, valid.body
