"""Decoding of the `application/vnd.kubernetes.protobuf` request bodies kubectl sends.

kubectl's generators (`kubectl create configmap|secret|namespace|serviceaccount|service|
deployment|quota|role|rolebinding|clusterrole|clusterrolebinding ...`) use the typed client,
which sends protobuf and does not fall back to JSON on a 415. kubectl 1.32 and 1.37 accept a
JSON answer to such a request (observed), so only decoding is needed here.

The envelope is the 4-byte magic `k8s\\x00` followed by a `runtime.Unknown` message
{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}; `raw` is
the object in the encoding of k8s.io/api's generated.proto. Field numbers below were read from
k8s.io/api and k8s.io/apimachinery v0.36 `generated.proto`.

Go's protobuf marshaller writes every non-pointer field, zero or not, while Go's JSON
marshaller omits empty ones; so zero scalars and empty sub-messages are dropped unless the Go
field is a pointer (then presence means "set", and `replicas: 0` or `emptyDir: {}` matter).
An unknown field with a non-zero value is refused with a 415 rather than silently dropped.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from devcluster.apiserver.errors import ApiError

PROTOBUF_MAGIC = b"k8s\x00"

WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_LENGTH_DELIMITED = 2
WIRE_FIXED32 = 5

FieldKind = Literal[
    "string",
    "bytes",  # -> base64 string, as Go's JSON encodes []byte
    "bool",
    "int",
    "message",
    "map_string",  # map<string, string>
    "map_bytes",  # map<string, bytes>
    "map_quantity",  # map<string, resource.Quantity>
]


@dataclass(frozen=True)
class ProtoField:
    json_name: str
    kind: FieldKind
    message: str = ""  # the message type, for kind "message"
    repeated: bool = False
    # A Go pointer (or a field whose zero value is meaningful): keep it even when zero/empty.
    pointer: bool = False


def _s(name: str, *, repeated: bool = False, pointer: bool = False) -> ProtoField:
    return ProtoField(name, "string", repeated=repeated, pointer=pointer)


def _i(name: str, *, pointer: bool = False) -> ProtoField:
    return ProtoField(name, "int", pointer=pointer)


def _b(name: str, *, pointer: bool = False) -> ProtoField:
    return ProtoField(name, "bool", pointer=pointer)


def _m(name: str, message: str, *, repeated: bool = False, pointer: bool = False) -> ProtoField:
    return ProtoField(name, "message", message, repeated=repeated, pointer=pointer)


# Messages decoded by hand rather than from a field table.
TIME = "meta.Time"
FIELDS_V1 = "meta.FieldsV1"
INT_OR_STRING = "intstr.IntOrString"
QUANTITY = "resource.Quantity"
# A message whose content is dropped: status in a create request, which the server ignores.
IGNORED = "ignored"

MESSAGES: dict[str, dict[int, ProtoField]] = {
    "meta.ObjectMeta": {
        1: _s("name"),
        2: _s("generateName"),
        3: _s("namespace"),
        4: _s("selfLink"),
        5: _s("uid"),
        6: _s("resourceVersion"),
        7: _i("generation"),
        8: _m("creationTimestamp", TIME),
        9: _m("deletionTimestamp", TIME, pointer=True),
        10: _i("deletionGracePeriodSeconds", pointer=True),
        11: ProtoField("labels", "map_string"),
        12: ProtoField("annotations", "map_string"),
        13: _m("ownerReferences", "meta.OwnerReference", repeated=True),
        14: _s("finalizers", repeated=True),
        17: _m("managedFields", "meta.ManagedFieldsEntry", repeated=True),
    },
    "meta.OwnerReference": {
        5: _s("apiVersion"),
        1: _s("kind"),
        3: _s("name"),
        4: _s("uid"),
        6: _b("controller", pointer=True),
        7: _b("blockOwnerDeletion", pointer=True),
    },
    "meta.ManagedFieldsEntry": {
        1: _s("manager"),
        2: _s("operation"),
        3: _s("apiVersion"),
        4: _m("time", TIME, pointer=True),
        6: _s("fieldsType"),
        7: _m("fieldsV1", FIELDS_V1, pointer=True),
        8: _s("subresource"),
    },
    "meta.LabelSelector": {
        1: ProtoField("matchLabels", "map_string"),
        2: _m("matchExpressions", "meta.LabelSelectorRequirement", repeated=True),
    },
    "meta.LabelSelectorRequirement": {
        1: _s("key"),
        2: _s("operator"),
        3: _s("values", repeated=True),
    },
    # core/v1
    "core.ConfigMap": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: ProtoField("data", "map_string"),
        3: ProtoField("binaryData", "map_bytes"),
        4: _b("immutable", pointer=True),
    },
    "core.Secret": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: ProtoField("data", "map_bytes"),
        3: _s("type"),
        4: ProtoField("stringData", "map_string"),
        5: _b("immutable", pointer=True),
    },
    "core.Namespace": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("spec", "core.NamespaceSpec"),
        3: _m("status", "core.NamespaceStatus"),
    },
    "core.NamespaceSpec": {1: _s("finalizers", repeated=True)},
    "core.NamespaceStatus": {
        1: _s("phase"),
        2: _m("conditions", "core.NamespaceCondition", repeated=True),
    },
    "core.NamespaceCondition": {
        1: _s("type"),
        2: _s("status"),
        4: _m("lastTransitionTime", TIME),
        5: _s("reason"),
        6: _s("message"),
    },
    "core.ServiceAccount": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("secrets", "core.ObjectReference", repeated=True),
        3: _m("imagePullSecrets", "core.LocalObjectReference", repeated=True),
        4: _b("automountServiceAccountToken", pointer=True),
    },
    "core.ObjectReference": {
        1: _s("kind"),
        2: _s("namespace"),
        3: _s("name"),
        4: _s("uid"),
        5: _s("apiVersion"),
        6: _s("resourceVersion"),
        7: _s("fieldPath"),
    },
    "core.LocalObjectReference": {1: _s("name")},
    "core.Service": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("spec", "core.ServiceSpec"),
        3: _m("status", IGNORED),
    },
    "core.ServiceSpec": {
        1: _m("ports", "core.ServicePort", repeated=True),
        2: ProtoField("selector", "map_string"),
        3: _s("clusterIP"),
        18: _s("clusterIPs", repeated=True),
        4: _s("type"),
        5: _s("externalIPs", repeated=True),
        7: _s("sessionAffinity"),
        8: _s("loadBalancerIP"),
        9: _s("loadBalancerSourceRanges", repeated=True),
        10: _s("externalName"),
        11: _s("externalTrafficPolicy"),
        12: _i("healthCheckNodePort"),
        13: _b("publishNotReadyAddresses"),
        14: _m("sessionAffinityConfig", "core.SessionAffinityConfig", pointer=True),
        19: _s("ipFamilies", repeated=True),
        17: _s("ipFamilyPolicy", pointer=True),
        20: _b("allocateLoadBalancerNodePorts", pointer=True),
        21: _s("loadBalancerClass", pointer=True),
        22: _s("internalTrafficPolicy", pointer=True),
        23: _s("trafficDistribution", pointer=True),
    },
    "core.ServicePort": {
        1: _s("name"),
        2: _s("protocol"),
        6: _s("appProtocol", pointer=True),
        3: _i("port"),
        4: _m("targetPort", INT_OR_STRING),
        5: _i("nodePort"),
    },
    "core.SessionAffinityConfig": {1: _m("clientIP", "core.ClientIPConfig", pointer=True)},
    "core.ClientIPConfig": {1: _i("timeoutSeconds", pointer=True)},
    "core.ResourceQuota": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("spec", "core.ResourceQuotaSpec"),
        3: _m("status", IGNORED),
    },
    "core.ResourceQuotaSpec": {
        1: ProtoField("hard", "map_quantity"),
        2: _s("scopes", repeated=True),
        3: _m("scopeSelector", "core.ScopeSelector", pointer=True),
    },
    "core.ScopeSelector": {
        1: _m("matchExpressions", "core.ScopedResourceSelectorRequirement", repeated=True),
    },
    "core.ScopedResourceSelectorRequirement": {
        1: _s("scopeName"),
        2: _s("operator"),
        3: _s("values", repeated=True),
    },
    "core.PodTemplateSpec": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("spec", "core.PodSpec"),
    },
    # The PodSpec fields that kubectl's generators set; others are refused if non-empty.
    "core.PodSpec": {
        20: _m("initContainers", "core.Container", repeated=True),
        2: _m("containers", "core.Container", repeated=True),
        3: _s("restartPolicy"),
        4: _i("terminationGracePeriodSeconds", pointer=True),
        5: _i("activeDeadlineSeconds", pointer=True),
        6: _s("dnsPolicy"),
        7: ProtoField("nodeSelector", "map_string"),
        8: _s("serviceAccountName"),
        9: _s("serviceAccount"),
        21: _b("automountServiceAccountToken", pointer=True),
        10: _s("nodeName"),
        11: _b("hostNetwork"),
        12: _b("hostPID"),
        13: _b("hostIPC"),
        27: _b("shareProcessNamespace", pointer=True),
        15: _m("imagePullSecrets", "core.LocalObjectReference", repeated=True),
        16: _s("hostname"),
        17: _s("subdomain"),
        19: _s("schedulerName"),
        24: _s("priorityClassName"),
        25: _i("priority", pointer=True),
        29: _s("runtimeClassName", pointer=True),
        30: _b("enableServiceLinks", pointer=True),
        31: _s("preemptionPolicy", pointer=True),
        35: _b("setHostnameAsFQDN", pointer=True),
        37: _b("hostUsers", pointer=True),
    },
    "core.Container": {
        1: _s("name"),
        2: _s("image"),
        3: _s("command", repeated=True),
        4: _s("args", repeated=True),
        5: _s("workingDir"),
        6: _m("ports", "core.ContainerPort", repeated=True),
        7: _m("env", "core.EnvVar", repeated=True),
        8: _m("resources", "core.ResourceRequirements"),
        24: _s("restartPolicy", pointer=True),
        13: _s("terminationMessagePath"),
        20: _s("terminationMessagePolicy"),
        14: _s("imagePullPolicy"),
        16: _b("stdin"),
        17: _b("stdinOnce"),
        18: _b("tty"),
    },
    "core.ContainerPort": {
        1: _s("name"),
        2: _i("hostPort"),
        3: _i("containerPort"),
        4: _s("protocol"),
        5: _s("hostIP"),
    },
    "core.EnvVar": {1: _s("name"), 2: _s("value")},
    "core.ResourceRequirements": {
        1: ProtoField("limits", "map_quantity"),
        2: ProtoField("requests", "map_quantity"),
    },
    # apps/v1
    "apps.Deployment": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("spec", "apps.DeploymentSpec"),
        3: _m("status", IGNORED),
    },
    "apps.DeploymentSpec": {
        1: _i("replicas", pointer=True),
        2: _m("selector", "meta.LabelSelector", pointer=True),
        3: _m("template", "core.PodTemplateSpec"),
        4: _m("strategy", "apps.DeploymentStrategy"),
        5: _i("minReadySeconds"),
        6: _i("revisionHistoryLimit", pointer=True),
        7: _b("paused"),
        9: _i("progressDeadlineSeconds", pointer=True),
    },
    "apps.DeploymentStrategy": {
        1: _s("type"),
        2: _m("rollingUpdate", "apps.RollingUpdateDeployment", pointer=True),
    },
    "apps.RollingUpdateDeployment": {
        1: _m("maxUnavailable", INT_OR_STRING, pointer=True),
        2: _m("maxSurge", INT_OR_STRING, pointer=True),
    },
    # rbac.authorization.k8s.io/v1
    "rbac.Role": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("rules", "rbac.PolicyRule", repeated=True),
    },
    "rbac.ClusterRole": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("rules", "rbac.PolicyRule", repeated=True),
        3: _m("aggregationRule", "rbac.AggregationRule", pointer=True),
    },
    "rbac.AggregationRule": {
        1: _m("clusterRoleSelectors", "meta.LabelSelector", repeated=True),
    },
    "rbac.PolicyRule": {
        1: _s("verbs", repeated=True),
        2: _s("apiGroups", repeated=True),
        3: _s("resources", repeated=True),
        4: _s("resourceNames", repeated=True),
        5: _s("nonResourceURLs", repeated=True),
    },
    "rbac.RoleBinding": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("subjects", "rbac.Subject", repeated=True),
        3: _m("roleRef", "rbac.RoleRef"),
    },
    "rbac.ClusterRoleBinding": {
        1: _m("metadata", "meta.ObjectMeta"),
        2: _m("subjects", "rbac.Subject", repeated=True),
        3: _m("roleRef", "rbac.RoleRef"),
    },
    "rbac.Subject": {1: _s("kind"), 2: _s("apiGroup"), 3: _s("name"), 4: _s("namespace")},
    "rbac.RoleRef": {1: _s("apiGroup"), 2: _s("kind"), 3: _s("name")},
}

# (apiVersion, kind) of a request body -> its top-level message.
TOP_LEVEL_MESSAGES: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "core.ConfigMap",
    ("v1", "Secret"): "core.Secret",
    ("v1", "Namespace"): "core.Namespace",
    ("v1", "ServiceAccount"): "core.ServiceAccount",
    ("v1", "Service"): "core.Service",
    ("v1", "ResourceQuota"): "core.ResourceQuota",
    ("apps/v1", "Deployment"): "apps.Deployment",
    ("rbac.authorization.k8s.io/v1", "Role"): "rbac.Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "rbac.ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rbac.RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "rbac.ClusterRoleBinding",
}


class ProtobufError(ValueError):
    """The bytes are not well-formed protobuf, or carry something this decoder refuses."""


@dataclass(frozen=True)
class WireField:
    number: int
    wire_type: int
    value: int | bytes  # int for varint/fixed, bytes for length-delimited


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint longer than 10 bytes")


def read_wire_fields(data: bytes) -> list[WireField]:
    """Splits one protobuf message into its fields, in wire order."""
    fields: list[WireField] = []
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 0x7
        if number == 0:
            raise ProtobufError("field number 0")
        value: int | bytes
        if wire_type == WIRE_VARINT:
            value, position = _read_varint(data, position)
        elif wire_type == WIRE_LENGTH_DELIMITED:
            length, position = _read_varint(data, position)
            end = position + length
            if end > len(data):
                raise ProtobufError("truncated length-delimited field")
            value, position = data[position:end], end
        elif wire_type in (WIRE_FIXED64, WIRE_FIXED32):
            size = 8 if wire_type == WIRE_FIXED64 else 4
            if position + size > len(data):
                raise ProtobufError("truncated fixed-width field")
            value = int.from_bytes(data[position : position + size], "little")
            position += size
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
        fields.append(WireField(number, wire_type, value))
    return fields


def _as_signed_64(value: int) -> int:
    """Go writes negative int32/int64 as the 64-bit two's complement varint."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _expect_bytes(field: WireField, what: str) -> bytes:
    if not isinstance(field.value, bytes):
        raise ProtobufError(f"{what}: expected a length-delimited field")
    return field.value


