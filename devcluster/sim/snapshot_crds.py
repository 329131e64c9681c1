"""The CSI snapshot CRDs (snapshot.storage.k8s.io/v1) and the simulation's VolumeSnapshotClass.

Written for the embedded datacenter (the upstream CRDs are not read at run time); the
schemas are those of external-snapshotter's `client/config/crd` (controller-gen output,
descriptions left out): VolumeSnapshot and VolumeSnapshotContent with their CEL rules,
VolumeSnapshotClass without spec/status. Upstream also lists `v1beta1`, not served; the
emulation lists `v1` alone. `tests/unit/sim/test_snapshot_crds.py` compares them with the
upstream files.

The simulation's `shared` driver can snapshot: one VolumeSnapshotClass for it, marked the
default. `rancher.io/local-path` volumes cannot (hostPath volumes, no CSI driver), as on kind.
"""

from __future__ import annotations

from typing import Any

from kubekit.resources import ResourceRef

GROUP = "snapshot.storage.k8s.io"
VOLUME_SNAPSHOTS = ResourceRef(GROUP, "v1", "volumesnapshots")
VOLUME_SNAPSHOT_CONTENTS = ResourceRef(GROUP, "v1", "volumesnapshotcontents", namespaced=False)
VOLUME_SNAPSHOT_CLASSES = ResourceRef(GROUP, "v1", "volumesnapshotclasses", namespaced=False)
SNAPSHOT_RESOURCES = (VOLUME_SNAPSHOTS, VOLUME_SNAPSHOT_CONTENTS, VOLUME_SNAPSHOT_CLASSES)

DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"
SHARED_SNAPSHOT_CLASS = "shared-snapclass"
SHARED_DRIVER = "sim.vdcos.io/shared"

_STRING: dict[str, Any] = {"type": "string"}
_DELETION_POLICY: dict[str, Any] = {"enum": ["Delete", "Retain"], "type": "string"}
_ERROR: dict[str, Any] = {"type": "object", "properties": {
    "message": _STRING, "time": {"format": "date-time", "type": "string"}}}
_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")


def _rule(rule: str, message: str) -> dict[str, str]:
    return {"message": message, "rule": rule}


def _immutable(field: str) -> dict[str, Any]:
    return {"type": "string",
            "x-kubernetes-validations": [_rule("self == oldSelf", f"{field} is immutable")]}


def _required_once_set(field: str) -> dict[str, str]:
    return _rule(f"!has(oldSelf.{field}) || has(self.{field})", f"{field} is required once set")


def _exactly_one(first: str, second: str) -> dict[str, str]:
    return _rule(f"(has(self.{first}) && !has(self.{second})) || "
                 f"(!has(self.{first}) && has(self.{second}))",
                 f"exactly one of {first} and {second} must be set")


def _top_level(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {
        "apiVersion": _STRING, "kind": _STRING, "metadata": {"type": "object"}, **properties}}
    if required:
        schema["required"] = required
    return schema


def _volume_snapshot_schema() -> dict[str, Any]:
    source = {"type": "object", "properties": {
        "persistentVolumeClaimName": _immutable("persistentVolumeClaimName"),
        "volumeSnapshotContentName": _immutable("volumeSnapshotContentName")},
        "x-kubernetes-validations": [
            _required_once_set("persistentVolumeClaimName"),
            _required_once_set("volumeSnapshotContentName"),
            _exactly_one("volumeSnapshotContentName", "persistentVolumeClaimName")]}
    spec = {"type": "object", "required": ["source"], "properties": {
        "source": source,
        "volumeSnapshotClassName": {"type": "string", "x-kubernetes-validations": [_rule(
            "size(self) > 0", "volumeSnapshotClassName must not be the empty string when set")]}}}
    status = {"type": "object", "properties": {
        "boundVolumeSnapshotContentName": _STRING,
        "creationTime": {"format": "date-time", "type": "string"},
        "error": _ERROR,
        "readyToUse": {"type": "boolean"},
        "restoreSize": {"pattern": _QUANTITY_PATTERN, "type": "string",
                        "x-kubernetes-int-or-string": True},
        "volumeGroupSnapshotName": _STRING}}
    return _top_level({"spec": spec, "status": status}, ["spec"])


