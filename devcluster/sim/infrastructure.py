"""The simulated infrastructure of the datacenter: hosts and what Kubernetes runs for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hosts import Hosts
from .metrics import MetricsServer
from .node_controller import NodeLifecycleController
from .runtime import Component, SimRuntime
from .scheduler import Scheduler
from .storage import StorageProvisioner

if TYPE_CHECKING:
    from devcluster.apiserver.server import ApiServer


def infrastructure_components(runtime: SimRuntime, server: ApiServer | None) -> list[Component]:
    """Storage, the scheduler, the node lifecycle controller and the hosts (in start order);
    plus metrics.k8s.io when running inside the API server's process."""
    components: list[Component] = [StorageProvisioner(runtime), Scheduler(runtime),
                                   NodeLifecycleController(runtime), Hosts(runtime)]
    if server is not None:
        metrics = MetricsServer(runtime)
        server.add_extension(metrics.extension())
        components.append(metrics)
    return components
