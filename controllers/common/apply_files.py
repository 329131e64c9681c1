"""`kubectl apply -f DIR`, done with our own client: YAML documents -> server-side apply.

Used by `vdcos up --apply DIR` and `vdcos up` itself (the CRDs first). Each document's kind is
looked up in the API's discovery documents, so any kind the server serves can be applied,
custom resources included once their CRD is Established.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from controllers.common.kube import CRDS, KubeClient, KubeError
from controllers.common.resources import ResourceRef

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def manifest_files(path: Path) -> list[Path]:
    """The file itself, or the manifest files of a directory in name order (as kubectl)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)


def documents(files: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Every non-empty YAML document; `List` kinds are unpacked."""
    for file in files:
        for document in yaml.safe_load_all(file.read_text()):
            if not document:
                continue
            if document.get("kind", "").endswith("List") and "items" in document:
                yield from document["items"]
            else:
                yield document


class Discovery:
    """kind -> REST resource, from /api/v1 and /apis/<group>/<version>, cached per version."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._versions: dict[str, dict[str, ResourceRef]] = {}

    async def resource_for(self, api_version: str, kind: str) -> ResourceRef:
        kinds = self._versions.get(api_version)
        if kinds is None or kind not in kinds:
            kinds = await self._load(api_version)
            self._versions[api_version] = kinds
        if kind not in kinds:
            raise LookupError(f'the server does not serve kind "{kind}" in "{api_version}"')
        return kinds[kind]

    async def _load(self, api_version: str) -> dict[str, ResourceRef]:
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{api_version}" if group else f"/api/{version}"
        try:
            answer = await self.kube.request("GET", path)
        except KubeError as error:
            if error.status == 404:
                return {}
            raise
        found: dict[str, ResourceRef] = {}
        for entry in answer.get("resources") or []:
            if "/" in entry["name"]:
                continue  # subresources
            found[entry["kind"]] = ResourceRef(
                group, version, entry["name"], bool(entry.get("namespaced"))
            )
        return found


async def wait_for_crds_established(
    kube: KubeClient, names: Iterable[str], timeout: float = 60
) -> None:
    """Waits until each CRD reports Established=True (its kind is then served)."""
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            crd = await kube.get(CRDS, None, name)
            conditions = (crd or {}).get("status", {}).get("conditions") or []
            if any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            ):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CustomResourceDefinition {name} is not Established")
            await asyncio.sleep(0.1)  # a CLI waiting on a freshly created CRD; no watch needed


async def apply_documents(
    kube: KubeClient,
    objects: Iterable[Mapping[str, Any]],
    *,
    default_namespace: str = "default",
) -> list[str]:
    """Server-side applies each object; returns "kind/name created|configured" lines."""
    discovery = Discovery(kube)
    results = []
    for obj in objects:
        resource = await discovery.resource_for(obj["apiVersion"], obj["kind"])
        body = dict(obj)
        metadata = dict(body.get("metadata") or {})
        if resource.namespaced:
            metadata.setdefault("namespace", default_namespace)
        else:
            metadata.pop("namespace", None)
        body["metadata"] = metadata
        existed = await kube.get(resource, metadata.get("namespace"), metadata["name"])
        await kube.apply(resource, body)
        verb = "configured" if existed is not None else "created"
        results.append(f"{obj['kind'].lower()}/{metadata['name']} {verb}")
    return results


async def apply_path(kube: KubeClient, path: Path) -> list[str]:
    """Applies a file or every manifest file of a directory; CRDs are waited for first."""
    objects = list(documents(manifest_files(path)))
    crds = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    others = [o for o in objects if o.get("kind") != "CustomResourceDefinition"]
    results = await apply_documents(kube, crds)
    await wait_for_crds_established(kube, [crd["metadata"]["name"] for crd in crds])
    # Namespaces first, as kubectl users expect `apply -f dir` to work in one go.
    others.sort(key=lambda o: o.get("kind") != "Namespace")
    results += await apply_documents(kube, others)
    return results
