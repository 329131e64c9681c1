"""A cluster's placement rules as KubeVirt scheduling constraints of one VM (pure).

When a VM starts (or migrates) the scheduler keeps the rules it belongs to:

- KeepTogether / SeparateVirtualMachines become pod affinity / anti-affinity on the host
  (`kubernetes.io/hostname`) to the other virt-launcher pods of the rule. Each member's pods
  carry the label `vdcos.io/rule.<rule>: <cluster>` so the terms can find them across
  namespaces (a rule's VMs may live in several).
- VirtualMachinesToHosts / VirtualMachinesNotOnHosts become node affinity: the rule's host
  selector (or its negation) is ANDed into every required term the cluster already has.

Required rules become `requiredDuringSchedulingIgnoredDuringExecution` terms, Preferred ones
`preferredDuringSchedulingIgnoredDuringExecution` terms of weight 100. "IgnoredDuring-
Execution" is why DRS checks the rules on every pass: a rule added while its VMs run
together, or a host relabelled, is repaired by migration (drs_pass.py).

A VM that is in a KeepTogether and a SeparateVirtualMachines rule gets only the anti-
affinity (anti-affinity beats affinity, as in vSphere); the pass reports the affinity rule
disabled (rule_status.py).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from controllers.computecluster.builders import selector_matches
from controllers.computecluster.models import LabelSelector, Rule

HOSTNAME_TOPOLOGY: Final = "kubernetes.io/hostname"
RULE_LABEL_PREFIX: Final = "vdcos.io/rule."
PREFERRED_WEIGHT: Final = 100
_LABEL_NAME_MAX: Final = 63
_REQUIRED: Final = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED: Final = "preferredDuringSchedulingIgnoredDuringExecution"

#: The negation of each operator, for VirtualMachinesNotOnHosts (NotIn also matches hosts
#: without the label, so its negation, In, requires the label: both are exact).
_NEGATED: Final = {"In": "NotIn", "NotIn": "In", "Exists": "DoesNotExist", "DoesNotExist": "Exists"}


@dataclass(frozen=True)
class RulePlacement:
    """What a VM's rules add to its KubeVirt template: pod labels and affinity."""

    labels: dict[str, str] = field(default_factory=dict)
    affinity: dict[str, Any] | None = None


def rule_label_key(rule_name: str) -> str:
    """`vdcos.io/rule.<name>`; a name too long for a label key is cut and hashed."""
    name = f"rule.{rule_name}"
    if len(name) > _LABEL_NAME_MAX:
        digest = hashlib.sha256(rule_name.encode()).hexdigest()[:8]
        name = f"{name[: _LABEL_NAME_MAX - 9].rstrip('-.')}-{digest}"
    return f"vdcos.io/{name}"


def rules_of(rules: Sequence[Rule], vm_labels: Mapping[str, str]) -> list[Rule]:
    """The rules whose virtualMachineSelector picks a VM with these labels, in spec order."""
    return [rule for rule in rules if selector_matches(rule.virtual_machine_selector, vm_labels)]


def effective_rules_of_vm(rules: Sequence[Rule], vm_labels: Mapping[str, str]) -> list[Rule]:
    """The VM's rules less KeepTogether ones when it is also in a SeparateVirtualMachines
    rule of the same enforcement or stronger (anti-affinity beats affinity)."""
    mine = rules_of(rules, vm_labels)
    separate = [rule for rule in mine if rule.type == "SeparateVirtualMachines"]
    kept = []
    for rule in mine:
        if rule.type == "KeepTogether" and any(
            other.enforcement == "Required" or rule.enforcement == "Preferred"
            for other in separate
        ):
            continue
        kept.append(rule)
    return kept


