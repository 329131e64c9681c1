"""The VirtualApp kind (vdcos.io/v1alpha1, namespaced): a vApp of coordinated VMs.

A VirtualApp is what OVF calls a VirtualSystemCollection: members (each one VirtualMachine
template, scaled out to `replicas` VMs) started in `startOrder` and stopped in reverse, and
properties that reach every guest in an OVF environment document (docs/vapp.md). These
models are the single source of the CRD schema (`crds/vdcos.io_virtualapps.yaml`).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel
from controllers.virtualmachine.models import DNS_LABEL_PATTERN, VirtualMachineSpec

AppPowerState = Literal["PoweredOn", "PoweredOff"]
StopAction = Literal["PowerOff", "GuestShutdown"]
AppPhase = Literal["Starting", "Running", "Stopping", "Stopped", "Degraded"]

#: OVF property keys: `[class.]key[.instance]` (DSP0243 ProductSection), letters, digits,
#: `_`, `-` and dots.
PROPERTY_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
#: A VM name is `<app>-<member>[-<n>]`, a DNS label of at most 63 characters: a member name
#: of at most 40 leaves room for an app name and the replica number.
MEMBER_NAME_MAX_LENGTH = 40
#: Replicas a member may have (a bound keeps one app's VMs countable).
MAX_REPLICAS = 100

_BY_KEY: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"]}
_BY_NAME: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


class Property(SpecModel):
    """One OVF property value (ProductSection/Property): the guest reads it in ovf-env.xml."""

    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=PROPERTY_KEY_PATTERN,
        description='The property key, as the OVF descriptor names it (e.g. "db.host").',
    )
    value: str = Field(default="", max_length=65536, description="The value, as text.")
    password: bool = Field(
        default=False,
        description=(
            "The value is a secret (OVF ovf:password): the OVF environment of every VM that "
            "sees it is kept in a Secret instead of a ConfigMap."
        ),
    )


def _unique(kind: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{kind} {value!r} is used twice")
        seen.add(value)


class MemberTemplateMetadata(SpecModel):
    """Labels and annotations every VM of the member gets."""

    labels: dict[str, str] = Field(default_factory=dict, description="Labels of each VM.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations of each VM."
    )


class MemberTemplate(SpecModel):
    """What each VM of a member is: a VirtualMachine's metadata and spec."""

    metadata: MemberTemplateMetadata = Field(
        default_factory=MemberTemplateMetadata, description="Labels and annotations of each VM."
    )
    spec: VirtualMachineSpec = Field(
        description=(
            "A VirtualMachine spec. Its powerState is ignored: the app powers its members on "
            "and off in order (spec.powerState of the app)."
        )
    )


