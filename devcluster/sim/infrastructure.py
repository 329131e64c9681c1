"""The simulated infrastructure of the datacenter: hosts and what Kubernetes runs for them."""

from __future__ import annotations

from .hosts import Hosts
from .metrics import MetricsServer
from .node_controller import NodeLifecycleController
from .runtime import Component, SimRuntime
from .scheduler import Scheduler
from .storage import StorageProvisioner
from .volume_expansion import VolumeExpansionController


def infrastructure_components(runtime: SimRuntime) -> list[Component]:
    """Storage, the scheduler, the node lifecycle controller, the hosts and metrics-server
    (an aggregated API it registers with the API server), in start order."""
    return [StorageProvisioner(runtime), VolumeExpansionController(runtime),
            Scheduler(runtime), NodeLifecycleController(runtime), Hosts(runtime),
            MetricsServer(runtime)]