def _requirements(selector: LabelSelector) -> list[dict[str, Any]]:
    """A label selector as NodeSelectorRequirements (matchLabels become `In [value]`)."""
    expressions: list[dict[str, Any]] = [
        {"key": key, "operator": "In", "values": [value]}
        for key, value in sorted(selector.match_labels.items())
    ]
    for requirement in selector.match_expressions:
        expressions.append(_expression(requirement.key, requirement.operator, requirement.values))
    return expressions


def _expression(key: str, operator: str, values: Sequence[str]) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if operator in ("In", "NotIn"):
        expression["values"] = list(values)
    return expression


def _negated(selector: LabelSelector) -> list[dict[str, Any]]:
    """NOT(all requirements) = any one requirement negated: one alternative each."""
    alternatives = []
    for expression in _requirements(selector):
        alternatives.append(
            _expression(
                expression["key"], _NEGATED[expression["operator"]], expression.get("values", [])
            )
        )
    return alternatives


def _pod_term(rule: Rule, cluster_value: str) -> dict[str, Any]:
    return {
        "labelSelector": {"matchLabels": {rule_label_key(rule.name): cluster_value}},
        # Every namespace: a rule's VMs may live in several; the label names the cluster.
        "namespaceSelector": {},
        "topologyKey": HOSTNAME_TOPOLOGY,
    }


def _and_into_terms(
    terms: list[dict[str, Any]], alternatives: Sequence[Sequence[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """(t1 OR t2 ...) AND (a1 OR a2 ...) as ORed terms of ANDed expressions."""
    base = terms or [{"matchExpressions": []}]
    return [
        {**term, "matchExpressions": [*term.get("matchExpressions", []), *alternative]}
        for term in base
        for alternative in alternatives
    ]


def rule_placement(
    rules: Sequence[Rule],
    vm_labels: Mapping[str, str],
    cluster_value: str,
    base_affinity: Mapping[str, Any] | None = None,
) -> RulePlacement:
    """The labels and the whole affinity (the cluster's `base_affinity` and the rules') of a
    VM with `vm_labels` in the cluster whose label value is `cluster_value`."""
    affinity: dict[str, Any] = copy.deepcopy(dict(base_affinity or {}))
    labels: dict[str, str] = {}
    for rule in effective_rules_of_vm(rules, vm_labels):
        required = rule.enforcement == "Required"
        if rule.type in ("KeepTogether", "SeparateVirtualMachines"):
            labels[rule_label_key(rule.name)] = cluster_value
            kind = "podAffinity" if rule.type == "KeepTogether" else "podAntiAffinity"
            section = affinity.setdefault(kind, {})
            term = _pod_term(rule, cluster_value)
            if required:
                section.setdefault(_REQUIRED, []).append(term)
            else:
                section.setdefault(_PREFERRED, []).append(
                    {"weight": PREFERRED_WEIGHT, "podAffinityTerm": term}
                )
            continue
        assert rule.host_selector is not None  # the model requires it for host rules
        if rule.type == "VirtualMachinesToHosts":
            alternatives = [_requirements(rule.host_selector)]
        else:
            alternatives = [[expression] for expression in _negated(rule.host_selector)]
        node_affinity = affinity.setdefault("nodeAffinity", {})
        if required:
            current = (node_affinity.get(_REQUIRED) or {}).get("nodeSelectorTerms") or []
            node_affinity[_REQUIRED] = {"nodeSelectorTerms": _and_into_terms(current, alternatives)}
        else:
            weight = max(1, PREFERRED_WEIGHT // len(alternatives))
            node_affinity.setdefault(_PREFERRED, []).extend(
                {"weight": weight, "preference": {"matchExpressions": list(alternative)}}
                for alternative in alternatives
            )
    return RulePlacement(labels, affinity or None)


def host_rule_selects(rule: Rule, host_labels: Mapping[str, str]) -> bool:
    """Whether a host rule lets a VM run on a host with these labels."""
    assert rule.host_selector is not None
    picked = selector_matches(rule.host_selector, host_labels)
    return picked if rule.type == "VirtualMachinesToHosts" else not picked

