"""/openapi/v2 in protobuf, as kubectl reads it (issue 7, 6h).

kubectl downloads the v2 document in protobuf (gnostic's openapi.v2.Document) when the v3
document does not name the kind it applies (a typo, a CRD not installed) and for
`kubectl explain --output plaintext-openapiv2`. Served as JSON, kubectl failed with
"failed to download openapi: proto: cannot parse invalid wire-format data".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devcluster.apiserver.openapi_v2_protobuf import encode_message
from devcluster.apiserver.protobuf import WIRE_LENGTH_DELIMITED, WIRE_VARINT, read_wire_fields
from tests.api import wire
from tests.harness import DevCluster, kubectl_params

REPO = Path(__file__).resolve().parents[2]
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

UNKNOWN_KINDS = {
    "typo": "apiVersion: vdcos.io/v1alpha1\nkind: VirtualMachin\nmetadata:\n  name: web-9\n",
    "crd-not-installed": "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n",
}


@pytest.fixture(scope="module")
def vdc_crds(apiserver: DevCluster) -> DevCluster:
    apiserver.kubectl("apply", "-f", str(REPO / "crds"))
    apiserver.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
    return apiserver


def _strings(data: bytes, number: int) -> list[str]:
    return [f.value.decode() for f in read_wire_fields(data)
            if f.number == number and isinstance(f.value, bytes)]


def _messages(data: bytes, number: int) -> list[bytes]:
    return [f.value for f in read_wire_fields(data)
            if f.number == number and isinstance(f.value, bytes)]


@pytest.mark.kubectl
@pytest.mark.parametrize("manifest", sorted(UNKNOWN_KINDS))
@pytest.mark.parametrize("binary", kubectl_params())
def test_applying_an_unknown_kind_says_install_the_crd(
        vdc_crds: DevCluster, binary: str, manifest: str) -> None:
    result = vdc_crds.kubectl("apply", "-f", "-", binary=binary, check=False,
                              stdin=UNKNOWN_KINDS[manifest])
    assert result.returncode != 0
    assert "failed to download openapi" not in result.stderr
    assert "no matches for kind" in result.stderr
    assert "ensure CRDs are installed first" in result.stderr


@pytest.mark.kubectl
@pytest.mark.parametrize("binary", kubectl_params())
def test_explain_reads_the_v2_document(vdc_crds: DevCluster, binary: str) -> None:
    explained = vdc_crds.kubectl("explain", "vdcvm.spec.cpu", "--output=plaintext-openapiv2",
                                 binary=binary).stdout
    assert "VERSION:  vdcos.io/v1alpha1" in explained
    assert "coresPerSocket\t<integer>" in explained
    assert "Cores per virtual socket" in explained
    spec = vdc_crds.kubectl("explain", "sp.spec", "--output=plaintext-openapiv2",
                            binary=binary).stdout
    assert "provisioning\t<string>" in spec


@pytest.mark.kubectl
@pytest.mark.parametrize("binary", kubectl_params())
def test_explain_and_strict_validation_still_work(vdc_crds: DevCluster, binary: str) -> None:
    assert "coresPerSocket" in vdc_crds.kubectl("explain", "vdcvm.spec.cpu",
                                                binary=binary).stdout
    bogus = ("apiVersion: vdcos.io/v1alpha1\nkind: StoragePolicy\nmetadata:\n  name: p\n"
             "spec:\n  bogus: 1\n")
    refused = vdc_crds.kubectl("apply", "--dry-run=server", "-f", "-", binary=binary,
                               stdin=bogus, check=False)
    assert refused.returncode != 0
    assert 'unknown field "spec.bogus"' in refused.stderr


def test_the_protobuf_document_carries_what_the_json_one_does(vdc_crds: DevCluster) -> None:
    as_json = wire.request(vdc_crds, "GET", "/openapi/v2").body
    answer = wire.request(vdc_crds, "GET", "/openapi/v2", headers={"Accept": PROTOBUF})
    assert answer.status == 200
    # Go's mime parser (kubectl) refuses "@" in a media type: kube answers the dotted form.
    assert answer.headers["Content-Type"] == (
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    document = answer.raw
    assert _strings(document, 1) == ["2.0"]
    (definitions,) = _messages(document, 9)
    names = [_strings(entry, 1)[0] for entry in _messages(definitions, 1)]
    assert names == list(as_json["definitions"])
    assert "io.vdcos.v1alpha1.VirtualMachine" in names
    (paths,) = _messages(document, 8)
    assert [_strings(entry, 1)[0] for entry in _messages(paths, 2)] == list(as_json["paths"])


def test_vendor_extensions_travel_as_yaml_text() -> None:
    gvk = [{"group": "vdcos.io", "version": "v1alpha1", "kind": "VirtualMachine"}]
    schema = encode_message("Schema", {"type": "object",
                                       "x-kubernetes-group-version-kind": gvk})
    (type_item,) = _messages(schema, 22)
    assert _strings(type_item, 1) == ["object"]
    (extension,) = _messages(schema, 31)
    assert _strings(extension, 1) == ["x-kubernetes-group-version-kind"]
    (value,) = _messages(extension, 2)
    assert json.loads(_strings(value, 2)[0]) == gvk


def test_additional_properties_false_is_written() -> None:
    """A oneof member keeps its zero value: `additionalProperties: false` must not vanish."""
    schema = encode_message("Schema", {"additionalProperties": False})
    (item,) = _messages(schema, 21)
    (field,) = read_wire_fields(item)
    assert (field.number, field.wire_type, field.value) == (2, WIRE_VARINT, 0)


def test_query_and_body_parameters_take_their_oneof_branches() -> None:
    query = encode_message("ParametersItem", {"name": "dryRun", "in": "query",
                                              "type": "string", "uniqueItems": True})
    (parameter,) = _messages(query, 1)
    (non_body,) = _messages(parameter, 2)
    (sub_schema,) = _messages(non_body, 3)
    assert _strings(sub_schema, 4) == ["dryRun"]
    assert _strings(sub_schema, 6) == ["string"]
    body = encode_message("ParametersItem", {"name": "body", "in": "body", "required": True,
                                             "schema": {"$ref": "#/definitions/x"}})
    (parameter,) = _messages(body, 1)
    (body_parameter,) = _messages(parameter, 1)
    (schema,) = _messages(body_parameter, 5)
    assert _strings(schema, 1) == ["#/definitions/x"]
    assert read_wire_fields(encode_message("Schema", {"minimum": 1}))[0].wire_type != (
        WIRE_LENGTH_DELIMITED)
