"""Operator settings: what the CLI chooses (kubeconfig, timings) and kopf's own settings.

kopf's settings are applied in one `@kopf.on.startup()` handler (controllers/operator.py),
never at import time. Our prefixes live under vdcos.io so nothing of kopf's default
domain appears on user objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

FINALIZER: Final = "vdcos.io/operator"
PROGRESS_PREFIX: Final = "operator.vdcos.io"
PEERING_NAME: Final = "vdcos-operator"


@dataclass
class OperatorConfig:
    """Choices of the process that runs the operator."""

    #: kubeconfig to use; None: $KUBECONFIG, ~/.kube/config, then the pod's service account.
    kubeconfig: Path | None = None
    #: how long status changes seen on KubeVirt objects are gathered into one status write.
    status_coalesce_seconds: float = 1.0
    #: progress of a converging VM (Provisioning, Starting...) is written at most this often
    #: (the interval doubles while it keeps converging); Ready and failures at once.
    progress_status_seconds: float = 5.0
    #: concurrent reconciles of VirtualMachines.
    vm_workers: int = 16
    #: server-side timeout of kopf's watch requests (the server ends them; kopf reconnects).
    watch_timeout_seconds: int = 300
    #: client-side timeout of other API requests.
    request_timeout_seconds: float = 60.0


def configure_kopf(settings: Any, config: OperatorConfig) -> None:
    """kopf's settings for our operator: own prefixes, watch timeouts, no per-object writes."""
    import kopf

    from controllers.common.no_diffbase import NoDiffBaseStorage

    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PROGRESS_PREFIX)
    # No handler of ours reacts to changes (on.create/update/field): kopf would deep-copy
    # every object on every event to compute a diff nobody reads (a seventh of the
    # operator's CPU at 1,000 VMs).
    settings.persistence.diffbase_storage = NoDiffBaseStorage()
    settings.watching.server_timeout = config.watch_timeout_seconds
    settings.watching.client_timeout = config.watch_timeout_seconds + 30
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = config.request_timeout_seconds
    # Peering only where the kopf.dev CRDs are installed: several replicas then elect one.
    settings.peering.name = PEERING_NAME
    settings.peering.mandatory = False
    settings.peering.clusterwide = True
    # Our events are posted by the reconcilers with context; kopf's own are noise.
    settings.posting.enabled = False
    # No settings.queueing.worker_limit: kopf holds every object's worker until all objects
    # are indexed, so a limit below the number of objects deadlocks the start-up.
