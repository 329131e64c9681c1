"""Request bodies (JSON, YAML, protobuf) decoded into wire values, bad ones refused at once.

Every check here is linear in the body and recursion-free, so that a hostile body costs what
reading it costs and gets a 400 (or 413) before anything walks it:
- JSON: orjson (which refuses 1,024 levels itself), then at most MAX_NESTING_DEPTH levels;
- YAML: one pass over the parser's events, before any object is built, refuses nesting past
  the limit (go-yaml's "exceeded max depth of N"), aliases that expand too much (go-yaml v2's
  rule, which kube-apiserver's YAML decoder applies: "document contains excessive aliasing")
  and unknown or self-containing anchors; then the document is built and turned into wire
  values as sigs.k8s.io/yaml converts YAML to JSON (wire_values.to_wire);
- protobuf: the message tables bound its nesting, and FieldsV1 is JSON, checked as JSON.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson
import yaml

from . import errors
from .protobuf import decode_protobuf_object
from .wire_values import (
    MAX_NESTING_DEPTH,
    MAX_REQUEST_BYTES,
    TooLarge,
    WireValueError,
    depth_exceeded,
    json_key,
    may_be_too_deep,
    short_path,
    to_wire,
)

PROTOBUF = "application/vnd.kubernetes.protobuf"

_YamlBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _WireLoader(_YamlBase):  # type: ignore[misc]
    """YAML as go-yaml v2 reads it into interface{}: a timestamp stays the text it was
    (`when: 2001-12-14` is the string "2001-12-14"), explicit `!!timestamp` too; map keys
    become JSON keys as they are built (so `1`, `true` and `1.0` stay three keys, as in
    go-yaml, rather than one Python key)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            mapping[json_key(key, "")] = self.construct_object(value_node, deep=deep)
        return mapping


