"""The OVF environment document (ovf-env.xml) of one VM of a VirtualApp (pure, no I/O).

DSP0243 (OVF) section 11: an `Environment` in the http://schemas.dmtf.org/ovf/environment/1
namespace, its `oe:id` the VM, a PlatformSection saying who deploys it, a PropertySection with
the properties the VM sees (the app's, overridden by its member's), and one `Entity` per
sibling VM (its `oe:id` and its properties). The `iso` transport puts it on a CD-ROM as
ovf-env.xml; cloud-init's OVF datasource and VMware's tools read it from there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from xml.etree import ElementTree

from controllers.virtualapp.models import Property

ENVIRONMENT_NAMESPACE: Final = "http://schemas.dmtf.org/ovf/environment/1"
XSI_NAMESPACE: Final = "http://www.w3.org/2001/XMLSchema-instance"
#: The file name the `iso` transport and cloud-init's OVF datasource use.
OVF_ENV_FILE: Final = "ovf-env.xml"

PLATFORM_KIND: Final = "vdcos VirtualApp (KubeVirt)"
PLATFORM_VENDOR: Final = "vdcos"
PLATFORM_LOCALE: Final = "en"


@dataclass(frozen=True)
class EnvironmentEntity:
    """One VM as the document names it: its id (the VM's name) and the properties it sees."""

    id: str
    properties: Sequence[Property]


def effective_properties(
    app_properties: Sequence[Property], member_properties: Sequence[Property]
) -> list[Property]:
    """The app's properties with the member's values for the keys it sets, sorted by key."""
    merged = {p.key: p for p in app_properties}
    merged.update({p.key: p for p in member_properties})
    return [merged[key] for key in sorted(merged)]


def has_password(entities: Sequence[EnvironmentEntity]) -> bool:
    """Whether any property the document holds is a password (then it goes in a Secret)."""
    return any(p.password for entity in entities for p in entity.properties)


def _q(name: str) -> str:
    return f"{{{ENVIRONMENT_NAMESPACE}}}{name}"


def _property_section(parent: ElementTree.Element, properties: Sequence[Property]) -> None:
    section = ElementTree.SubElement(parent, _q("PropertySection"))
    for prop in properties:
        ElementTree.SubElement(
            section, _q("Property"), {_q("key"): prop.key, _q("value"): prop.value}
        )


def build_ovf_environment(
    vm: EnvironmentEntity,
    siblings: Sequence[EnvironmentEntity],
    *,
    platform_version: str,
) -> str:
    """The ovf-env.xml text for `vm`: its properties, and an Entity per sibling (not itself)."""
    ElementTree.register_namespace("oe", ENVIRONMENT_NAMESPACE)
    ElementTree.register_namespace("xsi", XSI_NAMESPACE)
    root = ElementTree.Element(_q("Environment"), {_q("id"): vm.id})
    platform = ElementTree.SubElement(root, _q("PlatformSection"))
    for tag, text in (
        ("Kind", PLATFORM_KIND),
        ("Version", platform_version),
        ("Vendor", PLATFORM_VENDOR),
        ("Locale", PLATFORM_LOCALE),
    ):
        ElementTree.SubElement(platform, _q(tag)).text = text
    _property_section(root, vm.properties)
    for sibling in sorted(siblings, key=lambda entity: entity.id):
        if sibling.id == vm.id:
            continue
        entity = ElementTree.SubElement(root, _q("Entity"), {_q("id"): sibling.id})
        _property_section(entity, sibling.properties)
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def document_digest(document: str) -> str:
    """A short digest of the document: part of the name of the object that holds it, so a
    changed document is a changed VM spec (and the running VM says RestartRequired)."""
    return hashlib.sha256(document.encode()).hexdigest()[:10]


def environment_object_name(vm_name: str, document: str) -> str:
    """`<vm>-ovf-env-<digest>`: the ConfigMap or Secret of this version of the document."""
    return f"{vm_name}-ovf-env-{document_digest(document)}"


def read_properties(document: str) -> dict[str, str]:
    """The VM's own properties in an ovf-env.xml (what a guest reads), key -> value."""
    root = ElementTree.fromstring(document)
    section = root.find(_q("PropertySection"))
    found: dict[str, str] = {}
    for prop in section if section is not None else []:
        found[prop.get(_q("key"), "")] = prop.get(_q("value"), "")
    return found


def read_entities(document: str) -> Mapping[str, dict[str, str]]:
    """Each sibling Entity's id -> its properties, as a guest reads them."""
    root = ElementTree.fromstring(document)
    entities: dict[str, dict[str, str]] = {}
    for entity in root.findall(_q("Entity")):
        section = entity.find(_q("PropertySection"))
        entities[entity.get(_q("id"), "")] = {
            prop.get(_q("key"), ""): prop.get(_q("value"), "")
            for prop in (section if section is not None else [])
        }
    return entities
