"""OVF records to VDC manifests: a VirtualMachine for a lone VirtualSystem, a VirtualApp
for a VirtualSystemCollection, and the CDI upload DataVolume of every disk image.

Pure. Networks: `--network-map OVFNET=PORTGROUP|pod` first; unmapped, the descriptor's
first network is the pod network and every other one a port group named after it
(DNS-normalised). KubeVirt gives a VM one pod-network NIC, so a VM's second NIC on the pod
network goes to the port group named after its OVF network. Nested collections are
flattened into one app: `startOrder` is the position of the member's group in the
sequence the nesting gives (1 first), equal orders staying together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from controllers.virtualapp.models import MEMBER_NAME_MAX_LENGTH, VirtualAppSpec
from controllers.virtualmachine.models import (
    DNS_SUBDOMAIN_PATTERN,
    VirtualMachineSpec,
    mac_address_problem,
)

from .errors import OvfError
from .model import (
    Envelope,
    FileReference,
    InstanceCount,
    Nic,
    PropertyValue,
    StartupEntry,
    VirtualSystem,
    VirtualSystemCollection,
)
from .names import dns_label, unique
from .units import quantity

API_VERSION = "vdcos.io/v1alpha1"
CDI_API_VERSION = "cdi.kubevirt.io/v1beta1"
POD = "pod"
ANNOTATION_SOURCE = "ovf.vdcos.io/source"
ANNOTATION_VIRTUAL_SYSTEM = "ovf.vdcos.io/virtual-system"
ANNOTATION_PROPERTIES = "ovf.vdcos.io/properties"
ANNOTATION_FILE = "ovf.vdcos.io/file"
LABEL_IMPORTED = "ovf.vdcos.io/imported"

#: KubeVirt NIC models for the RASD ResourceSubType names of VMware, VirtualBox and
#: others; vmxnet is paravirtual and has no KubeVirt device: virtio is its counterpart.
_NIC_MODELS: dict[str, str] = {
    "e1000": "e1000", "e1000e": "e1000e", "virtio": "virtio", "virtio-net": "virtio",
    "vmxnet": "virtio", "vmxnet2": "virtio", "vmxnet3": "virtio", "pcnet32": "pcnet",
    "pcnet": "pcnet", "am79c970a": "pcnet", "am79c973": "pcnet", "rtl8139": "rtl8139",
    "82540em": "e1000", "82543gc": "e1000", "82545em": "e1000", "igb": "igb",
}


@dataclass(frozen=True)
class ImportOptions:
    namespace: str = "default"
    name: str | None = None
    storage_policy: str | None = None
    network_map: Mapping[str, str] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class DiskImage:
    """A disk image to upload: the package's file into its own upload DataVolume."""

    file: FileReference
    capacity_bytes: int
    datavolume: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.datavolume["metadata"]["name"])


@dataclass
class ImportPlan:
    """What the import creates: the images (uploaded first) and the VM or app."""

    images: list[DiskImage]
    workload: dict[str, Any]
    network_choices: list[str]
    notes: list[str]

    def objects(self) -> list[dict[str, Any]]:
        return [*(image.datavolume for image in self.images), self.workload]


# --------------------------------------------------------------------------- networks