def _timestamp_as_text(loader: Any, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _strict_binary(loader: Any, node: yaml.ScalarNode) -> bytes:
    """!!binary as go-yaml reads it: base64 or an error (PyYAML skips what is not base64)."""
    text = "".join(str(loader.construct_scalar(node)).split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise yaml.constructor.ConstructorError(
            None, None, "yaml: !!binary value contains invalid base64 data",
            node.start_mark) from error


_WireLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
_WireLoader.add_constructor("tag:yaml.org,2002:binary", _strict_binary)
# go-yaml v2 reads `1e7` as a float (YAML 1.1's float needs a dot, and PyYAML follows it).
_WireLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"),
    list("-+0123456789."))


class YamlShapeError(ValueError):
    """What go-yaml would refuse before decoding: its messages, `yaml: ...`."""


def allowed_alias_ratio(decodes: int) -> float:
    """go-yaml v2's allowedAliasRatio: 99% of the nodes decoded may come from aliases up to
    400,000 decodes, falling to 10% at 4,000,000."""
    low, high = 400_000, 4_000_000
    if decodes <= low:
        return 0.99
    if decodes >= high:
        return 0.10
    return 0.99 - 0.89 * (decodes - low) / (high - low)


def _open_anchor(frames: list[list[Any]], anchor: str) -> bool:
    return any(frame[3] == anchor for frame in frames)


def check_yaml_shape(raw: bytes, limit: int = MAX_NESTING_DEPTH) -> None:
    """Raises YamlShapeError for nesting past `limit` (aliases expanded) and for excessive
    aliasing, counted as go-yaml v2 counts nodes: every alias decodes its anchor's whole
    node again. Counts are kept per anchor, so nothing is expanded here."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (nodes when expanded, height)
    # One frame per open collection (frames[0]: the stream):
    # [nodes decoded, nodes decoded through aliases, height, anchor]
    frames: list[list[Any]] = [[0, 0, 0, None]]

    def add(nodes: int, aliased: int, height: int) -> None:
        frame = frames[-1]
        frame[0] += nodes
        frame[1] += aliased
        frame[2] = max(frame[2], height + 1)

    for event in yaml.parse(raw, Loader=_WireLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(frames) > limit:
                raise YamlShapeError(f"yaml: exceeded max depth of {limit}")
            frames.append([1, 0, 1, event.anchor])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            nodes, aliased, height, anchor = frames.pop()
            if anchor is not None:
                anchors[anchor] = (nodes, height)
            add(nodes, aliased, height)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
            add(1, 0, 0)
        elif isinstance(event, yaml.AliasEvent):
            name = str(event.anchor)
            target = anchors.get(name)
            if target is None:
                if _open_anchor(frames, name):
                    raise YamlShapeError(f"yaml: anchor '{name}' value contains itself")
                raise YamlShapeError(f"yaml: unknown anchor '{name}' referenced")
            nodes, height = target
            if len(frames) - 1 + height > limit:
                raise YamlShapeError(f"yaml: exceeded max depth of {limit}")
            add(1 + nodes, nodes, height)
    decodes, aliased = frames[0][0] + 1, frames[0][1]  # + the document node
    if aliased > 100 and decodes > 1000 and aliased / decodes > allowed_alias_ratio(decodes):
        raise YamlShapeError("yaml: document contains excessive aliasing")


def _bad_body(kind: str, message: str) -> errors.ApiError:
    return errors.bad_request(f"error decoding {kind} body: {message}")


def decode_json(raw: bytes, what: str = "json body") -> Any:
    """A JSON document, at most MAX_NESTING_DEPTH levels deep; ApiError 400 otherwise."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error):  # orjson's own limit (1,024), past ours
            raise errors.bad_request(f"error decoding {what}: exceeded max depth of "
                                     f"{MAX_NESTING_DEPTH}") from error
        raise errors.bad_request(f"error decoding {what}: {error}") from error
    if may_be_too_deep(raw):
        path = depth_exceeded(value)
        if path is not None:
            raise errors.bad_request(f"error decoding {what}: exceeded max depth of "
                                     f"{MAX_NESTING_DEPTH} at {short_path(path) or '<root>'}")
    return value


def decode_yaml(raw: bytes) -> Any:
    """A YAML document as kube-apiserver's YAML decoder turns it into JSON."""
    try:
        check_yaml_shape(raw)
        document = yaml.load(raw, Loader=_WireLoader)
        return to_wire(document)
    except TooLarge as error:
        raise errors.request_entity_too_large(MAX_REQUEST_BYTES) from error
    except WireValueError as error:
        raise _bad_body("yaml", f"{error.message} at {short_path(error.path) or '<root>'}"
                        ) from error
    except (YamlShapeError, yaml.YAMLError) as error:
        raise _bad_body("yaml", str(error)) from error
    except (ValueError, TypeError, OverflowError) as error:
        # What a constructor may raise on a scalar it resolved (a base64 `!!binary` that
        # is not base64, an `!!int` out of range): the document is bad, not the server.
        raise _bad_body("yaml", f"{type(error).__name__}: {error}") from error


def decode_protobuf(raw: bytes) -> dict[str, Any]:
    obj = decode_protobuf_object(raw)
    path = depth_exceeded(obj)
    if path is not None:
        raise _bad_body("protobuf", f"exceeded max depth of {MAX_NESTING_DEPTH} at "
                                    f"{short_path(path)}")
    return obj


def decode_body(raw: bytes, media_type: str) -> Any:
    """The body of a request in its media type (without parameters): JSON unless it names
    YAML or is kube's protobuf."""
    if media_type == PROTOBUF:
        return decode_protobuf(raw)
    if "yaml" in media_type:
        return decode_yaml(raw)
    return decode_json(raw)


__all__ = ["PROTOBUF", "YamlShapeError", "allowed_alias_ratio", "check_yaml_shape",
           "decode_body", "decode_json", "decode_protobuf", "decode_yaml"]
