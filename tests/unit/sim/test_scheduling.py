"""The simulated scheduler filters, scores and words failures like kube-scheduler."""

from typing import Any

import pytest

from devcluster.sim.scheduling import pod_requests, schedule, untolerated_taint_reason


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    ready: str = "True",
    unschedulable: bool = False,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def pod(
    name: str = "p",
    *,
    cpu: str = "100m",
    memory: str = "128Mi",
    node_name: str | None = None,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
        **spec,
    }
    if node_name:
        body["nodeName"] = node_name
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": name, "labels": labels or {}},
        "spec": body,
        "status": {"phase": "Running" if node_name else "Pending"},
    }


def test_picks_least_allocated_node() -> None:
    busy = pod("busy", cpu="3", memory="6Gi", node_name="a")
    result = schedule(pod(), [node("a"), node("b")], [busy])
    assert result.node_name == "b"


def test_ties_break_by_node_name() -> None:
    assert schedule(pod(), [node("b"), node("a")], []).node_name == "a"


def test_fit_error_message_matches_kube_wording() -> None:
    nodes = [node("a", cpu="1"), node("b", labels={}), node("c")]
    wanted = pod(cpu="2", nodeSelector={"zone": "x"})
    nodes[0]["metadata"]["labels"]["zone"] = "x"
    result = schedule(wanted, nodes, [])
    assert result.node_name is None
    assert result.message == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
        "affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful "
        "for scheduling."
    )


def test_resource_shortage_without_victims_reports_no_victims() -> None:
    nodes = [node("a", cpu="1")]
    result = schedule(pod(cpu="800m"), nodes, [pod("x", cpu="500m", node_name="a")])
    assert result.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."
    )


def test_histogram_sorts_strings_like_go() -> None:
    nodes = [node(f"n{i:02d}", cpu="1") for i in range(10)] + [node("z", unschedulable=True)] * 1
    nodes += [node(f"u{i}", unschedulable=True) for i in range(1)]
    result = schedule(pod(cpu="2"), nodes, [])
    # "10 Insufficient cpu" sorts before "2 node(s)..." byte-wise.
    assert result.message.startswith(
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable."
    )


def test_unreachable_node_reports_untolerated_taint() -> None:
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}
    result = schedule(pod(), [node("a", taints=[taint])], [])
    assert "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }" in result.message
    assert untolerated_taint_reason({"key": "k", "value": "v"}) == (
        "node(s) had untolerated taint {k: v}"
    )


def test_not_ready_node_without_taint_is_still_avoided() -> None:
    result = schedule(pod(), [node("a", ready="Unknown"), node("b")], [])
    assert result.node_name == "b"


def test_toleration_allows_tainted_node() -> None:
    taint = {"key": "dedicated", "value": "vm", "effect": "NoSchedule"}
    tolerating = pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "vm"}])
    assert schedule(tolerating, [node("a", taints=[taint])], []).node_name == "a"


def test_prefer_no_schedule_taint_lowers_score() -> None:
    soft = {"key": "maintenance", "effect": "PreferNoSchedule"}
    assert schedule(pod(), [node("a", taints=[soft]), node("b")], []).node_name == "b"


def test_cordoned_node_is_unschedulable() -> None:
    result = schedule(pod(), [node("a", unschedulable=True)], [])
    assert result.message.startswith("0/1 nodes are available: 1 node(s) were unschedulable.")


@pytest.mark.parametrize(
    ("operator", "values", "fits"),
    [
        ("In", ["x"], True),
        ("NotIn", ["x"], False),
        ("Exists", [], True),
        ("DoesNotExist", [], False),
        ("Gt", ["3"], True),
        ("Lt", ["3"], False),
    ],
)
def test_required_node_affinity_operators(operator: str, values: list[str], fits: bool) -> None:
    labels = (
        {"zone": "x"} if operator in ("In", "NotIn", "Exists", "DoesNotExist") else {"zone": "5"}
    )
    requirement: dict[str, Any] = {"key": "zone", "operator": operator}
    if values:
        requirement["values"] = values
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [requirement]}]
            }
        }
    }
    result = schedule(pod(affinity=affinity), [node("a", labels=labels)], [])
    assert (result.node_name == "a") is fits


def test_match_fields_metadata_name_prefilters_other_nodes() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    result = schedule(pod(affinity=affinity, cpu="8"), [node("a"), node("b")], [])
    assert result.message.startswith(
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't satisfy plugin(s) "
        "[NodeAffinity]."
    )
    assert schedule(pod(affinity=affinity), [node("a"), node("b")], []).node_name == "a"


