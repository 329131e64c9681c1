"""meta.k8s.io/v1 Table answers for `kubectl get`, with kube's columns and cell formatting.

Custom resources get NAME plus their additionalPrinterColumns (or AGE when they declare none),
evaluated like apiextensions' table convertor: the first JSONPath result only, strings printed
as kubectl's jsonpath prints them, dates as a human age. Built-in kinds get the columns of
kube's internal printers for the kinds kubectl users look at most; the rest NAME and AGE.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devcluster.apiserver.resources import PrinterColumn, ResourceType

Cell = Any
RowFunction = Callable[[dict[str, Any], datetime], list[Cell]]

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def parse_timestamp(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_duration(seconds_total: float) -> str:
    """apimachinery's duration.HumanDuration."""
    seconds = int(seconds_total)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def human_age(created: str, now: datetime) -> str:
    """Age of an RFC 3339 timestamp as kubectl prints it ("5m3s"); "<unknown>" when unset."""
    moment = parse_timestamp(created) if created else None
    if moment is None:
        return "<unknown>"
    reference = now if now.tzinfo else now.replace(tzinfo=UTC)
    return human_duration((reference - moment).total_seconds())


# --- JSONPath (the subset printer columns use) ------------------------------------------------

_SEGMENT = re.compile(
    r"\.([^.\[]+)|\[(\*|-?\d+|'[^']*'|\"[^\"]*\")\]"
    r"|\[\?\(@((?:\.[\w-]+)+)\s*(==|!=)\s*(?:'([^']*)'|\"([^\"]*)\"|(-?\d+|true|false))\)\]"
)


def jsonpath_values(obj: Any, path: str) -> list[Any]:
    """Results of a simple JSONPath (`.a.b`, `.a[*].b`, `.a[0]`, `.a['x.y']`); missing keys
    give no result, as kube's printer columns allow missing keys."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    current = [obj]
    position = 0
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            return []
        position = match.end()
        key, index, filter_path = match.group(1), match.group(2), match.group(3)
        following: list[Any] = []
        for value in current:
            if filter_path is not None:
                literal = next(g for g in match.group(5, 6, 7) if g is not None)
                following.extend(_filtered(value, filter_path, match.group(4), literal))
            elif key is not None:
                if key == "*":
                    following.extend(_children(value))
                elif isinstance(value, dict) and key in value:
                    following.append(value[key])
            elif index == "*":
                following.extend(_children(value))
            elif index is not None and index[0] in "'\"":
                if isinstance(value, dict) and index[1:-1] in value:
                    following.append(value[index[1:-1]])
            elif index is not None and isinstance(value, list):
                number = int(index)
                if -len(value) <= number < len(value):
                    following.append(value[number])
        current = following
    return current


def _filtered(value: Any, path: str, operator: str, literal: str) -> list[Any]:
    """Items of a list selected by `[?(@.path == 'literal')]`, as client-go's jsonpath."""
    if not isinstance(value, list):
        return []
    selected = []
    for item in value:
        found = jsonpath_values(item, path)
        equal = bool(found) and _jsonpath_text(found[0]) == literal
        if equal if operator == "==" else (bool(found) and not equal):
            selected.append(item)
    return selected


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _jsonpath_text(value: Any) -> str:
    """How client-go's jsonpath prints one value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def column_cell(column: PrinterColumn, obj: dict[str, Any], now: datetime) -> Cell:
    """One additionalPrinterColumn cell, as apiextensions' table convertor fills it."""
    results = jsonpath_values(obj, column.json_path)
    if not results:
        return None
    value = results[0]
    if column.type == "string":
        return _jsonpath_text(value)
    if value is None:
        return None
    if column.type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if column.type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if column.type == "boolean" and isinstance(value, bool):
        return value
    if column.type == "date" and isinstance(value, str):
        return human_age(value, now) if parse_timestamp(value) else "<invalid>"
    return None


# --- built-in kinds ---------------------------------------------------------------------------


