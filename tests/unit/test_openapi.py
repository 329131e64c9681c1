"""OpenAPI documents: what kubectl needs to validate through the server and to explain."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from devcluster.apiserver.openapi import (
    model_name,
    openapi_v2,
    openapi_v3_group_version,
    openapi_v3_index,
)
from devcluster.apiserver.resources import Registry, ResourceType

THING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A thing in the datacenter.",
    "properties": {
        "spec": {
            "type": "object",
            "description": "Desired state of the thing.",
            "properties": {
                "size": {"type": "integer", "description": "How many units the thing gets."},
                "powerState": {"type": "string", "enum": ["PoweredOn", "PoweredOff"]},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def make_registry() -> Registry:
    registry = Registry()
    registry.add(ResourceType("", "v1", "Namespace", "namespaces", "namespace", False))
    registry.add(
        ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, short_names=("cm",))
    )
    registry.add(ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True))
    registry.add(
        ResourceType(
            "vdcos.io",
            "v1alpha1",
            "Thing",
            "things",
            "thing",
            True,
            list_kind="ThingList",
            subresources=frozenset({"status"}),
            schema=THING_SCHEMA,
            builtin=False,
        )
    )
    return registry


def test_model_names_follow_kube() -> None:
    assert model_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert model_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert (
        model_name("storage.k8s.io", "v1", "StorageClass") == "io.k8s.api.storage.v1.StorageClass"
    )
    assert model_name("vdcos.io", "v1alpha1", "Thing") == "io.vdcos.v1alpha1.Thing"


def test_index_lists_every_group_version_with_a_hash_that_follows_changes() -> None:
    registry = make_registry()
    index = openapi_v3_index(registry)
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/vdcos.io/v1alpha1"}
    url = index["paths"]["apis/vdcos.io/v1alpha1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/vdcos.io/v1alpha1?hash=")
    registry.add(
        ResourceType(
            "vdcos.io",
            "v1alpha1",
            "Other",
            "others",
            "other",
            False,
            builtin=False,
            schema={"type": "object"},
        )
    )
    assert openapi_v3_index(registry)["paths"]["apis/vdcos.io/v1alpha1"]["serverRelativeURL"] != url
    assert openapi_v3_index(registry)["paths"]["api/v1"] == index["paths"]["api/v1"]


def test_group_version_document_has_operations_kubectl_checks() -> None:
    document = openapi_v3_group_version(make_registry(), "vdcos.io", "v1alpha1")
    assert document is not None
    item = document["paths"]["/apis/vdcos.io/v1alpha1/namespaces/{namespace}/things/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "vdcos.io",
        "version": "v1alpha1",
        "kind": "Thing",
    }
    assert patch["x-kubernetes-action"] == "patch"
    query = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= query
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert {"get", "put", "delete"} <= set(item)
    assert (
        "/apis/vdcos.io/v1alpha1/namespaces/{namespace}/things/{name}/status" in document["paths"]
    )
    assert (
        document["paths"]["/apis/vdcos.io/v1alpha1/things"]["get"]["x-kubernetes-action"] == "list"
    )
    schema = document["components"]["schemas"]["io.vdcos.v1alpha1.Thing"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "vdcos.io", "version": "v1alpha1", "kind": "Thing"}
    ]
    assert (
        schema["properties"]["spec"]["properties"]["size"]["description"]
        == "How many units the thing gets."
    )
    metadata_ref = schema["properties"]["metadata"]["allOf"][0]["$ref"]
    assert metadata_ref == "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in document["components"]["schemas"]
    assert THING_SCHEMA["properties"].keys() == {"spec", "status"}  # the input is not mutated


def test_builtin_kinds_get_their_typed_schema_and_unknown_group_versions_none() -> None:
    registry = make_registry()
    registry.add(ResourceType("", "v1", "Gadget", "gadgets", "gadget", False))
    document = openapi_v3_group_version(registry, "", "v1")
    assert document is not None
    namespace = document["components"]["schemas"]["io.k8s.api.core.v1.Namespace"]
    assert namespace["type"] == "object"
    assert namespace["properties"]["spec"]["properties"]["finalizers"]["type"] == "array"
    assert namespace["x-kubernetes-group-version-kind"] == [
        {"group": "", "version": "v1", "kind": "Namespace"}]
    # A built-in kind the official client has no model of stays permissive.
    gadget = document["components"]["schemas"]["io.k8s.api.core.v1.Gadget"]
    assert gadget["type"] == "object" and gadget["x-kubernetes-preserve-unknown-fields"]
    assert "/api/v1/namespaces/{name}" in document["paths"]
    assert "/api/v1/namespaces/{namespace}/configmaps" in document["paths"]
    assert openapi_v3_group_version(registry, "nothing.io", "v1") is None


def test_v2_document_is_swagger_with_custom_definitions() -> None:
    document = openapi_v2(make_registry())
    assert document["swagger"] == "2.0"
    assert "io.vdcos.v1alpha1.Thing" in document["definitions"]
    assert "io.k8s.api.core.v1.Namespace" not in document["definitions"]
    patch = document["paths"]["/apis/vdcos.io/v1alpha1/namespaces/{namespace}/things/{name}"][
        "patch"
    ]
    assert any(p["name"] == "fieldValidation" for p in patch["parameters"])


# --- real kubectl against a tiny server serving discovery and these documents --------------


def _discovery_app(registry: Registry) -> web.Application:
    async def version(_: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0"})

    async def api(_: web.Request) -> web.Response:
        return web.json_response(
            {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        )

    async def apis(_: web.Request) -> web.Response:
        groups = [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                "preferredVersion": {
                    "groupVersion": f"{group}/{versions[0]}",
                    "version": versions[0],
                },
            }
            for group, versions in registry.groups().items()
            if group
        ]
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    def resource_list(group: str, version: str) -> web.Response:
        resources = []
        for r in registry.in_group_version(group, version):
            resources.append(
                {
                    "name": r.plural,
                    "singularName": r.singular,
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": list(r.verbs),
                    "shortNames": list(r.short_names),
                }
            )
        group_version = f"{group}/{version}" if group else version
        return web.json_response(
            {"kind": "APIResourceList", "groupVersion": group_version, "resources": resources}
        )

    async def core_resources(_: web.Request) -> web.Response:
        return resource_list("", "v1")

    async def group_resources(request: web.Request) -> web.Response:
        return resource_list(request.match_info["group"], request.match_info["version"])

    async def v3_index(_: web.Request) -> web.Response:
        return web.json_response(openapi_v3_index(registry))

    async def v3_core(_: web.Request) -> web.Response:
        return web.json_response(openapi_v3_group_version(registry, "", "v1"))

    async def v3_group(request: web.Request) -> web.Response:
        document = openapi_v3_group_version(
            registry, request.match_info["group"], request.match_info["version"]
        )
        return web.json_response(document) if document else web.json_response({}, status=404)

    async def not_found(_: web.Request) -> web.Response:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "NotFound",
            "code": 404,
        }
        return web.json_response(status, status=404)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/api/v1", core_resources)
    app.router.add_get("/apis/{group}/{version}", group_resources)
    app.router.add_get("/openapi/v3", v3_index)
    app.router.add_get("/openapi/v3/api/v1", v3_core)
    app.router.add_get("/openapi/v3/apis/{group}/{version}", v3_group)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


KUBECTLS = [path for path in ("/usr/bin/kubectl", "/work/venv/bin/kubectl") if shutil.which(path)]


@pytest.fixture
async def server_url() -> AsyncIterator[str]:
    runner = web.AppRunner(_discovery_app(make_registry()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def run_kubectl(kubectl: str, url: str, *args: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "KUBECONFIG": str(Path(home) / "none")}
        process = await asyncio.create_subprocess_exec(
            kubectl,
            "--server",
            url,
            "--cache-dir",
            str(Path(home) / "cache"),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        return process.returncode or 0, output.decode()


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTLS, reason="no kubectl binary")
@pytest.mark.parametrize("kubectl", KUBECTLS)
async def test_kubectl_explain_shows_crd_descriptions(kubectl: str, server_url: str) -> None:
    code, output = await run_kubectl(kubectl, server_url, "explain", "things.spec")
    assert code == 0, output
    assert "KIND:       Thing" in output
    assert "GROUP:      vdcos.io" in output
    assert "How many units the thing gets." in output
    code, output = await run_kubectl(kubectl, server_url, "explain", "namespaces")
    assert code == 0, output
    assert "KIND:       Namespace" in output


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTLS, reason="no kubectl binary")
@pytest.mark.parametrize("kubectl", KUBECTLS)
async def test_kubectl_strict_apply_leaves_validation_to_the_server(
    kubectl: str, server_url: str
) -> None:
    manifest = {
        "apiVersion": "vdcos.io/v1alpha1",
        "kind": "Thing",
        "metadata": {"name": "t1", "namespace": "default"},
        "spec": {"size": 2, "notInSchema": True},
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "objects.yaml"
        path.write_text(f"{json.dumps(manifest)}\n---\n{json.dumps(configmap)}\n")
        code, output = await run_kubectl(
            kubectl, server_url, "apply", "--dry-run=client", "--validate=strict", "-f", str(path)
        )
    # Without fieldValidation on the PATCH operations kubectl would reject notInSchema itself.
    assert code == 0, output
    assert "thing.vdcos.io/t1 created (dry run)" in output
    assert "configmap/c created (dry run)" in output
