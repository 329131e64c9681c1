"""The example VMs' specs as the operator parses them: a VM naming a template (examples/
04-template.yaml) gets the template's vmDefaults and boot disk first, as
controllers/virtualmachine/template_merge.py merges them once the template is Ready."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controllers.virtualmachine.models import VirtualMachineSpec
from controllers.virtualmachine.template_merge import TemplateView, merged_spec
from controllers.virtualmachinetemplate.models import VirtualMachineTemplateSpec


def example_vm_spec(
    vm: Mapping[str, Any], documents: Iterable[Mapping[str, Any]]
) -> VirtualMachineSpec:
    """The VM's spec, its template (one of `documents`) merged in when it names one."""
    raw: Mapping[str, Any] = vm["spec"]
    name = raw.get("templateName")
    if name:
        template = next(doc for doc in documents if doc.get("kind") == "VirtualMachineTemplate"
                        and doc["metadata"]["name"] == name)
        spec = VirtualMachineTemplateSpec.model_validate(template["spec"])
        ready = TemplateView(spec=spec, phase="Ready", data_source_name=name, size=spec.size)
        raw = merged_spec(raw, ready)
    return VirtualMachineSpec.model_validate(raw)
