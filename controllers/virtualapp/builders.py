"""A VirtualApp's objects, built from its spec (pure, no I/O): each member replica's VDC
VirtualMachine, the ConfigMap or Secret that holds its OVF environment, what the caches
keep of the app's VMs, and the status."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pydantic

from controllers.common.apply import owner_reference
from controllers.virtualapp.kind import APP_LABEL, MEMBER_LABEL, REPLICA_ANNOTATION, vm_name
from controllers.virtualapp.models import Member, VirtualAppSpec
from controllers.virtualapp.ovf_environment import (
    OVF_ENV_FILE,
    EnvironmentEntity,
    build_ovf_environment,
    effective_properties,
    environment_object_name,
    has_password,
)
from controllers.virtualapp.sequence import MemberTimes, ObservedVM, Plan
from controllers.virtualmachine.kind import VIRTUAL_MACHINE
from controllers.virtualmachine.models import VirtualMachineSpec
from kubekit.resources import ResourceRef

CONFIG_MAPS: Final = ResourceRef("", "v1", "configmaps")
SECRETS: Final = ResourceRef("", "v1", "secrets")
#: On each VM: the OVF environment object it used before the current one (kept while the
#: running guest may still use it; deleted when the one after replaces it).
PREVIOUS_ENVIRONMENT_ANNOTATION: Final = "vdcos.io/previous-ovf-environment"
#: On each OVF environment object: the VM it is for.
VM_LABEL: Final = "vdcos.io/virtual-app-vm"
#: A VM name is a DNS label (its KubeVirt VM, VMI and pod carry it).
MAX_VM_NAME_LENGTH: Final = 63


@dataclass(frozen=True)
class MemberReplica:
    member: Member
    replica: int
    name: str


def replicas_of(app: str, spec: VirtualAppSpec) -> list[MemberReplica]:
    """Every VM the spec asks for, member by member, oldest replica first."""
    return [
        MemberReplica(member, replica, vm_name(app, member.name, replica))
        for member in spec.members
        for replica in range(1, member.replicas + 1)
    ]


def name_problem(app: str, spec: VirtualAppSpec) -> str | None:
    """Why a VM of the spec cannot be named (too long for a DNS label), naming the field."""
    for index, member in enumerate(spec.members):
        longest = vm_name(app, member.name, max(member.max_replicas, member.replicas, 1))
        if len(longest) > MAX_VM_NAME_LENGTH:
            return (f"spec.members[{index}].name: the VM name {longest!r} would be longer than "
                    f"{MAX_VM_NAME_LENGTH} characters; shorten the app's or the member's name")
    return None


@dataclass(frozen=True)
class Environment:
    """One VM's OVF environment: the document, and the object that holds it."""

    document: str
    object_name: str
    secret: bool


def environments(
    app: str, spec: VirtualAppSpec, platform_version: str
) -> dict[str, Environment]:
    """The OVF environment of every VM the spec asks for, by VM name."""
    replicas = replicas_of(app, spec)
    entities = [
        EnvironmentEntity(r.name, effective_properties(spec.properties, r.member.properties))
        for r in replicas
    ]
    secret = has_password(entities)  # siblings' values are in every document
    found: dict[str, Environment] = {}
    for entity in entities:
        document = build_ovf_environment(entity, entities, platform_version=platform_version)
        found[entity.id] = Environment(
            document, environment_object_name(entity.id, document), secret
        )
    return found


def _labels(app: str, member: str) -> dict[str, str]:
    return {APP_LABEL: app, MEMBER_LABEL: member}


def environment_object(
    app_body: Mapping[str, Any], member: str, vm: str, environment: Environment
) -> tuple[ResourceRef, dict[str, Any]]:
    """The ConfigMap (or Secret, with password properties) holding ovf-env.xml; immutable, as
    its name carries the document's digest."""
    metadata = app_body["metadata"]
    meta = {
        "name": environment.object_name,
        "namespace": metadata["namespace"],
        "labels": {**_labels(str(metadata["name"]), member), VM_LABEL: vm},
        "ownerReferences": [owner_reference(app_body)],
    }
    if environment.secret:
        encoded = base64.b64encode(environment.document.encode()).decode()
        return SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                         "type": "Opaque", "immutable": True, "data": {OVF_ENV_FILE: encoded}}
    return CONFIG_MAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                         "immutable": True, "data": {OVF_ENV_FILE: environment.document}}


def member_vm(
    app_body: Mapping[str, Any],
    replica: MemberReplica,
    power: str,
    environment: Environment,
    previous_environment: str | None,
) -> dict[str, Any]:
    """The VDC VirtualMachine of one member replica, owned by the app."""
    metadata = app_body["metadata"]
    template = replica.member.template
    spec = template.spec.to_api()
    spec["powerState"] = power
    spec["ovfEnvironment"] = (
        {"secretName": environment.object_name} if environment.secret
        else {"configMapName": environment.object_name}
    )
    annotations = {**template.metadata.annotations, REPLICA_ANNOTATION: str(replica.replica)}
    if previous_environment and previous_environment != environment.object_name:
        annotations[PREVIOUS_ENVIRONMENT_ANNOTATION] = previous_environment
    return {
        "apiVersion": VIRTUAL_MACHINE.api_version,
        "kind": VIRTUAL_MACHINE.kind,
        "metadata": {
            "name": replica.name,
            "namespace": metadata["namespace"],
            "labels": {**template.metadata.labels,
                       **_labels(str(metadata["name"]), replica.member.name)},
            "annotations": annotations,
            "ownerReferences": [owner_reference(app_body)],
        },
        "spec": spec,
    }


