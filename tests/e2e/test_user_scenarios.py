"""What a user does with vdcos, against any cluster: apply, power, hot-add, delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Target

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def vm_yaml(name: str, cpu: int = 1, hot_add: bool = False) -> str:
    return f"""apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  cpu:
    count: {cpu}
    hotAdd: {"true" if hot_add else "false"}
  memory:
    size: 1Gi
"""


def test_examples_come_up(target: Target, namespace: str) -> None:
    target.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    # The vApp powers its members on in order: Running once the last group is up.
    target.wait("--for=jsonpath={.status.phase}=Running", "vapp/shop", "-n", namespace)
    target.wait("--for=condition=Ready", "vdcvm", "--all", "-n", namespace)
    vms = target.get("vdcvm", "-n", namespace)["items"]
    assert {vm["metadata"]["name"]: vm["status"]["powerState"] for vm in vms} == {
        "web-01": "PoweredOn", "db-01": "PoweredOn", "build-01": "PoweredOff",
        "app-01": "PoweredOn", "shop-db": "PoweredOn", "shop-web": "PoweredOn",
        "shop-web-2": "PoweredOn"}


def test_power_off_and_on(target: Target, namespace: str) -> None:
    target.kubectl("apply", "-n", namespace, "-f", "-", stdin=vm_yaml("switch"))
    target.wait("--for=condition=Ready", "vdcvm/switch", "-n", namespace)
    for state in ("PoweredOff", "PoweredOn"):
        target.kubectl("patch", "vdcvm", "switch", "-n", namespace, "--type", "merge",
                       "-p", f'{{"spec":{{"powerState":"{state}"}}}}')
        target.wait(f"--for=jsonpath={{.status.powerState}}={state}", "vdcvm/switch",
                    "-n", namespace)
        target.wait("--for=condition=Ready", "vdcvm/switch", "-n", namespace)


def test_hot_add_cpu_keeps_the_guest(target: Target, namespace: str) -> None:
    target.kubectl("apply", "-n", namespace, "-f", "-", stdin=vm_yaml("grow", 1, True))
    target.wait("--for=condition=Ready", "vdcvm/grow", "-n", namespace)
    uid = target.get("vmi", "grow", "-n", namespace)["metadata"]["uid"]
    target.kubectl("patch", "vdcvm", "grow", "-n", namespace, "--type", "merge",
                   "-p", '{"spec":{"cpu":{"count":2}}}')
    target.wait("--for=jsonpath={.status.currentCPUTopology.sockets}=2", "vmi/grow",
                "-n", namespace)
    assert target.get("vmi", "grow", "-n", namespace)["metadata"]["uid"] == uid


def test_delete_leaves_nothing(target: Target, namespace: str) -> None:
    target.kubectl("apply", "-n", namespace, "-f", "-", stdin=vm_yaml("brief"))
    target.wait("--for=condition=Ready", "vdcvm/brief", "-n", namespace)
    target.kubectl("delete", "vdcvm", "brief", "-n", namespace)
    target.wait("--for=delete", "vm/brief", "-n", namespace)
    target.kubectl("wait", "--for=delete", "vmi/brief", "-n", namespace, "--timeout=120s",
                   check=False)
    left = target.get("vm,vmi,dv,pvc", "-n", namespace)["items"]
    assert left == []
