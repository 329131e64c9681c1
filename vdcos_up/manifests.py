"""`kubectl apply -f DIR` for `vdcos up --apply`: YAML documents -> server-side apply.

Each document's kind is looked up in the API's discovery documents, so any kind the server
serves can be applied, custom resources included once their CRD is Established. Uses the
simulation's thin client: `vdcos up` never logs in any other way than through the
kubeconfig the embedded API server wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubekit.resources import ResourceRef
from kubekit.restclient import Kube

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
FIELD_MANAGER = "vdcos-up"


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
            if str(document.get("kind", "")).endswith("List") and "items" in document:
                yield from document["items"]
            else:
                yield document


@dataclass(frozen=True)
class Served:
    """A kind as discovery describes it."""

    resource: ResourceRef
    singular: str


class Discovery:
    """kind -> REST resource, from /api/v1 and /apis/<group>/<version>, cached per version."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._versions: dict[str, dict[str, Served]] = {}

    async def lookup(self, api_version: str, kind: str) -> Served:
        kinds = self._versions.get(api_version)
        if kinds is None or kind not in kinds:
            kinds = await self._load(api_version)
            self._versions[api_version] = kinds
        if kind not in kinds:
            raise LookupError(f'no matches for kind "{kind}" in version "{api_version}"')
        return kinds[kind]

    async def _load(self, api_version: str) -> dict[str, Served]:
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        listing = await self.kube.request("GET", path)
        found = {}
        for entry in listing.get("resources", []):
            if "/" in entry["name"]:
                continue  # a subresource
            found[entry["kind"]] = Served(
                ResourceRef(group, version, entry["name"], namespaced=bool(entry["namespaced"])),
                entry.get("singularName") or entry["kind"].lower())
        return found


async def apply_documents(kube: Kube, objects: Iterable[dict[str, Any]],
                          default_namespace: str = "default") -> list[str]:
    """Server-side apply each object, in order; one kubectl-like line per object."""
    discovery = Discovery(kube)
    lines = []
    for obj in objects:
        served = await discovery.lookup(str(obj["apiVersion"]), str(obj["kind"]))
        if served.resource.namespaced and not obj["metadata"].get("namespace"):
            obj = {**obj, "metadata": {**obj["metadata"], "namespace": default_namespace}}
        await kube.apply(served.resource, obj, FIELD_MANAGER)
        group = f".{served.resource.group}" if served.resource.group else ""
        lines.append(f"{served.singular}{group}/{obj['metadata']['name']} serverside-applied")
    return lines