def _volume_snapshot_content_schema() -> dict[str, Any]:
    source = {"type": "object", "properties": {
        "snapshotHandle": _immutable("snapshotHandle"),
        "volumeHandle": _immutable("volumeHandle")},
        "x-kubernetes-validations": [
            _required_once_set("volumeHandle"), _required_once_set("snapshotHandle"),
            _exactly_one("volumeHandle", "snapshotHandle")]}
    reference = {"type": "object", "properties": {
        key: _STRING for key in ("apiVersion", "fieldPath", "kind", "name", "namespace",
                                 "resourceVersion", "uid")},
        "x-kubernetes-map-type": "atomic",
        "x-kubernetes-validations": [_rule(
            "has(self.name) && has(self.__namespace__)",
            "both spec.volumeSnapshotRef.name and spec.volumeSnapshotRef.namespace must be set")]}
    spec = {"type": "object",
            "required": ["deletionPolicy", "driver", "source", "volumeSnapshotRef"],
            "properties": {"deletionPolicy": _DELETION_POLICY, "driver": _STRING,
                           "source": source, "sourceVolumeMode": _immutable("sourceVolumeMode"),
                           "volumeSnapshotClassName": _STRING, "volumeSnapshotRef": reference},
            "x-kubernetes-validations": [_required_once_set("sourceVolumeMode")]}
    status = {"type": "object", "properties": {
        "creationTime": {"format": "int64", "type": "integer"},
        "error": _ERROR,
        "readyToUse": {"type": "boolean"},
        "restoreSize": {"format": "int64", "minimum": 0, "type": "integer"},
        "snapshotHandle": _STRING,
        "volumeGroupSnapshotHandle": _STRING}}
    return _top_level({"spec": spec, "status": status}, ["spec"])


def _volume_snapshot_class_schema() -> dict[str, Any]:
    return _top_level({"deletionPolicy": _DELETION_POLICY, "driver": _STRING,
                       "parameters": {"type": "object",
                                      "additionalProperties": {"type": "string"}}},
                      ["deletionPolicy", "driver"])


def _column(name: str, json_path: str, type_: str = "string") -> dict[str, str]:
    return {"jsonPath": json_path, "name": name, "type": type_}


_AGE = _column("Age", ".metadata.creationTimestamp", "date")


def _crd(kind: str, plural: str, short_names: list[str], *, namespaced: bool,
         schema: dict[str, Any], columns: list[dict[str, str]], status: bool,
         approval: str) -> dict[str, Any]:
    version: dict[str, Any] = {"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema},
                               "additionalPrinterColumns": columns}
    # Upstream's class CRD declares an empty subresources map (controller-gen's output).
    version["subresources"] = {"status": {}} if status else {}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "annotations": {
            "api-approved.kubernetes.io":
                f"https://github.com/kubernetes-csi/external-snapshotter/pull/{approval}",
            "controller-gen.kubebuilder.io/version": "v0.15.0"}},
        "spec": {"group": GROUP, "scope": "Namespaced" if namespaced else "Cluster",
                 "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                           "shortNames": short_names, "singular": kind.lower()},
                 "versions": [version]},
    }


def snapshot_crds() -> list[dict[str, Any]]:
    return [
        _crd("VolumeSnapshotClass", "volumesnapshotclasses", ["vsclass", "vsclasses"],
             namespaced=False, schema=_volume_snapshot_class_schema(), status=False,
             approval="814",
             columns=[_column("Driver", ".driver"),
                      _column("DeletionPolicy", ".deletionPolicy"), _AGE]),
        _crd("VolumeSnapshotContent", "volumesnapshotcontents", ["vsc", "vscs"],
             namespaced=False, schema=_volume_snapshot_content_schema(), status=True,
             approval="955",
             columns=[_column("ReadyToUse", ".status.readyToUse", "boolean"),
                      _column("RestoreSize", ".status.restoreSize", "integer"),
                      _column("DeletionPolicy", ".spec.deletionPolicy"),
                      _column("Driver", ".spec.driver"),
                      _column("VolumeSnapshotClass", ".spec.volumeSnapshotClassName"),
                      _column("VolumeSnapshot", ".spec.volumeSnapshotRef.name"),
                      _column("VolumeSnapshotNamespace", ".spec.volumeSnapshotRef.namespace"),
                      _AGE]),
        _crd("VolumeSnapshot", "volumesnapshots", ["vs"], namespaced=True,
             schema=_volume_snapshot_schema(), status=True, approval="814",
             columns=[_column("ReadyToUse", ".status.readyToUse", "boolean"),
                      _column("SourcePVC", ".spec.source.persistentVolumeClaimName"),
                      _column("SourceSnapshotContent",
                              ".spec.source.volumeSnapshotContentName"),
                      _column("RestoreSize", ".status.restoreSize"),
                      _column("SnapshotClass", ".spec.volumeSnapshotClassName"),
                      _column("SnapshotContent", ".status.boundVolumeSnapshotContentName"),
                      _column("CreationTime", ".status.creationTime", "date"), _AGE]),
    ]


def default_snapshot_classes() -> list[dict[str, Any]]:
    """The `shared` driver's class, the default; none for local-path, which cannot snapshot."""
    return [{"apiVersion": f"{GROUP}/v1", "kind": "VolumeSnapshotClass",
             "metadata": {"name": SHARED_SNAPSHOT_CLASS,
                          "annotations": {DEFAULT_SNAPSHOT_CLASS_ANNOTATION: "true"}},
             "driver": SHARED_DRIVER, "deletionPolicy": "Delete"}]
