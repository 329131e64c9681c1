"""The VDC VirtualMachine kind (vdcos.io/v1alpha1): spec and status models.

These models are the single source of the CRD schema (`crds/vdcos.io_virtualmachines.yaml`).
Rules a structural schema can state (enums, bounds, patterns, "exactly one of") are declared on
the fields and end up in the CRD; cross-field rules are also checked here, so a handler that
parses a spec gets a `pydantic.ValidationError` naming the field.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator
from pydantic.config import JsonDict

from controllers.common.apimodel import SpecModel, StatusModel
from controllers.common.conditions import ConditionModel
from kubekit.quantity import SIZE_PATTERN, to_bytes

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

PowerState = Literal["PoweredOn", "PoweredOff", "Suspended"]
RestartPriority = Literal["Disabled", "Lowest", "Low", "Medium", "High", "Highest"]
DiskBus = Literal["virtio", "sata", "scsi"]
#: The NIC models KubeVirt accepts (pkg/network/admitter/netiface.go validInterfaceModels).
NICModel = Literal["virtio", "e1000e", "e1000", "igb", "rtl8139", "pcnet", "ne2k_pci"]
#: Six colon-separated octets of a unicast address (the first octet even), so the API
#: server itself refuses a multicast one, naming the field.
MAC_ADDRESS_PATTERN = r"^[0-9A-Fa-f][02468aceACE](:[0-9A-Fa-f]{2}){5}$"
#: KubeVirt reserves this MAC for the in-pod bridge of masquerade NICs (pkg/network/link).
RESERVED_MAC_ADDRESS = "02:00:00:00:00:00"
Firmware = Literal["BIOS", "EFI"]
#: How a VM's boot disk is made from its template's image (docs/storage.md, templates).
CloneMode = Literal["Linked", "Full"]

#: The name of the cloud-init volume the builder adds; a disk may not use it.
CLOUD_INIT_VOLUME = "cloudinit"
#: The name of the OVF environment CD-ROM the builder adds; a disk may not use it either.
OVF_ENVIRONMENT_VOLUME = "ovfenv"
#: KubeVirt's memory hot-plug needs at least this much guest memory, 2Mi-aligned.
HOT_ADD_MIN_MEMORY_BYTES = 2**30
HOT_ADD_MEMORY_ALIGNMENT_BYTES = 2 * 2**20


def _exactly_one(fields: list[str]) -> dict[str, JsonValue]:
    """A structural "exactly one of these fields" rule for json_schema_extra."""
    return {"oneOf": [{"required": [name]} for name in fields]}


class CPU(SpecModel):
    """Virtual CPUs, as vSphere counts them: a total and how many cores share a socket."""

    count: int = Field(
        ge=1, le=256, description="Number of virtual CPUs (sockets x cores per socket)."
    )
    cores_per_socket: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Cores per virtual socket; count must be a multiple of it. Defaults to 1.",
    )
    hot_add: bool = Field(
        default=False,
        description=(
            "Allow raising count while the VM runs (added as sockets, up to 4x the count it "
            "started with). Needs a live-migratable VM. Lowering count always needs a restart."
        ),
    )

    @model_validator(mode="after")
    def _count_fills_sockets(self) -> Self:
        if self.count % self.cores_per_socket:
            raise ValueError(
                f"cpu.count ({self.count}) must be a multiple of cpu.coresPerSocket "
                f"({self.cores_per_socket})"
            )
        return self

    @property
    def sockets(self) -> int:
        return self.count // self.cores_per_socket


class Memory(SpecModel):
    """Guest memory."""

    size: str = Field(
        pattern=SIZE_PATTERN,
        description='Memory visible to the guest, as a quantity, e.g. "4Gi" or "512Mi".',
    )
    hot_add: bool = Field(
        default=False,
        description=(
            "Allow raising size while the VM runs (up to 4x the size it started with). Needs "
            "size of at least 1Gi in whole 2Mi steps and a live-migratable VM."
        ),
    )

    @model_validator(mode="after")
    def _hot_add_shape(self) -> Self:
        size = to_bytes(self.size)
        if size <= 0:
            raise ValueError(f"memory.size must be positive, got {self.size!r}")
        if self.hot_add and (
            size < HOT_ADD_MIN_MEMORY_BYTES or size % HOT_ADD_MEMORY_ALIGNMENT_BYTES
        ):
            raise ValueError(
                f"memory.hotAdd needs memory.size of at least 1Gi in whole 2Mi steps, "
                f"got {self.size!r}"
            )
        return self


class BlankSource(SpecModel):
    """An empty disk."""


class HTTPSource(SpecModel):
    """A disk image downloaded over HTTP(S) (qcow2, raw, optionally gz/xz compressed)."""

    url: str = Field(pattern=r"^https?://", description="URL of the image.")


class RegistrySource(SpecModel):
    """A disk image in a container registry (a containerDisk image)."""

    url: str = Field(
        pattern=r"^(docker|oci-archive)://",
        description='Image URL, e.g. "docker://quay.io/containerdisks/fedora:40".',
    )


class PVCSource(SpecModel):
    """A copy of an existing PersistentVolumeClaim."""

    namespace: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        description="Namespace of the claim; defaults to the VM's namespace.",
    )
    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, description="Name of the claim.")


class DataSourceSource(SpecModel):
    """A copy of a CDI DataSource (a golden image published in the cluster)."""

    namespace: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        description="Namespace of the DataSource; defaults to the VM's namespace.",
    )
    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, description="Name of the DataSource.")


class ImageSources(SpecModel):
    """The image sources a VM disk and a VirtualMachineTemplate share (each adds its own and
    checks that exactly one is set, with `exactly_one_set`)."""

    http: HTTPSource | None = Field(
        default=None, description="Import an image from an HTTP(S) URL."
    )
    registry: RegistrySource | None = Field(
        default=None, description="Import an image from a container registry."
    )
    pvc: PVCSource | None = Field(
        default=None, description="Clone an existing PersistentVolumeClaim."
    )


def exactly_one_set(model: SpecModel, what: str, names: list[str]) -> None:
    """Raises naming `what` and the allowed fields unless exactly one field of `model` is set."""
    chosen = [name for name, value in model if value is not None]
    if len(chosen) != 1:
        raise ValueError(
            f"{what} must set exactly one of {', '.join(names)}; got {len(chosen)}"
        )


_DISK_SOURCES = ["blank", "http", "registry", "pvc", "dataSource"]


class DiskSource(ImageSources):
    """Where the disk's initial content comes from. Exactly one field must be set."""

    model_config = ConfigDict(json_schema_extra=_exactly_one(_DISK_SOURCES))

    blank: BlankSource | None = Field(default=None, description="An empty disk.")
    data_source: DataSourceSource | None = Field(
        default=None, description="Clone a CDI DataSource (golden image)."
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        exactly_one_set(self, "disk source", _DISK_SOURCES)
        return self


class Disk(SpecModel):
    """A virtual disk, backed by a DataVolume whose storage follows a StoragePolicy."""

    name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the disk, unique within the VM (a DNS label).",
    )
    size: str = Field(
        pattern=SIZE_PATTERN,
        description='Capacity of the disk, as a quantity, e.g. "20Gi". Required.',
    )
    storage_policy_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "Name of the StoragePolicy the disk is placed with; defaults to the StoragePolicy "
            "marked default."
        ),
    )
    bus: DiskBus = Field(default="virtio", description="Disk bus: virtio (default), sata or scsi.")
    boot_order: int | None = Field(
        default=None,
        ge=1,
        description="Boot order, lowest first; disks without one are not booted from.",
    )
    source: DiskSource | None = Field(
        default=None, description="Initial content of the disk; an empty disk when unset."
    )

    @model_validator(mode="after")
    def _not_reserved(self) -> Self:
        if self.name == CLOUD_INIT_VOLUME:
            raise ValueError(f"disk name {CLOUD_INIT_VOLUME!r} is reserved for cloud-init")
        if self.name == OVF_ENVIRONMENT_VOLUME:
            raise ValueError(f"disk name {OVF_ENVIRONMENT_VOLUME!r} is reserved for the OVF "
                             "environment")
        if to_bytes(self.size) <= 0:
            raise ValueError(f"disk {self.name!r}: size must be positive, got {self.size!r}")
        return self


