"""Parse an OVF descriptor (DSP0243 1.x and 2.x) into `model.py` records.

Pure: text in, an `Envelope` out. The chosen deployment option is applied while reading
(an element tagged `ovf:configuration="a b"` exists only in configurations a and b), and
`${key}` macros are resolved against the properties in scope (the entity's own
ProductSections, then its collections', then any in the descriptor). Elements are
matched by local name so 1.x, 2.x and the RASD/SASD/EPASD namespaces read alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, cast
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from . import properties as props
from .errors import OvfError
from .model import (
    CdRom,
    DiskAttachment,
    DiskBus,
    Entity,
    Envelope,
    FileReference,
    Hardware,
    InstanceCount,
    Nic,
    PropertyDeclaration,
    PropertyValue,
    StartAction,
    StartupEntry,
    StopAction,
    VirtualDisk,
    VirtualSystem,
    VirtualSystemCollection,
)
from .units import to_bytes

OVF_1 = "http://schemas.dmtf.org/ovf/envelope/1"
OVF_2 = "http://schemas.dmtf.org/ovf/envelope/2"
OVF_09 = "http://www.vmware.com/schema/ovf/1/envelope"

# CIM ResourceType values (CIM_ResourceAllocationSettingData).
CPU, MEMORY, IDE, SCSI, ETHERNET, CD, DVD, DISK, SATA, OTHER = 3, 4, 5, 6, 10, 15, 16, 17, 20, 1
_CONTROLLER_BUS: dict[int, DiskBus] = {IDE: "sata", SCSI: "scsi", SATA: "sata"}
_HOST_RESOURCE = re.compile(r"^(?:ovf:)?/+(disk|file)/(.+)$")
_STOP_ACTIONS: tuple[StopAction, ...] = ("powerOff", "guestShutdown", "none", "suspend")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _attr(element: Element, name: str) -> str | None:
    """An attribute by local name, whatever its namespace (ovf:, ovf2:, none)."""
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def _child_text(element: Element, name: str) -> str | None:
    found = _children(element, name)
    if not found or found[0].text is None:
        return None
    return found[0].text.strip()


def parse_xml(text: str | bytes, source: str) -> Element:
    """The descriptor's root element, parsed without entity expansion or external DTDs."""
    try:
        root: Element = SafeElementTree.fromstring(text)
    except ParseError as error:
        line, column = error.position
        reason = str(error).split(": line ")[0]
        raise OvfError(f"{source}: the XML does not parse at line {line}, column {column}: "
                       f"{reason}") from None
    except DefusedXmlException as error:
        raise OvfError(f"{source}: refused unsafe XML: a descriptor may not declare entities "
                       f"or load external documents ({error})") from None
    namespace = _namespace(root.tag)
    if _local(root.tag) != "Envelope":
        raise OvfError(f"{source}: not an OVF descriptor (the root element is "
                       f"{_local(root.tag)!r}, not Envelope)")
    if namespace == OVF_09:
        raise OvfError(f"{source}: OVF 0.9 (namespace {OVF_09}) is the pre-standard VMware "
                       "format and is not supported; export the appliance as OVF 1.0 or "
                       "later (e.g. ovftool --targetType=OVF)")
    if namespace not in (OVF_1, OVF_2):
        raise OvfError(f"{source}: unknown OVF namespace {namespace!r} (expected {OVF_1} or "
                       f"{OVF_2})")
    return root


# --------------------------------------------------------------------------- options


def deployment_options(root: Element) -> tuple[list[str], str | None]:
    """The configurations of the DeploymentOptionSection and the default one."""
    ids: list[str] = []
    default: str | None = None
    for section in _children(root, "DeploymentOptionSection"):
        for configuration in _children(section, "Configuration"):
            option = _attr(configuration, "id")
            if not option:
                continue
            ids.append(option)
            if (_attr(configuration, "default") or "").lower() == "true":
                default = option
    return ids, default or (ids[0] if ids else None)


def choose_deployment_option(root: Element, requested: str | None) -> str | None:
    ids, default = deployment_options(root)
    if requested is None:
        return default
    if requested not in ids:
        choices = ", ".join(ids) if ids else "the descriptor has no DeploymentOptionSection"
        raise OvfError(f"--deployment-option {requested}: no such configuration ({choices})")
    return requested


# --------------------------------------------------------------------------- the reader


