"""Base classes of the VDC API models: camelCase on the wire, snake_case in Python.

Every field of a VDC kind is declared once, on a subclass of these, and the CRD schema is
generated from it (`controllers.common.crd_generator`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Desired state written by users: unknown fields are errors, never silently dropped."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_api(self) -> dict[str, Any]:
        """The object as the Kubernetes API carries it: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(BaseModel):
    """Observed state written by controllers: fields from newer versions are ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )

    def to_api(self) -> dict[str, Any]:
        """The object as the Kubernetes API carries it: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