class PodNetwork(SpecModel):
    """The cluster's pod network, reached through NAT (masquerade) so the VM can migrate."""


class Network(SpecModel):
    """A virtual NIC. Exactly one of podNetwork or portGroupName must be set."""

    model_config = ConfigDict(json_schema_extra=_exactly_one(["podNetwork", "portGroupName"]))

    name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the NIC, unique within the VM (a DNS label).",
    )
    pod_network: PodNetwork | None = Field(
        default=None, description="Connect to the pod network (at most one NIC may)."
    )
    port_group_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Connect to this DistributedPortGroup (a bridge on every host).",
    )
    mac_address: str | None = Field(
        default=None,
        pattern=MAC_ADDRESS_PATTERN,
        description=(
            'MAC address of the NIC, e.g. "02:00:5e:10:00:01" (unicast). When unset, one is '
            "assigned once (locally administered, unique among the VMs) and kept across "
            "restarts and migrations; status.nics shows it."
        ),
    )
    model: NICModel = Field(
        default="virtio",
        description=(
            "NIC model the guest sees: virtio (default, fastest), e1000e or e1000 for guests "
            "without virtio drivers, igb, rtl8139, pcnet, ne2k_pci. Changing it needs a restart."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one_attachment(self) -> Self:
        if (self.pod_network is None) == (self.port_group_name is None):
            raise ValueError(
                f"network {self.name!r} must set exactly one of podNetwork or portGroupName"
            )
        return self

    @field_validator("mac_address")
    @classmethod
    def _usable_mac(cls, mac: str | None) -> str | None:
        problem = None if mac is None else mac_address_problem(mac)
        if problem is not None:
            raise ValueError(problem)
        return mac


def mac_address_problem(mac: str) -> str | None:
    """Why a MAC (six colon-separated octets) cannot be a NIC's address; None when it can."""
    octets = [int(part, 16) for part in mac.split(":")]
    if octets[0] & 0x01:
        return f"{mac!r} is a multicast address (the first octet is odd); a NIC needs unicast"
    if not any(octets):
        return f"{mac!r} is the all-zero address"
    if mac.lower() == RESERVED_MAC_ADDRESS:
        return f"{mac!r} is reserved by KubeVirt for the in-pod bridge"
    return None


class CloudInit(SpecModel):
    """cloud-init NoCloud configuration."""

    user_data_secret_name: str = Field(
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Secret in the VM's namespace whose `userdata` key holds the user data.",
    )


class OVFEnvironment(SpecModel):
    """The OVF environment document (ovf-env.xml) on a CD-ROM: OVF's `iso` transport.

    Exactly one of configMapName or secretName: the object's `ovf-env.xml` key becomes the
    file on the disc. A VirtualApp sets it on its VMs; KubeVirt builds the disc when the VM
    starts, so a changed document reaches the guest at its next start.
    """

    model_config = ConfigDict(json_schema_extra=_exactly_one(["configMapName", "secretName"]))

    config_map_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="ConfigMap in the VM's namespace holding ovf-env.xml.",
    )
    secret_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Secret in the VM's namespace holding ovf-env.xml (password properties).",
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        if (self.config_map_name is None) == (self.secret_name is None):
            raise ValueError("ovfEnvironment must set exactly one of configMapName or secretName")
        return self


def _unique_by_name(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{kind} name {name!r} is used twice")
        seen.add(name)


_LIST_MAP: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


def _template_fields_optional(schema: JsonDict) -> None:
    """In the CRD, cpu and memory may be left out and firmware has no default (a template
    supplies them); the model requires or defaults them, as it parses the spec after the
    template's vmDefaults are merged in."""
    properties = schema.get("properties")
    firmware = properties.get("firmware") if isinstance(properties, dict) else None
    if isinstance(firmware, dict):
        firmware.pop("default", None)
    required = schema.get("required")
    if isinstance(required, list):
        kept = [name for name in required if name not in ("cpu", "memory")]
        if kept:
            schema["required"] = kept
        else:
            del schema["required"]
class RestoreFrom(SpecModel):
    """The snapshot a new VM is made from."""

    snapshot_name: str = Field(
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
        description="A VirtualMachineSnapshot (of another VM) in this namespace.",
    )


class VirtualMachineSpec(SpecModel):
    """Desired state of a virtual machine."""

    model_config = ConfigDict(json_schema_extra=_template_fields_optional)

    cluster_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "ComputeCluster whose hosts run the VM; any host when unset. A missing cluster is "
            "reported in the ReferencesResolved condition until it appears."
        ),
    )
    power_state: PowerState = Field(
        default="PoweredOn",
        description="PoweredOn (default), PoweredOff, or Suspended (paused in memory).",
    )
    cpu: CPU = Field(description="Virtual CPUs. Optional with templateName (its vmDefaults).")
    memory: Memory = Field(
        description="Guest memory. Optional with templateName (its vmDefaults)."
    )
    disks: list[Disk] = Field(
        default_factory=list,
        max_length=64,
        description="Virtual disks; names are unique.",
        json_schema_extra=_LIST_MAP,
    )
    networks: list[Network] = Field(
        default_factory=list,
        max_length=16,
        description="Virtual NICs; names are unique. One pod-network NIC when empty.",
        json_schema_extra=_LIST_MAP,
    )
    cloud_init: CloudInit | None = Field(default=None, description="cloud-init user data.")
    ovf_environment: OVFEnvironment | None = Field(
        default=None,
        description="An OVF environment (ovf-env.xml) on a CD-ROM; set by a VirtualApp.",
    )
    firmware: Firmware = Field(
        default="BIOS",
        description="Boot firmware: BIOS (default, or the template's) or EFI.",
    )
    restart_priority: RestartPriority | None = Field(
        default=None,
        description=(
            "HA restart priority after a host failure: Disabled (never restarted by HA), "
            "Lowest, Low, Medium, High, Highest. Unset: the cluster's "
            "spec.ha.defaultRestartPriority (Medium without a cluster)."
        ),
    )
    # Snapshots (controllers/virtualmachine/revert.py and restore.py).
    revert_to_snapshot: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
        description=(
            "Revert the VM to this VirtualMachineSnapshot of it: powered off, its disks "
            "restored, then back to powerState; done once (status.revert). Clear and set it "
            "again to revert to the same snapshot again."
        ),
    )
    restore_from: RestoreFrom | None = Field(
        default=None,
        description=(
            "Make this new VM from a snapshot of another VM: disks named as the snapshotted "
            "VM's get their data from the snapshot (disks of their own; new MACs)."
        ),
    )

    # --- templates (controllers/virtualmachine/template_merge.py) ---
    template_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description=(
            "VirtualMachineTemplate (in the VM's namespace) the VM is made from: its image is "
            "the boot disk, and its vmDefaults fill cpu, memory, firmware, disks and networks "
            "the VM leaves out (fields the VM sets win). The VM waits until the template is "
            "Ready."
        ),
    )
    clone_mode: CloneMode = Field(
        default="Linked",
        description=(
            "How the boot disk is made from the template's image: Linked (default; a CSI "
            "clone or snapshot, copy-on-write, seconds whatever the size, where the storage "
            "can; else CDI copies and status.cloneStrategy says so) or Full (an independent "
            "copy, taking time by size)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _cpu_and_memory_given(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("cpu", "memory"):
                if data.get(name) is None:
                    raise ValueError(
                        f"{name} is required (set spec.{name}, or name a templateName whose "
                        f"vmDefaults set {name})"
                    )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique_by_name("disk", [disk.name for disk in self.disks])
        _unique_by_name("network", [network.name for network in self.networks])
        pod_networks = [n.name for n in self.networks if n.pod_network is not None]
        if len(pod_networks) > 1:
            raise ValueError(f"only one network may use podNetwork, got {pod_networks}")
        macs = [n.mac_address.lower() for n in self.networks if n.mac_address is not None]
        if len(macs) != len(set(macs)):
            raise ValueError("networks must not share a macAddress")
        boot_orders = [disk.boot_order for disk in self.disks if disk.boot_order is not None]
        if len(boot_orders) != len(set(boot_orders)):
            raise ValueError("disks must not share a bootOrder")
        return self


NICState = Literal["Attached", "Attaching", "Detaching"]


class NICStatus(StatusModel):
    """One NIC as the VM has it: its address, what it connects to, and what the guest reports."""

    name: str = Field(description="Name of the NIC (spec.networks[].name; default when none).")
    mac_address: str | None = Field(
        default=None, description="MAC address of the NIC (the one given or the one assigned)."
    )
    port_group_name: str | None = Field(
        default=None,
        description="DistributedPortGroup the NIC connects to; unset on the pod network.",
    )
    ip_address: str | None = Field(
        default=None, description="First IP address the guest reports on the NIC, when known."
    )
    ip_addresses: list[str] = Field(
        default_factory=list, description="IP addresses the guest reports on the NIC."
    )
    state: NICState | None = Field(
        default=None,
        description=(
            "While the VM runs: Attached (the guest has it), Attaching (being hot-plugged), "
            "Detaching (removed from the spec, being hot-unplugged). Unset while powered off."
        ),
    )


# --- disks (hot-add, growth, Storage vMotion: controllers/virtualmachine/disks.py) ---


class DiskMigrationStatus(StatusModel):
    """A Storage vMotion of a disk: under way, waiting for the next start, or failed."""

    phase: Literal["Migrating", "CopyingOffline", "PendingOfflineMove", "Failed"] = Field(
        description=(
            "Migrating: moving live (same VM instance); CopyingOffline: copied before the VM "
            "starts; PendingOfflineMove: moves at the next start (the VM is powered off, or "
            "the disk was hot-plugged); Failed: it stayed on its volume (message says why)."
        )
    )
    mode: Literal["Live", "Offline"] = Field(description="Live or Offline.")
    source_data_volume: str = Field(description="The DataVolume the disk moves from.")
    target_data_volume: str = Field(description="The DataVolume the disk moves to.")
    target_storage_class: str = Field(description="The StorageClass it moves to.")
    message: str | None = Field(default=None, description="Details, for people.")


class DiskStatus(StatusModel):
    """Where a disk is."""

    name: str = Field(description="The disk's name.")
    storage_policy_name: str | None = Field(default=None, description="Its StoragePolicy.")
    data_volume_name: str | None = Field(default=None, description="The DataVolume it uses.")
    storage_class_name: str | None = Field(
        default=None, description="The StorageClass its volume is on."
    )
    hot_plugged: bool | None = Field(
        default=None, description="Whether it was hot-added to the running VM (SCSI)."
    )
    migration: DiskMigrationStatus | None = Field(
        default=None, description="Its Storage vMotion, when one is under way or failed."
    )
class RevertStatus(StatusModel):
    """The revert spec.revertToSnapshot asks for, and how far it got."""

    snapshot_name: str = Field(description="The snapshot reverted to.")
    snapshot_uid: str | None = Field(default=None, description="Its uid (a revert runs once).")
    phase: str = Field(
        description="WaitingForSnapshot, PoweringOff, Restoring, Succeeded or Failed.")
    restore_name: str | None = Field(
        default=None, description="The KubeVirt VirtualMachineRestore that restores the disks.")
    time: str | None = Field(
        default=None, description="When the phase began (for Succeeded: when it was restored).",
        json_schema_extra={"format": "date-time"})
    message: str | None = Field(default=None, description="What is happening, in words.")


class VirtualMachineStatus(StatusModel):
    """Observed state of a virtual machine."""

    revert: RevertStatus | None = Field(
        default=None, description="The last revert to a snapshot (spec.revertToSnapshot).")

    power_state: PowerState | None = Field(
        default=None, description="Observed power state: PoweredOn, PoweredOff or Suspended."
    )
    host: str | None = Field(default=None, description="Node (host) the VM runs on.")
    ip_addresses: list[str] = Field(
        default_factory=list, description="IP addresses reported for the VM's NICs."
    )
    nics: list[NICStatus] = Field(
        default_factory=list,
        description="Each NIC with its MAC address, port group, and IP addresses when known.",
        json_schema_extra=_LIST_MAP,
    )
    cpu: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Virtual CPUs the guest runs with (after hot-add), as KubeVirt reports them; "
            "unset while powered off."
        ),
    )
    memory: str | None = Field(
        default=None,
        description=(
            "Guest memory the guest has now (after hot-add), as KubeVirt reports it; unset "
            "while powered off."
        ),
    )
    kubevirt_status: str | None = Field(
        default=None,
        description="printableStatus of the KubeVirt VirtualMachine, for troubleshooting.",
    )
    disks: list[DiskStatus] = Field(
        default_factory=list,
        description="Each disk: its DataVolume and StorageClass, and its move if any.",
        json_schema_extra=_LIST_MAP,
    )
    conditions: list[ConditionModel] = Field(
        default_factory=list,
        description=(
            "Ready summarises Admitted, ReferencesResolved, DisksReady, PowerStateReached "
            "and (when PoweredOn) Running; LiveMigratable and RestartRequired are "
            "informational."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    # --- templates (controllers/virtualmachine/template_merge.py) ---
    clone_strategy: str | None = Field(
        default=None,
        description=(
            "How CDI cloned the boot disk from the template: csi-clone or snapshot "
            "(copy-on-write) or copy (a full copy). Unset without a template or until CDI "
            "has chosen."
        ),
    )
    clone_fallback_reason: str | None = Field(
        default=None,
        description="Why a Linked clone became a full copy, when it did.",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
