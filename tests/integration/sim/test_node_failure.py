"""Host failure as Kubernetes handles it: NotReady after the grace period, taints,
non-graceful shutdown with the out-of-service taint, and recovery on power-on."""

from __future__ import annotations

import pytest

from tests.harness import DevCluster

from .helpers import apply, busybox_pod, condition, get_json

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

ON_HOST_1 = """
  nodeSelector: {kubernetes.io/hostname: host-1}
"""


def taint_keys(cluster: DevCluster, node: str) -> set[tuple[str, str]]:
    taints = get_json(cluster, "node", node)["spec"].get("taints") or []
    return {(t["key"], t["effect"]) for t in taints}


def test_powered_off_host_fails_and_comes_back(datacenter: DevCluster) -> None:
    apply(datacenter, busybox_pod("victim", spec_extra=ON_HOST_1))
    apply(datacenter, busybox_pod("doomed", spec_extra=ON_HOST_1))
    datacenter.kubectl("wait", "pod/victim", "pod/doomed", "--for=condition=Ready",
                       "--timeout=30s")

    datacenter.kubectl("annotate", "node", "host-1", "sim.vdcos.io/power=off")
    # Deleted while the host is off: the kubelet is not there to finish it.
    datacenter.kubectl("delete", "pod", "doomed", "--wait=false")
    datacenter.kubectl("wait", "node/host-1", "--for=condition=Ready=Unknown", "--timeout=30s")
    ready = condition(get_json(datacenter, "node", "host-1"), "Ready")
    assert ready["reason"] == "NodeStatusUnknown"
    assert ready["message"] == "Kubelet stopped posting node status."
    datacenter.kubectl("wait", "node/host-1", "--timeout=30s",
                       "--for=jsonpath={.spec.taints[?(@.effect==\"NoExecute\")].key}"
                       "=node.kubernetes.io/unreachable")
    assert ("node.kubernetes.io/unreachable", "NoSchedule") in taint_keys(datacenter, "host-1")
    assert "NotReady" in datacenter.kubectl("get", "node", "host-1").stdout
    datacenter.kubectl("wait", "pod/victim", "--for=condition=Ready=False", "--timeout=30s")
    doomed = get_json(datacenter, "pod", "doomed")
    assert doomed["metadata"]["deletionTimestamp"], "still Terminating on the dead host"

    # New pods avoid the dead host.
    apply(datacenter, busybox_pod("newcomer"))
    datacenter.kubectl("wait", "pod/newcomer", "--for=condition=Ready", "--timeout=30s")
    assert get_json(datacenter, "pod", "newcomer")["spec"]["nodeName"] != "host-1"

    # Non-graceful node shutdown: the pods are force-deleted.
    datacenter.kubectl("taint", "node", "host-1",
                       "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute")
    datacenter.kubectl("wait", "pod/victim", "pod/doomed", "--for=delete", "--timeout=30s")

    datacenter.kubectl("taint", "node", "host-1", "node.kubernetes.io/out-of-service-")
    datacenter.kubectl("annotate", "node", "host-1", "sim.vdcos.io/power=on", "--overwrite")
    datacenter.kubectl("wait", "node/host-1", "--for=condition=Ready", "--timeout=30s")
    # A pod pinned to host-1 runs there once the unreachable NoSchedule taint is gone.
    apply(datacenter, busybox_pod("back", spec_extra=ON_HOST_1))
    datacenter.kubectl("wait", "pod/back", "--for=condition=Ready", "--timeout=30s")
    assert not {key for key, _ in taint_keys(datacenter, "host-1")} & {
        "node.kubernetes.io/unreachable", "node.kubernetes.io/out-of-service"}


def test_power_on_finishes_pods_deleted_meanwhile(datacenter: DevCluster) -> None:
    apply(datacenter, busybox_pod("sleeper", spec_extra="""
  nodeSelector: {kubernetes.io/hostname: host-3}
"""))
    datacenter.kubectl("wait", "pod/sleeper", "--for=condition=Ready", "--timeout=30s")
    datacenter.kubectl("annotate", "node", "host-3", "sim.vdcos.io/power=off")
    datacenter.kubectl("delete", "pod", "sleeper", "--wait=false")
    datacenter.kubectl("wait", "node/host-3", "--for=condition=Ready=Unknown", "--timeout=30s")
    assert get_json(datacenter, "pod", "sleeper")["metadata"]["deletionTimestamp"]
    datacenter.kubectl("annotate", "node", "host-3", "sim.vdcos.io/power=on", "--overwrite")
    datacenter.kubectl("wait", "pod/sleeper", "--for=delete", "--timeout=30s")
    datacenter.kubectl("wait", "node/host-3", "--for=condition=Ready", "--timeout=30s")
