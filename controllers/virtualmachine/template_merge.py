"""A VM made from a VirtualMachineTemplate: the template's defaults merged in (pure, no I/O).

`resolve_template` runs before the spec is parsed and the builders run: with
`spec.templateName`, the VM's own fields win and the template's `vmDefaults` fill what it
leaves out (cpu, memory and firmware whole; disks by name, field by field; networks as a
list). The template's image becomes the boot disk: a DataVolume cloned from the template's
DataSource (`sourceRef`), on the template's StoragePolicy unless the VM says otherwise, so a
linked clone is on the storage that can make it copy-on-write. A VM naming a template that
is missing or not Ready yet waits: `TemplateWait` says why, naming the field.

`clone_status` reads back which clone strategy CDI used (`cdi.kubevirt.io/cloneType` on the
boot disk's DataVolume), so a "linked" clone that fell back to a full copy is visible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from controllers.common.conditions import Condition, mark_false
from controllers.virtualmachinetemplate.models import VirtualMachineTemplateSpec
from kubekit.quantity import QuantityError, to_bytes

#: CDI writes the strategy it chose on the target claim and copies it to the DataVolume; a
#: claim that already carries it is cloned that way (clone-populator getSavedCloneStrategy).
CLONE_TYPE_ANNOTATION: Final = "cdi.kubevirt.io/cloneType"
#: Why CDI fell back to a host-assisted copy (on the claim; clone-populator.go).
CLONE_FALLBACK_ANNOTATION: Final = "cdi.kubevirt.io/cloneFallbackReason"
#: CDI's name of the host-assisted (full copy) strategy.
FULL_COPY_STRATEGY: Final = "copy"

_WHOLE_FIELDS: Final = ("cpu", "memory", "firmware")


@dataclass(frozen=True)
class TemplateView:
    """What a VM reads of its template: the parsed spec and where its image is published."""

    spec: VirtualMachineTemplateSpec | None
    phase: str | None
    data_source_name: str | None
    size: str | None
    ready_message: str = ""


@dataclass(frozen=True)
class TemplateWait:
    """The VM cannot be built yet (or at all) from its template: reason and message."""

    reason: str
    message: str


def template_view(body: Mapping[str, Any], spec: VirtualMachineTemplateSpec | None) -> TemplateView:
    """The view of a template object as the cache holds it."""
    status = body.get("status") or {}
    ready: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    return TemplateView(
        spec=spec,
        phase=status.get("phase"),
        data_source_name=status.get("dataSourceName"),
        size=status.get("size") or (spec.size if spec is not None else None),
        ready_message=str(ready.get("message") or ""),
    )


def boot_disk_name(template: TemplateView) -> str | None:
    return template.spec.vm_defaults.boot_disk.name if template.spec is not None else None


def _template_disks(template: TemplateView) -> list[dict[str, Any]]:
    assert template.spec is not None and template.data_source_name and template.size
    defaults = template.spec.vm_defaults
    boot: dict[str, Any] = {
        "name": defaults.boot_disk.name,
        "size": template.size,
        "bus": defaults.boot_disk.bus,
        "bootOrder": 1,
        "source": {"dataSource": {"name": template.data_source_name}},
    }
    if template.spec.storage_policy_name:
        boot["storagePolicyName"] = template.spec.storage_policy_name
    return [boot, *(disk.to_api() for disk in defaults.disks)]


def merged_spec(vm_spec: Mapping[str, Any], template: TemplateView) -> dict[str, Any]:
    """The VM spec with the template's defaults filled in (the VM's own fields win).

    `template` must be Ready (a DataSource and a size): see `resolve_template`.
    """
    assert template.spec is not None
    defaults = template.spec.vm_defaults.to_api()
    merged: dict[str, Any] = dict(vm_spec)
    for name in _WHOLE_FIELDS:
        if merged.get(name) is None and defaults.get(name) is not None:
            merged[name] = defaults[name]
    if not merged.get("networks") and defaults.get("networks"):
        merged["networks"] = defaults["networks"]
    own = {str(disk.get("name")): disk for disk in vm_spec.get("disks") or []}
    disks = [{**disk, **own.pop(disk["name"], {})} for disk in _template_disks(template)]
    merged["disks"] = disks + [disk for disk in vm_spec.get("disks") or [] if disk["name"] in own]
    return merged


def _too_small(merged: Mapping[str, Any], template: TemplateView) -> TemplateWait | None:
    """A boot disk smaller than the image: CDI cannot clone into it."""
    name = boot_disk_name(template)
    for index, disk in enumerate(merged.get("disks") or []):
        if disk.get("name") != name or not template.size:
            continue
        try:
            smaller = to_bytes(str(disk.get("size"))) < to_bytes(template.size)
        except QuantityError:
            return None  # the spec's parse names the field
        if smaller:
            return TemplateWait(
                "InvalidSpec",
                f"spec.disks[{index}].size: {disk.get('size')} is smaller than the image of "
                f"template {template_name_of(merged)} ({template.size})",
            )
    return None


def template_name_of(vm_spec: Mapping[str, Any]) -> str:
    return str(vm_spec.get("templateName") or "")


def resolve_template(
    vm_spec: Mapping[str, Any], template: TemplateView | None
) -> dict[str, Any] | TemplateWait:
    """The spec to parse and build: merged with the template, or why the VM waits for it."""
    name = template_name_of(vm_spec)
    if not name:
        return dict(vm_spec)
    field = "spec.templateName"
    if template is None:
        return TemplateWait(
            "VirtualMachineTemplateNotFound",
            f'{field}: VirtualMachineTemplate "{name}" not found',
        )
    if template.spec is None:
        return TemplateWait(
            "VirtualMachineTemplateInvalid",
            f'{field}: VirtualMachineTemplate "{name}" has an invalid spec (see its status)',
        )
    if template.phase != "Ready" or not template.data_source_name or not template.size:
        detail = f": {template.ready_message}" if template.ready_message else ""
        return TemplateWait(
            "VirtualMachineTemplateNotReady",
            f'{field}: waiting for VirtualMachineTemplate "{name}" '
            f"({template.phase or 'not reconciled yet'}){detail}",
        )
    merged = merged_spec(vm_spec, template)
    return _too_small(merged, template) or merged


def waiting_conditions(
    conditions: list[Condition], wait: TemplateWait, generation: int, now: datetime
) -> list[Condition]:
    """ReferencesResolved and Ready False, naming the template (Ready listed last)."""
    conditions = mark_false(
        conditions, "ReferencesResolved", wait.reason, wait.message,
        observed_generation=generation, now=now,
    )
    conditions = mark_false(
        conditions, "Ready", wait.reason, wait.message, observed_generation=generation, now=now
    )
    return [c for c in conditions if c["type"] != "Ready"] + [
        c for c in conditions if c["type"] == "Ready"
    ]


def clone_annotations(clone_mode: str) -> dict[str, str]:
    """Annotations of a cloned disk's DataVolume: Full asks CDI for a host-assisted copy."""
    return {CLONE_TYPE_ANNOTATION: FULL_COPY_STRATEGY} if clone_mode == "Full" else {}


def clone_status(
    clone_mode: str,
    boot_data_volume: Mapping[str, Any] | None,
    boot_claim: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The VM status fields saying how the boot disk was cloned (once CDI says so)."""
    annotations = {
        **(((boot_claim or {}).get("metadata") or {}).get("annotations") or {}),
        **(((boot_data_volume or {}).get("metadata") or {}).get("annotations") or {}),
    }
    strategy = annotations.get(CLONE_TYPE_ANNOTATION)
    status: dict[str, Any] = {"cloneStrategy": strategy}
    if clone_mode == "Linked" and strategy == FULL_COPY_STRATEGY:
        status["cloneFallbackReason"] = str(
            annotations.get(CLONE_FALLBACK_ANNOTATION)
            or "CDI copied the image: the StorageProfile of the disk's StorageClass clones by "
            "copy (put the disk on the template's storage for a copy-on-write clone)"
        )
    else:
        status["cloneFallbackReason"] = None
    return status
