"""The ClusterRoles CDI's operator installs (`pkg/operator/resources/cluster/rbac.go`):
`cdi.kubevirt.io:admin|edit|view` aggregated into admin, edit and view (so a namespace
editor may create DataVolumes and UploadTokenRequests, as `vdcos import ovf` and virtctl
image-upload need), and `cdi.kubevirt.io:config-reader`, bound to every authenticated user,
which lets them read the CDIConfig (where the upload proxy's URL is published)."""

from __future__ import annotations

from typing import Any

from kubekit.resources import ResourceRef

CLUSTER_ROLES = ResourceRef("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
CLUSTER_ROLE_BINDINGS = ResourceRef("rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                                    namespaced=False)
_CDI_RESOURCES = ["datavolumes", "dataimportcrons", "datasources", "volumeimportsources",
                  "volumeuploadsources", "volumeclonesources"]
_LABELS = {"cdi.kubevirt.io": "", "app.kubernetes.io/component": "storage"}


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _role(name: str, rules: list[dict[str, Any]], aggregate_to: str = "") -> dict[str, Any]:
    labels = dict(_LABELS)
    if aggregate_to:
        labels[f"rbac.authorization.k8s.io/aggregate-to-{aggregate_to}"] = "true"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels}, "rules": rules}


def cdi_cluster_roles() -> list[tuple[ResourceRef, dict[str, Any]]]:
    edit = [_rule(["cdi.kubevirt.io"], _CDI_RESOURCES, ["*"]),
            _rule(["cdi.kubevirt.io"], ["datavolumes/source"], ["create"]),
            _rule(["upload.cdi.kubevirt.io"], ["uploadtokenrequests"], ["*"])]
    view = [_rule(["cdi.kubevirt.io"], ["cdiconfigs", "dataimportcrons", "datasources",
                                        "datavolumes", "objecttransfers", "storageprofiles",
                                        "volumeimportsources", "volumeuploadsources",
                                        "volumeclonesources"], ["get", "list", "watch"])]
    reader = "cdi.kubevirt.io:config-reader"
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": reader, "labels": dict(_LABELS)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": reader},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                      "name": "system:authenticated"}]}
    return [
        (CLUSTER_ROLES, _role("cdi.kubevirt.io:admin", edit, "admin")),
        (CLUSTER_ROLES, _role("cdi.kubevirt.io:edit", edit, "edit")),
        (CLUSTER_ROLES, _role("cdi.kubevirt.io:view", view, "view")),
        (CLUSTER_ROLES, _role(reader, [_rule(["cdi.kubevirt.io"],
                                             ["cdiconfigs", "storageprofiles"],
                                             ["get", "list", "watch"])])),
        (CLUSTER_ROLE_BINDINGS, binding),
    ]