@dataclass
class _Scope:
    """What an element is read with: the chosen configuration and the property values."""

    configuration: str | None
    values: Mapping[str, str]

    def applies(self, element: Element) -> bool:
        tagged = _attr(element, "configuration")
        if tagged is None:
            return True
        return self.configuration is not None and self.configuration in tagged.split()

    def nested(self, values: Mapping[str, str]) -> _Scope:
        return _Scope(self.configuration, {**self.values, **values})


class _Reader:
    def __init__(self, root: Element, source: str, configuration: str | None,
                 overrides: Mapping[str, str]) -> None:
        self.root = root
        self.source = source
        self.configuration = configuration
        self.overrides = overrides
        self.entity_ids: set[str] = set()
        self.envelope_disk_ids: set[str] | None = None

    # -- properties

    def declarations(self, entity: Element) -> list[tuple[PropertyDeclaration, str | None]]:
        """The properties of the entity's own ProductSections, each with its default."""
        found: list[tuple[PropertyDeclaration, str | None]] = []
        scope = _Scope(self.configuration, {})
        for section in _children(entity, "ProductSection"):
            if not scope.applies(section):
                continue
            prefix = _attr(section, "class")
            suffix = _attr(section, "instance")
            for element in _children(section, "Property"):
                if not scope.applies(element):
                    continue
                key = _attr(element, "key")
                if not key:
                    raise OvfError(f"{self.source}: a ProductSection Property has no ovf:key")
                full_key = ".".join(part for part in (prefix, key, suffix) if part)
                type_name = _attr(element, "type")
                if not type_name:
                    raise OvfError(f"{self.source}: property {full_key!r} has no ovf:type")
                default = _attr(element, "value")
                for value in _children(element, "Value"):
                    if _attr(value, "configuration") is not None and scope.applies(value):
                        default = _attr(value, "value")
                qualifiers = tuple(q for q in (_attr(element, "qualifiers"),) if q)
                declaration = PropertyDeclaration(
                    key=full_key,
                    type=props.property_type(type_name, full_key),
                    default=default,
                    user_configurable=_boolean(element, "userConfigurable", False, full_key),
                    password=_boolean(element, "password", False, full_key),
                    label=_child_text(element, "Label"),
                    description=_child_text(element, "Description"),
                    qualifiers=qualifiers,
                )
                found.append((declaration, default))
        return found

    def all_declarations(self) -> list[PropertyDeclaration]:
        return [declaration for element in self.root.iter()
                if _local(element.tag) in ("VirtualSystem", "VirtualSystemCollection")
                for declaration, _ in self.declarations(element)]

    def property_values(self, entity: Element) -> tuple[PropertyValue, ...]:
        return tuple(props.value_of(declaration, self.overrides, default)
                     for declaration, default in self.declarations(entity))

    def global_values(self) -> dict[str, str]:
        """Every property's value, for macros outside any entity (DiskSection); a key two
        entities declare with different values is left out (ambiguous there)."""
        values: dict[str, str] = {}
        ambiguous: set[str] = set()
        for element in self.root.iter():
            if _local(element.tag) not in ("VirtualSystem", "VirtualSystemCollection"):
                continue
            for value in self.property_values(element):
                key = value.declaration.key
                if key in values and values[key] != value.value:
                    ambiguous.add(key)
                values[key] = value.value
        return {k: v for k, v in values.items() if k not in ambiguous}

    def text(self, scope: _Scope, value: str | None, where: str) -> str | None:
        return None if value is None else props.resolve_macros(value, scope.values, where)

    def number(self, scope: _Scope, element: Element, name: str, default: int,
               where: str) -> int:
        """A whole-number attribute (macros resolved), or `default` when absent."""
        raw = self.text(scope, _attr(element, name), f"{where} ovf:{name}")
        return default if raw is None else _integer(raw, f"{where} ovf:{name}")

    # -- envelope-level sections

    def files(self) -> tuple[FileReference, ...]:
        files: list[FileReference] = []
        for references in _children(self.root, "References"):
            for element in _children(references, "File"):
                file_id, href = _attr(element, "id"), _attr(element, "href")
                if not file_id or not href:
                    raise OvfError(f"{self.source}: References/File needs ovf:id and ovf:href")
                if _attr(element, "chunkSize"):
                    raise OvfError(f"{self.source}: file {href!r} is chunked (ovf:chunkSize); "
                                   "chunked files are not supported")
                size = _attr(element, "size")
                files.append(FileReference(
                    id=file_id, href=href,
                    size=_integer(size, f"{self.source}: File {file_id} ovf:size")
                    if size else None,
                    compression=_attr(element, "compression")))
        return tuple(files)

    def disks(self, scope: _Scope) -> tuple[VirtualDisk, ...]:
        disks: list[VirtualDisk] = []
        for section in _children(self.root, "DiskSection"):
            for element in _children(section, "Disk"):
                if not scope.applies(element):
                    continue
                disk_id = _attr(element, "diskId")
                where = f"{self.source}: Disk {disk_id}"
                capacity = self.text(scope, _attr(element, "capacity"), f"{where} ovf:capacity")
                if not disk_id or capacity is None:
                    raise OvfError(f"{self.source}: DiskSection/Disk needs ovf:diskId and "
                                   "ovf:capacity")
                populated = _attr(element, "populatedSize")
                disks.append(VirtualDisk(
                    id=disk_id,
                    capacity_bytes=to_bytes(capacity, _attr(element, "capacityAllocationUnits"),
                                            "byte", f"{where} ovf:capacity"),
                    file_id=_attr(element, "fileRef"),
                    format=_attr(element, "format"),
                    populated_size=_integer(populated, f"{where} ovf:populatedSize")
                    if populated else None))
        return tuple(disks)

    def networks(self) -> tuple[str, ...]:
        return tuple(name for section in _children(self.root, "NetworkSection")
                     for element in _children(section, "Network")
                     if (name := _attr(element, "name")))

    # -- entities

    def entity(self, element: Element, scope: _Scope) -> Entity:
        entity_id = _attr(element, "id")
        kind = _local(element.tag)
        if not entity_id:
            raise OvfError(f"{self.source}: a {kind} has no ovf:id")
        if entity_id in self.entity_ids:
            raise OvfError(f"{self.source}: ovf:id {entity_id!r} is used by two entities")
        self.entity_ids.add(entity_id)
        values = self.property_values(element)
        inner = scope.nested({v.declaration.key: v.value for v in values})
        name = _child_text(element, "Name")
        if kind == "VirtualSystem":
            return VirtualSystem(id=entity_id, name=name,
                                 hardware=self.hardware(element, inner, entity_id),
                                 properties=values)
        children = tuple(self.entity(child, inner) for child in element
                         if _local(child.tag) in ("VirtualSystem", "VirtualSystemCollection"))
        if not children:
            raise OvfError(f"{self.source}: VirtualSystemCollection {entity_id!r} is empty")
        return VirtualSystemCollection(
            id=entity_id, name=name, children=children,
            startup=self.startup(element, inner, entity_id, {c.id for c in children}),
            scale_out=self.scale_out(element, inner, entity_id, children),
            properties=values)

    def startup(self, element: Element, scope: _Scope, entity_id: str,
                child_ids: set[str]) -> tuple[StartupEntry, ...]:
        entries: list[StartupEntry] = []
        for section in _children(element, "StartupSection"):
            for item in _children(section, "Item"):
                if not scope.applies(item):
                    continue
                target = _attr(item, "id") or ""
                where = f"{self.source}: StartupSection of {entity_id!r}, Item {target!r}"
                if target not in child_ids:
                    raise OvfError(f"{where}: names no VirtualSystem or collection in it "
                                   f"(children: {', '.join(sorted(child_ids))})")

                order = _attr(item, "order")
                if order is None:
                    raise OvfError(f"{where}: ovf:order is required")
                start_action = _attr(item, "startAction") or "powerOn"
                if start_action not in ("powerOn", "none"):
                    raise OvfError(f"{where}: ovf:startAction {start_action!r} is not powerOn "
                                   "or none")
                stop_action = _stop_action(_attr(item, "stopAction") or "powerOff")
                if stop_action is None:
                    raise OvfError(f"{where}: ovf:stopAction {_attr(item, 'stopAction')!r} is "
                                   f"not one of {', '.join(_STOP_ACTIONS)}")
                entries.append(StartupEntry(
                    entity_id=target, order=self.number(scope, item, "order", 0, where),
                    start_delay_seconds=self.number(scope, item, "startDelay", 0, where),
                    waiting_for_guest=_boolean(item, "waitingForGuest", False, where),
                    start_action=cast(StartAction, start_action),
                    stop_delay_seconds=self.number(scope, item, "stopDelay", 0, where),
                    stop_action=stop_action))
        return tuple(entries)

    def scale_out(self, element: Element, scope: _Scope, entity_id: str,
                  children: tuple[Entity, ...]) -> dict[str, InstanceCount]:
        counts: dict[str, InstanceCount] = {}
        systems = {c.id for c in children if isinstance(c, VirtualSystem)}
        for section in _children(element, "ScaleOutSection"):
            target = _attr(section, "id") or ""
            where = f"{self.source}: ScaleOutSection {target!r} of {entity_id!r}"
            if target not in systems:
                raise OvfError(f"{where}: names no VirtualSystem of the collection")
            for count in _children(section, "InstanceCount"):
                if not scope.applies(count):
                    continue
                default = self.number(scope, count, "default", 1, where)
                minimum = self.number(scope, count, "minimum", default, where)
                maximum = self.number(scope, count, "maximum", default, where)
                if not 0 <= minimum <= default <= maximum:
                    raise OvfError(f"{where}: InstanceCount must have minimum <= default <= "
                                   f"maximum, got {minimum}, {default}, {maximum}")
                counts[target] = InstanceCount(minimum=minimum, default=default,
                                               maximum=maximum)
        return counts

    def hardware(self, system: Element, scope: _Scope, system_id: str) -> Hardware:
        sections = [s for s in _children(system, "VirtualHardwareSection") if scope.applies(s)]
        if not sections:
            raise OvfError(f"{self.source}: VirtualSystem {system_id!r} has no "
                           "VirtualHardwareSection")
        items = [item for section in sections for item in section
                 if _local(item.tag) in ("Item", "StorageItem", "EthernetPortItem")
                 and scope.applies(item)]
        read = _HardwareItems(self, scope, system_id, items)
        firmware: Literal["BIOS", "EFI"] = "BIOS"
        for section in sections:
            for config in _children(section, "Config"):
                if (_attr(config, "key") == "firmware"
                        and (_attr(config, "value") or "").lower() == "efi"):
                    firmware = "EFI"
        cpus, cores = read.cpu()
        return Hardware(cpu_count=cpus, cores_per_socket=cores, memory_bytes=read.memory(),
                        disks=tuple(read.disks()), nics=tuple(read.nics()),
                        cdroms=tuple(read.cdroms()), firmware=firmware)


