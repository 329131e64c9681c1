"""The virtual size of an uploaded disk image, read from its header as `qemu-img info`
would: a VMDK sparse extent (monolithicSparse or streamOptimized, magic KDMV: capacity
in 512-byte sectors at offset 12) or a qcow2 image (magic QFI\\xfb: size at offset 24);
anything else is raw, as big as its bytes."""

from __future__ import annotations

import struct

VMDK_MAGIC = b"KDMV"
QCOW2_MAGIC = b"QFI\xfb"
HEADER_BYTES = 512


def image_format(head: bytes) -> str:
    if head.startswith(VMDK_MAGIC):
        return "vmdk"
    if head.startswith(QCOW2_MAGIC):
        return "qcow2"
    return "raw"


def virtual_size(head: bytes, total_bytes: int) -> int:
    """`head` is the image's first HEADER_BYTES (or fewer when it is shorter)."""
    kind = image_format(head)
    if kind == "vmdk" and len(head) >= 20:
        (sectors,) = struct.unpack_from("<Q", head, 12)
        return int(sectors) * 512
    if kind == "qcow2" and len(head) >= 32:
        (size,) = struct.unpack_from(">Q", head, 24)
        return int(size)
    return total_bytes
