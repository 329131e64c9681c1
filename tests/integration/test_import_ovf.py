"""`vdcos import ovf` against the embedded datacenter: the disk image goes through CDI's
upload path (DataVolume source upload, UploadTokenRequest, the upload proxy) and the VM
comes up on it; a refused upload leaves nothing behind; the proxy refuses bad tokens."""

from __future__ import annotations

import os
import ssl
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.harness import DevCluster
from tests.integration.conftest import EXAMPLES, get_json, wait
from tests.unit.ovf import descriptors as d

pytestmark = pytest.mark.kubectl


def vmdk(capacity_bytes: int, padding: int = 4096) -> bytes:
    """A VMDK sparse extent header (what qemu-img reads the virtual size from)."""
    return b"KDMV" + struct.pack("<IIQ", 1, 3, capacity_bytes // 512) + b"\0" * padding


@pytest.fixture(scope="module")
def policies(datacenter: DevCluster) -> DevCluster:
    datacenter.kubectl("apply", "-f", str(EXAMPLES / "01-storage-policies.yaml"))
    return datacenter


def vdcos_import(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controllers.cli", "import", "ovf", *args],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)})


def datavolume_events(cluster: DevCluster, namespace: str, name: str) -> list[str]:
    items = get_json(cluster, "events", "-n", namespace, "--field-selector",
                     f"involvedObject.kind=DataVolume,involvedObject.name={name}")["items"]
    ordered = sorted(items, key=lambda e: (e.get("firstTimestamp") or e.get("eventTime") or ""))
    return [e["reason"] for e in ordered]


def test_single_vm_ova_uploads_its_disk_and_the_vm_is_ready(
        policies: DevCluster, namespace: str, tmp_path: Path) -> None:
    ova = d.write_ova(tmp_path / "web.ova", d.single_vm(), {"web-disk1.vmdk": vmdk(10 * 2**30)})
    result = vdcos_import(policies, str(ova), "-n", namespace)
    assert result.returncode == 0, result.stderr
    assert "datavolume.cdi.kubevirt.io/web-disk1-image Succeeded" in result.stdout
    assert "virtualmachine.vdcos.io/web created" in result.stdout
    assert "network 'VM Network' -> the pod network (default)" in result.stderr
    wait(policies, "--for=condition=Ready", "vdcvm/web", "-n", namespace, timeout=120)
    image = get_json(policies, "dv", "web-disk1-image", "-n", namespace)
    assert image["status"]["phase"] == "Succeeded"
    assert image["spec"]["source"] == {"upload": {}}
    assert [ref["kind"] for ref in image["metadata"]["ownerReferences"]] == ["VirtualMachine"]
    assert datavolume_events(policies, namespace, "web-disk1-image") == [
        "UploadScheduled", "UploadReady", "UploadSucceeded"]
    pvc = get_json(policies, "pvc", "web-disk1-image", "-n", namespace)
    assert pvc["metadata"]["annotations"]["sim.vdcos.io/image-virtual-size"] == str(10 * 2**30)
    # The VM's own disk is a clone of the uploaded volume.
    kubevirt_vm = get_json(policies, "vm.kubevirt.io", "web", "-n", namespace)
    [template] = kubevirt_vm["spec"]["dataVolumeTemplates"]
    assert template["spec"]["source"] == {"pvc": {"namespace": namespace,
                                                  "name": "web-disk1-image"}}


def test_an_image_larger_than_its_disk_is_refused_and_nothing_is_left(
        policies: DevCluster, namespace: str, tmp_path: Path) -> None:
    text = d.envelope(d.simple_system("big"), files={"file1": "big.vmdk"},
                      disks=[d.disk_entry("disk1", "1", file_ref="file1")])
    ova = d.write_ova(tmp_path / "big.ova", text, {"big.vmdk": vmdk(4 * 2**30)})
    result = vdcos_import(policies, str(ova), "-n", namespace)
    assert result.returncode == 1
    assert ("the upload proxy refused big.vmdk for datavolume big-disk1-image: 400 Saving "
            "stream failed: effective image size is larger than the reported available "
            "storage: virtual image size 4294967296 is larger than the reported available "
            "storage 1073741824") in result.stderr
    assert "deleted datavolumes/big-disk1-image" in result.stderr
    policies.kubectl("wait", "--for=delete", "dv/big-disk1-image", "-n", namespace,
                     "--timeout=30s", check=False)
    assert get_json(policies, "dv,vdcvm", "-n", namespace)["items"] == []


def _proxy(cluster: DevCluster) -> tuple[str, ssl.SSLContext]:
    status: dict[str, Any] = get_json(cluster, "cdiconfig", "config")["status"]
    context = ssl.create_default_context(cadata=status["uploadProxyCA"])
    return status["uploadProxyURL"], context


def _post(url: str, context: ssl.SSLContext, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=b"abc", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_upload_proxy_checks_its_token(policies: DevCluster, namespace: str) -> None:
    url, context = _proxy(policies)
    assert _post(f"{url}/v1beta1/upload", context, {})[0] == 400
    assert _post(f"{url}/v1beta1/upload", context,
                 {"Authorization": "Bearer not.a.token"})[0] == 401
    # A real token (kubectl create through the aggregated API) for a PVC that is not there.
    token = policies.kubectl(
        "create", "-f", "-", "-o", "jsonpath={.status.token}", stdin=(
            "apiVersion: upload.cdi.kubevirt.io/v1beta1\nkind: UploadTokenRequest\n"
            f"metadata: {{name: t, namespace: {namespace}}}\nspec: {{pvcName: nothing}}\n"
        )).stdout
    assert _post(f"{url}/v1beta1/upload", context, {"Authorization": f"Bearer {token}"}) == (
        503, "rejecting Upload Request for PVC nothing that doesn't exist")


def test_a_collection_becomes_a_virtual_app_whose_vms_run_in_order(
        policies: DevCluster, namespace: str, tmp_path: Path) -> None:
    db = d.system("db", d.cpu(1), d.memory(512), d.scsi(), d.disk("disk1"), d.nic("VM Network"))
    web = d.simple_system("web", disk_id=None)
    text = d.envelope(
        d.collection("shop", db, web, product=d.product(d.prop("db.port", "uint16", "5432")),
                     startup=[d.startup_item("db", 1, waitingForGuest="false"),
                              d.startup_item("web", 2)]),
        files={"file1": "db.vmdk"}, disks=[d.disk_entry("disk1", "2", file_ref="file1")])
    ova = d.write_ova(tmp_path / "shop.ova", text, {"db.vmdk": vmdk(2 * 2**30)})
    result = vdcos_import(policies, str(ova), "-n", namespace, "--property", "db.port=6000")
    assert result.returncode == 0, result.stderr
    assert "virtualapp.vdcos.io/shop created" in result.stdout
    app = get_json(policies, "vapp", "shop", "-n", namespace)
    assert [(m["name"], m["startOrder"]) for m in app["spec"]["members"]] == [("db", 1),
                                                                               ("web", 2)]
    assert [(p["key"], p["value"]) for p in app["spec"]["properties"]] == [("db.port", "6000")]
    image = get_json(policies, "dv", "shop-db-disk1-image", "-n", namespace)
    assert image["status"]["phase"] == "Succeeded"
    assert [ref["kind"] for ref in image["metadata"]["ownerReferences"]] == ["VirtualApp"]
    wait(policies, "--for=jsonpath={.status.readyVirtualMachines}=2/2", "vapp/shop",
         "-n", namespace, timeout=180)
    vms = {vm["metadata"]["name"]: vm for vm in get_json(policies, "vdcvm", "-n",
                                                         namespace)["items"]}
    assert sorted(vms) == ["shop-db", "shop-web"]
    assert vms["shop-db"]["spec"]["disks"][0]["source"] == {
        "pvc": {"name": "shop-db-disk1-image"}}


def test_a_namespace_editor_may_upload_and_read_the_proxy_url(
        policies: DevCluster, namespace: str) -> None:
    # CDI's aggregated roles: edit includes DataVolumes and UploadTokenRequests; every
    # authenticated user reads the CDIConfig.
    user = f"system:serviceaccount:{namespace}:importer"
    policies.kubectl("create", "rolebinding", "importer", "--clusterrole=edit",
                     f"--serviceaccount={namespace}:importer", "-n", namespace)
    for verb, resource, extra in (("create", "uploadtokenrequests.upload.cdi.kubevirt.io",
                                   ["-n", namespace]),
                                  ("create", "datavolumes.cdi.kubevirt.io", ["-n", namespace]),
                                  ("get", "cdiconfigs.cdi.kubevirt.io", [])):
        answer = policies.kubectl("auth", "can-i", verb, resource, *extra, f"--as={user}",
                                  check=False)
        assert answer.stdout.strip() == "yes", (verb, resource, answer.stdout, answer.stderr)
    outsider = policies.kubectl("auth", "can-i", "create",
                                "uploadtokenrequests.upload.cdi.kubevirt.io", "-n", "default",
                                f"--as={user}", check=False)
    assert outsider.stdout.strip() == "no"
