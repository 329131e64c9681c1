"""A cluster's rules as KubeVirt affinity of a VM: valid per KubeVirt's schema, and kept by
the simulated scheduler (required refuses a host, preferred steers the choice)."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.computecluster.builders import ResolvedCluster
from controllers.computecluster.models import ComputeClusterSpec
from controllers.computecluster.rule_affinity import (
    host_rule_selects,
    rule_label_key,
    rule_placement,
)
from controllers.storagepolicy.builders import ResolvedStoragePolicy
from controllers.virtualmachine.builders import build_kubevirt_vm
from controllers.virtualmachine.models import VirtualMachineSpec
from devcluster.sim.scheduling import schedule
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger


def _spec(*rules: dict[str, Any], expressions: bool = False) -> ComputeClusterSpec:
    selector: dict[str, Any] = {"matchLabels": {"rack": "a"}}
    if expressions:
        selector["matchExpressions"] = [{"key": "zone", "operator": "In", "values": ["z1"]}]
    return ComputeClusterSpec.model_validate({"hostSelector": selector, "rules": list(rules)})


SEPARATE = {
    "name": "web-apart",
    "type": "SeparateVirtualMachines",
    "virtualMachineSelector": {"matchLabels": {"app": "web"}},
}
TOGETHER = {
    "name": "web-db",
    "type": "KeepTogether",
    "virtualMachineSelector": {"matchLabels": {"tier": "front"}},
}
TO_HOSTS = {
    "name": "db-on-ssd",
    "type": "VirtualMachinesToHosts",
    "virtualMachineSelector": {"matchLabels": {"app": "db"}},
    "hostSelector": {"matchLabels": {"disk": "ssd"}},
}
NOT_ON_HOSTS = {
    "name": "db-off-old",
    "type": "VirtualMachinesNotOnHosts",
    "virtualMachineSelector": {"matchLabels": {"app": "db"}},
    "hostSelector": {"matchExpressions": [{"key": "gen", "operator": "In", "values": ["old"]}]},
}


def _vm(spec: ComputeClusterSpec, labels: dict[str, str]) -> dict[str, Any]:
    vm_spec = VirtualMachineSpec.model_validate(
        {"cpu": {"count": 1}, "memory": {"size": "1Gi"}, "clusterName": "prod"}
    )
    return build_kubevirt_vm(
        vm_spec,
        "vm-1",
        "apps",
        storage_policies={"thin": ResolvedStoragePolicy("thin", "std", "Thin", "ReadWriteOnce",
                                                        "Filesystem")},
        cluster=ResolvedCluster("prod", spec),
        default_storage_policy_name="thin",
        vm_labels=labels,
    )


@pytest.mark.parametrize("enforcement", ["Required", "Preferred"])
@pytest.mark.parametrize(
    ("rule", "labels"),
    [(SEPARATE, {"app": "web"}), (TOGETHER, {"tier": "front"}), (TO_HOSTS, {"app": "db"}),
     (NOT_ON_HOSTS, {"app": "db"})],
    ids=["separate", "together", "to-hosts", "not-on-hosts"],
)
def test_every_rule_gives_a_kubevirt_vm_valid_per_upstream_schema(
    rule: dict[str, Any], labels: dict[str, str], enforcement: str
) -> None:
    vm = _vm(_spec({**rule, "enforcement": enforcement}, expressions=True), labels)
    validate_against_swagger(vm, KUBEVIRT_SWAGGER, "v1.VirtualMachine")
    affinity = vm["spec"]["template"]["spec"]["affinity"]
    mode = "required" if enforcement == "Required" else "preferred"
    assert any(
        key.startswith(mode) for section in affinity.values() for key in section
    ), affinity


def test_pod_rules_label_the_members_pods_and_not_the_vm() -> None:
    vm = _vm(_spec(SEPARATE), {"app": "web"})
    key = rule_label_key("web-apart")
    assert vm["spec"]["template"]["metadata"]["labels"][key] == "prod"
    assert key not in vm["metadata"]["labels"]


def test_a_vm_outside_every_rule_keeps_the_cluster_placement_only() -> None:
    vm = _vm(_spec(SEPARATE, TO_HOSTS), {"app": "cache"})
    template = vm["spec"]["template"]
    assert "affinity" not in template["spec"]
    assert template["spec"]["nodeSelector"] == {"rack": "a"}


def test_host_rules_are_anded_into_the_cluster_terms() -> None:
    placement = rule_placement(
        _spec(TO_HOSTS, NOT_ON_HOSTS, expressions=True).rules,
        {"app": "db"},
        "prod",
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["z1"]}]}]}}},
    )
    assert placement.affinity is not None
    terms = placement.affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [
        {"key": "zone", "operator": "In", "values": ["z1"]},
        {"key": "disk", "operator": "In", "values": ["ssd"]},
        {"key": "gen", "operator": "NotIn", "values": ["old"]},
    ]}]


def test_anti_affinity_beats_affinity_on_a_vm_in_both() -> None:
    both = {**TOGETHER, "virtualMachineSelector": {"matchLabels": {"app": "web"}}}
    placement = rule_placement(_spec(both, SEPARATE).rules, {"app": "web"}, "prod")
    assert placement.affinity is not None
    assert "podAffinity" not in placement.affinity
    assert "podAntiAffinity" in placement.affinity
    assert rule_label_key("web-db") not in placement.labels


def test_host_rule_selects_is_the_negation_for_not_on_hosts() -> None:
    spec = _spec(TO_HOSTS, NOT_ON_HOSTS)
    to_hosts, not_on = spec.rules
    assert host_rule_selects(to_hosts, {"disk": "ssd"})
    assert not host_rule_selects(to_hosts, {"disk": "hdd"})
    assert host_rule_selects(not_on, {"gen": "new"})
    assert host_rule_selects(not_on, {})
    assert not host_rule_selects(not_on, {"gen": "old"})


def test_an_empty_host_selector_is_refused_naming_the_rule() -> None:
    with pytest.raises(ValueError, match=r"db-on-ssd.*hostSelector must name at least one label"):
        _spec({**TO_HOSTS, "hostSelector": {}})


# --- the simulated scheduler keeps what the rules say --------------------------------------


def _node(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "rack": "a",
                                              **labels}},
        "status": {"allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def _pod(name: str, namespace: str, template: dict[str, Any], node: str | None = None
         ) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "compute", "resources": {"requests": {"cpu": "1",
                                                                       "memory": "1Gi"}}}],
        **{key: value for key, value in template["spec"].items()
           if key in ("affinity", "nodeSelector")},
    }
    if node is not None:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": namespace, "uid": name,
                         "labels": dict(template["metadata"]["labels"])},
            "spec": spec, "status": {"phase": "Running" if node else "Pending"}}


def _template(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    template: dict[str, Any] = _vm(_spec(rule), labels)["spec"]["template"]
    return template


@pytest.mark.parametrize("enforcement", ["Required", "Preferred"])
def test_scheduler_separates_members_across_namespaces(enforcement: str) -> None:
    template = _template({**SEPARATE, "enforcement": enforcement}, {"app": "web"})
    # host-a is emptier and would win on resources alone.
    nodes = [_node("host-a"), _node("host-b")]
    running = [_pod("web-0", "other", template, "host-a")]
    result = schedule(_pod("web-1", "apps", template), nodes, running)
    assert result.node_name == "host-b"


def test_required_separation_refuses_when_every_host_has_a_member() -> None:
    template = _template(SEPARATE, {"app": "web"})
    nodes = [_node("host-a"), _node("host-b")]
    running = [_pod("web-0", "apps", template, "host-a"), _pod("web-2", "apps", template,
                                                               "host-b")]
    result = schedule(_pod("web-1", "apps", template), nodes, running)
    assert result.node_name is None
    assert "didn't match pod anti-affinity rules" in result.message


@pytest.mark.parametrize("enforcement", ["Required", "Preferred"])
def test_scheduler_keeps_members_together(enforcement: str) -> None:
    template = _template({**TOGETHER, "enforcement": enforcement}, {"tier": "front"})
    filler = {"metadata": {"name": "busy", "namespace": "x", "uid": "busy"},
              "spec": {"nodeName": "host-a", "containers": [
                  {"name": "c", "resources": {"requests": {"cpu": "8", "memory": "32Gi"}}}]},
              "status": {"phase": "Running"}}
    nodes = [_node("host-a"), _node("host-b")]
    running = [filler, _pod("front-0", "apps", template, "host-a")]
    assert schedule(_pod("front-1", "apps", template), nodes, running).node_name == "host-a"


@pytest.mark.parametrize("enforcement", ["Required", "Preferred"])
@pytest.mark.parametrize(("rule", "wanted"), [(TO_HOSTS, "host-ssd"), (NOT_ON_HOSTS, "host-new")])
def test_scheduler_keeps_host_rules(rule: dict[str, Any], wanted: str, enforcement: str) -> None:
    template = _template({**rule, "enforcement": enforcement}, {"app": "db"})
    # host-a sorts first and is empty: only the rule can send the VM elsewhere.
    nodes = [_node("host-a", gen="old"), _node(wanted, disk="ssd", gen="new")]
    result = schedule(_pod("db-0", "apps", template), nodes, [])
    assert result.node_name == wanted


def test_required_host_rule_refuses_when_no_host_fits() -> None:
    template = _template(TO_HOSTS, {"app": "db"})
    result = schedule(_pod("db-0", "apps", template), [_node("host-a")], [])
    assert result.node_name is None
    assert "didn't match Pod's node affinity/selector" in result.message
