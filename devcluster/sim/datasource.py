"""CDI's DataSource controller: a DataSource is Ready once the claim it names is populated.

Mirrors CDI 1.66 `pkg/controller/datasource-controller.go` for `spec.source.pvc`: the
claim's DataVolume (same name) Succeeded, or a claim without a DataVolume, makes the
DataSource Ready ("DataSource is ready to be consumed") and `status.source` the resolved
source; a DataVolume still working gives Ready=False with its phase as reason ("Import
DataVolume phase ImportInProgress"); neither claim nor DataVolume: Ready=False NotFound "PVC
not found". `spec.source.snapshot` is left to the snapshot emulation (NotFound here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubekit.informer import Key
from kubekit.resources import DATASOURCES, DATAVOLUMES, PVCS
from kubekit.workqueue import WorkQueue

from .runtime import SIM_RETRY_DELAYS, SimRuntime, now_rfc3339

Obj = Mapping[str, Any]

MESSAGE_READY = "DataSource is ready to be consumed"


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def data_source_ready(
    data_source: Obj, claim: Obj | None, data_volume: Obj | None
) -> tuple[str, str, str]:
    """(status, reason, message) of the DataSource's Ready condition."""
    source = (data_source.get("spec") or {}).get("source") or {}
    if "pvc" not in source:
        if "snapshot" in source:
            return "False", "NotFound", "Snapshot not found"
        return "False", "NoSource", "No source PVC set"
    if data_volume is not None:
        phase = str((data_volume.get("status") or {}).get("phase") or "")
        if phase == "Succeeded":
            return "True", "Ready", MESSAGE_READY
        return "False", phase, f"Import DataVolume phase {phase}"
    if claim is None:
        return "False", "NotFound", "PVC not found"
    return "True", "Ready", MESSAGE_READY


def data_source_status(
    data_source: Obj, claim: Obj | None, data_volume: Obj | None
) -> dict[str, Any]:
    """The DataSource status CDI writes (conditions keep their transition time)."""
    status, reason, message = data_source_ready(data_source, claim, data_volume)
    stamp = now_rfc3339()
    previous = next((c for c in (data_source.get("status") or {}).get("conditions") or []
                     if c.get("type") == "Ready"), None)
    transition = stamp
    if previous is not None and previous.get("status") == status:
        transition = str(previous.get("lastTransitionTime") or stamp)
    condition: dict[str, Any] = {"type": "Ready", "status": status, "reason": reason,
                                 "message": message, "lastHeartbeatTime": stamp,
                                 "lastTransitionTime": transition}
    source = (data_source.get("spec") or {}).get("source") or {}
    return {"conditions": [condition], "source": dict(source) if status == "True" else {}}


def _same_except_heartbeat(old: Obj, new: Obj) -> bool:
    def strip(status: Obj) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                for c in status.get("conditions") or []]
    return strip(old) == strip(new) and old.get("source") == new.get("source")


class DataSourceController:
    """Keeps every DataSource's Ready condition, as CDI's controller does."""

    name = "datasource"

    def __init__(self, runtime: SimRuntime) -> None:
        self.runtime = runtime
        self.kube = runtime.kube
        self.sources = runtime.informer(DATASOURCES)
        self.dvs = runtime.informer(DATAVOLUMES)
        self.pvcs = runtime.informer(PVCS)
        self.queue = WorkQueue("datasource", self._sync, workers=2, retry_delays=SIM_RETRY_DELAYS)

    async def start(self) -> None:
        self.sources.add_listener(lambda _kind, ds: self.queue.enqueue(
            (str(_meta(ds).get("namespace", "")), str(_meta(ds)["name"]))))
        self.dvs.add_listener(self._on_claim)
        self.pvcs.add_listener(self._on_claim)
        self.queue.start()
        await self.runtime.wait_synced(DATASOURCES, DATAVOLUMES, PVCS)
        for data_source in self.sources.values():
            self.queue.enqueue((str(_meta(data_source).get("namespace", "")),
                                str(_meta(data_source)["name"])))

    async def stop(self) -> None:
        await self.queue.stop()

    def _on_claim(self, _kind: str, obj: dict[str, Any]) -> None:
        """A claim or DataVolume changed: the DataSources naming it (a scan: they are few)."""
        namespace, name = str(_meta(obj).get("namespace", "")), str(_meta(obj)["name"])
        for data_source in self.sources.values():
            pvc = ((data_source.get("spec") or {}).get("source") or {}).get("pvc") or {}
            ds_namespace = str(_meta(data_source).get("namespace", ""))
            if pvc.get("name") == name and (pvc.get("namespace") or ds_namespace) == namespace:
                self.queue.enqueue((ds_namespace, str(_meta(data_source)["name"])))

    async def _sync(self, key: Key) -> float | None:
        data_source = self.sources.get(*key)
        if data_source is None or _meta(data_source).get("deletionTimestamp"):
            return None
        pvc = ((data_source.get("spec") or {}).get("source") or {}).get("pvc") or {}
        claim_key = (str(pvc.get("namespace") or key[0]), str(pvc.get("name") or ""))
        status = data_source_status(data_source, self.pvcs.get(*claim_key),
                                    self.dvs.get(*claim_key))
        if _same_except_heartbeat(data_source.get("status") or {}, status):
            return None
        await self.kube.request("PUT", DATASOURCES.path(key[0], key[1], "status"),
                                body={**data_source, "status": status})
        return None
