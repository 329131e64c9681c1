"""VM NICs on DistributedPortGroups, end to end with kubectl: Multus bridge networks, the
port group's namespaceSelector, NIC hot-add and hot-remove, MACs that never change.

The operator runs as its own process (`vdcos run`) against `python -m devcluster`, so one
test can restart it. A DistributedSwitch over eth1 on every host carries the port groups;
their controller puts the NetworkAttachmentDefinitions in the namespaces they admit, and a
launcher pod runs only where the switch's bridge is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest

from tests.harness import DevCluster, start_devcluster
from tests.integration.conftest import apply_yaml, get_json, wait

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

TENANT_LABEL = "vdcos.io/tenant"
PORT_GROUP = "pg-web"


class Datacenter:
    """The API server with the simulated hosts, and the operator process (restartable)."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.operator: subprocess.Popen[bytes] | None = None
        self.starts = count(1)

    def start_operator(self) -> None:
        log = open(self.cluster.workdir / f"operator-{next(self.starts)}.log", "ab")  # noqa: SIM115
        self.operator = subprocess.Popen(
            [sys.executable, "-m", "controllers.cli", "run",
             "--kubeconfig", str(self.cluster.kubeconfig)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.cluster.workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.send_signal(signal.SIGTERM)
            self.operator.wait(timeout=30)
            self.operator = None


@pytest.fixture(scope="module")
def datacenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Datacenter]:
    cluster = start_devcluster(tmp_path_factory.mktemp("vm-nics"), "--hosts", "3",
                               "--node-grace-seconds", "3", "--node-status-seconds", "1",
                               "--migration-seconds", "0.5", "--nmstate-apply-seconds", "0.2",
                               "--nmstate-retry-seconds", "0.05")
    crds = subprocess.run([sys.executable, "-m", "controllers.cli", "crds"], check=True,
                          capture_output=True, text=True).stdout
    cluster.kubectl("apply", "-f", "-", stdin=crds)
    wait(cluster, "--for=condition=Established", "crd/virtualmachines.vdcos.io",
         "crd/distributedportgroups.vdcos.io", "crd/distributedswitches.vdcos.io")
    center = Datacenter(cluster)
    center.start_operator()
    apply_yaml(cluster, f"""
apiVersion: vdcos.io/v1alpha1
kind: ComputeCluster
metadata:
  name: everywhere
spec:
  hostSelector:
    matchLabels:
      kubernetes.io/os: linux
---
apiVersion: vdcos.io/v1alpha1
kind: DistributedSwitch
metadata:
  name: dvs-prod
spec:
  clusterName: everywhere
  uplinks: [eth1]
---
apiVersion: vdcos.io/v1alpha1
kind: DistributedPortGroup
metadata:
  name: {PORT_GROUP}
spec:
  switchName: dvs-prod
  vlan:
    id: 100
  namespaceSelector:
    matchLabels:
      {TENANT_LABEL}: web
""")
    wait(cluster, "--for=condition=Ready", "distributedswitch/dvs-prod", timeout=90)
    yield center
    center.stop_operator()
    cluster.stop()


_namespaces = count()


def tenant_namespace(cluster: DevCluster, tenant: str | None) -> str:
    """A fresh namespace, labelled for `tenant` (the port group admits tenant web)."""
    name = f"nics-{next(_namespaces)}"
    cluster.kubectl("create", "namespace", name)
    if tenant is not None:
        cluster.kubectl("label", "namespace", name, f"{TENANT_LABEL}={tenant}")
    return name


def vm_yaml(name: str, nics: str) -> str:
    """A VM without disks (so it can live-migrate), with the given `networks:` entries."""
    return f"""
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  cpu:
    count: 1
  memory:
    size: 512Mi
  networks:
{nics}"""


POD_NIC = """  - name: default
    podNetwork: {}
"""
LAN_NIC = f"""  - name: lan
    portGroupName: {PORT_GROUP}
"""


def vdc_vm(cluster: DevCluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = get_json(cluster, "vdcvm", name, "-n", namespace)
    return found


def nics(cluster: DevCluster, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    return {nic["name"]: nic for nic in vdc_vm(cluster, namespace, name)["status"].get("nics", [])}


def guest_macs(cluster: DevCluster, namespace: str, name: str) -> dict[str, str]:
    """The MACs the running guest has, as KubeVirt reports them."""
    vmi = get_json(cluster, "vmi", name, "-n", namespace)
    return {i["name"]: i["mac"] for i in vmi["status"].get("interfaces", []) if i.get("mac")}


def vmi_uid(cluster: DevCluster, namespace: str, name: str) -> str:
    return str(get_json(cluster, "vmi", name, "-n", namespace)["metadata"]["uid"])


def wait_ready(cluster: DevCluster, namespace: str, name: str) -> None:
    wait(cluster, "--for=condition=Ready", f"vdcvm/{name}", "-n", namespace)


def wait_nic_state(cluster: DevCluster, namespace: str, name: str, nic: str, state: str,
                   timeout: int = 90) -> None:
    wait(cluster, f"--for=jsonpath={{.status.nics[?(@.name==\"{nic}\")].state}}={state}",
         f"vdcvm/{name}", "-n", namespace, timeout=timeout)


def test_vm_on_a_port_group_runs_with_its_multus_network(datacenter: Datacenter) -> None:
    cluster = datacenter.cluster
    namespace = tenant_namespace(cluster, "web")
    apply_yaml(cluster, vm_yaml("web", POD_NIC + LAN_NIC + "    model: e1000e\n"), namespace)
    wait_ready(cluster, namespace, "web")

    template = get_json(cluster, "vm", "web", "-n", namespace)["spec"]["template"]["spec"]
    assert {"name": "lan", "multus": {"networkName": PORT_GROUP}} in template["networks"]
    interfaces = {i["name"]: i for i in template["domain"]["devices"]["interfaces"]}
    assert "bridge" in interfaces["lan"] and interfaces["lan"]["model"] == "e1000e"
    assert "masquerade" in interfaces["default"]
    launcher = next(p for p in get_json(cluster, "pods", "-n", namespace)["items"]
                    if p["metadata"].get("labels", {}).get("kubevirt.io") == "virt-launcher")
    assert PORT_GROUP in launcher["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]

    reported = nics(cluster, namespace, "web")
    assert reported["lan"]["portGroupName"] == PORT_GROUP
    assert reported["lan"]["state"] == "Attached"
    # A port group is L2 (its NAD has `ipam: {}`): only the pod NIC has an address.
    assert "ipAddress" not in reported["lan"] and reported["default"]["ipAddress"]
    assert "portGroupName" not in reported["default"]
    # Assigned MACs are locally administered, distinct, and what the guest has.
    macs = {nic: entry["macAddress"] for nic, entry in reported.items()}
    assert all(mac.startswith("02:76:") for mac in macs.values()) and len(set(macs.values())) == 2
    assert guest_macs(cluster, namespace, "web") == macs


def test_a_namespace_the_port_group_does_not_admit_is_refused(datacenter: Datacenter) -> None:
    cluster = datacenter.cluster
    namespace = tenant_namespace(cluster, "other")
    apply_yaml(cluster, vm_yaml("outsider", LAN_NIC), namespace)
    wait(cluster, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=PortGroupNotAllowed", "vdcvm/outsider", "-n", namespace)
    ready = next(c for c in vdc_vm(cluster, namespace, "outsider")["status"]["conditions"]
                 if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert "spec.networks[0].portGroupName" in ready["message"]
    assert PORT_GROUP in ready["message"] and namespace in ready["message"]
    events = get_json(cluster, "events", "-n", namespace,
                      "--field-selector=involvedObject.name=outsider")["items"]
    assert any(e["reason"] == "PortGroupNotAllowed" and e["type"] == "Warning" for e in events)
    assert get_json(cluster, "vm", "-n", namespace)["items"] == []
    assert get_json(cluster, "datavolumes", "-n", namespace)["items"] == []

    # Given the port group's tenant label, the namespace is admitted and the VM starts.
    cluster.kubectl("label", "namespace", namespace, f"{TENANT_LABEL}=web", "--overwrite")
    wait_ready(cluster, namespace, "outsider")


def test_hot_add_and_hot_remove_of_a_nic_keep_the_guest(datacenter: Datacenter) -> None:
    cluster = datacenter.cluster
    namespace = tenant_namespace(cluster, "web")
    apply_yaml(cluster, vm_yaml("app", POD_NIC), namespace)
    wait_ready(cluster, namespace, "app")
    uid = vmi_uid(cluster, namespace, "app")

    apply_yaml(cluster, vm_yaml("app", POD_NIC + LAN_NIC), namespace)
    wait_nic_state(cluster, namespace, "app", "lan", "Attached")
    vmi = get_json(cluster, "vmi", "app", "-n", namespace)
    assert vmi["metadata"]["uid"] == uid
    plugged = {i["name"]: i for i in vmi["status"]["interfaces"]}["lan"]
    assert "multus-status" in plugged["infoSource"] and "domain" in plugged["infoSource"]
    assert plugged["mac"] == nics(cluster, namespace, "app")["lan"]["macAddress"]
    migrations = get_json(cluster, "vmim", "-n", namespace)["items"]
    assert any(m["metadata"]["generateName"] == "kubevirt-workload-update-" for m in migrations)
    restart = next(c for c in vdc_vm(cluster, namespace, "app")["status"]["conditions"]
                   if c["type"] == "RestartRequired")
    assert restart["status"] == "False"

    apply_yaml(cluster, vm_yaml("app", POD_NIC), namespace)
    # The last NIC listed is the pod NIC again once lan is gone.
    wait(cluster, "--for=jsonpath={.status.nics[-1:].name}=default", "vdcvm/app",
         "-n", namespace, timeout=90)
    vmi = get_json(cluster, "vmi", "app", "-n", namespace)
    assert vmi["metadata"]["uid"] == uid
    assert [i["name"] for i in vmi["status"]["interfaces"]] == ["default"]
    template = get_json(cluster, "vm", "app", "-n", namespace)["spec"]["template"]["spec"]
    assert [n["name"] for n in template["networks"]] == ["default"]
    wait_ready(cluster, namespace, "app")
    reasons = [e["reason"] for e in get_json(cluster, "events", "-n", namespace,
                                              "--field-selector=involvedObject.name=app")["items"]]
    assert "LiveUpdated" in reasons and "RestartRequired" not in reasons


def test_macs_stay_across_power_cycle_migration_and_operator_restart(
    datacenter: Datacenter,
) -> None:
    cluster = datacenter.cluster
    namespace = tenant_namespace(cluster, "web")
    given = POD_NIC + LAN_NIC + "  - name: storage\n    portGroupName: pg-web\n" \
        "    macAddress: 02:AA:00:00:00:01\n"
    apply_yaml(cluster, vm_yaml("db", given), namespace)
    wait_ready(cluster, namespace, "db")
    macs = guest_macs(cluster, namespace, "db")
    assert macs["storage"] == "02:aa:00:00:00:01"
    assert {n: e["macAddress"] for n, e in nics(cluster, namespace, "db").items()} == macs

    cluster.kubectl("patch", "vdcvm", "db", "-n", namespace, "--type", "merge",
                    "-p", '{"spec":{"powerState":"PoweredOff"}}')
    wait(cluster, "--for=jsonpath={.status.powerState}=PoweredOff", "vdcvm/db", "-n", namespace)
    cluster.kubectl("patch", "vdcvm", "db", "-n", namespace, "--type", "merge",
                    "-p", '{"spec":{"powerState":"PoweredOn"}}')
    wait_ready(cluster, namespace, "db")
    assert guest_macs(cluster, namespace, "db") == macs

    source = get_json(cluster, "vmi", "db", "-n", namespace)["status"]["nodeName"]
    apply_yaml(cluster, """
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata:
  name: move-db
spec:
  vmiName: db
""", namespace)
    wait(cluster, "--for=jsonpath={.status.phase}=Succeeded", "vmim/move-db", "-n", namespace)
    assert get_json(cluster, "vmi", "db", "-n", namespace)["status"]["nodeName"] != source
    assert guest_macs(cluster, namespace, "db") == macs

    # A new operator (nothing in memory) keeps every MAC and gives a new NIC a new one.
    datacenter.stop_operator()
    datacenter.start_operator()
    apply_yaml(cluster, vm_yaml("db", given + "  - name: backup\n    portGroupName: pg-web\n"),
               namespace)
    wait_nic_state(cluster, namespace, "db", "backup", "Attached")
    after = guest_macs(cluster, namespace, "db")
    assert {nic: after[nic] for nic in macs} == macs
    assert after["backup"] not in macs.values()


def test_macs_are_unique_across_the_cluster(datacenter: Datacenter) -> None:
    cluster = datacenter.cluster
    namespace = tenant_namespace(cluster, "web")
    documents = [vm_yaml(f"fleet-{i}", POD_NIC + LAN_NIC) for i in range(6)]
    apply_yaml(cluster, "---\n".join(documents), namespace)
    wait(cluster, "--for=condition=Ready", "vdcvm", "--all", "-n", namespace, timeout=120)
    macs = [nic["macAddress"] for vm in get_json(cluster, "vdcvm", "-n", namespace)["items"]
            for nic in vm["status"]["nics"]]
    assert len(macs) == 12 and len(set(macs)) == 12

    # A MAC given by hand that another VM has is refused until that VM is gone.
    taken = macs[0]
    apply_yaml(cluster, vm_yaml("copycat", f"  - name: lan\n    portGroupName: {PORT_GROUP}\n"
                                f"    macAddress: {taken}\n"), namespace)
    wait(cluster, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=MACAddressInUse", "vdcvm/copycat", "-n", namespace)
    ready = next(c for c in vdc_vm(cluster, namespace, "copycat")["status"]["conditions"]
                 if c["type"] == "Ready")
    assert f"spec.networks[0].macAddress: {taken} is used by" in ready["message"]
    owner = next(vm["metadata"]["name"]
                 for vm in get_json(cluster, "vdcvm", "-n", namespace)["items"]
                 if taken in [n.get("macAddress") for n in vm["status"].get("nics", [])]
                 and vm["metadata"]["name"] != "copycat")
    cluster.kubectl("delete", "vdcvm", owner, "-n", namespace, "--timeout=60s")
    wait_ready(cluster, namespace, "copycat")
    assert guest_macs(cluster, namespace, "copycat") == {"lan": taken}


def test_a_vm_waiting_for_its_port_group_starts_when_it_appears(datacenter: Datacenter) -> None:
    cluster = datacenter.cluster
    namespace = tenant_namespace(cluster, None)
    apply_yaml(cluster, vm_yaml("early", "  - name: lan\n    portGroupName: pg-late\n"),
               namespace)
    wait(cluster, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}"
         "=DistributedPortGroupNotFound", "vdcvm/early", "-n", namespace)
    assert get_json(cluster, "vm", "-n", namespace)["items"] == []
    apply_yaml(cluster, """
apiVersion: vdcos.io/v1alpha1
kind: DistributedPortGroup
metadata:
  name: pg-late
spec:
  switchName: dvs-prod
  vlan:
    id: 200
  namespaceSelector: {}
""")
    wait_ready(cluster, namespace, "early")
    assert nics(cluster, namespace, "early")["lan"]["portGroupName"] == "pg-late"


def test_a_port_group_rewired_under_a_running_vm_asks_for_a_restart(
    datacenter: Datacenter,
) -> None:
    cluster = datacenter.cluster
    namespace = tenant_namespace(cluster, None)
    port_group = """
apiVersion: vdcos.io/v1alpha1
kind: DistributedPortGroup
metadata:
  name: pg-rewired
spec:
  switchName: dvs-prod
  vlan:
    id: {vlan}
  namespaceSelector: {{}}
"""
    apply_yaml(cluster, port_group.format(vlan=300))
    apply_yaml(cluster, vm_yaml("steady", "  - name: lan\n    portGroupName: pg-rewired\n"),
               namespace)
    wait_ready(cluster, namespace, "steady")
    restart = '--for=jsonpath={.status.conditions[?(@.type=="RestartRequired")].status}='

    apply_yaml(cluster, port_group.format(vlan=301))
    wait(cluster, restart + "True", "vdcvm/steady", "-n", namespace)
    message = next(c for c in vdc_vm(cluster, namespace, "steady")["status"]["conditions"]
                   if c["type"] == "RestartRequired")["message"]
    assert "DistributedPortGroup pg-rewired changed" in message

    uid = vmi_uid(cluster, namespace, "steady")
    cluster.kubectl("patch", "vdcvm", "steady", "-n", namespace, "--type", "merge",
                    "-p", '{"spec":{"powerState":"PoweredOff"}}')
    wait(cluster, "--for=jsonpath={.status.powerState}=PoweredOff", "vdcvm/steady",
         "-n", namespace)
    cluster.kubectl("patch", "vdcvm", "steady", "-n", namespace, "--type", "merge",
                    "-p", '{"spec":{"powerState":"PoweredOn"}}')
    wait_ready(cluster, namespace, "steady")
    wait(cluster, restart + "False", "vdcvm/steady", "-n", namespace)
    assert vmi_uid(cluster, namespace, "steady") != uid
