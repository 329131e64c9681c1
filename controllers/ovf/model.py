"""What an OVF descriptor says, as plain records (DSP0243 1.x and 2.x).

The parser fills these with the deployment option applied and every `${key}` macro
already resolved; sizes are in bytes. Nothing here knows about Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DiskBus = Literal["virtio", "sata", "scsi"]
StopAction = Literal["powerOff", "guestShutdown", "none", "suspend"]
StartAction = Literal["powerOn", "none"]
PropertyType = Literal[
    "string", "boolean", "uint8", "sint8", "uint16", "sint16", "uint32", "sint32",
    "uint64", "sint64", "real32", "real64",
]


@dataclass(frozen=True)
class FileReference:
    """References/File: a file of the package (a disk image, an ISO)."""

    id: str
    href: str
    size: int | None = None
    compression: str | None = None


@dataclass(frozen=True)
class VirtualDisk:
    """DiskSection/Disk. `file_id` is None for a blank disk."""

    id: str
    capacity_bytes: int
    file_id: str | None = None
    format: str | None = None
    populated_size: int | None = None


@dataclass(frozen=True)
class PropertyDeclaration:
    """ProductSection/Property with its full key `[class.]key[.instance]`."""

    key: str
    type: PropertyType
    default: str | None = None
    user_configurable: bool = False
    password: bool = False
    label: str | None = None
    description: str | None = None
    qualifiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PropertyValue:
    """A property with the value it takes in this import (its default or the user's)."""

    declaration: PropertyDeclaration
    value: str


@dataclass(frozen=True)
class Nic:
    network: str | None
    model: str | None = None
    mac_address: str | None = None
    element_name: str | None = None


@dataclass(frozen=True)
class DiskAttachment:
    """A disk of the VM: which DiskSection disk, on which bus, in which slot."""

    disk_id: str
    bus: DiskBus
    element_name: str | None = None


@dataclass(frozen=True)
class CdRom:
    file_id: str | None
    bus: DiskBus


@dataclass(frozen=True)
class Hardware:
    cpu_count: int
    cores_per_socket: int
    memory_bytes: int
    disks: tuple[DiskAttachment, ...] = ()
    nics: tuple[Nic, ...] = ()
    cdroms: tuple[CdRom, ...] = ()
    firmware: Literal["BIOS", "EFI"] = "BIOS"


@dataclass(frozen=True)
class StartupEntry:
    """StartupSection/Item: how a collection starts and stops one of its children."""

    entity_id: str
    order: int
    start_delay_seconds: int = 0
    waiting_for_guest: bool = False
    start_action: StartAction = "powerOn"
    stop_delay_seconds: int = 0
    stop_action: StopAction = "powerOff"


@dataclass(frozen=True)
class InstanceCount:
    """ScaleOutSection/InstanceCount for one VirtualSystem of a collection."""

    minimum: int = 1
    default: int = 1
    maximum: int = 1


@dataclass(frozen=True)
class VirtualSystem:
    id: str
    name: str | None
    hardware: Hardware
    properties: tuple[PropertyValue, ...] = ()


@dataclass(frozen=True)
class VirtualSystemCollection:
    id: str
    name: str | None
    children: tuple[VirtualSystem | VirtualSystemCollection, ...]
    startup: tuple[StartupEntry, ...] = ()
    scale_out: dict[str, InstanceCount] = field(default_factory=dict)
    properties: tuple[PropertyValue, ...] = ()


Entity = VirtualSystem | VirtualSystemCollection


@dataclass(frozen=True)
class Envelope:
    version: Literal["1", "2"]
    files: tuple[FileReference, ...]
    disks: tuple[VirtualDisk, ...]
    networks: tuple[str, ...]
    deployment_option: str | None
    content: Entity

    def file(self, file_id: str) -> FileReference | None:
        return next((f for f in self.files if f.id == file_id), None)

    def disk(self, disk_id: str) -> VirtualDisk | None:
        return next((d for d in self.disks if d.id == disk_id), None)
