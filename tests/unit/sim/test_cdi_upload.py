"""CDI's upload path as the simulation plays it: the upload DataVolume's phases and Events,
upload tokens, the virtual size read from image headers, the usable space of a claim."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import pytest

from devcluster.sim.disk_images import virtual_size
from devcluster.sim.upload_datavolume import (
    next_upload_state,
    upload_finished,
    upload_server_started,
)
from devcluster.sim.upload_tokens import InvalidToken, UploadTokens
from devcluster.sim.uploadproxy import usable_bytes

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DV: dict[str, Any] = {"metadata": {"name": "img", "namespace": "ns"},
                      "spec": {"source": {"upload": {}}}}


def _pvc(annotations: dict[str, str], phase: str = "Bound") -> dict[str, Any]:
    return {"metadata": {"name": "img", "namespace": "ns", "annotations": annotations},
            "spec": {"resources": {"requests": {"storage": "11422785362"}},
                     "volumeMode": "Filesystem"},
            "status": {"phase": phase}}


def test_upload_datavolume_phases_follow_the_upload_server() -> None:
    assert next_upload_state(DV, None, None, NOW).phase == "Pending"
    assert next_upload_state(DV, _pvc({}, "Pending"), None, NOW).phase == "Pending"
    scheduled = next_upload_state(DV, _pvc({}), None, NOW)
    assert (scheduled.phase, [e.message for e in scheduled.events]) == (
        "UploadScheduled", ["Upload into img scheduled"])
    ready = next_upload_state({**DV, "status": {"phase": "UploadScheduled"}},
                              _pvc(upload_server_started()), None, NOW)
    assert (ready.phase, [e.reason for e in ready.events]) == ("UploadReady", ["UploadReady"])
    done = next_upload_state({**DV, "status": {"phase": "UploadReady"}},
                             _pvc(upload_finished(100, 200)), None, NOW)
    assert (done.phase, done.progress, [e.message for e in done.events]) == (
        "Succeeded", "100.0%", ["Successfully uploaded into img"])
    ready_condition = next(c for c in done.conditions if c["type"] == "Ready")
    assert ready_condition["status"] == "True"
    again = next_upload_state({**DV, "status": done.status()}, _pvc(upload_finished(100, 200)),
                              None, NOW)
    assert again.events == []


def test_tokens_name_their_pvc_and_expire() -> None:
    tokens = UploadTokens()
    token = tokens.issue("ns", "img", now=1000)
    target = tokens.validate(token, now=1100)
    assert (target.namespace, target.name) == ("ns", "img")
    with pytest.raises(InvalidToken):
        tokens.validate(token, now=1000 + 300 + 11)
    with pytest.raises(InvalidToken):
        UploadTokens().validate(token, now=1100)  # another key
    with pytest.raises(InvalidToken):
        tokens.validate(token[:-2] + "xx", now=1100)


def test_virtual_size_comes_from_the_image_header() -> None:
    vmdk = b"KDMV" + struct.pack("<IIQ", 1, 3, 2 * 2**30 // 512) + b"\0" * 100
    qcow2 = b"QFI\xfb" + struct.pack(">IQIIQ", 3, 0, 0, 16, 5 * 2**30) + b"\0" * 100
    assert virtual_size(vmdk, len(vmdk)) == 2 * 2**30
    assert virtual_size(qcow2, len(qcow2)) == 5 * 2**30
    assert virtual_size(b"raw bytes", 12345) == 12345


def test_usable_space_is_the_claim_less_filesystem_overhead() -> None:
    # CDI asks 10Gi / (1 - 0.06) for a 10Gi Filesystem DataVolume: 10Gi of it is usable.
    assert usable_bytes(_pvc({})) == 10 * 2**30
    block = _pvc({})
    block["spec"]["volumeMode"] = "Block"
    assert usable_bytes(block) == 11422785362 // 2**20 * 2**20
