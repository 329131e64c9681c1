"""The VDC API models accept what a user may write and reject what they may not."""

from typing import Any

import pytest
from pydantic import ValidationError

from controllers.computecluster.models import ComputeClusterSpec
from controllers.storagepolicy.models import StoragePolicySpec
from controllers.virtualmachine.models import VirtualMachineSpec


def _vm(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "cpu": {"count": 2},
        "memory": {"size": "2Gi"},
        "disks": [{"name": "root", "size": "10Gi"}],
    }
    spec.update(overrides)
    return spec


def _error(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        VirtualMachineSpec.model_validate(spec)
    return str(caught.value)


def test_minimal_vm_gets_vsphere_defaults() -> None:
    spec = VirtualMachineSpec.model_validate(_vm())
    assert spec.power_state == "PoweredOn"
    assert spec.restart_priority is None  # the cluster's defaultRestartPriority applies
    assert spec.cpu.cores_per_socket == 1 and spec.cpu.sockets == 2
    assert spec.disks[0].bus == "virtio"
    assert spec.firmware == "BIOS"


def test_round_trips_as_camel_case_without_unset_fields() -> None:
    written = _vm(cpu={"count": 4, "coresPerSocket": 2, "hotAdd": True}, clusterName="prod")
    api = VirtualMachineSpec.model_validate(written).to_api()
    assert api["cpu"] == {"count": 4, "coresPerSocket": 2, "hotAdd": True}
    assert api["clusterName"] == "prod"
    assert "cloudInit" not in api
    assert VirtualMachineSpec.model_validate(api).to_api() == api


def test_disk_without_size_is_rejected() -> None:
    assert "disks.0.size" in _error(_vm(disks=[{"name": "root"}]))


def test_disk_with_two_sources_is_rejected() -> None:
    message = _error(
        _vm(
            disks=[
                {
                    "name": "root",
                    "size": "1Gi",
                    "source": {"blank": {}, "http": {"url": "http://x"}},
                }
            ]
        )
    )
    assert "exactly one of blank, http, registry, pvc, dataSource" in message


def test_duplicate_disk_names_are_rejected() -> None:
    disks = [{"name": "root", "size": "1Gi"}, {"name": "root", "size": "2Gi"}]
    assert "disk name 'root' is used twice" in _error(_vm(disks=disks))


def test_bad_quantities_and_names_are_rejected() -> None:
    assert "memory.size" in _error(_vm(memory={"size": "4GB"}))
    assert "disks.0.name" in _error(_vm(disks=[{"name": "Root_Disk", "size": "1Gi"}]))
    assert "must be positive" in _error(_vm(disks=[{"name": "root", "size": "0"}]))


def test_cpu_count_must_fill_whole_sockets() -> None:
    assert "multiple of cpu.coresPerSocket" in _error(_vm(cpu={"count": 6, "coresPerSocket": 4}))
    assert "cpu.count" in _error(_vm(cpu={"count": 0}))
    assert "cpu.count" in _error(_vm(cpu={"count": 257}))


def test_memory_hot_add_needs_kubevirts_minimum() -> None:
    assert "at least 1Gi" in _error(_vm(memory={"size": "512Mi", "hotAdd": True}))
    assert "2Mi" in _error(_vm(memory={"size": "1025Mi", "hotAdd": True}))
    VirtualMachineSpec.model_validate(_vm(memory={"size": "1Gi", "hotAdd": True}))


def test_network_needs_exactly_one_attachment() -> None:
    assert "exactly one of podNetwork or portGroupName" in _error(_vm(networks=[{"name": "nic0"}]))
    assert "only one network may use podNetwork" in _error(
        _vm(networks=[{"name": "a", "podNetwork": {}}, {"name": "b", "podNetwork": {}}])
    )


def test_unknown_fields_and_enum_typos_are_rejected() -> None:
    assert "powerstate" in _error(_vm(powerstate="PoweredOff"))
    assert "powerState" in _error(_vm(powerState="On"))
    assert "restartPriority" in _error(_vm(restartPriority="Critical"))


def test_reserved_cloud_init_disk_name() -> None:
    assert "reserved for cloud-init" in _error(_vm(disks=[{"name": "cloudinit", "size": "1Gi"}]))


def test_storage_policy_adopts_or_creates_a_class() -> None:
    adopted = StoragePolicySpec.model_validate({"storageClassName": "standard"})
    assert (adopted.provisioning, adopted.access_mode) == ("Thin", "ReadWriteMany")
    StoragePolicySpec.model_validate({"provisioner": "csi.example.com", "parameters": {"a": "b"}})
    # Naming neither uses the cluster's default StorageClass; naming both is refused.
    StoragePolicySpec.model_validate({})
    with pytest.raises(ValidationError, match="at most one of storageClassName or provisioner"):
        StoragePolicySpec.model_validate({"storageClassName": "a", "provisioner": "b"})
    with pytest.raises(ValidationError, match="parameters apply only with provisioner"):
        StoragePolicySpec.model_validate({"storageClassName": "a", "parameters": {"x": "y"}})
    with pytest.raises(ValidationError, match="provisioning"):
        StoragePolicySpec.model_validate({"storageClassName": "a", "provisioning": "Lazy"})


def test_compute_cluster_defaults_and_rules() -> None:
    cluster = ComputeClusterSpec.model_validate({"hostSelector": {}})
    assert cluster.drs.automation_level == "FullyAutomated"
    assert cluster.drs.migration_threshold == 3
    assert cluster.ha.host_failures_to_tolerate == 1
    with pytest.raises(ValidationError, match="migrationThreshold"):
        ComputeClusterSpec.model_validate({"hostSelector": {}, "drs": {"migrationThreshold": 6}})
    with pytest.raises(ValidationError, match="hostSelector is required"):
        ComputeClusterSpec.model_validate(
            {
                "hostSelector": {},
                "rules": [
                    {
                        "name": "pin",
                        "type": "VirtualMachinesToHosts",
                        "virtualMachineSelector": {},
                    }
                ],
            }
        )
    with pytest.raises(ValidationError, match="needs values"):
        ComputeClusterSpec.model_validate(
            {"hostSelector": {"matchExpressions": [{"key": "zone", "operator": "In"}]}}
        )
