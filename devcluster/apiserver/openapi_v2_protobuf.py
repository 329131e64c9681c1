"""The OpenAPI v2 document in protobuf: a Swagger 2.0 dict encoded as gnostic's
`openapi.v2.Document`, the form kube-apiserver serves to kubectl.

kubectl asks for `/openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@
v1.0+protobuf` and parses the body as protobuf whatever its content type says: a JSON answer
fails with "proto: cannot parse invalid wire-format data". It asks when the OpenAPI v3 document
does not name the kind being applied (a typo, a CRD not installed), `kubectl explain
--output plaintext-openapiv2`, and client-side validation.

Field numbers were read from google/gnostic-models `openapiv2/OpenAPIv2.proto` (proto3). As
proto3 does, zero scalars are not written, except inside a `oneof` (there presence matters:
`additionalProperties: false`). Values of type `Any` (defaults, enums, examples, vendor
extensions) travel as their YAML text, the way gnostic stores what it read; JSON is YAML, so
the JSON text of the value is written. Schema keywords that Swagger 2.0 has no field for are
not written, as kube-apiserver leaves them out of its v2 document.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

# What kubectl asks for (both spellings) and what kube-apiserver answers: "@" is not a MIME
# token character, so Go's mime parser in kubectl refuses it in a Content-Type.
ACCEPTED_TYPES = (
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
)
CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2


def accepts_protobuf(accept: str) -> bool:
    """Whether an Accept header asks for the protobuf document (kubectl's OpenAPI v2 client)."""
    offered = [part.split(";")[0].strip() for part in accept.split(",")]
    return "application/json" not in offered and any(t in ACCEPTED_TYPES for t in offered)


# ---- wire format -----------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 as protobuf writes it: two's complement, ten bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _delimited(number: int, payload: bytes) -> bytes:
    return _key(number, _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _delimited(number, text.encode("utf-8")) if text else b""


def _bool(number: int, value: bool, *, present: bool = False) -> bytes:
    return _key(number, _VARINT) + _varint(int(value)) if value or present else b""


def _int64(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _varint(value) if value else b""


def _double(number: int, value: float) -> bytes:
    return _key(number, _FIXED64) + struct.pack("<d", float(value)) if value else b""


# ---- messages --------------------------------------------------------------------------

Kind = Literal["string", "bool", "int64", "double", "strings", "message", "messages", "any",
               "anys"]


@dataclass(frozen=True)
class Field:
    number: int
    kind: Kind
    message: str = ""  # the message type of a "message"/"messages" field


def _s(number: int) -> Field:
    return Field(number, "string")


def _m(number: int, message: str) -> Field:
    return Field(number, "message", message)


# Plain messages: JSON key -> field. Keys starting with "x-" go to the message's
# vendor_extension field (VENDOR_EXTENSIONS).
_NUMERIC_VALIDATIONS: dict[str, tuple[int, Kind]] = {
    "maximum": (0, "double"), "exclusiveMaximum": (1, "bool"), "minimum": (2, "double"),
    "exclusiveMinimum": (3, "bool"), "maxLength": (4, "int64"), "minLength": (5, "int64"),
    "pattern": (6, "string"), "maxItems": (7, "int64"), "minItems": (8, "int64"),
    "uniqueItems": (9, "bool"), "enum": (10, "anys"), "multipleOf": (11, "double"),
}


def _primitive_fields(first: int, *, items: str = "PrimitivesItems") -> dict[str, Field]:
    """type, format, items, collectionFormat, default and the validations, numbered from
    `first` in the order every non-body parameter, Header and PrimitivesItems share."""
    fields = {
        "type": _s(first), "format": _s(first + 1), "items": _m(first + 2, items),
        "collectionFormat": _s(first + 3), "default": Field(first + 4, "any"),
    }
    for name, (offset, kind) in _NUMERIC_VALIDATIONS.items():
        fields[name] = Field(first + 5 + offset, kind)
    return fields


def _parameter_fields(*, allow_empty_value: bool) -> dict[str, Field]:
    fields = {"required": Field(1, "bool"), "in": _s(2), "description": _s(3), "name": _s(4)}
    if allow_empty_value:
        fields["allowEmptyValue"] = Field(5, "bool")
    return fields | _primitive_fields(6 if allow_empty_value else 5)


MESSAGES: dict[str, dict[str, Field]] = {
    "Document": {
        "swagger": _s(1), "info": _m(2, "Info"), "host": _s(3), "basePath": _s(4),
        "schemes": Field(5, "strings"), "consumes": Field(6, "strings"),
        "produces": Field(7, "strings"), "paths": _m(8, "Paths"),
        "definitions": _m(9, "Definitions"), "parameters": _m(10, "ParameterDefinitions"),
        "responses": _m(11, "ResponseDefinitions"),
        "security": Field(12, "messages", "SecurityRequirement"),
        "securityDefinitions": _m(13, "SecurityDefinitions"),
        "tags": Field(14, "messages", "Tag"), "externalDocs": _m(15, "ExternalDocs"),
    },
    "Info": {
        "title": _s(1), "version": _s(2), "description": _s(3), "termsOfService": _s(4),
        "contact": _m(5, "Contact"), "license": _m(6, "License"),
    },
    "Contact": {"name": _s(1), "url": _s(2), "email": _s(3)},
    "License": {"name": _s(1), "url": _s(2)},
    "ExternalDocs": {"description": _s(1), "url": _s(2)},
    "Tag": {"name": _s(1), "description": _s(2), "externalDocs": _m(3, "ExternalDocs")},
    "PathItem": {
        "$ref": _s(1), "get": _m(2, "Operation"), "put": _m(3, "Operation"),
        "post": _m(4, "Operation"), "delete": _m(5, "Operation"),
        "options": _m(6, "Operation"), "head": _m(7, "Operation"),
        "patch": _m(8, "Operation"), "parameters": Field(9, "messages", "ParametersItem"),
    },
    "Operation": {
        "tags": Field(1, "strings"), "summary": _s(2), "description": _s(3),
        "externalDocs": _m(4, "ExternalDocs"), "operationId": _s(5),
        "produces": Field(6, "strings"), "consumes": Field(7, "strings"),
        "parameters": Field(8, "messages", "ParametersItem"),
        "responses": _m(9, "Responses"), "schemes": Field(10, "strings"),
        "deprecated": Field(11, "bool"),
        "security": Field(12, "messages", "SecurityRequirement"),
    },
    "JsonReference": {"$ref": _s(1), "description": _s(2)},
    "BodyParameter": {
        "description": _s(1), "name": _s(2), "in": _s(3), "required": Field(4, "bool"),
        "schema": _m(5, "Schema"),
    },
    "HeaderParameterSubSchema": _parameter_fields(allow_empty_value=False),
    "FormDataParameterSubSchema": _parameter_fields(allow_empty_value=True),
    "QueryParameterSubSchema": _parameter_fields(allow_empty_value=True),
    "PathParameterSubSchema": _parameter_fields(allow_empty_value=False),
    "PrimitivesItems": _primitive_fields(1),
    "Header": _primitive_fields(1) | {"description": _s(18)},
    "Response": {
        "description": _s(1), "schema": _m(2, "SchemaItem"), "headers": _m(3, "Headers"),
        "examples": _m(4, "Examples"),
    },
    "FileSchema": {
        "format": _s(1), "title": _s(2), "description": _s(3), "default": Field(4, "any"),
        "required": Field(5, "strings"), "type": _s(6), "readOnly": Field(7, "bool"),
        "externalDocs": _m(8, "ExternalDocs"), "example": Field(9, "any"),
    },
    "Schema": {
        "$ref": _s(1), "format": _s(2), "title": _s(3), "description": _s(4),
        "default": Field(5, "any"), "multipleOf": Field(6, "double"),
        "maximum": Field(7, "double"), "exclusiveMaximum": Field(8, "bool"),
        "minimum": Field(9, "double"), "exclusiveMinimum": Field(10, "bool"),
        "maxLength": Field(11, "int64"), "minLength": Field(12, "int64"),
        "pattern": _s(13), "maxItems": Field(14, "int64"), "minItems": Field(15, "int64"),
        "uniqueItems": Field(16, "bool"), "maxProperties": Field(17, "int64"),
        "minProperties": Field(18, "int64"), "required": Field(19, "strings"),
        "enum": Field(20, "anys"), "additionalProperties": _m(21, "AdditionalPropertiesItem"),
        "type": _m(22, "TypeItem"), "items": _m(23, "ItemsItem"),
        "allOf": Field(24, "messages", "Schema"), "properties": _m(25, "Properties"),
        "discriminator": _s(26), "readOnly": Field(27, "bool"), "xml": _m(28, "Xml"),
        "externalDocs": _m(29, "ExternalDocs"), "example": Field(30, "any"),
    },
    "Xml": {
        "name": _s(1), "namespace": _s(2), "prefix": _s(3), "attribute": Field(4, "bool"),
        "wrapped": Field(5, "bool"),
    },
    "ApiKeySecurity": {"type": _s(1), "name": _s(2), "in": _s(3), "description": _s(4)},
    "BasicAuthenticationSecurity": {"type": _s(1), "description": _s(2)},
    "Oauth2ImplicitSecurity": {
        "type": _s(1), "flow": _s(2), "scopes": _m(3, "Oauth2Scopes"),
        "authorizationUrl": _s(4), "description": _s(5),
    },
    "Oauth2PasswordSecurity": {
        "type": _s(1), "flow": _s(2), "scopes": _m(3, "Oauth2Scopes"), "tokenUrl": _s(4),
        "description": _s(5),
    },
    "Oauth2ApplicationSecurity": {
        "type": _s(1), "flow": _s(2), "scopes": _m(3, "Oauth2Scopes"), "tokenUrl": _s(4),
        "description": _s(5),
    },
    "Oauth2AccessCodeSecurity": {
        "type": _s(1), "flow": _s(2), "scopes": _m(3, "Oauth2Scopes"),
        "authorizationUrl": _s(4), "tokenUrl": _s(5), "description": _s(6),
    },
}

VENDOR_EXTENSIONS: dict[str, int] = {
    "Document": 16, "Info": 7, "Contact": 4, "License": 3, "ExternalDocs": 3, "Tag": 4,
    "PathItem": 10, "Operation": 13, "BodyParameter": 6, "HeaderParameterSubSchema": 22,
    "FormDataParameterSubSchema": 23, "QueryParameterSubSchema": 23,
    "PathParameterSubSchema": 22, "PrimitivesItems": 18, "Header": 19, "Response": 5,
    "FileSchema": 10, "Schema": 31, "Xml": 6, "ApiKeySecurity": 5,
    "BasicAuthenticationSecurity": 3, "Oauth2ImplicitSecurity": 6,
    "Oauth2PasswordSecurity": 6, "Oauth2ApplicationSecurity": 6,
    "Oauth2AccessCodeSecurity": 7,
}

# JSON objects keyed by a name: the message, its field of Named* entries and the message of
# each entry's value (the entries are {1: name, 2: value}).
NAMED_MAPS: dict[str, tuple[int, str]] = {
    "Definitions": (1, "Schema"),
    "Properties": (1, "Schema"),
    "ParameterDefinitions": (1, "Parameter"),
    "ResponseDefinitions": (1, "Response"),
    "SecurityDefinitions": (1, "SecurityDefinitionsItem"),
    "Headers": (1, "Header"),
    "Paths": (2, "PathItem"),  # vendor extensions of Paths are field 1
    "Responses": (1, "ResponseValue"),  # vendor extensions of Responses are field 2
    "Examples": (1, "any"),
    "Oauth2Scopes": (1, "string"),
    "SecurityRequirement": (1, "strings"),
}
_NAMED_MAP_EXTENSIONS = {"Paths": 1, "Responses": 2}

_NON_BODY_PARAMETERS = {
    "header": (1, "HeaderParameterSubSchema"),
    "formData": (2, "FormDataParameterSubSchema"),
    "query": (3, "QueryParameterSubSchema"),
    "path": (4, "PathParameterSubSchema"),
}
_SECURITY_SCHEMES = {
    ("basic", ""): (1, "BasicAuthenticationSecurity"),
    ("apiKey", ""): (2, "ApiKeySecurity"),
    ("oauth2", "implicit"): (3, "Oauth2ImplicitSecurity"),
    ("oauth2", "password"): (4, "Oauth2PasswordSecurity"),
    ("oauth2", "application"): (5, "Oauth2ApplicationSecurity"),
    ("oauth2", "accessCode"): (6, "Oauth2AccessCodeSecurity"),
}


def _any(number: int, value: Any) -> bytes:
    """An openapi.v2.Any: {2: yaml}. JSON text is YAML text, and what kubectl parses."""
    return _delimited(number, _string(2, json.dumps(value, separators=(",", ":"))))


def _named_any(number: int, name: str, value: Any) -> bytes:
    return _delimited(number, _string(1, name) + _any(2, value))


def _plain(message: str, value: Mapping[str, Any]) -> bytes:
    fields = MESSAGES[message]
    extension_field = VENDOR_EXTENSIONS.get(message)
    out = bytearray()
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            if key.startswith("x-") and extension_field is not None:
                out += _named_any(extension_field, key, item)
            continue  # a keyword Swagger 2.0 has no field for: left out, as kube does
        out += _field(field, item)
    return bytes(out)


def _field(field: Field, value: Any) -> bytes:
    number, kind = field.number, field.kind
    if kind == "string":
        return _string(number, str(value))
    if kind == "bool":
        return _bool(number, bool(value))
    if kind == "int64":
        return _int64(number, int(value))
    if kind == "double":
        return _double(number, float(value))
    if kind == "strings":
        return b"".join(_delimited(number, str(item).encode("utf-8")) for item in value)
    if kind == "any":
        return _any(number, value)
    if kind == "anys":
        return b"".join(_any(number, item) for item in value)
    if kind == "message":
        return _delimited(number, encode_message(field.message, value))
    return b"".join(_delimited(number, encode_message(field.message, item)) for item in value)


def _named_map(message: str, value: Mapping[str, Any]) -> bytes:
    number, entry = NAMED_MAPS[message]
    extension_field = _NAMED_MAP_EXTENSIONS.get(message)
    out = bytearray()
    for name, item in value.items():
        if extension_field is not None and name.startswith("x-"):
            out += _named_any(extension_field, name, item)
            continue
        if entry == "any":
            encoded = _any(2, item)
        elif entry == "string":
            encoded = _string(2, str(item))
        elif entry == "strings":  # StringArray {1: repeated value}
            encoded = _delimited(2, _field(Field(1, "strings"), item))
        else:
            encoded = _delimited(2, encode_message(entry, item))
        out += _delimited(number, _string(1, name) + encoded)
    return bytes(out)


def _parameter(value: Mapping[str, Any]) -> bytes:
    if value.get("in") == "body":
        return _delimited(1, _plain("BodyParameter", value))
    number, message = _NON_BODY_PARAMETERS[str(value.get("in"))]
    return _delimited(2, _delimited(number, _plain(message, value)))


def _parameters_item(value: Mapping[str, Any]) -> bytes:
    if "$ref" in value:
        return _delimited(2, _plain("JsonReference", value))
    return _delimited(1, _parameter(value))


def _response_value(value: Mapping[str, Any]) -> bytes:
    if "$ref" in value:
        return _delimited(2, _plain("JsonReference", value))
    return _delimited(1, _plain("Response", value))


def _schema_item(value: Mapping[str, Any]) -> bytes:
    if value.get("type") == "file":
        return _delimited(2, _plain("FileSchema", value))
    return _delimited(1, _plain("Schema", value))


def _additional_properties(value: Any) -> bytes:
    if isinstance(value, bool):
        return _bool(2, value, present=True)  # a oneof member: false is written too
    return _delimited(1, _plain("Schema", value))


def _type_item(value: Any) -> bytes:
    return _field(Field(1, "strings"), [value] if isinstance(value, str) else value)


def _items_item(value: Any) -> bytes:
    schemas = [value] if isinstance(value, Mapping) else value
    return b"".join(_delimited(1, _plain("Schema", schema)) for schema in schemas)


def _security_definitions_item(value: Mapping[str, Any]) -> bytes:
    scheme = str(value.get("type"))
    flow = str(value.get("flow", "")) if scheme == "oauth2" else ""
    number, message = _SECURITY_SCHEMES[(scheme, flow)]
    return _delimited(number, _plain(message, value))


_ONEOFS: dict[str, Callable[[Any], bytes]] = {
    "Parameter": _parameter,
    "ParametersItem": _parameters_item,
    "ResponseValue": _response_value,
    "SchemaItem": _schema_item,
    "AdditionalPropertiesItem": _additional_properties,
    "TypeItem": _type_item,
    "ItemsItem": _items_item,
    "SecurityDefinitionsItem": _security_definitions_item,
}


def encode_message(message: str, value: Any) -> bytes:
    """The protobuf encoding of `value` (decoded JSON) as the openapi.v2 message `message`."""
    oneof = _ONEOFS.get(message)
    if oneof is not None:
        return oneof(value)
    if message in NAMED_MAPS:
        return _named_map(message, value)
    return _plain(message, value)


def encode_document(document: Mapping[str, Any]) -> bytes:
    """A Swagger 2.0 document (decoded JSON) as the bytes of an openapi.v2.Document."""
    return encode_message("Document", document)