def _expect_int(field: WireField, what: str) -> int:
    if not isinstance(field.value, int):
        raise ProtobufError(f"{what}: expected a varint field")
    return field.value


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtobufError(f"{what}: not UTF-8") from error


def _decode_time(data: bytes) -> str | None:
    """metav1.Time {1: seconds, 2: nanos} -> RFC 3339 (seconds precision, as Go writes it)."""
    seconds = 0
    for field in read_wire_fields(data):
        if field.number == 1:
            seconds = _as_signed_64(_expect_int(field, "Time.seconds"))
    if seconds == 0:
        return None  # the zero Time: Go's JSON writes null, i.e. unset
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode_int_or_string(data: bytes) -> int | str:
    kind, int_value, str_value = 0, 0, ""
    for field in read_wire_fields(data):
        if field.number == 1:
            kind = _expect_int(field, "IntOrString.type")
        elif field.number == 2:
            int_value = _as_signed_64(_expect_int(field, "IntOrString.intVal"))
        elif field.number == 3:
            str_value = _text(_expect_bytes(field, "IntOrString.strVal"), "IntOrString.strVal")
    return str_value if kind == 1 else int_value


def _decode_quantity(data: bytes) -> str:
    for field in read_wire_fields(data):
        if field.number == 1:
            return _text(_expect_bytes(field, "Quantity"), "Quantity")
    return "0"


