"""Where kinds live in the REST API: the paths both the operator and the embedded
datacenter request, and the well-known kinds they both touch."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class ResourceRef:
    """Where a kind lives in the REST API."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name)}"
        if subresource:
            base += f"/{subresource}"
        return base


NODES = ResourceRef("", "v1", "nodes", False)
PODS = ResourceRef("", "v1", "pods")
EVENTS = ResourceRef("", "v1", "events")
NAMESPACES = ResourceRef("", "v1", "namespaces", False)
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases")
PVCS = ResourceRef("", "v1", "persistentvolumeclaims")
PVS = ResourceRef("", "v1", "persistentvolumes", False)
STORAGE_CLASSES = ResourceRef("storage.k8s.io", "v1", "storageclasses", False)
CRDS = ResourceRef("apiextensions.k8s.io", "v1", "customresourcedefinitions", False)
SECRETS = ResourceRef("", "v1", "secrets")
PRIORITY_CLASSES = ResourceRef("scheduling.k8s.io", "v1", "priorityclasses", False)
VMS = ResourceRef("kubevirt.io", "v1", "virtualmachines")
VMIS = ResourceRef("kubevirt.io", "v1", "virtualmachineinstances")
VMIMS = ResourceRef("kubevirt.io", "v1", "virtualmachineinstancemigrations")
VMIRS = ResourceRef("kubevirt.io", "v1", "virtualmachineinstancereplicasets")
KUBEVIRTS = ResourceRef("kubevirt.io", "v1", "kubevirts")
DATAVOLUMES = ResourceRef("cdi.kubevirt.io", "v1beta1", "datavolumes")
DATASOURCES = ResourceRef("cdi.kubevirt.io", "v1beta1", "datasources")
NADS = ResourceRef("k8s.cni.cncf.io", "v1", "network-attachment-definitions")
VMI_SUBRESOURCES = ResourceRef("subresources.kubevirt.io", "v1", "virtualmachineinstances")
