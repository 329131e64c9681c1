"""Pure decisions of the HA controller: is a host failed or back, which VMs it ran, is a
restarted VM ready per the orchestration, is the next priority tier due.

Times are datetimes in UTC; the stored ones are RFC 3339 strings with milliseconds (the
benchmark measures seconds from the last heartbeat).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from controllers.computecluster.ha_models import Orchestration, RestartPriority


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def lease_silent(renew_time: datetime | None, now: datetime, detection_seconds: int) -> bool:
    """Whether a host's Lease has not been renewed for longer than the detection time."""
    return renew_time is not None and now - renew_time > timedelta(seconds=detection_seconds)


def node_ready(node: Mapping[str, Any]) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def host_back(node: Mapping[str, Any], renew_time: datetime | None, declared_failed_at: datetime,
              now: datetime, detection_seconds: int) -> bool:
    """A failed host is back once it is Ready and renewed its Lease since it was declared
    failed (not just a stale Ready from before the failure)."""
    return (
        node_ready(node)
        and renew_time is not None
        and renew_time > declared_failed_at
        and not lease_silent(renew_time, now, detection_seconds)
    )


def _condition_true(vmi: Mapping[str, Any], condition_type: str) -> bool:
    for condition in (vmi.get("status") or {}).get("conditions") or []:
        if condition.get("type") == condition_type:
            return bool(condition.get("status") == "True")
    return False


def vmi_node(vmi: Mapping[str, Any] | None) -> str | None:
    node = ((vmi or {}).get("status") or {}).get("nodeName")
    return str(node) if node else None


def vmi_running_elsewhere(vmi: Mapping[str, Any] | None, failed_host: str) -> bool:
    if vmi is None or (vmi.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = vmi.get("status") or {}
    return status.get("phase") == "Running" and vmi_node(vmi) not in (None, failed_host)


def restart_ready(
    vmi: Mapping[str, Any] | None, failed_host: str, orchestration: Orchestration
) -> bool:
    """Whether a restarted VM counts as up for the next tier (orchestration.readyCondition)."""
    if not vmi_running_elsewhere(vmi, failed_host):
        return False
    assert vmi is not None
    if orchestration.ready_condition == "None":
        return True
    if orchestration.ready_condition == "GuestReady":
        return _condition_true(vmi, "Ready") and _condition_true(vmi, "AgentConnected")
    return _condition_true(vmi, "Ready")


def tier_due(
    tier_index: int,
    released_at: Sequence[datetime | None],
    ready_at: Sequence[datetime | None],
    orchestration: Orchestration,
    now: datetime,
) -> bool:
    """Whether tier `tier_index` (0: the highest present) may start now.

    The first starts at once; each next one when the tier above is ready plus
    postReadyDelaySeconds, or when timeoutSeconds passed since the tier above started.
    """
    if tier_index == 0:
        return True
    above_released = released_at[tier_index - 1]
    if above_released is None:
        return False
    if now - above_released >= timedelta(seconds=orchestration.timeout_seconds):
        return True
    above_ready = ready_at[tier_index - 1]
    if above_ready is None:
        return False
    return now - above_ready >= timedelta(seconds=orchestration.post_ready_delay_seconds)


def vm_priority(spec: Mapping[str, Any], cluster_default: RestartPriority) -> RestartPriority:
    """The VM's restartPriority, or the cluster's default when the VM sets none."""
    value = spec.get("restartPriority")
    if value in ("Disabled", "Lowest", "Low", "Medium", "High", "Highest"):
        return value  # type: ignore[no-any-return]
    return cluster_default