class _HardwareItems:
    """The RASD items of one VirtualSystem, read by ResourceType."""

    def __init__(self, reader: _Reader, scope: _Scope, system_id: str,
                 items: list[Element]) -> None:
        self.reader = reader
        self.scope = scope
        self.system_id = system_id
        self.items = items
        self.controllers: dict[str, DiskBus] = {}
        for item in items:
            resource = self.resource_type(item)
            instance = self.field(item, "InstanceID")
            if instance is None:
                continue
            if resource in _CONTROLLER_BUS:
                self.controllers[instance] = _CONTROLLER_BUS[resource]
            subtype = (self.field(item, "ResourceSubType") or "").lower()
            if resource in (SCSI, OTHER) and subtype in ("virtio", "virtio-blk", "virtioblk"):
                self.controllers[instance] = "virtio"

    def where(self, item: Element) -> str:
        name = self.field(item, "ElementName") or self.field(item, "InstanceID") or "?"
        return f"{self.reader.source}: VirtualSystem {self.system_id!r}, Item {name!r}"

    def field(self, item: Element, name: str) -> str | None:
        raw = _child_text(item, name)
        return self.reader.text(self.scope, raw, f"{self.reader.source}: {name}")

    def resource_type(self, item: Element) -> int | None:
        raw = self.field(item, "ResourceType")
        return None if raw is None else _integer(raw, f"{self.reader.source}: ResourceType")

    def of_type(self, *types: int) -> Iterator[Element]:
        return (item for item in self.items if self.resource_type(item) in types)

    def single(self, resource: int, what: str) -> Element:
        found = list(self.of_type(resource))
        option = f" in configuration {self.scope.configuration!r}" \
            if self.scope.configuration else ""
        if not found:
            raise OvfError(f"{self.reader.source}: VirtualSystem {self.system_id!r} has no "
                           f"{what} Item (ResourceType {resource}){option}")
        if len(found) > 1:
            names = ", ".join(self.field(i, "InstanceID") or "?" for i in found)
            raise OvfError(f"{self.reader.source}: VirtualSystem {self.system_id!r} has "
                           f"{len(found)} {what} Items{option} (InstanceID {names}); tag "
                           "each with ovf:configuration")
        return found[0]

    def cpu(self) -> tuple[int, int]:
        item = self.single(CPU, "CPU")
        where = self.where(item)
        count = _integer(self.field(item, "VirtualQuantity") or "1", f"{where} VirtualQuantity")
        cores_raw = self.field(item, "CoresPerSocket")
        cores = _integer(cores_raw, f"{where} CoresPerSocket") if cores_raw else 1
        if count < 1 or cores < 1 or count % cores:
            raise OvfError(f"{where}: {count} CPUs cannot be split into sockets of {cores} "
                           "cores (vmw:CoresPerSocket)")
        return count, cores

    def memory(self) -> int:
        item = self.single(MEMORY, "memory")
        where = self.where(item)
        units = self.field(item, "AllocationUnits") or self.field(item, "VirtualQuantityUnits")
        size = to_bytes(self.field(item, "VirtualQuantity") or "", units, "byte * 2^20",
                        f"{where} VirtualQuantity")
        if size <= 0:
            raise OvfError(f"{where}: memory must be more than 0")
        return size

    def host_resource(self, item: Element) -> tuple[str, str] | None:
        raw = self.field(item, "HostResource")
        if not raw:
            return None
        found = _HOST_RESOURCE.match(raw)
        if found is None:
            raise OvfError(f"{self.where(item)}: HostResource {raw!r} is not ovf:/disk/<id> "
                           "or ovf:/file/<id>")
        return found[1], found[2]

    def bus(self, item: Element) -> DiskBus:
        parent = self.field(item, "Parent")
        return self.controllers.get(parent or "", "virtio")

    def disks(self) -> Iterator[DiskAttachment]:
        for item in self.of_type(DISK):
            resource = self.host_resource(item)
            if resource is None:
                raise OvfError(f"{self.where(item)}: a disk Item needs a HostResource")
            kind, target = resource
            if kind != "disk":
                raise OvfError(f"{self.where(item)}: HostResource {kind}/{target}: a disk "
                               "must name a DiskSection disk (ovf:/disk/<id>)")
            if self.reader.envelope_disk_ids is not None and \
                    target not in self.reader.envelope_disk_ids:
                raise OvfError(f"{self.where(item)}: HostResource names disk {target!r}, "
                               "which the DiskSection does not declare")
            yield DiskAttachment(disk_id=target, bus=self.bus(item),
                                 element_name=self.field(item, "ElementName"))

    def cdroms(self) -> Iterator[CdRom]:
        for item in self.of_type(CD, DVD):
            resource = self.host_resource(item)
            yield CdRom(file_id=resource[1] if resource and resource[0] == "file" else None,
                        bus=self.bus(item))

    def nics(self) -> Iterator[Nic]:
        for item in self.of_type(ETHERNET):
            yield Nic(network=self.field(item, "Connection"),
                      model=self.field(item, "ResourceSubType"),
                      mac_address=self.field(item, "Address"),
                      element_name=self.field(item, "ElementName"))


