"""The slim copies of CDI DataVolumes, DataSources and claims the operator caches (its own).

The template controller reads its image volumes and DataSources; the VM controller reads
its disks' DataVolumes and claims for the clone strategy CDI chose (`cdi.kubevirt.io/
cloneType`) and why it fell back to a copy (`cdi.kubevirt.io/cloneFallbackReason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import kopf

from controllers.common.controller import CacheSpec
from controllers.virtualmachine.builders import VM_LABEL
from controllers.virtualmachinetemplate.builders import TEMPLATE_LABEL
from kubekit.resources import DATASOURCES, DATAVOLUMES, PVCS

Key = tuple[str, str]
#: Only the objects we made (a cluster may hold thousands of others).
OURS: Final = {TEMPLATE_LABEL: kopf.PRESENT}


def key_of(body: Mapping[str, Any]) -> Key:
    metadata = body.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name")))


def slim_cdi_object(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the controller reads of a DataVolume or DataSource: its phase and conditions."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    storage = (body.get("spec") or {}).get("storage") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "annotations": {
                key: value
                for key, value in (metadata.get("annotations") or {}).items()
                if key.startswith("cdi.kubevirt.io/clone")
            },
            "ownerReferences": list(metadata.get("ownerReferences") or []),
        },
        # A DataVolume's class and size, for the template's status.
        "spec": {
            "storageClassName": storage.get("storageClassName"),
            "size": ((storage.get("resources") or {}).get("requests") or {}).get("storage"),
        },
        "status": {
            key: status[key] for key in ("phase", "progress", "conditions") if key in status
        },
    }


TEMPLATE_DATA_VOLUMES: Final = CacheSpec[dict[str, Any]](
    "vdcos_template_datavolumes",
    DATAVOLUMES,
    lambda body: {key_of(body): slim_cdi_object(body)},
    labels=OURS,
)
TEMPLATE_DATA_SOURCES: Final = CacheSpec[dict[str, Any]](
    "vdcos_template_datasources",
    DATASOURCES,
    lambda body: {key_of(body): slim_cdi_object(body)},
    labels=OURS,
)


#: Our VMs' disks, by (namespace, DataVolume name): how CDI cloned each.
VM_DATA_VOLUMES: Final = CacheSpec[dict[str, Any]](
    "vdcos_vm_datavolumes",
    DATAVOLUMES,
    lambda body: {key_of(body): slim_cdi_object(body)},
    labels={VM_LABEL: kopf.PRESENT},
)
#: Our VMs' disk claims: CDI writes why a clone fell back to a copy on the claim only.
VM_CLAIMS: Final = CacheSpec[dict[str, Any]](
    "vdcos_vm_claims",
    PVCS,
    lambda body: {key_of(body): slim_cdi_object(body)},
    labels={VM_LABEL: kopf.PRESENT},
)
