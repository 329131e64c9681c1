"""VirtualApps against `vdcos up`, driven with kubectl: start order and delays, reverse stop,
scaling out and in (newest first), `vdcos vapp scale`, the guests' OVF environment, a
changed property, power off and on, and deleting the app."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import apply_yaml, devcluster_with_vdc_crds, get_json, wait
from tests.integration.test_operator_restart import start_operator

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

OE = "{http://schemas.dmtf.org/ovf/environment/1}"

THREE_TIER = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualApp
metadata:
  name: shop
spec:
  properties:
    - {key: app.name, value: shop}
    - {key: db.password, value: s3cret, password: true}
  members:
    - name: db
      startOrder: 0
      startDelaySeconds: 2
      waitForGuest: true
      stopDelaySeconds: 1
      properties:
        - {key: db.port, value: "5432"}
      template:
        metadata: {labels: {tier: db}}
        spec: {cpu: {count: 1}, memory: {size: 256Mi}}
    - name: app
      startOrder: 1
      startDelaySeconds: 1
      stopDelaySeconds: 1
      replicas: 2
      maxReplicas: 3
      template:
        spec: {cpu: {count: 1}, memory: {size: 256Mi}}
    - name: web
      startOrder: 2
      stopAction: PowerOff
      template:
        spec:
          cpu: {count: 1}
          memory: {size: 256Mi}
          cloudInit: {userDataSecretName: web-userdata}
"""
WEB_USER_DATA = """
apiVersion: v1
kind: Secret
metadata:
  name: web-userdata
stringData:
  userdata: |
    #cloud-config
    password: fedora
"""

SCALABLE = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualApp
metadata:
  name: farm
spec:
  properties:
    - {key: greeting, value: hello}
  members:
    - name: lb
      template:
        spec: {cpu: {count: 1}, memory: {size: 256Mi}}
    - name: web
      startOrder: 1
      replicas: 1
      minReplicas: 1
      maxReplicas: 4
      template:
        spec: {cpu: {count: 1}, memory: {size: 256Mi}}
"""

FOREIGN_VM = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: farm-web-4
spec: {powerState: PoweredOff, cpu: {count: 1}, memory: {size: 256Mi}}
"""


