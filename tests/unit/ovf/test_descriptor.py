"""The OVF reader on descriptors the tests write: hardware, versions, sections, bad XML."""

from __future__ import annotations

import pytest

from controllers.ovf.descriptor import read_envelope
from controllers.ovf.errors import OvfError
from controllers.ovf.model import VirtualSystem, VirtualSystemCollection

from . import descriptors as d


def _system(text: str, **kwargs: object) -> VirtualSystem:
    content = read_envelope(text, "test.ovf", **kwargs).content  # type: ignore[arg-type]
    assert isinstance(content, VirtualSystem)
    return content


def test_single_vm_hardware() -> None:
    system = d.system("db", d.cpu(4, cores=2), d.memory(8, "byte * 2^30"), d.scsi(),
                      d.ide(), d.disk("disk1", parent="3"), d.disk("disk2", parent="4",
                                                                  instance="11"),
                      d.nic("VM Network", mac="00:50:56:01:02:03"),
                      d.nic("backend", instance="21", model="E1000"), d.cdrom(),
                      extra='<vmw:Config ovf:required="false" vmw:key="firmware" '
                            'vmw:value="efi"/>')
    text = d.envelope(system, files={"f1": "db-1.vmdk"},
                      disks=[d.disk_entry("disk1", "20", file_ref="f1"),
                             d.disk_entry("disk2", "512", "byte * 2^20")],
                      networks=("VM Network", "backend"))
    envelope = read_envelope(text, "db.ovf")
    hardware = _system(text).hardware
    assert (hardware.cpu_count, hardware.cores_per_socket) == (4, 2)
    assert hardware.memory_bytes == 8 * 2**30
    assert [(a.disk_id, a.bus) for a in hardware.disks] == [("disk1", "scsi"),
                                                           ("disk2", "sata")]
    assert [(n.network, n.model, n.mac_address) for n in hardware.nics] == [
        ("VM Network", "VmxNet3", "00:50:56:01:02:03"), ("backend", "E1000", None)]
    assert len(hardware.cdroms) == 1
    assert hardware.firmware == "EFI"
    assert [(x.id, x.capacity_bytes, x.file_id) for x in envelope.disks] == [
        ("disk1", 20 * 2**30, "f1"), ("disk2", 512 * 2**20, None)]
    assert envelope.version == "1"
    assert envelope.networks == ("VM Network", "backend")


@pytest.mark.parametrize(("units", "amount", "expected"), [
    ("MegaBytes", 1024, 2**30),  # VirtualBox
    ("byte * 2^20", 512, 512 * 2**20),
    ("byte*2^30", 2, 2 * 2**30),
    ("GigaBytes", 4, 4 * 2**30),
    ("byte * 1024", 1048576, 2**30),
])
def test_memory_allocation_units(units: str, amount: int, expected: int) -> None:
    text = d.envelope(d.system("vm", d.cpu(1), d.memory(amount, units)), networks=())
    assert _system(text).hardware.memory_bytes == expected


def test_ovf_2_storage_and_ethernet_port_items() -> None:
    storage = ('<StorageItem><sasd:ElementName>disk</sasd:ElementName>'
               '<sasd:HostResource>ovf:/disk/vmdisk</sasd:HostResource>'
               '<sasd:InstanceID>9</sasd:InstanceID><sasd:Parent>3</sasd:Parent>'
               '<sasd:ResourceType>17</sasd:ResourceType></StorageItem>')
    ethernet = ('<EthernetPortItem><epasd:Address>00:16:3e:00:00:01</epasd:Address>'
                '<epasd:Connection>frontend</epasd:Connection>'
                '<epasd:ElementName>eth0</epasd:ElementName>'
                '<epasd:InstanceID>12</epasd:InstanceID>'
                '<epasd:ResourceSubType>virtio</epasd:ResourceSubType>'
                '<epasd:ResourceType>10</epasd:ResourceType></EthernetPortItem>')
    text = d.envelope(d.system("vm", d.cpu(2), d.memory(1024), d.scsi(), storage, ethernet),
                      files={"f": "vm.qcow2"}, disks=[d.disk_entry("vmdisk", file_ref="f")],
                      networks=("frontend",), namespace=d.OVF2)
    envelope = read_envelope(text, "vm.ovf")
    assert envelope.version == "2"
    hardware = _system(text).hardware
    assert [(a.disk_id, a.bus) for a in hardware.disks] == [("vmdisk", "scsi")]
    assert [(n.network, n.model, n.mac_address) for n in hardware.nics] == [
        ("frontend", "virtio", "00:16:3e:00:00:01")]


