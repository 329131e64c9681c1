"""kube-scheduler's decision for one pod, as a pure function over API objects.

Filters run per node in the default plugin order (NodeUnschedulable, TaintToleration,
NodeAffinity, NodeResourcesFit, InterPodAffinity); the first failing filter gives the
node's reason, as the framework stops at the first non-success status. Feasible nodes
are scored with the default score plugins and weights (NodeResourcesFit least-allocated
1, NodeResourcesBalancedAllocation 1, TaintToleration 3, NodeAffinity 2, InterPodAffinity
2); ties go to the node whose name sorts first (kube picks one at random).

A failure message is worded like kube's `FitError.Error()` (pkg/scheduler/framework/
types.go): "0/N nodes are available: <count> <reason>, ... ." with the "<count> <reason>"
strings sorted as Go's `sort.Strings` sorts them, then the DefaultPreemption PostFilter
message. Preemption itself is not simulated: nodes failing only on resources or
anti-affinity are reported "No preemption victims found for incoming pod".

Nodes whose Ready condition is False or Unknown are treated as carrying the
`node.kubernetes.io/not-ready` / `unreachable` NoSchedule taints even before the node
lifecycle controller has added them (it does within one 5 s monitor period).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubekit.quantity import to_bytes, to_millis

Obj = Mapping[str, Any]

MAX_NODE_SCORE = 100
# Non-zero defaults the scheduler assumes for containers without requests when scoring
# (pkg/scheduler/util/pod_resources.go).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

REASON_UNSCHEDULABLE_NODE = "node(s) were unschedulable"
REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_NODE_AFFINITY_PREFILTER = "node(s) didn't satisfy plugin(s) [NodeAffinity]"
REASON_POD_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_POD_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
REASON_TOO_MANY_PODS = "Too many pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod"
NO_NODES_AVAILABLE = "no nodes available to schedule pods"

TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"

_TERMINAL_POD_PHASES = frozenset({"Succeeded", "Failed"})
_WEIGHT_FIT = 1
_WEIGHT_BALANCED = 1
_WEIGHT_TAINT = 3
_WEIGHT_NODE_AFFINITY = 2
_WEIGHT_POD_AFFINITY = 2


@dataclass(frozen=True)
class ScheduleResult:
    """The chosen node, or None with the FitError message for the PodScheduled condition."""

    node_name: str | None
    message: str = ""
    scores: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _NodeStatus:
    reasons: tuple[str, ...]
    # UnschedulableAndUnresolvable: preemption cannot help on this node.
    unresolvable: bool


def untolerated_taint_reason(taint: Obj) -> str:
    """TaintToleration's filter reason for one taint: `node(s) had untolerated taint {k: v}`."""
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


def insufficient_reason(resource: str) -> str:
    return f"Insufficient {resource}"


# --- object accessors -------------------------------------------------------------------


def _labels(obj: Obj) -> Mapping[str, str]:
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace", "") or "default")


def _spec(obj: Obj) -> Obj:
    spec: Obj = obj.get("spec") or {}
    return spec


def node_ready_status(node: Obj) -> str:
    """Status of the node's Ready condition: "True", "False", "Unknown" (missing = "True")."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status", "Unknown"))
    return "True"


def effective_taints(node: Obj) -> list[Obj]:
    """The node's taints plus the NoSchedule taint its Ready condition implies."""
    taints: list[Obj] = list(_spec(node).get("taints") or [])
    ready = node_ready_status(node)
    implied = {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE}.get(ready)
    if implied and not any(
        t.get("key") == implied and t.get("effect") == "NoSchedule" for t in taints
    ):
        taints.append({"key": implied, "effect": "NoSchedule"})
    return taints


