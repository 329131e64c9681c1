"""RBAC escalation prevention, as kube-apiserver decides it (pkg/registry/rbac/validation:
policy_comparator.go, rule.go's ConfirmNoEscalation; rbacv1helpers.CompactString).

Pure functions of PolicyRules: whether the rules a user holds cover the rules they try to
grant (a Role's rules, or the rules of the role a binding refers to), and kube's wording of
what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ALL = "*"

PolicyRule = Mapping[str, Any]

# What a ClusterRole's aggregationRule needs: it can gather anything (kube's fullAuthority).
FULL_AUTHORITY: tuple[dict[str, Any], ...] = (
    {"verbs": [ALL], "apiGroups": [ALL], "resources": [ALL]},
    {"verbs": [ALL], "nonResourceURLs": [ALL]},
)


def _strings(rule: PolicyRule, field: str) -> list[str]:
    values = rule.get(field) or []
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def breakdown(rule: PolicyRule) -> list[dict[str, list[str]]]:
    """One rule per (group, resource, verb[, name]) and per (URL, verb): kube's
    BreakdownRule, so that each piece is covered or not on its own."""
    groups, resources = _strings(rule, "apiGroups"), _strings(rule, "resources")
    verbs, names = _strings(rule, "verbs"), _strings(rule, "resourceNames")
    pieces: list[dict[str, list[str]]] = []
    for group in groups:
        for resource in resources:
            for verb in verbs:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                if names:
                    pieces.extend({**base, "resourceNames": [name]} for name in names)
                else:
                    pieces.append(base)
    for url in _strings(rule, "nonResourceURLs"):
        pieces.extend({"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs)
    return pieces


def _has_all(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    return set(wanted) <= set(owned)


def _resources_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    if ALL in owned or _has_all(owned, wanted):
        return True
    # "*/scale" held covers "deployments/scale" asked for (kube's resourceCoversAll).
    for resource in wanted:
        parts = resource.split("/", 1)
        if len(parts) != 2 or f"*/{parts[1]}" not in owned:
            return False
    return True


def _url_covers(owned: str, wanted: str) -> bool:
    return owned == wanted or (owned.endswith("*") and wanted.startswith(owned.rstrip("*")))


def _urls_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    return all(any(_url_covers(o, w) for o in owned) for w in wanted)


def rule_covers(owner: PolicyRule, piece: PolicyRule) -> bool:
    """kube's ruleCovers: `owner` grants everything `piece` (one broken-down rule) does."""
    owner_verbs, owner_groups = _strings(owner, "verbs"), _strings(owner, "apiGroups")
    owner_names = _strings(owner, "resourceNames")
    piece_names = _strings(piece, "resourceNames")
    if piece_names:
        names_match = not owner_names or _has_all(owner_names, piece_names)
    else:
        names_match = not owner_names
    return ((ALL in owner_verbs or _has_all(owner_verbs, _strings(piece, "verbs")))
            and (ALL in owner_groups or _has_all(owner_groups, _strings(piece, "apiGroups")))
            and _resources_cover(_strings(owner, "resources"), _strings(piece, "resources"))
            and _urls_cover(_strings(owner, "nonResourceURLs"),
                            _strings(piece, "nonResourceURLs"))
            and names_match)


def uncovered(owned: Iterable[PolicyRule],
              granted: Iterable[PolicyRule]) -> list[dict[str, list[str]]]:
    """The pieces of `granted` that no rule of `owned` covers (kube's Covers)."""
    owner_rules = list(owned)
    return [piece for rule in granted for piece in breakdown(rule)
            if not any(rule_covers(owner, piece) for owner in owner_rules)]


def compact(rules: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    """kube's CompactRules: rules of one group, one resource and at most one name merged
    into one rule with all their verbs; the others as they are."""
    merged: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    others: list[dict[str, list[str]]] = []
    for rule in rules:
        groups, resources = rule.get("apiGroups", []), rule.get("resources", [])
        names = rule.get("resourceNames", [])
        if rule.get("nonResourceURLs") or len(groups) != 1 or len(resources) != 1 \
                or len(names) > 1:
            others.append(rule)
            continue
        key = (groups[0], resources[0], names[0] if names else "")
        if key in merged:
            merged[key]["verbs"] = [*merged[key]["verbs"], *rule.get("verbs", [])]
        else:
            merged[key] = {field: list(values) for field, values in rule.items()}
    return [*others, *merged.values()]


def _go_quoted(values: Sequence[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def compact_string(rule: Mapping[str, Sequence[str]]) -> str:
    """rbacv1helpers.CompactString: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`."""
    parts = [f"{label}:{_go_quoted(rule[field])}" for field, label in (
        ("apiGroups", "APIGroups"), ("resources", "Resources"),
        ("nonResourceURLs", "NonResourceURLs"), ("resourceNames", "ResourceNames"),
        ("verbs", "Verbs")) if rule.get(field)]
    return "{" + ", ".join(parts) + "}"


def escalation_error(user_name: str, groups: Sequence[str],
                     missing: list[dict[str, list[str]]], resolution_errors: list[str]) -> str:
    """ConfirmNoEscalation's message for rules the user does not hold."""
    descriptions = sorted({compact_string(rule) for rule in compact(missing)})
    message = (f"user {json.dumps(user_name, ensure_ascii=False)} "
               f"(groups={_go_quoted(groups)}) is attempting to grant RBAC permissions not "
               "currently held:\n" + "\n".join(descriptions))
    if resolution_errors:
        joined = " ".join(resolution_errors)  # Go's %v of a []error
        message += f"; resolution errors: [{joined}]"
    return message