def test_deployment_options_pick_their_items() -> None:
    options = ('<DeploymentOptionSection><Info>Sizes</Info>'
               '<Configuration ovf:id="small"><Label>Small</Label></Configuration>'
               '<Configuration ovf:id="large" ovf:default="true"><Label>Large</Label>'
               '</Configuration></DeploymentOptionSection>')
    system = d.system("vm", d.cpu(1, config="small"), d.cpu(8, config="large", instance="5"),
                      d.memory(1024, config="small"), d.memory(16384, config="large",
                                                               instance="6"),
                      d.nic("VM Network"),
                      d.nic("VM Network", instance="21").replace(
                          "<Item>", '<Item ovf:configuration="large">'))
    text = d.envelope(system, options=options)
    default = _system(text).hardware
    assert (default.cpu_count, default.memory_bytes, len(default.nics)) == (8, 16 * 2**30, 2)
    small = _system(text, deployment_option="small").hardware
    assert (small.cpu_count, small.memory_bytes, len(small.nics)) == (1, 2**30, 1)
    with pytest.raises(OvfError, match=r"--deployment-option huge: no such configuration "
                                       r"\(small, large\)"):
        read_envelope(text, "vm.ovf", deployment_option="huge")


def test_nested_collections_keep_their_startup_and_scale_out() -> None:
    web = d.simple_system("web", disk_id=None)
    app = d.simple_system("app", disk_id=None)
    db = d.simple_system("db", disk_id=None)
    scale = ('<ScaleOutSection ovf:id="web"><Info>Web tier</Info><Description>x</Description>'
             '<InstanceCount ovf:default="2" ovf:minimum="1" ovf:maximum="4"/>'
             '</ScaleOutSection>')
    front = d.collection("front", web, app, scale_out=scale,
                         startup=[d.startup_item("app", 1), d.startup_item("web", 2)])
    text = d.envelope(d.collection("shop", db, front, startup=[
        d.startup_item("db", 1, startDelay="30", waitingForGuest="true",
                       stopAction="guestShutdown", stopDelay="10"),
        d.startup_item("front", 2)]))
    content = read_envelope(text, "shop.ovf").content
    assert isinstance(content, VirtualSystemCollection)
    assert [c.id for c in content.children] == ["db", "front"]
    db_entry = content.startup[0]
    assert (db_entry.order, db_entry.start_delay_seconds, db_entry.waiting_for_guest,
            db_entry.stop_action, db_entry.stop_delay_seconds) == (1, 30, True,
                                                                   "guestShutdown", 10)
    inner = content.children[1]
    assert isinstance(inner, VirtualSystemCollection)
    assert inner.scale_out["web"].maximum == 4


def test_properties_and_macros() -> None:
    section = d.product(d.prop("disk.size", "uint16", "20"), d.prop("ip", "string", "10.0.0.5"),
                        d.prop("debug", "boolean", "false"),
                        d.prop("secret", "string", "", password=True))
    text = d.envelope(d.system("vm", d.cpu(1), d.memory(1024), d.scsi(), d.disk("disk1"),
                               product=section),
                      disks=[d.disk_entry("disk1", "${disk.size}")], networks=())
    assert read_envelope(text, "vm.ovf").disks[0].capacity_bytes == 20 * 2**30
    changed = read_envelope(text, "vm.ovf", overrides={"disk.size": "40", "debug": "true"})
    assert changed.disks[0].capacity_bytes == 40 * 2**30
    system = changed.content
    assert isinstance(system, VirtualSystem)
    values = {v.declaration.key: (v.value, v.declaration.password) for v in system.properties}
    assert values == {"disk.size": ("40", False), "ip": ("10.0.0.5", False),
                      "debug": ("true", False), "secret": ("", True)}


def test_property_class_and_qualifiers() -> None:
    section = d.product(d.prop("tier", "string", "gold", qualifiers='ValueMap{"gold","silver"}'),
                        product_class="org.shop")
    text = d.envelope(d.system("vm", d.cpu(1), d.memory(1024), product=section), networks=())
    system = _system(text, overrides={"org.shop.tier": "silver"})
    assert [(v.declaration.key, v.value) for v in system.properties] == [
        ("org.shop.tier", "silver")]
    with pytest.raises(OvfError, match=r"--property org.shop.tier: 'bronze' is not one of "
                                       r"ValueMap \{gold, silver\}"):
        read_envelope(text, "vm.ovf", overrides={"org.shop.tier": "bronze"})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"nope": "1"}, r"--property nope: the descriptor has no property 'nope' \(its properties: "
                    r"count, fixed\)"),
    ({"count": "many"}, r"--property count: expected an integer \(uint8\), got 'many'"),
    ({"count": "300"}, r"--property count: 300 is out of range for uint8 \(0..255\)"),
    ({"fixed": "x"}, r"--property fixed: the property is not userConfigurable"),
])
def test_bad_property_values_are_refused(overrides: dict[str, str], message: str) -> None:
    section = d.product(d.prop("count", "uint8", "3"),
                        d.prop("fixed", "string", "a", configurable=False))
    text = d.envelope(d.system("vm", d.cpu(1), d.memory(1024), product=section), networks=())
    with pytest.raises(OvfError, match=message):
        read_envelope(text, "vm.ovf", overrides=overrides)