def _stop_action(raw: str) -> StopAction | None:
    return next((action for action in _STOP_ACTIONS if action == raw), None)


def _integer(raw: str, where: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise OvfError(f"{where}: {raw!r} is not a whole number") from None


def _boolean(element: Element, name: str, default: bool, where: str) -> bool:
    raw = _attr(element, name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false", "1", "0"):
        raise OvfError(f"{where}: ovf:{name} {raw!r} is not true or false")
    return raw.lower() in ("true", "1")


# --------------------------------------------------------------------------- entry point


def read_envelope(text: str | bytes, source: str, *, deployment_option: str | None = None,
                  overrides: Mapping[str, str] | None = None) -> Envelope:
    """The descriptor `text` (named `source` in errors) read for one deployment option,
    with the user's property values (`--property`) checked and applied."""
    root = parse_xml(text, source)
    version: Literal["1", "2"] = "2" if _namespace(root.tag) == OVF_2 else "1"
    configuration = choose_deployment_option(root, deployment_option)
    reader = _Reader(root, source, configuration, overrides or {})
    props.check_overrides(reader.all_declarations(), reader.overrides)
    top = [c for c in root if _local(c.tag) in ("VirtualSystem", "VirtualSystemCollection")]
    if len(top) != 1:
        raise OvfError(f"{source}: the Envelope must hold exactly one VirtualSystem or "
                       f"VirtualSystemCollection, found {len(top)}")
    global_scope = _Scope(configuration, reader.global_values())
    disks = reader.disks(global_scope)
    reader.envelope_disk_ids = {d.id for d in disks}
    files = reader.files()
    for disk in disks:
        if disk.file_id is not None and not any(f.id == disk.file_id for f in files):
            raise OvfError(f"{source}: Disk {disk.id} names ovf:fileRef {disk.file_id!r}, "
                           "which References does not list")
    content = reader.entity(top[0], global_scope)
    return Envelope(version=version, files=files, disks=disks, networks=reader.networks(),
                    deployment_option=configuration, content=content)