def _decode_fields_v1(data: bytes) -> Any:
    for field in read_wire_fields(data):
        if field.number == 1:
            try:
                # orjson: C, no Python recursion; the decoded object's depth is checked after.
                return orjson.loads(_expect_bytes(field, "FieldsV1.Raw"))
            except orjson.JSONDecodeError as error:
                raise ProtobufError("FieldsV1.Raw is not JSON") from error
    return {}


def _decode_map_entry(data: bytes, what: str) -> tuple[str, bytes]:
    key, value = "", b""
    for field in read_wire_fields(data):
        if field.number == 1:
            key = _text(_expect_bytes(field, what), what)
        elif field.number == 2:
            value = _expect_bytes(field, what)
    return key, value


def _is_zero(field: WireField) -> bool:
    return field.value in (0, b"")


def _decode_field_value(spec: ProtoField, field: WireField, what: str) -> Any:
    if spec.kind == "string":
        return _text(_expect_bytes(field, what), what)
    if spec.kind == "bytes":
        return base64.b64encode(_expect_bytes(field, what)).decode("ascii")
    if spec.kind == "bool":
        return _expect_int(field, what) != 0
    if spec.kind == "int":
        return _as_signed_64(_expect_int(field, what))
    return decode_message(spec.message, _expect_bytes(field, what))


