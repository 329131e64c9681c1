"""Live migrations as KubeVirt runs them: how many at once, and how long one takes.

Pure functions read by virt-controller (the parallel-migration limits) and by the target
virt-handler (the duration of the memory copy).

- Limits: KubeVirt CR `spec.configuration.migrations.parallelMigrationsPerCluster`
  (default 5) and `parallelOutboundMigrationsPerNode` (default 2), as
  `pkg/virt-config/virt-config.go` defaults them. A migration over a limit stays Pending
  with no target pod; virt-controller only logs why (`handleTargetPodCreation`), with the
  messages below, and looks again a few seconds later.
- Duration: a fixed setup (target domain start, handover) plus the guest memory copied once
  at the migration bandwidth. Pre-copy with an idle guest copies memory about once; the
  default bandwidth is what a 10 Gb/s migration network gives (8 GiB in about 7 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .launcher import guest_memory

DEFAULT_PARALLEL_MIGRATIONS_PER_CLUSTER: Final = 5
DEFAULT_PARALLEL_OUTBOUND_MIGRATIONS_PER_NODE: Final = 2
DEFAULT_MIGRATION_BANDWIDTH_GBPS: Final = 10.0


@dataclass(frozen=True)
class MigrationLimits:
    per_cluster: int = DEFAULT_PARALLEL_MIGRATIONS_PER_CLUSTER
    outbound_per_node: int = DEFAULT_PARALLEL_OUTBOUND_MIGRATIONS_PER_NODE


def migration_limits(kubevirt: Mapping[str, Any] | None) -> MigrationLimits:
    """The parallel-migration limits of the KubeVirt CR (its defaults where unset)."""
    configuration = ((kubevirt or {}).get("spec") or {}).get("configuration") or {}
    migrations = configuration.get("migrations") or {}
    per_cluster = migrations.get("parallelMigrationsPerCluster")
    outbound = migrations.get("parallelOutboundMigrationsPerNode")
    return MigrationLimits(
        per_cluster=int(per_cluster) if per_cluster is not None
        else DEFAULT_PARALLEL_MIGRATIONS_PER_CLUSTER,
        outbound_per_node=int(outbound) if outbound is not None
        else DEFAULT_PARALLEL_OUTBOUND_MIGRATIONS_PER_NODE,
    )


def limit_reached(limits: MigrationLimits, namespace: str, vmi_name: str, running: int,
                  outbound_from_source: int) -> str | None:
    """Why a migration must wait for a slot (virt-controller's log line), or None."""
    if running >= limits.per_cluster:
        return (f"Waiting to schedule target pod for vmi [{namespace}/{vmi_name}] migration "
                f"because total running parallel migration count [{running}] is currently "
                "at the global cluster limit.")
    if outbound_from_source >= limits.outbound_per_node:
        return (f"Waiting to schedule target pod for vmi [{namespace}/{vmi_name}] migration "
                "because total running parallel outbound migrations on target node "
                f"[{outbound_from_source}] has hit outbound migrations per node limit.")
    return None


def migration_seconds(vmi: Mapping[str, Any], setup_seconds: float,
                      bandwidth_gbps: float) -> float:
    """How long the simulated migration of `vmi` runs: setup plus its memory at bandwidth."""
    bits = guest_memory(vmi) * 8
    return setup_seconds + bits / (bandwidth_gbps * 1e9)