class Member(SpecModel):
    """One member of the app (an OVF VirtualSystem): a template and how many VMs run it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.replicas",
                    "message": "replicas must be at least minReplicas",
                    "fieldPath": ".replicas",
                },
                {
                    "rule": "self.replicas <= self.maxReplicas",
                    "message": "replicas must be at most maxReplicas",
                    "fieldPath": ".replicas",
                },
            ]
        }
    )

    name: str = Field(
        max_length=MEMBER_NAME_MAX_LENGTH,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the member, unique in the app; its VMs are <app>-<name>[-<n>].",
    )
    start_order: int = Field(
        default=0,
        ge=0,
        le=65535,
        description=(
            "Start group: lower starts first, members with equal orders start together; "
            "powering off runs the groups in reverse."
        ),
    )
    start_delay_seconds: int = Field(
        default=0,
        ge=0,
        le=86400,
        description=(
            "Seconds to wait, once this member's VMs run (and their guests are up when "
            "waitForGuest), before the next start group starts."
        ),
    )
    wait_for_guest: bool = Field(
        default=False,
        description=(
            "The next start group also waits for this member's guest agent to connect (the "
            "KubeVirt VMI's AgentConnected condition)."
        ),
    )
    stop_action: StopAction = Field(
        default="GuestShutdown",
        description=(
            "How the member's VMs are stopped: GuestShutdown (default: the guest is asked to "
            "shut down, with KubeVirt's grace period) or PowerOff (immediately, no grace)."
        ),
    )
    stop_delay_seconds: int = Field(
        default=0,
        ge=0,
        le=86400,
        description=(
            "Seconds to wait, once this member's VMs are stopped, before the next stop group "
            "(the previous start group) stops."
        ),
    )
    replicas: int = Field(
        default=1, ge=0, le=MAX_REPLICAS, description="VMs of this member (default 1)."
    )
    min_replicas: int = Field(
        default=1, ge=0, le=MAX_REPLICAS, description="Fewest VMs it may scale in to."
    )
    max_replicas: int = Field(
        default=1, ge=0, le=MAX_REPLICAS, description="Most VMs it may scale out to."
    )
    properties: list[Property] = Field(
        default_factory=list,
        max_length=256,
        description="The member's own property values (they override the app's of the same key).",
        json_schema_extra=_BY_KEY,
    )
    template: MemberTemplate = Field(description="What each VM of the member is.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.min_replicas <= self.replicas <= self.max_replicas:
            raise ValueError(
                f"member {self.name!r}: replicas ({self.replicas}) must be within minReplicas "
                f"({self.min_replicas}) and maxReplicas ({self.max_replicas})"
            )
        _unique(f"member {self.name!r}: property key", [p.key for p in self.properties])
        return self


class VirtualAppSpec(SpecModel):
    """Desired state of a vApp."""

    power_state: AppPowerState = Field(
        default="PoweredOn",
        description=(
            "PoweredOn (default: members start in startOrder) or PoweredOff (they stop in "
            "reverse order, each with its stopAction)."
        ),
    )
    properties: list[Property] = Field(
        default_factory=list,
        max_length=256,
        description="The app's property values, seen by every member's guests.",
        json_schema_extra=_BY_KEY,
    )
    members: list[Member] = Field(
        min_length=1,
        max_length=64,
        description="The app's VMs, by member; names are unique.",
        json_schema_extra=_BY_NAME,
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        _unique("member name", [member.name for member in self.members])
        _unique("property key", [p.key for p in self.properties])
        return self

    def member(self, name: str) -> Member | None:
        return next((member for member in self.members if member.name == name), None)


class MemberVirtualMachine(StatusModel):
    """One VM of a member as observed."""

    name: str = Field(description="Name of the VirtualMachine.")
    power_state: str | None = Field(
        default=None, description="Its observed power state (PoweredOn, PoweredOff)."
    )
    ready: bool = Field(default=False, description="Its Ready condition is True.")
    guest_ready: bool = Field(
        default=False, description="Its guest agent is connected (VMI AgentConnected)."
    )


class MemberStatus(StatusModel):
    """A member's VMs and where its part of the start or stop sequence is."""

    name: str = Field(description="Name of the member.")
    replicas: int = Field(default=0, ge=0, description="VMs of the member that exist.")
    ready_replicas: int = Field(default=0, ge=0, description="Of those, how many are Ready.")
    virtual_machines: list[MemberVirtualMachine] = Field(
        default_factory=list, description="The member's VMs, oldest first.",
        json_schema_extra=_BY_NAME,
    )
    started_at: str | None = Field(
        default=None,
        description="When the member's VMs were asked to start, in this power-on sequence.",
    )
    up_at: str | None = Field(
        default=None,
        description=(
            "When they all ran (and their guests were up, with waitForGuest): its "
            "startDelaySeconds count from here."
        ),
    )
    stopped_at: str | None = Field(
        default=None,
        description="When they were all stopped: its stopDelaySeconds count from here.",
    )


class VirtualAppStatus(StatusModel):
    """Observed state of a vApp."""

    phase: AppPhase | None = Field(
        default=None,
        description=(
            "Starting, Running, Stopping, Stopped, or Degraded (a VM that should run does not, "
            "or the spec cannot be applied: see the Ready condition)."
        ),
    )
    power_state: AppPowerState | None = Field(
        default=None,
        description="The power state the current (or last) sequence drives the app to.",
    )
    members: list[MemberStatus] = Field(
        default_factory=list, description="Each member's VMs.", json_schema_extra=_BY_NAME
    )
    member_count: int | None = Field(default=None, ge=0, description="Members of the app.")
    ready_virtual_machines: str | None = Field(
        default=None, description='VMs Ready out of the VMs of the app, e.g. "3/4".'
    )
    current_start_order: int | None = Field(
        default=None,
        ge=0,
        description="The start group the running sequence is at (unset when none runs).",
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description=(
            "Ready: True once every VM reached the app's power state (and runs Ready when "
            "PoweredOn); False while a sequence runs or when the spec cannot be applied."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