def environment_name_of(vm: Mapping[str, Any]) -> str | None:
    """The ConfigMap or Secret a VDC VM's spec.ovfEnvironment names."""
    environment = (vm.get("spec") or {}).get("ovfEnvironment") or {}
    name = environment.get("configMapName") or environment.get("secretName")
    return str(name) if name else None


def environment_resource_of(vm: Mapping[str, Any], name: str) -> ResourceRef:
    environment = (vm.get("spec") or {}).get("ovfEnvironment") or {}
    return SECRETS if environment.get("secretName") == name else CONFIG_MAPS


def _normal_spec(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        return VirtualMachineSpec.model_validate(dict(spec)).to_api()
    except pydantic.ValidationError:
        return None


def vm_differs(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether applying `desired` would change the live VM (its spec with defaults, or the
    labels, annotations and owner we set)."""
    live_meta = live.get("metadata") or {}
    want = desired["metadata"]
    if any((live_meta.get(part) or {}).get(key) != value
           for part in ("labels", "annotations") for key, value in want[part].items()):
        return True
    owners = {ref.get("uid") for ref in live_meta.get("ownerReferences") or []}
    if want["ownerReferences"][0]["uid"] not in owners:
        return True
    live_spec = _normal_spec(live.get("spec") or {})
    return live_spec is None or live_spec != _normal_spec(desired["spec"])


def _condition_true(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions or [])


def slim_app_vm(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the VirtualApp controller keeps of one of its VDC VMs."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    return {
        "metadata": {key: metadata.get(key) for key in (
            "name", "namespace", "labels", "annotations", "ownerReferences",
            "deletionTimestamp")},
        "spec": dict(body.get("spec") or {}),
        "status": {"powerState": status.get("powerState"),
                   "ready": _condition_true(status.get("conditions"), "Ready")},
    }


def observed_vm(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None) -> ObservedVM | None:
    """A VDC VM of the app as the planner reads it (None: not a member replica)."""
    metadata = vm.get("metadata") or {}
    try:
        replica = int((metadata.get("annotations") or {}).get(REPLICA_ANNOTATION) or "")
    except ValueError:
        return None
    return ObservedVM(
        name=str(metadata.get("name")),
        member=str((metadata.get("labels") or {}).get(MEMBER_LABEL)),
        replica=replica,
        requested_power=str((vm.get("spec") or {}).get("powerState") or "PoweredOn"),
        power=(vm.get("status") or {}).get("powerState"),
        ready=bool((vm.get("status") or {}).get("ready")),
        guest_ready=_condition_true(((vmi or {}).get("status") or {}).get("conditions"),
                                    "AgentConnected"),
    )


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def recorded_times(status: Mapping[str, Any]) -> dict[str, MemberTimes]:
    """The sequence's marks status holds, by member."""
    return {
        str(entry.get("name")): MemberTimes(
            parse_timestamp(entry.get("startedAt")),
            parse_timestamp(entry.get("upAt")),
            parse_timestamp(entry.get("stoppedAt")),
        )
        for entry in status.get("members") or []
    }


def app_status(spec: VirtualAppSpec, decided: Plan, vms: Sequence[ObservedVM]) -> dict[str, Any]:
    """The app's status (conditions aside): members, their VMs, the marks, the phase."""
    members = []
    for member in spec.members:
        own = sorted((vm for vm in vms if vm.member == member.name), key=lambda v: v.replica)
        times = decided.times.get(member.name, MemberTimes())
        entry: dict[str, Any] = {
            "name": member.name,
            "replicas": len(own),
            "readyReplicas": sum(1 for vm in own if vm.running),
            "virtualMachines": [
                {"name": vm.name, "powerState": vm.power, "ready": vm.ready,
                 "guestReady": vm.guest_ready}
                for vm in own
            ],
            "startedAt": _timestamp(times.started_at),
            "upAt": _timestamp(times.up_at),
            "stoppedAt": _timestamp(times.stopped_at),
        }
        members.append({key: value for key, value in entry.items() if value is not None})
    total = sum(len([vm for vm in vms if vm.member == m.name]) for m in spec.members)
    ready = sum(1 for vm in vms if vm.running and spec.member(vm.member) is not None)
    return {
        "phase": decided.phase,
        "powerState": spec.power_state,
        "members": members,
        "memberCount": len(spec.members),
        "readyVirtualMachines": f"{ready}/{total}",
        "currentStartOrder": decided.current_start_order,
    }