def app(cluster: DevCluster, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = get_json(cluster, "vapp", name, "-n", namespace)
    return result


def wait_phase(cluster: DevCluster, namespace: str, name: str, phase: str,
               timeout: int = 120) -> dict[str, Any]:
    wait(cluster, f"--for=jsonpath={{.status.phase}}={phase}", f"vapp/{name}", "-n", namespace,
         timeout=timeout)
    return app(cluster, namespace, name)


def wait_ready(cluster: DevCluster, namespace: str, name: str, ready: str,
               timeout: int = 120) -> dict[str, Any]:
    wait(cluster, f"--for=jsonpath={{.status.readyVirtualMachines}}={ready}",
         f"vapp/{name}", "-n", namespace, timeout=timeout)
    return app(cluster, namespace, name)


def member_times(body: dict[str, Any]) -> dict[str, dict[str, datetime]]:
    return {
        member["name"]: {key: datetime.fromisoformat(member[key].replace("Z", "+00:00"))
                         for key in ("startedAt", "upAt", "stoppedAt") if key in member}
        for member in body["status"]["members"]
    }


def vm_names(cluster: DevCluster, namespace: str, app_name: str) -> set[str]:
    listed = get_json(cluster, "vdcvm", "-n", namespace, "-l", f"vdcos.io/virtual-app={app_name}")
    return {item["metadata"]["name"] for item in listed["items"]}


def app_events(cluster: DevCluster, namespace: str, name: str) -> list[tuple[str, str]]:
    listed = get_json(cluster, "events", "-n", namespace,
                      "--field-selector", f"involvedObject.name={name},involvedObject.kind="
                      "VirtualApp")
    # In the order they were posted (their timestamps have whole seconds only).
    items = sorted(listed["items"], key=lambda event: int(event["metadata"]["resourceVersion"]))
    return [(event["reason"], event["message"]) for event in items]


def guest_environment(cluster: DevCluster, namespace: str, vm: str) -> ElementTree.Element:
    """What the guest reads on its CD-ROM: the KubeVirt VM's cdrom volume, its object's key."""
    kubevirt = get_json(cluster, "vm.kubevirt.io", vm, "-n", namespace)
    template = kubevirt["spec"]["template"]["spec"]
    assert {"name": "ovfenv", "cdrom": {"bus": "sata", "readonly": True}} in \
        template["domain"]["devices"]["disks"]
    volume = next(v for v in template["volumes"] if v["name"] == "ovfenv")
    if "secret" in volume:
        secret = get_json(cluster, "secret", volume["secret"]["secretName"], "-n", namespace)
        text = base64.b64decode(secret["data"]["ovf-env.xml"]).decode()
    else:
        text = get_json(cluster, "configmap", volume["configMap"]["name"], "-n",
                        namespace)["data"]["ovf-env.xml"]
    return ElementTree.fromstring(text)


def properties_of(element: ElementTree.Element) -> dict[str, str]:
    section = element.find(f"{OE}PropertySection")
    assert section is not None
    return {p.get(f"{OE}key", ""): p.get(f"{OE}value", "") for p in section}


def vdcos(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controllers.cli", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)})


def test_three_tier_app_starts_in_order_and_stops_in_reverse(
    datacenter: DevCluster, namespace: str
) -> None:
    apply_yaml(datacenter, WEB_USER_DATA, namespace)
    apply_yaml(datacenter, THREE_TIER, namespace)
    running = wait_phase(datacenter, namespace, "shop", "Running")
    assert vm_names(datacenter, namespace, "shop") == {"shop-db", "shop-app", "shop-app-2",
                                                       "shop-web"}
    assert running["status"]["readyVirtualMachines"] == "4/4"
    times = member_times(running)
    # db is up (running, guest agent connected) before app starts, plus its 2 s delay; app
    # (both replicas) is up 1 s before web starts.
    assert (times["app"]["startedAt"] - times["db"]["upAt"]).total_seconds() >= 2
    assert (times["web"]["startedAt"] - times["app"]["upAt"]).total_seconds() >= 1
    assert times["db"]["startedAt"] <= times["db"]["upAt"] < times["app"]["startedAt"]
    db_vmi = get_json(datacenter, "vmi", "shop-db", "-n", namespace)
    assert any(c["type"] == "AgentConnected" and c["status"] == "True"
               for c in db_vmi["status"]["conditions"])
    started = [message for reason, message in app_events(datacenter, namespace, "shop")
               if reason == "StartingMember"]
    assert [m.split()[2] for m in started] == ["db", "app", "web"], started
    db = get_json(datacenter, "vdcvm", "shop-db", "-n", namespace)
    assert db["metadata"]["labels"]["tier"] == "db"
    assert db["metadata"]["ownerReferences"][0]["kind"] == "VirtualApp"

    # The guests' OVF environment: a password property puts it in a Secret.
    environment = guest_environment(datacenter, namespace, "shop-db")
    assert environment.get(f"{OE}id") == "shop-db"
    assert properties_of(environment) == {"app.name": "shop", "db.password": "s3cret",
                                          "db.port": "5432"}
    siblings = {e.get(f"{OE}id") for e in environment.findall(f"{OE}Entity")}
    assert siblings == {"shop-app", "shop-app-2", "shop-web"}
    # web has cloud-init: its user data stays the user's (the operator reads no Secret);
    # its OVF environment is on the CD-ROM like every member's.
    web = get_json(datacenter, "vdcvm", "shop-web", "-n", namespace)
    assert web["spec"]["cloudInit"] == {"userDataSecretName": "web-userdata"}
    assert properties_of(guest_environment(datacenter, namespace, "shop-web"))["app.name"] \
        == "shop"

    datacenter.kubectl("patch", "vapp", "shop", "-n", namespace, "--type", "merge", "-p",
                       '{"spec":{"powerState":"PoweredOff"}}')
    stopped = wait_phase(datacenter, namespace, "shop", "Stopped")
    assert stopped["status"]["readyVirtualMachines"] == "0/4"
    times = member_times(stopped)
    assert times["web"]["stoppedAt"] <= times["app"]["stoppedAt"] <= times["db"]["stoppedAt"]
    assert (times["db"]["stoppedAt"] - times["app"]["stoppedAt"]).total_seconds() >= 1
    stopping = [message for reason, message in app_events(datacenter, namespace, "shop")
                if reason == "StoppingMember"]
    assert [m.split()[2] for m in stopping] == ["web", "app", "db"], stopping
    assert "PowerOff" in stopping[0] and "GuestShutdown" in stopping[2]
    for name in ("shop-db", "shop-web"):
        assert get_json(datacenter, "vdcvm", name, "-n", namespace)["spec"]["powerState"] == \
            "PoweredOff"

    datacenter.kubectl("patch", "vapp", "shop", "-n", namespace, "--type", "merge", "-p",
                       '{"spec":{"powerState":"PoweredOn"}}')
    again = wait_phase(datacenter, namespace, "shop", "Running")
    times = member_times(again)
    assert (times["app"]["startedAt"] - times["db"]["upAt"]).total_seconds() >= 2
    columns = datacenter.kubectl("get", "vapp", "shop", "-n", namespace).stdout
    assert columns.split("\n")[0].split() == ["NAME", "MEMBERS", "READY", "POWER", "PHASE",
                                              "AGE"]
    assert columns.split("\n")[1].split()[:5] == ["shop", "3", "4/4", "PoweredOn", "Running"]


def test_scale_out_and_in_properties_and_deletion(datacenter: DevCluster,
                                                  namespace: str) -> None:
    apply_yaml(datacenter, SCALABLE, namespace)
    wait_phase(datacenter, namespace, "farm", "Running")
    before = guest_environment(datacenter, namespace, "farm-web")
    assert properties_of(before) == {"greeting": "hello"}

    scaled = vdcos(datacenter, "vapp", "scale", "farm", "web", "3", "-n", namespace)
    assert scaled.returncode == 0, scaled.stderr
    wait_ready(datacenter, namespace, "farm", "4/4")
    assert vm_names(datacenter, namespace, "farm") == {"farm-lb", "farm-web", "farm-web-2",
                                                       "farm-web-3"}
    assert {e.get(f"{OE}id") for e in guest_environment(
        datacenter, namespace, "farm-lb").findall(f"{OE}Entity")} == {
        "farm-web", "farm-web-2", "farm-web-3"}

    refused = vdcos(datacenter, "vapp", "scale", "farm", "web", "5", "-n", namespace)
    assert refused.returncode == 1
    assert "spec.members[1].replicas: 5 is outside web's minReplicas..maxReplicas (1..4)" in \
        refused.stderr
    too_many = datacenter.kubectl(
        "patch", "vapp", "farm", "-n", namespace, "--type", "json", "-p",
        '[{"op":"replace","path":"/spec/members/1/replicas","value":9}]', check=False)
    assert too_many.returncode != 0
    assert "replicas must be at most maxReplicas" in too_many.stderr

    # Scaling in removes the newest replica first (with a guest shutdown, the default).
    datacenter.kubectl("patch", "vapp", "farm", "-n", namespace, "--type", "json", "-p",
                       '[{"op":"replace","path":"/spec/members/1/replicas","value":2}]')
    wait_ready(datacenter, namespace, "farm", "3/3")
    assert vm_names(datacenter, namespace, "farm") == {"farm-lb", "farm-web", "farm-web-2"}
    reasons = [reason for reason, _ in app_events(datacenter, namespace, "farm")]
    assert "ScalingIn" in reasons and "ScaledIn" in reasons

    # A changed property is a new document; the running VM says it needs a restart.
    datacenter.kubectl("patch", "vapp", "farm", "-n", namespace, "--type", "merge", "-p",
                       '{"spec":{"properties":[{"key":"greeting","value":"bonjour"}]}}')
    wait(datacenter, "--for=condition=RestartRequired", "vdcvm/farm-web", "-n", namespace)
    assert properties_of(guest_environment(datacenter, namespace, "farm-web")) == {
        "greeting": "bonjour"}

    # A VM name someone else has is not taken over: the app says so.
    apply_yaml(datacenter, FOREIGN_VM, namespace)
    scaled = vdcos(datacenter, "vapp", "scale", "farm", "web", "4", "-n", namespace)
    assert scaled.returncode == 0, scaled.stderr
    wait(datacenter, "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}="
         "NameTaken", "vapp/farm", "-n", namespace)
    assert "VirtualMachine farm-web-4 exists and is not this app's" in next(
        c["message"] for c in app(datacenter, namespace, "farm")["status"]["conditions"])
    assert "ownerReferences" not in get_json(datacenter, "vdcvm", "farm-web-4", "-n",
                                             namespace)["metadata"]

    datacenter.kubectl("delete", "vapp", "farm", "-n", namespace, "--wait=true", timeout=60)
    wait(datacenter, "--for=delete", "vdcvm", "-l", "vdcos.io/virtual-app=farm", "-n",
         namespace)
    assert vm_names(datacenter, namespace, "farm") == set()
    get_json(datacenter, "vdcvm", "farm-web-4", "-n", namespace)  # not the app's: still there
    assert json.loads(datacenter.kubectl("get", "configmaps", "-n", namespace, "-l",
                                         "vdcos.io/virtual-app=farm", "-o", "json").stdout
                      )["items"] == []


RESTART_APP = """
apiVersion: vdcos.io/v1alpha1
kind: VirtualApp
metadata:
  name: twotier
spec:
  members:
    - name: db
      startDelaySeconds: 6
      template:
        spec: {cpu: {count: 1}, memory: {size: 256Mi}}
    - name: web
      startOrder: 1
      template:
        spec: {cpu: {count: 1}, memory: {size: 256Mi}}
"""


def test_a_sequence_survives_an_operator_restart(tmp_path: Path) -> None:
    """Killed during db's start delay, a new operator starts web when the delay (counted
    from status, not memory) runs out, and posts no step twice."""
    server = devcluster_with_vdc_crds(tmp_path, "--hosts", "1", "--node-status-seconds", "1")
    try:
        wait(server, "--for=condition=Established", "crd/virtualapps.vdcos.io")
        server.kubectl("create", "namespace", "seq")
        first = start_operator(server, "operator-1")
        try:
            apply_yaml(server, RESTART_APP, "seq")
            wait(server, "--for=jsonpath={.status.members[0].readyReplicas}=1",
                 "vapp/twotier", "-n", "seq")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        during = app(server, "seq", "twotier")
        assert during["status"]["phase"] == "Starting"
        up_at = member_times(during)["db"]["upAt"]
        second = start_operator(server, "operator-2")
        try:
            done = wait_phase(server, "seq", "twotier", "Running")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        times = member_times(done)
        assert times["db"]["upAt"] == up_at
        assert (times["web"]["startedAt"] - up_at).total_seconds() >= 6
        steps = [reason for reason, _ in app_events(server, "seq", "twotier")]
        assert steps == ["StartingMember", "MemberUp", "StartingMember", "MemberUp"], steps
    finally:
        server.stop()