def network_map(envelope: Envelope, flags: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Each OVF network's target (POD or a port group) and the lines saying so."""
    names = list(envelope.networks)
    for system in _systems(envelope.content):
        for nic in system.hardware.nics:
            if nic.network and nic.network not in names:
                names.append(nic.network)
    for network, target in flags.items():
        if network not in names:
            raise OvfError(f"--network-map {network}={target}: the descriptor has no network "
                           f"{network!r} (its networks: {', '.join(names) or 'none'})")
        if target != POD and not re.match(DNS_SUBDOMAIN_PATTERN, target):
            raise OvfError(f"--network-map {network}={target}: {target!r} is neither 'pod' "
                           "nor a port group name (a DNS subdomain)")
    chosen: dict[str, str] = {}
    lines: list[str] = []
    for index, network in enumerate(names):
        given = flags.get(network)
        target = given or (POD if index == 0 else dns_label(network))
        chosen[network] = target
        how = "--network-map" if given else "default"
        shown = "the pod network" if target == POD else f"port group {target}"
        lines.append(f"network {network!r} -> {shown} ({how})")
    return chosen, lines


def _nic_model(raw: str | None, where: str, notes: list[str]) -> str | None:
    if not raw:
        return None
    model = _NIC_MODELS.get(raw.strip().lower())
    if model is None:
        notes.append(f"{where}: NIC model {raw!r} has no KubeVirt counterpart; virtio used")
        return "virtio"
    return model


def _mac(raw: str | None, where: str) -> str | None:
    if not raw:
        return None
    digits = re.sub(r"[^0-9A-Fa-f]", "", raw)
    if len(digits) != 12:
        raise OvfError(f"{where}: Address {raw!r} is not a MAC address")
    mac = ":".join(digits[i:i + 2] for i in range(0, 12, 2)).lower()
    problem = mac_address_problem(mac)
    if problem is not None:
        raise OvfError(f"{where}: Address {problem}")
    return mac


# --------------------------------------------------------------------------- one VM


@dataclass
class _Builder:
    envelope: Envelope
    options: ImportOptions
    networks: dict[str, str]
    notes: list[str] = field(default_factory=list)
    images: dict[str, DiskImage] = field(default_factory=dict)

    def vm_spec(self, system: VirtualSystem, owner: str) -> dict[str, Any]:
        """The VirtualMachine spec of `system`; `owner` names its images."""
        hardware = system.hardware
        where = f"VirtualSystem {system.id!r}"
        spec: dict[str, Any] = {
            "cpu": {"count": hardware.cpu_count,
                    **({"coresPerSocket": hardware.cores_per_socket}
                       if hardware.cores_per_socket > 1 else {})},
            "memory": {"size": quantity(hardware.memory_bytes)},
        }
        disks: list[dict[str, Any]] = []
        taken: set[str] = set()
        for attachment in hardware.disks:
            disk = self.envelope.disk(attachment.disk_id)
            assert disk is not None  # the parser checked every HostResource
            if disk.capacity_bytes <= 0:
                raise OvfError(f"{where}: Disk {disk.id} has capacity 0")
            name = unique(dns_label(disk.id), taken)
            entry: dict[str, Any] = {"name": name, "size": quantity(disk.capacity_bytes),
                                     "bus": attachment.bus}
            if self.options.storage_policy:
                entry["storagePolicyName"] = self.options.storage_policy
            if disk.file_id is not None:
                image = self.image(disk.file_id, disk.capacity_bytes, owner, name)
                entry["source"] = {"pvc": {"name": image.name}}
            disks.append(entry)
        if disks:
            booted = next((d for d in disks if "source" in d), disks[0])
            booted["bootOrder"] = 1
        spec["disks"] = disks
        for cdrom in hardware.cdroms:
            file = self.envelope.file(cdrom.file_id) if cdrom.file_id else None
            what = f"the image {file.href!r}" if file else "no image"
            self.notes.append(f"{where}: a CD-ROM ({what}) is not imported: the VDC "
                              "VirtualMachine has no CD-ROM devices")
        spec["networks"] = self.nics(system, hardware.nics)
        if hardware.firmware == "EFI":
            spec["firmware"] = "EFI"
        try:
            VirtualMachineSpec.model_validate(spec)
        except ValidationError as error:
            raise OvfError(f"{where}: cannot become a VirtualMachine: {error}") from None
        return spec

    def nics(self, system: VirtualSystem, nics: tuple[Nic, ...]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        on_pod = False
        for index, nic in enumerate(nics, start=1):
            where = f"VirtualSystem {system.id!r}, NIC {nic.element_name or index}"
            network = nic.network or (self.envelope.networks[0]
                                      if self.envelope.networks else None)
            target = self.networks.get(network or "", POD)
            entry: dict[str, Any] = {"name": f"nic{index}"}
            if target == POD and on_pod:
                target = dns_label(network or f"nic{index}")
                self.notes.append(f"{where}: the VM's pod network is taken by another NIC; "
                                  f"this one goes to port group {target}")
            if target == POD:
                on_pod = True
                entry["podNetwork"] = {}
            else:
                entry["portGroupName"] = target
            mac = _mac(nic.mac_address, where)
            if mac:
                entry["macAddress"] = mac
            model = _nic_model(nic.model, where, self.notes)
            if model and model != "virtio":
                entry["model"] = model
            result.append(entry)
        return result

    def image(self, file_id: str, capacity: int, owner: str, disk: str) -> DiskImage:
        existing = self.images.get(file_id)
        if existing is not None:
            return existing
        file = self.envelope.file(file_id)
        assert file is not None  # the parser checked every fileRef
        name = dns_label(owner, disk, "image")
        datavolume = {
            "apiVersion": CDI_API_VERSION, "kind": "DataVolume",
            "metadata": {"name": name, "namespace": self.options.namespace,
                         "labels": {LABEL_IMPORTED: "true"},
                         "annotations": {ANNOTATION_FILE: file.href,
                                         **self.source_annotation()}},
            "spec": {"source": {"upload": {}},
                     "storage": {"resources": {"requests": {"storage": quantity(capacity)}}}},
        }
        image = DiskImage(file=file, capacity_bytes=capacity, datavolume=datavolume)
        self.images[file_id] = image
        return image

    def source_annotation(self) -> dict[str, str]:
        return {ANNOTATION_SOURCE: self.options.source} if self.options.source else {}

    def metadata(self, name: str, system_id: str) -> dict[str, Any]:
        return {"name": name, "namespace": self.options.namespace,
                "labels": {LABEL_IMPORTED: "true"},
                "annotations": {ANNOTATION_VIRTUAL_SYSTEM: system_id,
                                **self.source_annotation()}}


def _property_items(values: tuple[PropertyValue, ...]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for value in values:
        item: dict[str, Any] = {"key": value.declaration.key, "value": value.value}
        if value.declaration.password:
            item["password"] = True
        items.append(item)
    return items


def _systems(entity: VirtualSystem | VirtualSystemCollection) -> list[VirtualSystem]:
    if isinstance(entity, VirtualSystem):
        return [entity]
    return [system for child in entity.children for system in _systems(child)]


# --------------------------------------------------------------------------- collections


@dataclass
class _FlatMember:
    system: VirtualSystem
    entry: StartupEntry | None
    count: InstanceCount
    start_delay: int = 0
    wait_for_guest: bool = False
    stop_delay: int = 0
    stop_action: str = "powerOff"
    powered_on: bool = True

    def take(self, entry: StartupEntry) -> None:
        self.start_delay = max(self.start_delay, entry.start_delay_seconds)
        self.wait_for_guest = self.wait_for_guest or entry.waiting_for_guest
        self.stop_delay = max(self.stop_delay, entry.stop_delay_seconds)
        self.stop_action = entry.stop_action
        self.powered_on = entry.start_action == "powerOn"


def flatten(collection: VirtualSystemCollection) -> list[list[_FlatMember]]:
    """The collection as steps: each step a group of members that start together, in the
    order the StartupSections (nested ones inside their parent's step) give. A child the
    StartupSection does not list has order 0."""
    entries = {entry.entity_id: entry for entry in collection.startup}
    by_order: dict[int, list[VirtualSystem | VirtualSystemCollection]] = {}
    for child in collection.children:
        order = entries[child.id].order if child.id in entries else 0
        by_order.setdefault(order, []).append(child)
    steps: list[list[_FlatMember]] = []
    for order in sorted(by_order):
        group_steps: list[list[_FlatMember]] = []
        for child in by_order[order]:
            entry = entries.get(child.id)
            if isinstance(child, VirtualSystem):
                member = _FlatMember(child, entry, collection.scale_out.get(child.id,
                                                                             InstanceCount()))
                if entry is not None:
                    member.take(entry)
                child_steps = [[member]]
            else:
                child_steps = flatten(child)
                if entry is not None:
                    _apply_collection_entry(child_steps, entry)
            for index, step in enumerate(child_steps):
                if index == len(group_steps):
                    group_steps.append([])
                group_steps[index].extend(step)
        steps.extend(group_steps)
    return steps


def _apply_collection_entry(steps: list[list[_FlatMember]], entry: StartupEntry) -> None:
    """A nested collection's own StartupSection Item: its start delay and guest wait follow
    its last step, its stop delay its first (the last to stop), its actions every member
    that has no Item of its own."""
    for member in steps[-1]:
        member.start_delay = max(member.start_delay, entry.start_delay_seconds)
        member.wait_for_guest = member.wait_for_guest or entry.waiting_for_guest
    for member in steps[0]:
        member.stop_delay = max(member.stop_delay, entry.stop_delay_seconds)
    for step in steps:
        for member in step:
            if member.entry is None:
                member.stop_action = entry.stop_action
                member.powered_on = member.powered_on and entry.start_action == "powerOn"


def _collection_properties(collection: VirtualSystemCollection) -> list[PropertyValue]:
    found = list(collection.properties)
    for child in collection.children:
        if isinstance(child, VirtualSystemCollection):
            found.extend(_collection_properties(child))
    by_key = {value.declaration.key: value for value in found}  # the innermost wins
    return list(by_key.values())


_STOP_ACTIONS = {"powerOff": "PowerOff", "guestShutdown": "GuestShutdown"}


def _virtual_app(builder: _Builder, collection: VirtualSystemCollection,
                 name: str) -> dict[str, Any]:
    members: list[dict[str, Any]] = []
    taken: set[str] = set()
    for order, step in enumerate(flatten(collection), start=1):
        for flat in step:
            system = flat.system
            member_name = unique(dns_label(system.id, max_length=MEMBER_NAME_MAX_LENGTH),
                                 taken, MEMBER_NAME_MAX_LENGTH)
            spec = builder.vm_spec(system, dns_label(name, member_name))
            if not flat.powered_on:
                builder.notes.append(f"VirtualSystem {system.id!r}: ovf:startAction none has "
                                     "no VirtualApp counterpart; the app powers it on in its "
                                     "start group")
            stop_action = _STOP_ACTIONS.get(flat.stop_action)
            if stop_action is None:
                builder.notes.append(f"VirtualSystem {system.id!r}: ovf:stopAction "
                                     f"{flat.stop_action!r} has no VirtualApp counterpart; "
                                     "PowerOff used")
                stop_action = "PowerOff"
            member: dict[str, Any] = {
                "name": member_name, "startOrder": order,
                "startDelaySeconds": flat.start_delay, "waitForGuest": flat.wait_for_guest,
                "stopAction": stop_action, "stopDelaySeconds": flat.stop_delay,
                "replicas": flat.count.default, "minReplicas": flat.count.minimum,
                "maxReplicas": flat.count.maximum,
                "template": {"metadata": {"annotations": {
                    ANNOTATION_VIRTUAL_SYSTEM: system.id}}, "spec": spec},
            }
            if system.properties:
                member["properties"] = _property_items(system.properties)
            members.append(member)
    spec_app: dict[str, Any] = {"powerState": "PoweredOn", "members": members}
    app_properties = _collection_properties(collection)
    if app_properties:
        spec_app["properties"] = _property_items(tuple(app_properties))
    try:
        VirtualAppSpec.model_validate(spec_app)
    except ValidationError as error:
        raise OvfError(f"VirtualSystemCollection {collection.id!r}: cannot become a "
                       f"VirtualApp: {error}") from None
    metadata = builder.metadata(name, collection.id)
    return {"apiVersion": API_VERSION, "kind": "VirtualApp", "metadata": metadata,
            "spec": spec_app}


# --------------------------------------------------------------------------- entry point


def plan_import(envelope: Envelope, options: ImportOptions) -> ImportPlan:
    """The objects `vdcos import ovf` creates for `envelope`."""
    networks, lines = network_map(envelope, options.network_map)
    builder = _Builder(envelope, options, networks)
    content = envelope.content
    name = options.name or dns_label(content.name or content.id)
    if isinstance(content, VirtualSystem):
        workload: dict[str, Any] = {
            "apiVersion": API_VERSION, "kind": "VirtualMachine",
            "metadata": builder.metadata(name, content.id),
            "spec": builder.vm_spec(content, name)}
        if content.properties:
            # A lone VM has no OVF environment of its own yet: its values are kept where a
            # user (or a later VirtualApp) can read them.
            workload["metadata"]["annotations"][ANNOTATION_PROPERTIES] = json.dumps(
                {v.declaration.key: v.value for v in content.properties
                 if not v.declaration.password}, sort_keys=True)
    else:
        workload = _virtual_app(builder, content, name)
    return ImportPlan(images=list(builder.images.values()), workload=workload,
                      network_choices=lines, notes=builder.notes)
