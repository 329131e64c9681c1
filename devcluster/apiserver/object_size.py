"""kube-apiserver's size limits of ConfigMap and Secret data (1 MiB), as 422s naming the field.

Any other object is bounded by the store (rest.check_storable: etcd's 1.5 MiB).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .errors import Cause

MAX_DATA_BYTES = 1024 * 1024  # core.MaxSecretSize, also the ConfigMap limit


def _too_long(field: str) -> Cause:
    return Cause(field, f"Too long: may not be more than {MAX_DATA_BYTES} bytes",
                 "FieldValueTooLong")


def _decoded_length(text: Any) -> int:
    try:
        return len(base64.b64decode(str(text), validate=False))
    except (binascii.Error, ValueError):
        return len(str(text))


def check_configmap_size(obj: dict[str, Any]) -> list[Cause]:
    """ValidateConfigMap: keys and values of data and binaryData together."""
    total = 0
    for key, value in (obj.get("data") or {}).items():
        total += len(key) + len(str(value).encode("utf-8", "surrogateescape"))
    for key, value in (obj.get("binaryData") or {}).items():
        total += len(key) + _decoded_length(value)
    return [_too_long("")] if total > MAX_DATA_BYTES else []


def check_secret_size(obj: dict[str, Any]) -> list[Cause]:
    """ValidateSecret: the decoded bytes of data (stringData is folded into it first)."""
    total = sum(len(key) + _decoded_length(value)
                for key, value in (obj.get("data") or {}).items())
    return [_too_long("data")] if total > MAX_DATA_BYTES else []


__all__ = ["MAX_DATA_BYTES", "check_configmap_size", "check_secret_size"]
