"""Storage vMotion benchmark for hack/bench.py (`hack/bench.py storage`).

A running VDC VM with one 100 Gi disk on the `shared` class moves to a policy on another
class (a StorageClass the policy creates with the simulation's shared provisioner). The
simulation copies the volume at `--volume-migration-mbps` (MB/s), so the expected time is
the fixed migration part plus the claim (100 GiB and CDI's filesystem overhead) at that
rate. Printed: the seconds from the policy change to the disk on its new class
(status.disks), the expected copy time, and whether the guest kept running (same VMI uid)
and the source DataVolume went. Figures only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from controllers.virtualmachine.disks import required_space  # noqa: E402
from tests.harness import DevCluster  # noqa: E402
from tests.integration.conftest import start_vdcos_up  # noqa: E402


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vmotion-size-gib", type=int, default=100,
                        help="size of the disk Storage vMotion moves (default 100)")
    parser.add_argument("--volume-migration-mbps", type=float, default=2000.0,
                        help="the simulation's volume copy rate in MB/s (default 2000)")
    parser.add_argument("--vmotion-timeout", type=float, default=900)


def _apply(cluster: DevCluster, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=manifest)


def _get(cluster: DevCluster, *args: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    return loaded


def _root_disk(cluster: DevCluster) -> dict[str, Any]:
    for entry in _get(cluster, "vdcvm", "big").get("status", {}).get("disks") or []:
        if entry.get("name") == "root":
            found: dict[str, Any] = entry
            return found
    return {}


def _poll(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)  # kubectl reads, as a user watching the move
    raise RuntimeError(f"timed out waiting for {what}")


def run_storage_vmotion(args: argparse.Namespace) -> dict[str, Any]:
    migration_seconds = 0.5
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_vdcos_up(
            Path(tmp), "--hosts", "3", "--import-seconds", "0.5",
            "--migration-seconds", str(migration_seconds),
            "--volume-migration-mbps", str(args.volume_migration_mbps), timeout=180)
        try:
            _apply(cluster, f"""
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: bench-shared
spec:
  storageClassName: shared
---
apiVersion: vdcos.io/v1alpha1
kind: StoragePolicy
metadata:
  name: bench-fast
spec:
  provisioner: sim.vdcos.io/shared
---
apiVersion: vdcos.io/v1alpha1
kind: VirtualMachine
metadata:
  name: big
spec:
  cpu:
    count: 2
  memory:
    size: 2Gi
  disks:
  - name: root
    size: {args.vmotion_size_gib}Gi
    storagePolicyName: bench-shared
""")
            cluster.kubectl("wait", "--for=condition=Ready", "vdcvm/big", "--timeout=300s",
                            timeout=310)
            guest = _get(cluster, "vmi", "big")["metadata"]["uid"]
            started = time.perf_counter()
            cluster.kubectl("patch", "vdcvm", "big", "--type", "json", "-p",
                            '[{"op":"replace","path":"/spec/disks/0/storagePolicyName",'
                            '"value":"bench-fast"}]')
            seen_migrating = _poll(lambda: _root_disk(cluster).get("migration"),
                                   args.vmotion_timeout, "the move to start")
            moved = _poll(lambda: (d := _root_disk(cluster)).get("storageClassName")
                          == "bench-fast" and "migration" not in d and d,
                          args.vmotion_timeout, "the disk on bench-fast")
            seconds = time.perf_counter() - started
            source_gone = cluster.kubectl("get", "dv", "big-root", check=False).returncode != 0
            same_guest = _get(cluster, "vmi", "big")["metadata"]["uid"] == guest
        finally:
            cluster.stop()
    # The claim is larger than the disk by CDI's filesystem overhead: that is what is copied.
    claim_bytes = int(required_space(f"{args.vmotion_size_gib}Gi", "Filesystem"))
    expected = migration_seconds + claim_bytes / (args.volume_migration_mbps * 1_000_000)
    return {
        "disk_gib": args.vmotion_size_gib,
        "claim_bytes_copied": claim_bytes,
        "rate_mb_per_second": args.volume_migration_mbps,
        "seconds_to_moved": round(seconds, 1),
        "expected_copy_seconds": round(expected, 1),
        "overhead_seconds": round(seconds - expected, 1),
        "status_showed_phase": seen_migrating.get("phase"),
        "target_data_volume": moved.get("dataVolumeName"),
        "same_vmi": same_guest,
        "source_data_volume_deleted": source_gone,
    }
