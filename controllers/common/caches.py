"""Caches of built-in kinds that several controllers read: hosts, StorageClasses, pods,
namespaces.

Each keeps only what is read, so 5,000 pods cost kilobytes each, not the whole objects.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import pydantic

from controllers.common.controller import CacheSpec
from controllers.common.crd_generator import CustomResourceKind
from controllers.common.validation import validation_message
from kubekit.resources import NAMESPACES, NODES, PODS, STORAGE_CLASSES

#: StorageClass fields Kubernetes does not let anyone change after creation.
SpecT = TypeVar("SpecT", bound=pydantic.BaseModel)

STORAGE_CLASS_IMMUTABLE_FIELDS: Final = ("provisioner", "parameters", "reclaimPolicy",
                                         "volumeBindingMode")


def slim_node(body: Mapping[str, Any]) -> dict[str, Any]:
    """A host as placement and capacity read it: labels, schedulable, allocatable, Ready."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return {
        "metadata": {"name": metadata.get("name"), "labels": dict(metadata.get("labels") or {})},
        "spec": {"unschedulable": bool((body.get("spec") or {}).get("unschedulable"))},
        "status": {
            "allocatable": dict(status.get("allocatable") or {}),
            "conditions": [{"type": "Ready", "status": c.get("status")} for c in ready],
        },
    }


def slim_storage_class(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the StoragePolicy controller compares; the VM controller reads only the names."""
    metadata = body.get("metadata") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "labels": dict(metadata.get("labels") or {}),
            "annotations": dict(metadata.get("annotations") or {}),
            "ownerReferences": list(metadata.get("ownerReferences") or []),
        },
        **{key: body.get(key) for key in (*STORAGE_CLASS_IMMUTABLE_FIELDS, "allowVolumeExpansion")},
    }


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """What allocation needs of a pod: its node, phase and resource requests."""
    spec = body.get("spec") or {}

    def containers(entries: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "resources": {
                    "requests": dict((entry.get("resources") or {}).get("requests") or {})
                },
                **({"restartPolicy": entry["restartPolicy"]} if "restartPolicy" in entry else {}),
            }
            for entry in entries
        ]

    return {
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": containers(spec.get("containers") or []),
            "initContainers": containers(spec.get("initContainers") or []),
            "overhead": dict(spec.get("overhead") or {}),
        },
        "status": {"phase": (body.get("status") or {}).get("phase")},
    }


def _name(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("name"))


NODE_CACHE: Final = CacheSpec[dict[str, Any]](
    "nodes", NODES, lambda body: {_name(body): slim_node(body)}
)
STORAGE_CLASS_CACHE: Final = CacheSpec[dict[str, Any]](
    "storageclasses", STORAGE_CLASSES, lambda body: {_name(body): slim_storage_class(body)}
)
#: Every namespace's labels by name: what port groups' namespaceSelectors are matched with.
NAMESPACE_CACHE: Final = CacheSpec[dict[str, str]](
    "namespaces",
    NAMESPACES,
    lambda body: {_name(body): dict((body.get("metadata") or {}).get("labels") or {})},
)
#: Pods bound to a host, by host name (unscheduled pods are not indexed).
PODS_BY_NODE: Final = CacheSpec[dict[str, Any]](
    "pods_by_node",
    PODS,
    lambda body: (
        {str(body["spec"]["nodeName"]): slim_pod(body)}
        if (body.get("spec") or {}).get("nodeName")
        else {}
    ),
)


@dataclass(frozen=True)
class SpecEntry(Generic[SpecT]):
    """A VDC object as observed (slim body) and its parsed spec (None: invalid; its own
    controller's status says why, and nothing that refers to it resolves)."""

    body: Mapping[str, Any]
    spec: SpecT | None
    #: Why the spec is invalid (each field named), when it is.
    invalid: str | None = None


def spec_cache(
    cache_id: str, kind: CustomResourceKind, model: type[SpecT]
) -> CacheSpec[SpecEntry[SpecT]]:
    """The cache of one VDC kind by name, parsed once per change instead of once per read."""

    def entries(body: Mapping[str, Any]) -> dict[Hashable, SpecEntry[SpecT]]:
        metadata = body.get("metadata") or {}
        raw_spec = dict(body.get("spec") or {})
        spec: SpecT | None = None
        invalid: str | None = None
        try:
            spec = model.model_validate(raw_spec)
        except pydantic.ValidationError as error:
            invalid = validation_message(error)
        slim = {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": {
                key: metadata.get(key)
                for key in (
                    "name", "namespace", "uid", "generation", "deletionTimestamp", "finalizers"
                )
            },
            "spec": raw_spec,
            "status": dict(body.get("status") or {}),
        }
        key = (str(metadata.get("namespace")), str(metadata["name"])) if metadata.get(
            "namespace"
        ) else str(metadata["name"])
        return {key: SpecEntry(slim, spec, invalid)}

    return CacheSpec(cache_id, kind.resource, entries)