def _column(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


def _age(obj: dict[str, Any], now: datetime) -> str:
    return human_age((obj.get("metadata") or {}).get("creationTimestamp") or "", now)


def _get(obj: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(key, int) and isinstance(obj, list) and -len(obj) <= key < len(obj):
            obj = obj[key]
        elif isinstance(key, str) and isinstance(obj, dict):
            obj = obj.get(key)
        else:
            return None
    return obj


def _or_none(text: Any) -> str:
    return str(text) if text not in (None, "") else "<none>"


def _namespace_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    return [_get(obj, "status", "phase") or "", _age(obj, now)]


def _node_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    conditions = _get(obj, "status", "conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    states = []
    if ready is None or ready.get("status") != "True":
        states.append("NotReady" if ready is not None else "Unknown")
    else:
        states.append("Ready")
    if _get(obj, "spec", "unschedulable"):
        states.append("SchedulingDisabled")
    labels = _get(obj, "metadata", "labels") or {}
    roles = sorted(
        {key.split("/", 1)[1] for key in labels if key.startswith("node-role.kubernetes.io/")}
        | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set())
    )
    addresses = _get(obj, "status", "addresses") or []

    def address(kind: str) -> str:
        return next((a.get("address", "") for a in addresses if a.get("type") == kind), "<none>")

    info = _get(obj, "status", "nodeInfo") or {}
    return [
        ",".join(states),
        ",".join(r for r in roles if r) or "<none>",
        _age(obj, now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        _or_none(info.get("osImage")),
        _or_none(info.get("kernelVersion")),
        _or_none(info.get("containerRuntimeVersion")),
    ]


def _pod_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    reason = status.get("reason") or status.get("phase") or ""
    for container_status in statuses:
        waiting = _get(container_status, "state", "waiting", "reason")
        terminated = _get(container_status, "state", "terminated", "reason")
        if waiting:
            reason = waiting
        elif terminated and not container_status.get("ready"):
            reason = terminated
    if _get(obj, "metadata", "deletionTimestamp"):
        reason = "Terminating"
    gates = spec.get("readinessGates") or []
    return [
        f"{ready}/{len(containers)}",
        reason,
        str(restarts),
        _age(obj, now),
        _or_none(status.get("podIP")),
        _or_none(spec.get("nodeName")),
        _or_none(status.get("nominatedNodeName")),
        "<none>" if not gates else f"0/{len(gates)}",
    ]


def _data_count(obj: dict[str, Any]) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


def _configmap_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    return [_data_count(obj), _age(obj, now)]


def _secret_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    return [obj.get("type") or "Opaque", _data_count(obj), _age(obj, now)]


def _event_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    involved = obj.get("involvedObject") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or ""
    first = obj.get("firstTimestamp") or obj.get("eventTime") or ""
    source = obj.get("source") or {}
    source_text = source.get("component") or obj.get("reportingComponent") or ""
    if source.get("host"):
        source_text += f", {source['host']}"
    kind = str(involved.get("kind") or "").lower()
    return [
        human_age(last, now),
        obj.get("type") or "",
        obj.get("reason") or "",
        f"{kind}/{involved.get('name', '')}",
        involved.get("fieldPath") or "",
        source_text,
        (obj.get("message") or "").strip(),
        human_age(first, now),
        int(obj.get("count") or 1),
        _get(obj, "metadata", "name") or "",
    ]


def _ports(obj: dict[str, Any]) -> str:
    parts = []
    for port in _get(obj, "spec", "ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        parts.append(f"{text}/{port.get('protocol') or 'TCP'}")
    return ",".join(parts) or "<none>"


def _service_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or [])
    ingress = _get(obj, "status", "loadBalancer", "ingress") or []
    external += [i.get("ip") or i.get("hostname") for i in ingress]
    if kind == "ExternalName":
        external_text = spec.get("externalName") or "<none>"
    elif external:
        external_text = ",".join(e for e in external if e)
    else:
        external_text = "<pending>" if kind == "LoadBalancer" else "<none>"
    selector = spec.get("selector") or {}
    return [
        kind,
        spec.get("clusterIP") or "<none>",
        external_text,
        _ports(obj),
        _age(obj, now),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]


_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _modes(modes: list[str] | None) -> str:
    return ",".join(_ACCESS_MODES.get(m, m) for m in modes or [])


def _pvc_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    bound = bool(spec.get("volumeName"))
    phase = "Terminating" if _get(obj, "metadata", "deletionTimestamp") else status.get("phase")
    return [
        phase or "",
        spec.get("volumeName") or "",
        _get(status, "capacity", "storage") or "" if bound else "",
        _modes(status.get("accessModes")) if bound else "",
        spec.get("storageClassName") or "<unset>",
        _get(status, "currentVolumeAttributesClassName") or "<unset>",
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


def _pv_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    claim = spec.get("claimRef") or {}
    claim_text = f"{claim.get('namespace')}/{claim.get('name')}" if claim else ""
    phase = "Terminating" if _get(obj, "metadata", "deletionTimestamp") else status.get("phase")
    return [
        _get(spec, "capacity", "storage") or "",
        _modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy") or "",
        phase or "",
        claim_text,
        spec.get("storageClassName") or "",
        spec.get("volumeAttributesClassName") or "<unset>",
        status.get("reason") or "",
        _age(obj, now),
        spec.get("volumeMode") or "<unset>",
    ]


def _storage_class_name(obj: dict[str, Any]) -> str:
    annotations = _get(obj, "metadata", "annotations") or {}
    name = _get(obj, "metadata", "name") or ""
    default_keys = (
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    )
    return f"{name} (default)" if any(annotations.get(k) == "true" for k in default_keys) else name


def _storage_class_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    return [
        obj.get("provisioner") or "",
        obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate",
        bool(obj.get("allowVolumeExpansion")),
        _age(obj, now),
    ]


def _crd_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    created = parse_timestamp(_get(obj, "metadata", "creationTimestamp") or "")
    return [created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else "<unknown>"]


def _template_parts(template: dict[str, Any]) -> tuple[str, str]:
    containers = _get(template, "spec", "containers") or []
    names = ",".join(c.get("name", "") for c in containers)
    images = ",".join(c.get("image", "") for c in containers)
    return names, images


def _selector_text(selector: dict[str, Any] | None) -> str:
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        values = ",".join(expression.get("values") or [])
        key, operator = expression.get("key"), expression.get("operator")
        parts.append(f"{key} {operator.lower()} ({values})" if values else f"{key}")
    return ",".join(parts) or "<none>"


def _deployment_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = _template_parts(spec.get("template") or {})
    desired = spec.get("replicas", 1)
    return [
        f"{status.get('readyReplicas') or 0}/{desired}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        _age(obj, now),
        names,
        images,
        _selector_text(spec.get("selector")),
    ]


def _lease_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    return [_get(obj, "spec", "holderIdentity") or "", _age(obj, now)]


def _apiservice_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    """As kube-aggregator prints it: the Service or Local; True, or False (reason)."""
    service = _get(obj, "spec", "service") or {}
    where = f"{service.get('namespace')}/{service.get('name')}" if service else "Local"
    available = next((c for c in _get(obj, "status", "conditions") or []
                      if c.get("type") == "Available"), None)
    shown = "Unknown"
    if available is not None:
        shown = str(available.get("status"))
        if shown != "True" and available.get("reason"):
            shown += f" ({available['reason']})"
    return [where, shown, _age(obj, now)]


def _name_age_row(obj: dict[str, Any], now: datetime) -> list[Cell]:
    return [_age(obj, now)]


_BUILTIN_TABLES: dict[tuple[str, str], tuple[list[dict[str, Any]], RowFunction]] = {
    ("", "Namespace"): ([_column("Status"), _column("Age")], _namespace_row),
    ("", "Node"): (
        [
            _column("Status"),
            _column("Roles"),
            _column("Age"),
            _column("Version"),
            _column("Internal-IP", priority=1),
            _column("External-IP", priority=1),
            _column("OS-Image", priority=1),
            _column("Kernel-Version", priority=1),
            _column("Container-Runtime", priority=1),
        ],
        _node_row,
    ),
    ("", "Pod"): (
        [
            _column("Ready"),
            _column("Status"),
            _column("Restarts"),
            _column("Age"),
            _column("IP", priority=1),
            _column("Node", priority=1),
            _column("Nominated Node", priority=1),
            _column("Readiness Gates", priority=1),
        ],
        _pod_row,
    ),
    ("", "ConfigMap"): ([_column("Data", "integer"), _column("Age")], _configmap_row),
    ("", "Secret"): (
        [_column("Type"), _column("Data", "integer"), _column("Age")],
        _secret_row,
    ),
    ("", "Event"): (
        [
            _column("Last Seen"),
            _column("Type"),
            _column("Reason"),
            _column("Object"),
            _column("Subobject", priority=1),
            _column("Source", priority=1),
            _column("Message"),
            _column("First Seen", priority=1),
            _column("Count", "integer", priority=1),
            _column("Name", priority=1, fmt="name"),
        ],
        _event_row,
    ),
    ("", "Service"): (
        [
            _column("Type"),
            _column("Cluster-IP"),
            _column("External-IP"),
            _column("Port(s)"),
            _column("Age"),
            _column("Selector", priority=1),
        ],
        _service_row,
    ),
    ("", "PersistentVolumeClaim"): (
        [
            _column("Status"),
            _column("Volume"),
            _column("Capacity"),
            _column("Access Modes"),
            _column("StorageClass"),
            _column("VolumeAttributesClass"),
            _column("Age"),
            _column("VolumeMode", priority=1),
        ],
        _pvc_row,
    ),
    ("", "PersistentVolume"): (
        [
            _column("Capacity"),
            _column("Access Modes"),
            _column("Reclaim Policy"),
            _column("Status"),
            _column("Claim"),
            _column("StorageClass"),
            _column("VolumeAttributesClass"),
            _column("Reason"),
            _column("Age"),
            _column("VolumeMode", priority=1),
        ],
        _pv_row,
    ),
    ("apiregistration.k8s.io", "APIService"): (
        [_column("Service"), _column("Available"), _column("Age")], _apiservice_row),
    ("storage.k8s.io", "StorageClass"): (
        [
            _column("Provisioner"),
            _column("ReclaimPolicy"),
            _column("VolumeBindingMode"),
            _column("AllowVolumeExpansion", "boolean"),
            _column("Age"),
        ],
        _storage_class_row,
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        [_column("Created At", "date")],
        _crd_row,
    ),
    ("apps", "Deployment"): (
        [
            _column("Ready"),
            _column("Up-to-date", "integer"),
            _column("Available", "integer"),
            _column("Age"),
            _column("Containers", priority=1),
            _column("Images", priority=1),
            _column("Selector", priority=1),
        ],
        _deployment_row,
    ),
    ("coordination.k8s.io", "Lease"): ([_column("Holder"), _column("Age")], _lease_row),
}


def _name_column() -> dict[str, Any]:
    return {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": NAME_DESCRIPTION,
        "priority": 0,
    }


def _custom_columns(resource: ResourceType) -> list[PrinterColumn]:
    if resource.printer_columns:
        return list(resource.printer_columns)
    # A CRD declaring no columns gets kube's default Age column.
    return [
        PrinterColumn(
            name="Age",
            type="date",
            json_path=".metadata.creationTimestamp",
            description=AGE_DESCRIPTION,
        )
    ]


def _row_object(obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def to_table(
    resource: ResourceType,
    objects: list[dict[str, Any]],
    *,
    now: datetime,
    include_object: str = "Metadata",
    list_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of `objects` (one row each, in order).

    `include_object` is the request's `includeObject` ("Metadata" when absent, as the server
    defaults it): rows carry a PartialObjectMetadata, the full object, or nothing.
    `list_metadata` supplies the list's resourceVersion/continue/remainingItemCount.
    """
    columns: list[dict[str, Any]]
    if not resource.builtin:
        printer_columns = _custom_columns(resource)
        columns = [_name_column()]
        for column in printer_columns:
            description = column.description or (
                f"Custom resource definition column (in JSONPath format): {column.json_path}"
            )
            columns.append(
                {
                    "name": column.name,
                    "type": column.type,
                    "format": column.format,
                    "description": description,
                    "priority": column.priority,
                }
            )

        def row_cells(obj: dict[str, Any]) -> list[Cell]:
            return [column_cell(column, obj, now) for column in printer_columns]

    else:
        builtin = _BUILTIN_TABLES.get((resource.group, resource.kind))
        extra_columns, row_function = builtin or ([_column("Age")], _name_age_row)
        name_first = resource.kind != "Event"  # kube's Event table puts Name last, wide only
        columns = ([_name_column()] if name_first else []) + [dict(c) for c in extra_columns]

        def row_cells(obj: dict[str, Any]) -> list[Cell]:
            return row_function(obj, now)

    rows: list[dict[str, Any]] = []
    for obj in objects:
        name = (obj.get("metadata") or {}).get("name", "")
        cells = row_cells(obj)
        leading = [] if resource.builtin and resource.kind == "Event" else [name]
        row: dict[str, Any] = {"cells": leading + cells}
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)

    metadata: dict[str, Any] = {}
    for key in ("resourceVersion", "continue", "remainingItemCount"):
        if list_metadata and list_metadata.get(key) not in (None, ""):
            metadata[key] = list_metadata[key]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    }
