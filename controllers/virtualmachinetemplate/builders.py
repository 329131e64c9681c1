"""Building a VirtualMachineTemplate's CDI objects and reading them back (pure, no I/O).

- `build_image_data_volume`: the DataVolume the golden image is imported (or cloned) into.
- `build_data_source`: the cdi.kubevirt.io/v1beta1 DataSource publishing that volume; VMs
  clone it through a DataVolume `sourceRef`.
- `source_vm_disk`: the boot disk of a VM being published, or why it cannot be published.
- `template_readiness`: phase, progress and the Ready condition from the DataVolume and
  DataSource statuses, as CDI writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from controllers.storagepolicy.builders import PROVISIONING_ANNOTATION, ResolvedStoragePolicy
from controllers.virtualmachine.builders import CDI_API_VERSION, data_volume_name, label_value
from controllers.virtualmachinetemplate.models import TemplatePhase, VirtualMachineTemplateSpec

TEMPLATE_LABEL: Final = "vdcos.io/template"


def image_data_volume_name(template_name: str) -> str:
    """The DataVolume (and PVC) holding a template's image."""
    return f"vdcvmt-{template_name}"


def data_source_name(template_name: str) -> str:
    """The DataSource publishing a template's image: named after the template."""
    return template_name


@dataclass(frozen=True)
class SourceDisk:
    """The claim a published VM's boot disk lives in, and its size."""

    claim_name: str
    size: str


def source_vm_disk(vm_name: str, vdc_vm: Mapping[str, Any] | None) -> SourceDisk | str:
    """The boot disk of the VM named by spec.source.virtualMachineName, or why not.

    The VM must be PoweredOff both in its spec and as observed: a running guest writes to
    its disk while the copy is made.
    """
    field = "spec.source.virtualMachineName"
    if vdc_vm is None:
        return f'{field}: VirtualMachine "{vm_name}" not found'
    spec = vdc_vm.get("spec") or {}
    observed = (vdc_vm.get("status") or {}).get("powerState")
    if spec.get("powerState", "PoweredOn") != "PoweredOff" or observed != "PoweredOff":
        state = observed or spec.get("powerState", "PoweredOn")
        return (
            f'{field}: VirtualMachine "{vm_name}" is {state}; power it off '
            "(spec.powerState: PoweredOff) to publish it as a template"
        )
    disks = list(spec.get("disks") or [])
    if not disks:
        return f'{field}: VirtualMachine "{vm_name}" has no disks of its own to publish'
    booted = [disk for disk in disks if disk.get("bootOrder") is not None]
    boot = min(booted, key=lambda disk: int(disk["bootOrder"])) if booted else disks[0]
    return SourceDisk(data_volume_name(vm_name, str(boot["name"])), str(boot["size"]))


def build_image_data_volume(
    template_name: str,
    namespace: str,
    spec: VirtualMachineTemplateSpec,
    policy: ResolvedStoragePolicy,
    size: str,
    source_claim: str | None = None,
) -> dict[str, Any]:
    """The DataVolume of the template's image. `source_claim` is the published VM's claim."""
    source = spec.source
    cdi_source: dict[str, Any]
    if source_claim is not None:
        cdi_source = {"pvc": {"namespace": namespace, "name": source_claim}}
    elif source.http is not None:
        cdi_source = {"http": {"url": source.http.url}}
    elif source.registry is not None:
        cdi_source = {"registry": {"url": source.registry.url}}
    else:
        assert source.pvc is not None  # TemplateSource validates exactly one
        cdi_source = {"pvc": {"namespace": source.pvc.namespace or namespace,
                              "name": source.pvc.name}}
    return {
        "apiVersion": CDI_API_VERSION,
        "kind": "DataVolume",
        "metadata": {
            "name": image_data_volume_name(template_name),
            "namespace": namespace,
            "labels": {TEMPLATE_LABEL: label_value(template_name)},
            "annotations": {PROVISIONING_ANNOTATION: policy.provisioning},
        },
        "spec": {
            "source": cdi_source,
            "storage": {
                "storageClassName": policy.storage_class_name,
                "accessModes": [policy.access_mode],
                "volumeMode": policy.volume_mode,
                "resources": {"requests": {"storage": size}},
            },
            "preallocation": policy.preallocated,
        },
    }


def build_data_source(template_name: str, namespace: str) -> dict[str, Any]:
    """The DataSource publishing the image volume (CDI reports it Ready once imported)."""
    return {
        "apiVersion": CDI_API_VERSION,
        "kind": "DataSource",
        "metadata": {
            "name": data_source_name(template_name),
            "namespace": namespace,
            "labels": {TEMPLATE_LABEL: label_value(template_name)},
        },
        "spec": {
            "source": {
                "pvc": {"namespace": namespace, "name": image_data_volume_name(template_name)}
            }
        },
    }


@dataclass(frozen=True)
class Readiness:
    phase: TemplatePhase
    progress: str | None
    ready: bool
    reason: str
    message: str


def _condition(obj: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any]:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            found: Mapping[str, Any] = condition
            return found
    return {}


def template_readiness(
    data_volume: Mapping[str, Any] | None, data_source: Mapping[str, Any] | None
) -> Readiness:
    """Where the template's image is, from CDI's DataVolume and DataSource statuses."""
    dv_status = (data_volume or {}).get("status") or {}
    dv_phase = str(dv_status.get("phase") or "Pending")
    progress = dv_status.get("progress")
    progress = None if progress in (None, "N/A") else str(progress)
    if data_volume is None:
        return Readiness("Importing", None, False, "Importing", "creating the image DataVolume")
    if dv_phase == "Failed":
        running = _condition(data_volume, "Running")
        why = running.get("message") or running.get("reason") or "see its events"
        return Readiness(
            "Failed", progress, False, "ImportFailed",
            f"DataVolume {data_volume['metadata']['name']} failed: {why}",
        )
    if dv_phase != "Succeeded":
        return Readiness(
            "Importing", progress, False, "Importing",
            f"DataVolume {data_volume['metadata']['name']} is {dv_phase}"
            + (f" ({progress})" if progress else ""),
        )
    ready = _condition(data_source, "Ready")
    if ready.get("status") != "True":
        return Readiness(
            "Importing", "100.0%", False, "DataSourceNotReady",
            f"DataSource {data_source_name_of(data_source)} is not Ready yet: "
            + str(ready.get("message") or "no status"),
        )
    return Readiness(
        "Ready", "100.0%", True, "Ready",
        f"image imported; DataSource {data_source_name_of(data_source)} is Ready",
    )


def data_source_name_of(data_source: Mapping[str, Any] | None) -> str:
    return str(((data_source or {}).get("metadata") or {}).get("name") or "<not created>")