def test_preferred_node_affinity_wins_over_spread() -> None:
    affinity = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]},
                }
            ]
        }
    }
    nodes = [node("a"), node("b", labels={"ssd": "true"})]
    busy = pod("busy", cpu="1", node_name="b")
    assert schedule(pod(affinity=affinity), nodes, [busy]).node_name == "b"


def anti_affinity(required: bool) -> dict[str, Any]:
    term = {
        "labelSelector": {"matchLabels": {"app": "db"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    if required:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    }


def test_required_pod_anti_affinity_blocks_same_host() -> None:
    existing = pod("db-0", node_name="a", labels={"app": "db"})
    incoming = pod("db-1", labels={"app": "db"}, affinity=anti_affinity(True))
    result = schedule(incoming, [node("a")], [existing])
    assert "1 node(s) didn't match pod anti-affinity rules" in result.message
    assert "1 No preemption victims found for incoming pod" in result.message


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    existing = pod("db-0", node_name="a", labels={"app": "db"}, affinity=anti_affinity(True))
    incoming = pod("db-1", labels={"app": "db"})
    result = schedule(incoming, [node("a"), node("b")], [existing])
    assert result.node_name == "b"


def test_anti_affinity_ignores_other_namespaces() -> None:
    existing = pod("db-0", node_name="a", labels={"app": "db"}, namespace="other")
    incoming = pod("db-1", labels={"app": "db"}, affinity=anti_affinity(True))
    assert schedule(incoming, [node("a")], [existing]).node_name == "a"


def test_preferred_anti_affinity_spreads() -> None:
    existing = pod("db-0", node_name="a", labels={"app": "db"})
    incoming = pod("db-1", labels={"app": "db"}, affinity=anti_affinity(False))
    assert schedule(incoming, [node("a"), node("b")], [existing]).node_name == "b"


def test_required_pod_affinity_follows_peer_and_allows_first_pod() -> None:
    term = {
        "labelSelector": {"matchLabels": {"app": "web"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    peer = pod("web-0", node_name="b", labels={"app": "web"})
    follower = pod("web-1", labels={"app": "web"}, affinity=affinity)
    assert schedule(follower, [node("a"), node("b")], [peer]).node_name == "b"
    assert schedule(follower, [node("a")], []).node_name == "a"
    stranger = pod("other", affinity=affinity)
    assert "didn't match pod affinity rules" in schedule(stranger, [node("a")], []).message


def test_terminal_pods_free_their_resources() -> None:
    finished = pod("done", cpu="4", node_name="a")
    finished["status"]["phase"] = "Succeeded"
    assert schedule(pod(cpu="3"), [node("a")], [finished]).node_name == "a"


def test_too_many_pods() -> None:
    result = schedule(pod(), [node("a", pods="1")], [pod("x", node_name="a")])
    assert "1 Too many pods" in result.message


def test_extended_resources_must_be_allocatable() -> None:
    wanting = pod()
    wanting["spec"]["containers"][0]["resources"]["limits"] = {"devices.kubevirt.io/kvm": "1"}
    result = schedule(wanting, [node("a")], [])
    assert "1 Insufficient devices.kubevirt.io/kvm" in result.message


def test_pod_requests_include_init_peak_and_sidecars() -> None:
    body = pod(cpu="100m", memory="100Mi")
    body["spec"]["initContainers"] = [
        {"name": "init", "resources": {"requests": {"cpu": "1"}}},
        {"name": "log", "restartPolicy": "Always", "resources": {"requests": {"cpu": "5m"}}},
    ]
    assert pod_requests(body)["cpu"] == 1000
    body["spec"]["initContainers"].reverse()
    assert pod_requests(body)["cpu"] == 1005


def test_no_nodes() -> None:
    assert schedule(pod(), [], []).message == "no nodes available to schedule pods"


def test_preemption_policy_never_message() -> None:
    result = schedule(pod(cpu="9", preemptionPolicy="Never"), [node("a")], [])
    assert result.message.endswith("preemption: not eligible due to preemptionPolicy=Never.")


def test_inputs_are_not_mutated() -> None:
    nodes = [node("a", ready="False")]
    before = repr(nodes)
    schedule(pod(), nodes, [])
    assert repr(nodes) == before