def toleration_tolerates(toleration: Obj, taint: Obj) -> bool:
    """v1.Toleration.ToleratesTaint: effect, key and operator (Exists/Equal) must match."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates(tolerations: Iterable[Obj], taint: Obj) -> bool:
    return any(toleration_tolerates(t, taint) for t in tolerations)


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in _TERMINAL_POD_PHASES


# --- selectors --------------------------------------------------------------------------


def _requirement_matches(labels: Mapping[str, str], requirement: Obj) -> bool:
    key = requirement.get("key", "")
    operator = requirement.get("operator", "")
    values = [str(v) for v in requirement.get("values") or []]
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            actual, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


def label_selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: nil selects nothing, {} selects everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_requirement_matches(labels, r) for r in selector.get("matchExpressions") or [])


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    """One NodeSelectorTerm: its expressions and fields are ANDed; an empty term matches none."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = _labels(node)
    if not all(_requirement_matches(labels, r) for r in expressions):
        return False
    node_fields = {"metadata.name": _name(node)}
    for requirement in fields:
        if requirement.get("key") not in node_fields:
            return False
        if not _requirement_matches(node_fields, requirement):
            return False
    return True


def _required_node_terms(pod: Obj) -> list[Obj] | None:
    node_affinity = (_spec(pod).get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    terms: list[Obj] = list(required.get("nodeSelectorTerms") or [])
    return terms


def pod_matches_node_selector_and_affinity(pod: Obj, node: Obj) -> bool:
    """nodeSelector (all pairs) AND required node affinity (terms ORed)."""
    labels = _labels(node)
    for key, value in (_spec(pod).get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    terms = _required_node_terms(pod)
    if terms is None:
        return True
    return any(node_selector_term_matches(term, node) for term in terms)


def _prefilter_node_names(pod: Obj) -> set[str] | None:
    """NodeAffinity PreFilter: when every required term pins `metadata.name In`, only those
    nodes are evaluated; others get the "didn't satisfy plugin(s) [NodeAffinity]" status."""
    terms = _required_node_terms(pod)
    if not terms:
        return None
    names: set[str] = set()
    for term in terms:
        term_names: set[str] | None = None
        for requirement in term.get("matchFields") or []:
            if requirement.get("key") == "metadata.name" and requirement.get("operator") == "In":
                values = {str(v) for v in requirement.get("values") or []}
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names |= term_names
    return names


# --- resources --------------------------------------------------------------------------


def _amount(resource: str, quantity: str) -> int:
    """A request in millicores (cpu) or base units (parsing is cached by kubekit.quantity)."""
    return to_millis(quantity) if resource == "cpu" else to_bytes(quantity)


def _container_requests(container: Obj) -> dict[str, int]:
    resources = container.get("resources") or {}
    # The API server defaults requests to limits when only limits are given.
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {resource: _amount(resource, str(quantity)) for resource, quantity in merged.items()}


def _add(total: dict[str, int], extra: Mapping[str, int]) -> None:
    for resource, amount in extra.items():
        total[resource] = total.get(resource, 0) + amount


def pod_requests(pod: Obj, *, non_zero: bool = False) -> dict[str, int]:
    """Effective pod requests (cpu in millicores, others in base units).

    Sum of app containers and restartable (sidecar) init containers, at least the largest
    regular init container, plus spec.overhead (component-helpers resource.PodRequests).
    With `non_zero`, containers lacking cpu/memory requests count as 100m / 200Mi.
    """
    spec = _spec(pod)

    def requests_of(container: Obj) -> dict[str, int]:
        requests = _container_requests(container)
        if non_zero:
            requests.setdefault("cpu", DEFAULT_MILLI_CPU_REQUEST)
            requests.setdefault("memory", DEFAULT_MEMORY_REQUEST)
        return requests

    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        _add(total, requests_of(container))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for init in spec.get("initContainers") or []:
        requests = requests_of(init)
        if init.get("restartPolicy") == "Always":
            _add(sidecars, requests)
            continue
        # A regular init container runs alongside the sidecars started before it.
        running = dict(sidecars)
        _add(running, requests)
        for resource, amount in running.items():
            init_peak[resource] = max(init_peak.get(resource, 0), amount)
    _add(total, sidecars)
    for resource, amount in init_peak.items():
        total[resource] = max(total.get(resource, 0), amount)
    overhead = spec.get("overhead") or {}
    _add(total, _container_requests({"resources": {"requests": overhead}}))
    return total


def _allocatable(node: Obj) -> dict[str, int]:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    result: dict[str, int] = {}
    for resource, quantity in allocatable.items():
        result[resource] = to_millis(quantity) if resource == "cpu" else to_bytes(quantity)
    return result


# --- inter-pod affinity -----------------------------------------------------------------


@dataclass(frozen=True)
class _BoundPod:
    pod: Obj
    node: Obj


def _term_namespaces_match(
    term: Obj,
    owner: Obj,
    candidate: Obj,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    namespaces = term.get("namespaces") or []
    selector = term.get("namespaceSelector")
    candidate_ns = _namespace(candidate)
    if not namespaces and selector is None:
        return candidate_ns == _namespace(owner)
    if candidate_ns in namespaces:
        return True
    return selector is not None and label_selector_matches(
        selector, namespace_labels.get(candidate_ns, {})
    )


def _term_matches_pod(
    term: Obj, owner: Obj, candidate: Obj, namespace_labels: Mapping[str, Mapping[str, str]]
) -> bool:
    return _term_namespaces_match(term, owner, candidate, namespace_labels) and (
        label_selector_matches(term.get("labelSelector"), _labels(candidate))
    )


def _same_domain(node_a: Obj, node_b: Obj, topology_key: str) -> bool:
    a, b = _labels(node_a), _labels(node_b)
    return topology_key in a and topology_key in b and a[topology_key] == b[topology_key]


def _affinity_terms(pod: Obj, kind: str, mode: str) -> list[Obj]:
    section = (_spec(pod).get("affinity") or {}).get(kind) or {}
    return list(section.get(mode) or [])


_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _pod_affinity_fails(
    pod: Obj, node: Obj, bound: Sequence[_BoundPod], ns_labels: Mapping[str, Mapping[str, str]]
) -> str | None:
    affinity_terms = _affinity_terms(pod, "podAffinity", _REQUIRED)
    if affinity_terms:
        satisfied = all(
            any(
                _same_domain(b.node, node, term.get("topologyKey", ""))
                and _term_matches_pod(term, pod, b.pod, ns_labels)
                for b in bound
            )
            for term in affinity_terms
        )
        if not satisfied:
            # The first pod of a group may land anywhere its own terms would match itself,
            # provided no pod in the cluster matches the terms yet.
            any_match = any(
                _term_matches_pod(term, pod, b.pod, ns_labels)
                for term in affinity_terms
                for b in bound
            )
            self_match = all(_term_matches_pod(t, pod, pod, ns_labels) for t in affinity_terms)
            node_labels = _labels(node)
            topology_present = all(t.get("topologyKey", "") in node_labels for t in affinity_terms)
            if any_match or not self_match or not topology_present:
                return REASON_POD_AFFINITY
    for term in _affinity_terms(pod, "podAntiAffinity", _REQUIRED):
        for b in bound:
            if _same_domain(b.node, node, term.get("topologyKey", "")) and _term_matches_pod(
                term, pod, b.pod, ns_labels
            ):
                return REASON_POD_ANTI_AFFINITY
    for b in bound:
        for term in _affinity_terms(b.pod, "podAntiAffinity", _REQUIRED):
            if _same_domain(b.node, node, term.get("topologyKey", "")) and _term_matches_pod(
                term, b.pod, pod, ns_labels
            ):
                return REASON_EXISTING_ANTI_AFFINITY
    return None


def _pod_affinity_raw_score(
    pod: Obj, node: Obj, bound: Sequence[_BoundPod], ns_labels: Mapping[str, Mapping[str, str]]
) -> int:
    score = 0
    for sign, kind in ((1, "podAffinity"), (-1, "podAntiAffinity")):
        for weighted in _affinity_terms(pod, kind, _PREFERRED):
            term = weighted.get("podAffinityTerm") or {}
            for b in bound:
                if _same_domain(b.node, node, term.get("topologyKey", "")) and _term_matches_pod(
                    term, pod, b.pod, ns_labels
                ):
                    score += sign * int(weighted.get("weight", 0))
        # Symmetry: existing pods' preferred terms that select the incoming pod.
        for b in bound:
            for weighted in _affinity_terms(b.pod, kind, _PREFERRED):
                term = weighted.get("podAffinityTerm") or {}
                if _same_domain(b.node, node, term.get("topologyKey", "")) and _term_matches_pod(
                    term, b.pod, pod, ns_labels
                ):
                    score += sign * int(weighted.get("weight", 0))
    return score


# --- the scheduling cycle ---------------------------------------------------------------


def _filter_node(
    pod: Obj,
    node: Obj,
    requested: Mapping[str, int],
    pod_count: int,
    bound: Sequence[_BoundPod],
    ns_labels: Mapping[str, Mapping[str, str]],
) -> _NodeStatus | None:
    tolerations = list(_spec(pod).get("tolerations") or [])
    if _spec(node).get("unschedulable") and not tolerates(
        tolerations, {"key": TAINT_UNSCHEDULABLE, "effect": "NoSchedule"}
    ):
        return _NodeStatus((REASON_UNSCHEDULABLE_NODE,), unresolvable=True)
    for taint in effective_taints(node):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return _NodeStatus((untolerated_taint_reason(taint),), unresolvable=True)
    if not pod_matches_node_selector_and_affinity(pod, node):
        return _NodeStatus((REASON_NODE_AFFINITY,), unresolvable=True)

    allocatable = _allocatable(node)
    wanted = pod_requests(pod)
    reasons: list[str] = []
    unresolvable = False
    if pod_count + 1 > allocatable.get("pods", 0):
        reasons.append(REASON_TOO_MANY_PODS)
    core = ("cpu", "memory", "ephemeral-storage")
    ordered = [*core, *sorted(r for r in wanted if r not in (*core, "pods"))]
    for resource in ordered:
        amount = wanted.get(resource, 0)
        if amount <= 0:
            continue
        capacity = allocatable.get(resource, 0)
        if amount > capacity - requested.get(resource, 0):
            reasons.append(insufficient_reason(resource))
            # A request larger than the whole node cannot be fixed by evicting pods.
            unresolvable = unresolvable or amount > capacity
    if reasons:
        return _NodeStatus(tuple(reasons), unresolvable=unresolvable)

    affinity_reason = _pod_affinity_fails(pod, node, bound, ns_labels)
    if affinity_reason is not None:
        return _NodeStatus((affinity_reason,), unresolvable=affinity_reason == REASON_POD_AFFINITY)
    return None


def _histogram(statuses: Iterable[Sequence[str]]) -> str:
    counts: dict[str, int] = {}
    for reasons in statuses:
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
    # Go sorts the formatted "<count> <reason>" strings byte-wise, count prefix included.
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))


def fit_error_message(pod: Obj, statuses: Mapping[str, _NodeStatus]) -> str:
    total = len(statuses)
    message = f"0/{total} nodes are available: {_histogram(s.reasons for s in statuses.values())}."
    if _spec(pod).get("preemptionPolicy") == "Never":
        return f"{message} preemption: not eligible due to preemptionPolicy=Never."
    preemption = _histogram(
        (PREEMPTION_NOT_HELPFUL if s.unresolvable else PREEMPTION_NO_VICTIMS,)
        for s in statuses.values()
    )
    return f"{message} preemption: 0/{total} nodes are available: {preemption}."


def _least_allocated(requested: Mapping[str, int], allocatable: Mapping[str, int]) -> int:
    scores = []
    for resource in ("cpu", "memory"):
        capacity = allocatable.get(resource, 0)
        used = requested.get(resource, 0)
        if capacity == 0 or used > capacity:
            scores.append(0)
        else:
            scores.append((capacity - used) * MAX_NODE_SCORE // capacity)
    return sum(scores) // len(scores)


def _balanced(requested: Mapping[str, int], allocatable: Mapping[str, int]) -> int:
    fractions = []
    for resource in ("cpu", "memory"):
        capacity = allocatable.get(resource, 0)
        fractions.append(min(1.0, requested.get(resource, 0) / capacity) if capacity else 1.0)
    deviation = abs(fractions[0] - fractions[1]) / 2
    return int((1 - deviation) * MAX_NODE_SCORE)


def _normalize(raw: Mapping[str, int], *, reverse: bool = False) -> dict[str, int]:
    """helper.DefaultNormalizeScore: scale to 0..100 by the maximum; optionally reversed."""
    highest = max(raw.values(), default=0)
    if highest == 0:
        return {n: MAX_NODE_SCORE if reverse else 0 for n in raw}
    scaled = {n: v * MAX_NODE_SCORE // highest for n, v in raw.items()}
    return {n: MAX_NODE_SCORE - v for n, v in scaled.items()} if reverse else scaled


def _normalize_min_max(raw: Mapping[str, int]) -> dict[str, int]:
    if not raw:
        return {}
    low, high = min(raw.values()), max(raw.values())
    if high == low:
        return dict.fromkeys(raw, 0)
    return {n: (v - low) * MAX_NODE_SCORE // (high - low) for n, v in raw.items()}


def schedule(
    pod: Obj,
    nodes: Sequence[Obj],
    pods_on_nodes: Iterable[Obj],
    *,
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> ScheduleResult:
    """Pick a node for `pod` the way kube-scheduler's default profile would.

    `pods_on_nodes` are the pods already bound (spec.nodeName set); terminal pods
    (Succeeded/Failed) free their resources, terminating ones still hold them.
    `namespace_labels` maps namespace name to labels, for affinity namespaceSelectors.
    """
    if not nodes:
        return ScheduleResult(None, NO_NODES_AVAILABLE)
    ns_labels = namespace_labels or {}
    nodes_by_name = {_name(n): n for n in nodes}
    pod_uid = (pod.get("metadata") or {}).get("uid")
    bound: list[_BoundPod] = []
    requested: dict[str, dict[str, int]] = {name: {} for name in nodes_by_name}
    non_zero: dict[str, dict[str, int]] = {name: {} for name in nodes_by_name}
    counts: dict[str, int] = dict.fromkeys(nodes_by_name, 0)
    for other in pods_on_nodes:
        node_name = _spec(other).get("nodeName")
        if node_name not in nodes_by_name or is_terminal(other):
            continue
        if pod_uid and (other.get("metadata") or {}).get("uid") == pod_uid:
            continue
        bound.append(_BoundPod(other, nodes_by_name[node_name]))
        _add(requested[node_name], pod_requests(other))
        _add(non_zero[node_name], pod_requests(other, non_zero=True))
        counts[node_name] += 1

    allowed = _prefilter_node_names(pod)
    statuses: dict[str, _NodeStatus] = {}
    feasible: list[str] = []
    for name in sorted(nodes_by_name):
        if allowed is not None and name not in allowed:
            statuses[name] = _NodeStatus((REASON_NODE_AFFINITY_PREFILTER,), unresolvable=True)
            continue
        status = _filter_node(
            pod, nodes_by_name[name], requested[name], counts[name], bound, ns_labels
        )
        if status is None:
            feasible.append(name)
        else:
            statuses[name] = status
    if not feasible:
        return ScheduleResult(None, fit_error_message(pod, statuses))

    incoming = pod_requests(pod, non_zero=True)
    tolerations = [
        t
        for t in _spec(pod).get("tolerations") or []
        if t.get("effect") in (None, "", "PreferNoSchedule")
    ]
    preferred = ((_spec(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(_PREFERRED) or []
    fit: dict[str, int] = {}
    balanced: dict[str, int] = {}
    taint_raw: dict[str, int] = {}
    node_affinity_raw: dict[str, int] = {}
    pod_affinity_raw: dict[str, int] = {}
    for name in feasible:
        node = nodes_by_name[name]
        allocatable = _allocatable(node)
        total = dict(non_zero[name])
        _add(total, incoming)
        fit[name] = _least_allocated(total, allocatable)
        balanced[name] = _balanced(total, allocatable)
        taint_raw[name] = sum(
            1
            for taint in effective_taints(node)
            if taint.get("effect") == "PreferNoSchedule" and not tolerates(tolerations, taint)
        )
        node_affinity_raw[name] = sum(
            int(term.get("weight", 0))
            for term in preferred
            if node_selector_term_matches(term.get("preference") or {}, node)
        )
        pod_affinity_raw[name] = _pod_affinity_raw_score(pod, node, bound, ns_labels)
    taint_scores = _normalize(taint_raw, reverse=True)
    node_affinity_scores = _normalize(node_affinity_raw)
    pod_affinity_scores = _normalize_min_max(pod_affinity_raw)
    scores = {
        name: _WEIGHT_FIT * fit[name]
        + _WEIGHT_BALANCED * balanced[name]
        + _WEIGHT_TAINT * taint_scores[name]
        + _WEIGHT_NODE_AFFINITY * node_affinity_scores[name]
        + _WEIGHT_POD_AFFINITY * pod_affinity_scores[name]
        for name in feasible
    }
    best = min(feasible, key=lambda n: (-scores[n], n))
    return ScheduleResult(best, "", scores)
