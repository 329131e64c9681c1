"""The emulated host networking: what `network_components` gives the runner.

kubernetes-nmstate's handler (NodeNetworkState, policies, enactments) and kubevirt's
bridge-marker (Linux bridges advertised as Node resources). Multus/CNI's part is in the
kubelet (devcluster/sim/cni.py, used by devcluster/sim/hosts.py).
"""

from __future__ import annotations

from .bridge_marker import BridgeMarker
from .nmstate import NmstateHandler
from .runtime import Component, SimRuntime


def network_components(runtime: SimRuntime) -> list[Component]:
    """nmstate first: bridge-marker reads the NodeNetworkStates it writes."""
    return [NmstateHandler(runtime), BridgeMarker(runtime)]
