"""OVF descriptors the tests write themselves: small builders of DSP0243 XML.

`system()` is one VirtualSystem's XML, `collection()` a VirtualSystemCollection around
entities, `envelope()` the document. OVF 2.0 variants use StorageItem / EthernetPortItem.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

OVF1 = "http://schemas.dmtf.org/ovf/envelope/1"
OVF2 = "http://schemas.dmtf.org/ovf/envelope/2"
NAMESPACES = (
    'xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/'
    'CIM_ResourceAllocationSettingData" '
    'xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/'
    'CIM_VirtualSystemSettingData" '
    'xmlns:sasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/'
    'CIM_StorageAllocationSettingData" '
    'xmlns:epasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/'
    'CIM_EthernetPortAllocationSettingData" '
    'xmlns:vmw="http://www.vmware.com/schema/ovf" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


def item(resource_type: int, instance: str, *, name: str = "", config: str | None = None,
         **fields: str) -> str:
    attrs = f' ovf:configuration="{config}"' if config else ""
    body = "".join(f"<rasd:{k}>{v}</rasd:{k}>" for k, v in fields.items())
    return (f"<Item{attrs}><rasd:ElementName>{name or instance}</rasd:ElementName>"
            f"<rasd:InstanceID>{instance}</rasd:InstanceID>"
            f"<rasd:ResourceType>{resource_type}</rasd:ResourceType>{body}</Item>")


def cpu(count: int, *, cores: int | None = None, config: str | None = None,
        instance: str = "1") -> str:
    extra = f'<vmw:CoresPerSocket ovf:required="false">{cores}</vmw:CoresPerSocket>' \
        if cores else ""
    return item(3, instance, config=config, VirtualQuantity=str(count),
                AllocationUnits="hertz * 10^6").replace("</Item>", f"{extra}</Item>")


def memory(amount: int, units: str = "byte * 2^20", *, config: str | None = None,
           instance: str = "2") -> str:
    return item(4, instance, config=config, AllocationUnits=units, VirtualQuantity=str(amount))


def scsi(instance: str = "3") -> str:
    return item(6, instance, name="SCSI controller 0", ResourceSubType="lsilogic")


def ide(instance: str = "4") -> str:
    return item(5, instance, name="IDE 0")


def disk(disk_id: str, parent: str = "3", instance: str = "10", slot: str = "0") -> str:
    return item(17, instance, name=f"Hard disk {disk_id}", Parent=parent,
                HostResource=f"ovf:/disk/{disk_id}", AddressOnParent=slot)


def nic(network: str, instance: str = "20", model: str = "VmxNet3", mac: str = "") -> str:
    fields = {"Connection": network, "ResourceSubType": model, "AutomaticAllocation": "true"}
    if mac:
        fields["Address"] = mac
    return item(10, instance, name=f"Network adapter {instance}", **fields)


def cdrom(parent: str = "4", instance: str = "30") -> str:
    return item(15, instance, name="CD/DVD drive 1", Parent=parent)


def system(system_id: str, *items: str, product: str = "", extra: str = "") -> str:
    return (f'<VirtualSystem ovf:id="{system_id}"><Info>A virtual machine</Info>'
            f"<Name>{system_id}</Name>{product}"
            '<VirtualHardwareSection><Info>Virtual hardware</Info>'
            '<System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName>'
            '<vssd:InstanceID>0</vssd:InstanceID>'
            '<vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType></System>'
            f'{"".join(items)}{extra}</VirtualHardwareSection></VirtualSystem>')


def simple_system(system_id: str, disk_id: str | None = "disk1", network: str = "VM Network",
                  **options: str) -> str:
    items = [cpu(2), memory(2048), scsi()]
    if disk_id:
        items.append(disk(disk_id))
    items.append(nic(network))
    return system(system_id, *items, **options)


def startup_item(entity: str, order: int, **attrs: str) -> str:
    rendered = "".join(f' ovf:{k}="{v}"' for k, v in attrs.items())
    return f'<Item ovf:id="{entity}" ovf:order="{order}"{rendered}/>'


def collection(collection_id: str, *children: str, startup: list[str] | None = None,
               product: str = "", scale_out: str = "") -> str:
    section = ("<StartupSection><Info>Start order</Info>" + "".join(startup) +
               "</StartupSection>") if startup else ""
    return (f'<VirtualSystemCollection ovf:id="{collection_id}"><Info>A vApp</Info>'
            f"<Name>{collection_id}</Name>{product}{section}{scale_out}"
            f'{"".join(children)}</VirtualSystemCollection>')


def product(*properties: str, product_class: str | None = None) -> str:
    attr = f' ovf:class="{product_class}"' if product_class else ""
    return (f"<ProductSection{attr}><Info>Properties</Info><Product>App</Product>"
            f'{"".join(properties)}</ProductSection>')


def prop(key: str, type_: str = "string", value: str | None = None, *,
         configurable: bool = True, password: bool = False, qualifiers: str = "") -> str:
    attrs = f' ovf:key="{key}" ovf:type="{type_}"'
    if value is not None:
        attrs += f' ovf:value="{value}"'
    attrs += f' ovf:userConfigurable="{str(configurable).lower()}"'
    if password:
        attrs += ' ovf:password="true"'
    if qualifiers:
        attrs += f" ovf:qualifiers='{qualifiers}'"
    return f"<Property{attrs}><Label>{key}</Label></Property>"


def envelope(content: str, *, files: dict[str, str] | None = None,
             disks: list[str] | None = None, networks: tuple[str, ...] = ("VM Network",),
             namespace: str = OVF1, options: str = "") -> str:
    references = "".join(f'<File ovf:id="{file_id}" ovf:href="{href}"/>'
                         for file_id, href in (files or {}).items())
    disk_section = ("<DiskSection><Info>Disks</Info>" + "".join(disks) +
                    "</DiskSection>") if disks else ""
    network_section = ("<NetworkSection><Info>Networks</Info>" +
                       "".join(f'<Network ovf:name="{n}"><Description>{n}</Description>'
                               "</Network>" for n in networks) +
                       "</NetworkSection>") if networks else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Envelope xmlns="{namespace}" '
            f'xmlns:ovf="{namespace}" {NAMESPACES}><References>{references}</References>'
            f"{disk_section}{network_section}{options}{content}</Envelope>\n")


def disk_entry(disk_id: str, capacity: str = "10", units: str = "byte * 2^30",
               file_ref: str | None = None) -> str:
    ref = f' ovf:fileRef="{file_ref}"' if file_ref else ""
    return (f'<Disk ovf:diskId="{disk_id}" ovf:capacity="{capacity}" '
            f'ovf:capacityAllocationUnits="{units}"{ref} ovf:format='
            '"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>')


def single_vm(system_id: str = "web", image: str = "web-disk1.vmdk") -> str:
    return envelope(simple_system(system_id), files={"file1": image},
                    disks=[disk_entry("disk1", file_ref="file1")])


def write_ova(path: Path, descriptor: str, files: dict[str, bytes], *,
              manifest: bool = True, algorithm: str = "SHA256",
              corrupt: str | None = None) -> Path:
    """An OVA: the .ovf first, then the manifest, then the files (`corrupt` names a file
    whose manifest sum is wrong)."""
    members: list[tuple[str, bytes]] = [(path.with_suffix(".ovf").name, descriptor.encode())]
    if manifest:
        lines = []
        for name, data in members + list(files.items()):
            digest = hashlib.new(algorithm.lower(), data).hexdigest()
            if name == corrupt:
                digest = "0" * len(digest)
            lines.append(f"{algorithm}({name})= {digest}\n")
        members.append((path.with_suffix(".mf").name, "".join(lines).encode()))
    members.extend(files.items())
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path
