"""virt-api's validating webhooks of snapshot.kubevirt.io (KubeVirt `pkg/storage/admitters`).

VirtualMachineSnapshot: `spec.source` must name a `kubevirt.io` VirtualMachine ("missing
apiGroup", "invalid apiGroup", "invalid kind"); the spec is immutable ("spec in immutable
after creation", KubeVirt's wording). VirtualMachineRestore: the same for `spec.target`, its
`patches` only under /spec/ (or labels and annotations), `volumeRestoreOverrides` naming a
volume and something to override, known `volumeRestorePolicy` / `volumeOwnershipPolicy`,
one restore in progress per target, spec immutable. A refusal is answered as kube-apiserver
answers a webhook's: 422 `admission webhook "<name>" denied the request: <messages>`.

Loaded into the API server's process with the rest of virt-api (`install_virt_api`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from devcluster.apiserver.errors import ApiError, Cause

Obj = Mapping[str, Any]

GROUP = "snapshot.kubevirt.io"
SNAPSHOT_WEBHOOK = "virtualmachinesnapshot-validator.snapshot.kubevirt.io"
RESTORE_WEBHOOK = "virtualmachinerestore-validator.snapshot.kubevirt.io"
RESTORE_POLICIES = ("InPlace", "RandomizeNames", "PrefixTargetName")
OWNERSHIP_POLICIES = ("VirtualMachine", "None")


def _spec(obj: Obj | None) -> Obj:
    spec: Obj = (obj or {}).get("spec") or {}
    return spec


def _reference_causes(reference: Obj, field: str) -> list[Cause]:
    if reference.get("apiGroup") is None:
        return [Cause(f"{field}.apiGroup", "missing apiGroup", "FieldValueNotFound")]
    if reference.get("apiGroup") != "kubevirt.io":
        return [Cause(f"{field}.apiGroup", "invalid apiGroup")]
    if reference.get("kind") != "VirtualMachine":
        return [Cause(f"{field}.kind", "invalid kind")]
    return []


def snapshot_causes(snapshot: Obj, old: Obj | None) -> list[Cause]:
    """`VMSnapshotAdmitter.Admit` (create, or update with the stored `old`)."""
    if old is not None:
        return [] if _spec(old) == _spec(snapshot) else [
            Cause("spec", "spec in immutable after creation")]
    return _reference_causes(_spec(snapshot).get("source") or {}, "spec.source")


def _patch_causes(patches: Sequence[str]) -> list[Cause]:
    """`validatePatches`, as KubeVirt splits each patch into key:value pairs."""
    causes = []
    for patch in patches:
        for pair in patch.strip("{}").split(","):
            parts = pair.split(":")
            if len(parts) != 2:
                causes.append(Cause("spec.patches", 'patch format is not valid - one ":" '
                                                    f"expected in a single key-value json "
                                                    f"patch: {pair}"))
                continue
            key, value = parts[0].strip(), parts[1].strip()
            if key == '"path"' and not value.startswith(
                    ('"/metadata/labels/', '"/metadata/annotations/', '"/spec/')):
                causes.append(Cause("spec.patches", "patching is valid only for elements "
                                                    f"under /spec/ only: {pair}"))
    return causes


def restore_causes(restore: Obj, old: Obj | None, others: Sequence[Obj]) -> list[Cause]:
    """`VMRestoreAdmitter.Admit`; `others` are the namespace's stored restores."""
    spec = _spec(restore)
    if old is not None:
        return [] if _spec(old) == spec else [
            Cause("spec", "spec in immutable after creation")]
    target = spec.get("target") or {}
    causes = _reference_causes(target, "spec.target")
    if not causes:
        causes += _patch_causes(list(spec.get("patches") or []))
        for index, override in enumerate(spec.get("volumeRestoreOverrides") or []):
            field = f"spec.volumeRestoreOverrides[{index}]"
            if not override.get("volumeName"):
                causes.append(Cause(f"{field}.volumeName", "must provide a volume name",
                                    "FieldValueRequired"))
            if not override.get("restoreName") and override.get("annotations") is None \
                    and override.get("labels") is None:
                causes.append(Cause(field, "must provide at least one overriden field",
                                    "FieldValueRequired"))
        policy = spec.get("volumeRestorePolicy")
        if policy is not None and policy not in RESTORE_POLICIES:
            causes.append(Cause("spec.volumeRestorePolicy",
                                f'volume restore policy "{policy}" doesn\'t exist'))
        ownership = spec.get("volumeOwnershipPolicy")
        if ownership is not None and ownership not in OWNERSHIP_POLICIES:
            causes.append(Cause("spec.volumeOwnershipPolicy",
                                f'volume ownership policy "{ownership}" doesn\'t exist'))
    for other in others:
        if (_spec(other).get("target") or {}) == target and \
                not ((other.get("status") or {}).get("complete")):
            name = (other.get("metadata") or {}).get("name")
            causes.append(Cause("spec.target", f'VirtualMachineRestore "{name}" in progress'))
    return causes


def denial(webhook: str, causes: Sequence[Cause], kind: str, name: str) -> ApiError:
    """kube-apiserver's answer to a webhook's refusal (KubeVirt's `ToAdmissionResponse`)."""
    message = ", ".join(cause.message for cause in causes)
    return ApiError(422, "Invalid", f'admission webhook "{webhook}" denied the request: '
                                    f"{message}",
                    {"name": name, "group": GROUP, "kind": kind,
                     "causes": [cause.to_dict() for cause in causes]})


class Store(Protocol):
    def get(self, key: tuple[str, str], namespace: str, name: str) -> dict[str, Any] | None: ...

    def list(self, key: tuple[str, str], namespace: str | None = None
             ) -> list[dict[str, Any]]: ...


class SnapshotAdmission:
    """The two webhooks as the API server's per-kind validators (they read its store)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def hooks(self) -> dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]]:
        return {(GROUP, "VirtualMachineSnapshot"): self._snapshot,
                (GROUP, "VirtualMachineRestore"): self._restore}

    def _stored(self, plural: str, obj: Obj) -> dict[str, Any] | None:
        meta = obj.get("metadata") or {}
        return self.store.get((GROUP, plural), str(meta.get("namespace", "")),
                              str(meta.get("name", "")))

    def _snapshot(self, snapshot: dict[str, Any]) -> list[Cause]:
        causes = snapshot_causes(snapshot, self._stored("virtualmachinesnapshots", snapshot))
        if causes:
            raise denial(SNAPSHOT_WEBHOOK, causes, "VirtualMachineSnapshot",
                         str(snapshot["metadata"].get("name", "")))
        return []

    def _restore(self, restore: dict[str, Any]) -> list[Cause]:
        old = self._stored("virtualmachinerestores", restore)
        namespace = str(restore["metadata"].get("namespace", ""))
        others = [] if old is not None else self.store.list(
            (GROUP, "virtualmachinerestores"), namespace)
        causes = restore_causes(restore, old, others)
        if causes:
            raise denial(RESTORE_WEBHOOK, causes, "VirtualMachineRestore",
                         str(restore["metadata"].get("name", "")))
        return []
