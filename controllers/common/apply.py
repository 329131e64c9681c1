"""Compare-then-write helpers shared by the reconcilers: owner references, status patches
that are skipped when nothing changed, and Events.

A reconcile computes the whole desired state and writes only the difference; a no-op resync
writes nothing. Events go to the object they concern, like kubectl describe shows them.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from controllers.common.kube import FIELD_MANAGER, KubeClient
from kubekit.resources import EVENTS, ResourceRef

EventType = Literal["Normal", "Warning"]


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The controller ownerReference to `owner` (what kopf.adopt sets): deletion cascades."""
    metadata = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Mapping[str, Any] | None, owner_uid: str) -> bool:
    """Whether `obj` has a controller ownerReference to the object with that uid."""
    if obj is None:
        return False
    for reference in obj.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("uid") == owner_uid and reference.get("controller"):
            return True
    return False


def _pruned(value: Any) -> Any:
    """The value as the API server stores it: None, [] and {} members dropped."""
    if isinstance(value, Mapping):
        pruned = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, [], {})}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def status_changed(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether writing `desired` as the whole status would change `current`."""
    return bool(_pruned(dict(current or {})) != _pruned(dict(desired)))


def whole_status_patch(
    current: Mapping[str, Any] | None, desired: Mapping[str, Any]
) -> dict[str, Any]:
    """A merge patch that makes the status exactly `desired`: fields it lacks are removed.

    Status is the whole observed state, computed each pass; a field left over from an earlier
    pass (the host of a VM whose spec turned invalid) would make every later pass look changed.
    """
    cleared: dict[str, Any] = {key: None for key in current or {} if key not in desired}
    return {**cleared, **desired}


async def patch_status(
    kube: KubeClient,
    resource: ResourceRef,
    namespace: str | None,
    name: str,
    current: Mapping[str, Any] | None,
    desired: Mapping[str, Any],
) -> bool:
    """Makes the status `desired` when it differs (one merge patch); returns whether it wrote."""
    if not status_changed(current, desired):
        return False
    patch = {"status": whole_status_patch(current, desired)}
    await kube.patch(resource, namespace, name, patch, subresource="status")
    return True


def build_event(
    involved: Mapping[str, Any],
    event_type: EventType,
    reason: str,
    message: str,
) -> dict[str, Any]:
    """A core/v1 Event about `involved` (apiVersion, kind, metadata.name/namespace/uid)."""
    metadata = involved.get("metadata", {})
    namespace = metadata.get("namespace") or "default"
    moment = datetime.now(UTC)
    now = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        # "<object>.<random>", as client-go's recorder names them.
        "metadata": {
            "name": f"{metadata.get('name', 'object')}.{secrets.token_hex(8)}",
            "namespace": namespace,
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "reportingInstance": os.environ.get("POD_NAME") or socket.gethostname(),
        "firstTimestamp": now,
        "lastTimestamp": now,
        # Microseconds (a MicroTime, as client-go's events recorder writes): the order of two
        # Events posted in one second stays readable.
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "count": 1,
    }


async def post_event(
    kube: KubeClient,
    involved: Mapping[str, Any],
    event_type: EventType,
    reason: str,
    message: str,
) -> None:
    """Posts an Event; a failure to post is not a failure of the reconcile."""
    try:
        await kube.create(EVENTS, build_event(involved, event_type, reason, message))
    except Exception:
        return
