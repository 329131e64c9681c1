"""`vdcos import ovf --dry-run`: OVA and OVF packages, the manifest, and bad packages
refused with nothing printed on standard output."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from controllers.cli import main
from tests.oracles import CDI_SWAGGER, REPO_ROOT, crd_schema_errors, validate_against_swagger

from . import descriptors as d

IMAGE = b"KDMV" + b"\0" * 8188  # what the tests call a streamOptimized VMDK: only its size counts


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["import", "ovf", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ova_with_a_manifest_dry_run_yaml(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    ova = d.write_ova(tmp_path / "web.ova", d.single_vm(), {"web-disk1.vmdk": IMAGE})
    code, out, err = _run(capsys, str(ova), "--dry-run", "--namespace", "shop",
                          "--name", "web-01")
    assert code == 0, err
    datavolume, vm = list(yaml.safe_load_all(out))
    assert vm["kind"] == "VirtualMachine"
    assert vm["metadata"] == {"name": "web-01", "namespace": "shop",
                              "labels": {"ovf.vdcos.io/imported": "true"},
                              "annotations": {"ovf.vdcos.io/virtual-system": "web",
                                              "ovf.vdcos.io/source": "web.ova"}}
    assert vm["spec"]["disks"][0]["source"] == {"pvc": {"name": "web-01-disk1-image"}}
    assert datavolume["metadata"]["name"] == "web-01-disk1-image"
    validate_against_swagger(datavolume, CDI_SWAGGER, "v1beta1.DataVolume")
    crd = yaml.safe_load((REPO_ROOT / "crds" / "vdcos.io_virtualmachines.yaml").read_text())
    assert crd_schema_errors(vm, crd) == []
    assert "network 'VM Network' -> the pod network (default)" in err


def test_ovf_directory_dry_run_json_with_sha1_manifest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    descriptor = d.single_vm()
    (tmp_path / "web.ovf").write_text(descriptor)
    (tmp_path / "web-disk1.vmdk").write_bytes(IMAGE)
    (tmp_path / "web.mf").write_text(
        f"SHA1(web.ovf)= {hashlib.sha1(descriptor.encode()).hexdigest()}\n"
        f"SHA1(web-disk1.vmdk)= {hashlib.sha1(IMAGE).hexdigest()}\n")
    code, out, err = _run(capsys, str(tmp_path / "web.ovf"), "--dry-run", "-o", "json")
    assert code == 0, err
    body: dict[str, Any] = json.loads(out)
    assert body["kind"] == "List"
    assert [item["kind"] for item in body["items"]] == ["DataVolume", "VirtualMachine"]


def test_collection_dry_run_prints_a_virtual_app(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = d.envelope(d.collection("shop", d.simple_system("db", disk_id=None),
                                   d.simple_system("web", disk_id=None),
                                   startup=[d.startup_item("db", 1),
                                            d.startup_item("web", 2)],
                                   product=d.product(d.prop("color", "string", "blue"))))
    (tmp_path / "shop.ovf").write_text(text)
    code, out, err = _run(capsys, str(tmp_path / "shop.ovf"), "--dry-run",
                          "--property", "color=red")
    assert code == 0, err
    [app] = list(yaml.safe_load_all(out))
    assert app["kind"] == "VirtualApp"
    assert [(m["name"], m["startOrder"]) for m in app["spec"]["members"]] == [("db", 1),
                                                                               ("web", 2)]
    assert app["spec"]["properties"] == [{"key": "color", "value": "red"}]


def _bad_packages(tmp_path: Path) -> dict[str, tuple[Path, list[str], str]]:
    ok = {"web-disk1.vmdk": IMAGE}
    not_tar = tmp_path / "not-tar.ova"
    not_tar.write_bytes(b"this is not a tar archive at all" * 40)
    no_disk = tmp_path / "nodisk.ovf"
    no_disk.write_text(d.single_vm())
    broken = tmp_path / "broken.ovf"
    broken.write_text(d.single_vm().replace("<Name>web</Name>", "<Name>web</Nam>"))
    old = tmp_path / "old.ovf"
    old.write_text(d.single_vm().replace(d.OVF1, "http://www.vmware.com/schema/ovf/1/envelope"))
    prop = d.envelope(d.system("vm", d.cpu(1), d.memory(512), product=d.product(
        d.prop("port", "uint16", "80"))), networks=())
    props = tmp_path / "props.ovf"
    props.write_text(prop)
    return {
        "checksum": (d.write_ova(tmp_path / "sum.ova", d.single_vm(), ok,
                                 corrupt="web-disk1.vmdk"), [],
                     r"sum.ova:web-disk1.vmdk: SHA256 checksum mismatch"),
        "not a tar": (not_tar, [], r"not-tar.ova: not an OVA: it is not a tar archive"),
        "missing disk": (no_disk, [], r"web-disk1.vmdk: disk file 'web-disk1.vmdk' \(File "
                                      r"file1\) is missing from the package"),
        "missing in ova": (d.write_ova(tmp_path / "short.ova", d.single_vm(), {},
                                       manifest=False), [],
                           r"short.ova:web-disk1.vmdk: disk file 'web-disk1.vmdk'"),
        "xml": (broken, [], r"broken.ovf: the XML does not parse at line 2"),
        "0.9": (old, [], r"OVF 0.9 \(namespace http://www.vmware.com/schema/ovf/1/envelope\)"),
        "unknown property": (props, ["--property", "colour=red"],
                             r"--property colour: the descriptor has no property 'colour'"),
        "wrong type": (props, ["--property", "port=eighty"],
                       r"--property port: expected an integer \(uint16\), got 'eighty'"),
        "bad flag": (props, ["--property", "port"], r"--property 'port': expected KEY=VALUE"),
        "bad name": (props, ["--name", "Web_01"], r"--name 'Web_01': not a valid name"),
    }


@pytest.mark.parametrize("case", ["checksum", "not a tar", "missing disk", "missing in ova",
                                  "xml", "0.9", "unknown property", "wrong type", "bad flag",
                                  "bad name"])
def test_bad_input_is_refused_naming_what_and_where(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, flags, message = _bad_packages(tmp_path)[case]
    # Without --dry-run and without any cluster: refused before a connection is tried.
    code, out, err = _run(capsys, str(path), *flags, "--kubeconfig",
                          str(tmp_path / "no-such-kubeconfig"))
    assert code == 1
    assert out == ""
    assert err.startswith("Error: ")
    assert re.search(message, err), err