def decode_message(message: str, data: bytes) -> Any:
    """Decodes one message of MESSAGES (or a hand-decoded one) into its JSON form."""
    if message == TIME:
        return _decode_time(data)
    if message == INT_OR_STRING:
        return _decode_int_or_string(data)
    if message == QUANTITY:
        return _decode_quantity(data)
    if message == FIELDS_V1:
        return _decode_fields_v1(data)
    if message == IGNORED:
        return {}
    table = MESSAGES[message]
    result: dict[str, Any] = {}
    for field in read_wire_fields(data):
        spec = table.get(field.number)
        what = f"{message}.{spec.json_name if spec else field.number}"
        if spec is None:
            if _is_zero(field):
                continue  # a newer client's field left at its zero value
            raise ProtobufError(f"field {field.number} of {message} is not supported")
        if spec.kind in ("map_string", "map_bytes", "map_quantity"):
            key, raw = _decode_map_entry(_expect_bytes(field, what), what)
            entries = result.setdefault(spec.json_name, {})
            if spec.kind == "map_string":
                entries[key] = _text(raw, what)
            elif spec.kind == "map_bytes":
                entries[key] = base64.b64encode(raw).decode("ascii")
            else:
                entries[key] = _decode_quantity(raw)
            continue
        value = _decode_field_value(spec, field, what)
        if spec.repeated:
            result.setdefault(spec.json_name, []).append(value)
        elif spec.pointer or value not in (None, "", 0, {}):  # 0 == False: both are zero
            result[spec.json_name] = value
        else:
            result.pop(spec.json_name, None)  # the last occurrence of a field wins
    return result


