"""The OVF environment in cloud-init user data, for members whose VMs have cloud-init (pure).

KubeVirt's NoCloud disk is what cloud-init reads first on such a VM, so the properties also
go there: the user's user data and a cloud-config part writing ovf-env.xml into the guest,
as one MIME multipart document (cloud-init runs each part; DSP0243's document is the same one
the CD-ROM carries).
"""

from __future__ import annotations

import json
from typing import Final

#: Where the guest finds its OVF environment when cloud-init wrote it.
GUEST_ENVIRONMENT_PATH: Final = "/var/lib/vdcos/ovf-env.xml"
#: The key of a KubeVirt cloudInitNoCloud secretRef's user data.
USER_DATA_KEY: Final = "userdata"
_BOUNDARY: Final = "==vdcos-ovf-environment=="


def _content_type(user_data: str) -> str:
    """cloud-init's part type for the user's data, from its first line (as cloud-init's
    `#include`, `#!` and `#cloud-config` markers say)."""
    first = user_data.lstrip().split("\n", 1)[0]
    if first.startswith("#cloud-config"):
        return "text/cloud-config"
    if first.startswith("#!"):
        return "text/x-shellscript"
    if first.startswith("#cloud-boothook"):
        return "text/cloud-boothook"
    if first.startswith("#include"):
        return "text/x-include-url"
    return "text/plain"


def _write_environment_part(document: str) -> str:
    # JSON is YAML: the document is quoted exactly, whatever it holds.
    entry = {"path": GUEST_ENVIRONMENT_PATH, "permissions": "0600", "content": document}
    # Appended to the user's write_files (cloud-init would otherwise let a later part's
    # list replace an earlier one's).
    merge = [{"name": "list", "settings": ["append"]},
             {"name": "dict", "settings": ["no_replace", "recurse_list"]}]
    return ("#cloud-config\nmerge_how: " + json.dumps(merge) + "\nwrite_files:\n  - "
            + json.dumps(entry, sort_keys=True) + "\n")


def user_data_with_environment(user_data: str, document: str) -> str:
    """The user's user data, and a part that writes the OVF environment into the guest."""
    parts = [(_content_type(user_data), user_data),
             ("text/cloud-config", _write_environment_part(document))]
    lines = [f'Content-Type: multipart/mixed; boundary="{_BOUNDARY}"', "MIME-Version: 1.0", ""]
    for content_type, body in parts:
        lines += [f"--{_BOUNDARY}", f'Content-Type: {content_type}; charset="utf-8"',
                  "MIME-Version: 1.0", "", body.rstrip("\n")]
    lines += [f"--{_BOUNDARY}--", ""]
    return "\n".join(lines)


def cloud_init_secret_name(vm_name: str) -> str:
    """The Secret with a VM's user data and its OVF environment (updated in place: the OVF
    environment's own change already tells the running VM to restart)."""
    return f"{vm_name}-cloud-init"
