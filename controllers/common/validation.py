"""How a spec the schema let through but the models refuse is reported: field by field."""

from __future__ import annotations

import pydantic


def validation_message(error: pydantic.ValidationError, prefix: str = "spec") -> str:
    """ "spec.cpu.sockets: Input should be ...; spec.disks.0.size: ..." """
    return "; ".join(
        f"{prefix}.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
        for item in error.errors()
    )
