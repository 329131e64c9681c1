"""The state HA keeps on each VDC VirtualMachine of a failed host, as annotations.

They are the failover's memory: an operator restarted in the middle of a failover reads
them back and carries on. The VirtualMachine controller reads them too: a held VM's KubeVirt
VM gets runStrategy Manual (KubeVirt then does not start it again when its old instance
fails), and its conditions say what happened to its host.

- `ha.vdcos.io/failed-host`: the failed host the VM ran on;
- `ha.vdcos.io/restart`: Held (waiting for fencing or for its priority tier), Pending (its
  turn came, but no host has room), Restarting (released: KubeVirt starts it elsewhere),
  NotRestarted (restartPriority Disabled);
- `ha.vdcos.io/message`: what it waits for, in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

PREFIX: Final = "ha.vdcos.io/"
FAILED_HOST: Final = "ha.vdcos.io/failed-host"
RESTART: Final = "ha.vdcos.io/restart"
MESSAGE: Final = "ha.vdcos.io/message"

RestartState = Literal["Held", "Pending", "Restarting", "NotRestarted"]
#: States in which KubeVirt must not start the VM again by itself.
HOLDING_STATES: Final = frozenset({"Held", "Pending", "NotRestarted"})


def ha_annotations(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The HA annotations of an object's metadata."""
    annotations = metadata.get("annotations") or {}
    return {key: str(value) for key, value in annotations.items() if key.startswith(PREFIX)}


def is_held(metadata: Mapping[str, Any]) -> bool:
    """Whether HA holds the VM: its KubeVirt VM runs with runStrategy Manual meanwhile."""
    return ha_annotations(metadata).get(RESTART) in HOLDING_STATES


def restart_patch(
    host: str | None, state: RestartState | None, message: str = ""
) -> dict[str, Any]:
    """The merge patch that sets (or with None, removes) a VM's HA annotations."""
    if host is None or state is None:
        return {"metadata": {"annotations": {FAILED_HOST: None, RESTART: None, MESSAGE: None}}}
    return {
        "metadata": {
            "annotations": {FAILED_HOST: host, RESTART: state, MESSAGE: message or None}
        }
    }
