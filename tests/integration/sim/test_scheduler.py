"""Pods are scheduled onto hosts and run there; unschedulable pods say why."""

from __future__ import annotations

import ipaddress

import pytest

from tests.harness import DevCluster

from .helpers import apply, busybox_pod, condition, get_json

pytestmark = pytest.mark.kubectl


def test_busybox_pod_runs_with_an_ip(datacenter: DevCluster) -> None:
    apply(datacenter, busybox_pod("web"))
    datacenter.kubectl("wait", "pod/web", "--for=condition=Ready", "--timeout=30s")
    pod = get_json(datacenter, "pod", "web")
    node = get_json(datacenter, "node", pod["spec"]["nodeName"])
    assert pod["status"]["phase"] == "Running"
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(
        node["spec"]["podCIDR"])
    assert pod["status"]["hostIP"] == node["status"]["addresses"][0]["address"]
    assert pod["status"]["startTime"]
    for type_ in ("Initialized", "Ready", "ContainersReady", "PodScheduled"):
        assert condition(pod, type_)["status"] == "True"
    [container] = pod["status"]["containerStatuses"]
    assert container["ready"] is True and "running" in container["state"]
    events = datacenter.kubectl("get", "events", "--field-selector",
                                "involvedObject.name=web,reason=Scheduled").stdout
    assert f"Successfully assigned default/web to {node['metadata']['name']}" in events
    datacenter.kubectl("delete", "pod", "web", "--timeout=30s")
    assert "NotFound" in datacenter.kubectl("get", "pod", "web", check=False).stderr


def test_unschedulable_pod_reports_why(datacenter: DevCluster) -> None:
    apply(datacenter, busybox_pod("huge", cpu="64"))
    datacenter.kubectl("wait", "pod/huge", "--for=condition=PodScheduled=False",
                       "--timeout=30s")
    scheduled = condition(get_json(datacenter, "pod", "huge"), "PodScheduled")
    assert scheduled["reason"] == "Unschedulable"
    assert scheduled["message"].startswith("0/3 nodes are available: 3 Insufficient cpu.")
    described = datacenter.kubectl("describe", "pod", "huge").stdout
    assert "FailedScheduling" in described
    assert "Insufficient cpu" in described
    datacenter.kubectl("delete", "pod", "huge", "--timeout=30s")


def test_node_selector_and_anti_affinity_place_pods(datacenter: DevCluster) -> None:
    apply(datacenter, busybox_pod("pinned", spec_extra="""
  nodeSelector: {kubernetes.io/hostname: host-2}
"""))
    anti = """
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector: {matchLabels: {tier: spread}}
"""
    for name in ("spread-1", "spread-2", "spread-3"):
        manifest = busybox_pod(name, spec_extra=anti).replace(
            f"labels: {{app: {name}}}", "labels: {tier: spread}")
        apply(datacenter, manifest)
    apply(datacenter, busybox_pod("spread-4", spec_extra=anti).replace(
        "labels: {app: spread-4}", "labels: {tier: spread}"))
    datacenter.kubectl("wait", "pod/pinned", "pod/spread-1", "pod/spread-2", "pod/spread-3",
                       "--for=condition=Ready", "--timeout=30s")
    assert get_json(datacenter, "pod", "pinned")["spec"]["nodeName"] == "host-2"
    spread = get_json(datacenter, "pods", "-l", "tier=spread")["items"]
    nodes = [p["spec"].get("nodeName") for p in spread if p["spec"].get("nodeName")]
    assert sorted(nodes) == ["host-1", "host-2", "host-3"], "one spread pod per host"
    datacenter.kubectl("wait", "pod/spread-4", "--for=condition=PodScheduled=False",
                       "--timeout=30s")
    message = condition(get_json(datacenter, "pod", "spread-4"), "PodScheduled")["message"]
    assert "3 node(s) didn't match pod anti-affinity rules" in message
    # A freed host lets the waiting pod in: the scheduler retries when pods change.
    datacenter.kubectl("delete", "pod", "spread-1", "--timeout=30s")
    datacenter.kubectl("wait", "pod/spread-4", "--for=condition=Ready", "--timeout=30s")
    datacenter.kubectl("delete", "pods", "-l", "tier=spread", "--timeout=30s")
    datacenter.kubectl("delete", "pod", "pinned", "--timeout=30s")


def test_claims_are_provisioned_for_their_pods(datacenter: DevCluster) -> None:
    classes = {c["metadata"]["name"]: c for c in get_json(datacenter, "storageclass")["items"]}
    standard, shared = classes["standard"], classes["shared"]
    assert standard["metadata"]["annotations"][
        "storageclass.kubernetes.io/is-default-class"] == "true"
    assert standard["volumeBindingMode"] == "WaitForFirstConsumer"
    assert shared["volumeBindingMode"] == "Immediate"
    apply(datacenter, """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: disk}
spec:
  storageClassName: shared
  accessModes: [ReadWriteMany]
  volumeMode: Block
  resources: {requests: {storage: 10Gi}}
""")
    datacenter.kubectl("wait", "pvc/disk", "--for=jsonpath={.status.phase}=Bound",
                       "--timeout=30s")
    assert get_json(datacenter, "pvc", "data")["status"]["phase"] == "Pending"
    apply(datacenter, busybox_pod("consumer", spec_extra="""
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
"""))
    datacenter.kubectl("wait", "pod/consumer", "--for=condition=Ready", "--timeout=30s")
    claim = get_json(datacenter, "pvc", "data")
    node = get_json(datacenter, "pod", "consumer")["spec"]["nodeName"]
    assert claim["status"]["phase"] == "Bound"
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    volume = get_json(datacenter, "pv", claim["spec"]["volumeName"])
    terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [node]
    shared = get_json(datacenter, "pv", get_json(datacenter, "pvc", "disk")["spec"]["volumeName"])
    assert shared["spec"]["accessModes"] == ["ReadWriteMany"]
    datacenter.kubectl("delete", "pod", "consumer", "--timeout=30s")
    datacenter.kubectl("delete", "pvc", "data", "disk", "--timeout=30s")
    datacenter.kubectl("wait", f"pv/{volume['metadata']['name']}", "--for=delete",
                       "--timeout=30s")