def test_ovf_09_is_refused_saying_so() -> None:
    text = d.envelope(d.simple_system("vm", disk_id=None),
                      namespace="http://www.vmware.com/schema/ovf/1/envelope")
    with pytest.raises(OvfError, match=r"vm.ovf: OVF 0.9 \(namespace http://www.vmware.com/"
                                       r"schema/ovf/1/envelope\) is the pre-standard"):
        read_envelope(text, "vm.ovf")


def test_xml_that_does_not_parse_names_the_line() -> None:
    text = d.single_vm().replace("</VirtualHardwareSection>", "</VirtualHardware>")
    line = text[:text.index("</VirtualHardware>")].count("\n") + 1
    with pytest.raises(OvfError, match=rf"web.ovf: the XML does not parse at line {line}"):
        read_envelope(text, "web.ovf")


def test_entity_expansion_is_refused() -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE Envelope [<!ENTITY a "aaaa">]>'
            f'<Envelope xmlns="{d.OVF1}">&a;</Envelope>')
    with pytest.raises(OvfError, match="refused unsafe XML"):
        read_envelope(bomb, "bomb.ovf")


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.replace('ovf:fileRef="file1"', 'ovf:fileRef="nofile"'),
     r"Disk disk1 names ovf:fileRef 'nofile', which References does not list"),
    (lambda t: t.replace("ovf:/disk/disk1", "ovf:/disk/other"),
     r"HostResource names disk 'other', which the DiskSection does not declare"),
    (lambda t: t.replace("<rasd:VirtualQuantity>2</rasd:VirtualQuantity>",
                         "<rasd:VirtualQuantity>two</rasd:VirtualQuantity>", 1),
     r"Item '1' VirtualQuantity: 'two' is not a whole number"),
    (lambda t: t.replace("byte * 2^20", "parsecs"),
     r"unknown allocation units 'parsecs'"),
])
def test_inconsistent_descriptors_are_refused(change: object, message: str) -> None:
    text = change(d.single_vm())  # type: ignore[operator]
    with pytest.raises(OvfError, match=message):
        read_envelope(text, "web.ovf")


def test_macros_resolve_in_hardware_and_startup_from_the_enclosing_collection() -> None:
    vm = d.system("vm", d.cpu(1).replace("<rasd:VirtualQuantity>1<", "<rasd:VirtualQuantity>"
                                         "${cpus}<"), d.memory(1024))
    text = d.envelope(d.collection("app", vm, product=d.product(
        d.prop("cpus", "uint8", "4"), d.prop("delay", "uint16", "15")),
        startup=[d.startup_item("vm", 1, startDelay="${delay}")]))
    content = read_envelope(text, "app.ovf", overrides={"cpus": "6"}).content
    assert isinstance(content, VirtualSystemCollection)
    system = content.children[0]
    assert isinstance(system, VirtualSystem)
    assert system.hardware.cpu_count == 6
    assert content.startup[0].start_delay_seconds == 15
    with pytest.raises(OvfError, match=r"\$\{nope\} names no property"):
        read_envelope(text.replace("${delay}", "${nope}"), "app.ovf")


def test_virtualbox_style_descriptor() -> None:
    # VirtualBox: /disk/ID host resources, MegaBytes, a SATA (AHCI) controller, no vmw:.
    items = [d.cpu(2), d.memory(2048, "MegaBytes"),
             d.item(20, "5", name="sataController0", ResourceSubType="AHCI"),
             d.item(17, "6", name="disk1", Parent="5", HostResource="/disk/vmdisk1"),
             d.nic("NAT", instance="7", model="E1000")]
    text = d.envelope(d.system("vbox", *items), files={"file1": "vbox-disk001.vmdk"},
                      disks=[d.disk_entry("vmdisk1", "8", file_ref="file1")], networks=("NAT",))
    hardware = _system(text).hardware
    assert hardware.memory_bytes == 2 * 2**30
    assert [(a.disk_id, a.bus) for a in hardware.disks] == [("vmdisk1", "sata")]


def test_scale_out_in_the_ovf2_namespace_inside_a_1x_envelope() -> None:
    scale = ('<ovf2:ScaleOutSection xmlns:ovf2="http://schemas.dmtf.org/ovf/envelope/2" '
             'ovf2:id="web"><Info>x</Info><ovf2:InstanceCount ovf2:default="3" '
             'ovf2:minimum="2" ovf2:maximum="6"/></ovf2:ScaleOutSection>')
    text = d.envelope(d.collection("app", d.simple_system("web", disk_id=None),
                                   scale_out=scale))
    content = read_envelope(text, "app.ovf").content
    assert isinstance(content, VirtualSystemCollection)
    count = content.scale_out["web"]
    assert (count.minimum, count.default, count.maximum) == (2, 3, 6)
