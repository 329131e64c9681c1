"""When to write the status of a converging VM (pure): the pacing of progress writes.

Ready reaching a settled value and a new generation are written at once; the progress of a
VM on its way (Provisioning, Starting...) is held back, so a VM costs one status write on its
way to Ready rather than one per KubeVirt phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from controllers.common.conditions import READY, find_condition

#: Ready reasons of a VM on its way somewhere (starting, stopping, provisioning disks).
TRANSITIONAL_REASONS: Final = frozenset(
    {
        "Starting",
        "Stopping",
        "Suspending",
        "Resuming",
        "Provisioning",
        "WaitingForVolumeBinding",
        "NotCreated",
        "Scheduling",
        "Scheduled",
        "Pending",
        "Migrating",
        "Stopped",
        "NotRunning",
        "NotReady",
        "DisksReadyUnknown",
        "RunningUnknown",
        "PowerStateReachedUnknown",
        # The StoragePolicy controller creates the class within moments of the policy.
        "StorageClassPending",
    }
)


def in_transition(status: Mapping[str, Any]) -> bool:
    """Whether the status shows a VM still converging (not Ready, for a passing reason)."""
    ready = find_condition(status.get("conditions") or [], READY)
    return (
        ready is not None
        and ready["status"] != "True"
        and (ready["reason"] in TRANSITIONAL_REASONS)
    )


def _ready_status(status: Mapping[str, Any]) -> str | None:
    ready = find_condition(status.get("conditions") or [], READY)
    return ready["status"] if ready is not None else None


def status_write_delay(
    previous: Mapping[str, Any],
    desired: Mapping[str, Any],
    generation: int,
    seconds_since_last_write: float,
    window: float,
) -> float:
    """Seconds to hold back a status write; 0 to write now.

    Written at once: a new generation (the user changed the spec) and Ready reaching a
    settled value (True, or False for a reason that needs attention). Everything else -
    the progress of a converging VM (Provisioning, Starting...) and details of a VM whose
    Ready does not change (IP addresses, LiveMigratable) - is written at most once per
    `window`, so a VM costs one status write on its way to Ready, not one per KubeVirt phase;
    progress whose Ready reason did not change is not written at all (math.inf).
    """
    if previous and previous.get("observedGeneration") != generation:
        return 0.0
    settled_change = _ready_status(previous) != _ready_status(desired) or _ready_reason(
        previous
    ) != _ready_reason(desired)
    if settled_change and not in_transition(desired):
        return 0.0
    if (
        in_transition(previous)
        and in_transition(desired)
        and _ready_reason(previous) == _ready_reason(desired)
    ):
        return math.inf  # still on the way, for the same reason: nothing worth a write
    return max(0.0, window - seconds_since_last_write)


def _ready_reason(status: Mapping[str, Any]) -> str | None:
    ready = find_condition(status.get("conditions") or [], READY)
    return ready["reason"] if ready is not None else None
