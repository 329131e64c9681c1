"""What a VDC VM of a failed host says in its conditions (pure): HostFailed, then Restarting.

Without this a VM of a powered-off host reads "the guest is not ready", which is true and
useless: the user wants to know the host failed and what HA is doing about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controllers.common.conditions import Condition, mark_false
from controllers.hostfailure.annotations import FAILED_HOST, MESSAGE, RESTART, ha_annotations


def with_failover_conditions(
    status: Mapping[str, Any], metadata: Mapping[str, Any], generation: int, now: datetime
) -> dict[str, Any]:
    """The status with Ready=False HostFailed / Restarting while HA handles the VM's host."""
    annotations = ha_annotations(metadata)
    host = annotations.get(FAILED_HOST)
    state = annotations.get(RESTART)
    if host is None or state is None:
        return dict(status)
    detail = annotations.get(MESSAGE, "")
    if state == "Restarting":
        reason = "Restarting"
        message = f"host {host} failed; HA is restarting the VM on another host"
    elif state == "NotRestarted":
        reason = "HostFailed"
        message = f"host {host} failed; restartPriority Disabled: HA does not restart the VM"
    else:
        reason = "HostFailed"
        message = f"host {host} failed; " + (detail or "HA restarts the VM once it is fenced")
    conditions: list[Condition] = list(status.get("conditions") or [])
    return {
        **status,
        "conditions": mark_false(
            conditions, "Ready", reason, message, observed_generation=generation, now=now
        ),
    }