def _unsupported(detail: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format: "
        f"{detail}; devcluster decodes application/vnd.kubernetes.protobuf only for "
        + ", ".join(f"{kind} ({api_version})" for api_version, kind in TOP_LEVEL_MESSAGES)
        + ": send the object as JSON or YAML instead (e.g. `kubectl create -f`)",
    )


def decode_protobuf_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded built-in object; ApiError 415 when not decodable."""
    if not body.startswith(PROTOBUF_MAGIC):
        raise _unsupported("the protobuf body does not start with the k8s\\x00 magic")
    try:
        api_version, kind, raw, encoding = "", "", b"", ""
        for field in read_wire_fields(body[len(PROTOBUF_MAGIC) :]):
            if field.number == 1:
                for type_field in read_wire_fields(_expect_bytes(field, "Unknown.typeMeta")):
                    text = _text(_expect_bytes(type_field, "TypeMeta"), "TypeMeta")
                    if type_field.number == 1:
                        api_version = text
                    elif type_field.number == 2:
                        kind = text
            elif field.number == 2:
                raw = _expect_bytes(field, "Unknown.raw")
            elif field.number == 3:
                encoding = _text(_expect_bytes(field, "Unknown.contentEncoding"), "encoding")
        if encoding:
            raise _unsupported(f"content encoding {encoding!r} is not supported")
        message = TOP_LEVEL_MESSAGES.get((api_version, kind))
        if message is None:
            raise _unsupported(f"kind {kind!r} of apiVersion {api_version!r} is not supported")
        decoded = decode_message(message, raw)
    except ProtobufError as error:
        raise _unsupported(f"{error}") from error
    return {"apiVersion": api_version, "kind": kind, **decoded}
