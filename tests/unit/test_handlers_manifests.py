"""The deployment manifests: least privilege, probes, and the PriorityClasses VMs name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from controllers.virtualmachine.builders import build_priority_classes

MANIFESTS = Path(__file__).resolve().parent.parent.parent / "manifests"


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load("kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_cluster_role_has_no_wildcards_and_writes_only_what_the_operator_writes() -> None:
    role = next(d for d in load("rbac.yaml") if d["kind"] == "ClusterRole")
    writes: set[tuple[str, str, str]] = set()
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    if verb not in ("get", "list", "watch"):
                        writes.add((group, resource, verb))
    assert writes == {
        ("vdcos.io", "virtualmachines/status", "patch"),
        ("vdcos.io", "storagepolicies/status", "patch"),
        ("vdcos.io", "computeclusters/status", "patch"),
        ("kubevirt.io", "virtualmachines", "patch"),
        ("subresources.kubevirt.io", "virtualmachineinstances/pause", "update"),
        ("subresources.kubevirt.io", "virtualmachineinstances/unpause", "update"),
        ("storage.k8s.io", "storageclasses", "create"),
        ("storage.k8s.io", "storageclasses", "patch"),
        # Disks: growth patches the claim; Storage vMotion deletes (or releases) the source.
        ("", "persistentvolumeclaims", "patch"),
        ("cdi.kubevirt.io", "datavolumes", "patch"),
        ("cdi.kubevirt.io", "datavolumes", "delete"),
        ("scheduling.k8s.io", "priorityclasses", "create"),
        ("", "events", "create"),
        ("kopf.dev", "clusterkopfpeerings", "patch"),
        # vNetwork: finalizers and status of switches and port groups, the cluster label on
        # hosts, the nmstate policies of switches and the NADs of port groups.
        ("vdcos.io", "distributedswitches", "patch"),
        ("vdcos.io", "distributedswitches/status", "patch"),
        ("vdcos.io", "distributedportgroups", "patch"),
        ("vdcos.io", "distributedportgroups/status", "patch"),
        ("", "nodes", "patch"),
        ("nmstate.io", "nodenetworkconfigurationpolicies", "patch"),
        ("nmstate.io", "nodenetworkconfigurationpolicies", "delete"),
        ("k8s.cni.cncf.io", "network-attachment-definitions", "patch"),
        ("k8s.cni.cncf.io", "network-attachment-definitions", "delete"),
        # vMotion and maintenance: requests and their status, the KubeVirt migrations that
        # run them, the maintenance finalizer; a Shutdown maintenance powers a VM off (its
        # powerState) or restarts it through virt-api.
        ("vdcos.io", "virtualmachinemigrations", "create"),
        ("vdcos.io", "virtualmachinemigrations/status", "patch"),
        ("vdcos.io", "hostmaintenances", "patch"),
        ("vdcos.io", "hostmaintenances/status", "patch"),
        ("vdcos.io", "virtualmachines", "patch"),
        ("kubevirt.io", "virtualmachineinstancemigrations", "create"),
        ("subresources.kubevirt.io", "virtualmachines/restart", "update"),
        # DRS: a requested pass removes its annotation (it creates migrations, as above).
        ("vdcos.io", "computeclusters", "patch"),
        # HA: fencing remediations, force-deleting a fenced host's pods, holds on VDC VMs.
        ("fence-agents-remediation.medik8s.io", "fenceagentsremediations", "create"),
        ("fence-agents-remediation.medik8s.io", "fenceagentsremediations", "delete"),
        ("", "pods", "delete"),
        # Templates: their status, the image DataVolume and the DataSource publishing it.
        ("vdcos.io", "virtualmachinetemplates/status", "patch"),
        ("cdi.kubevirt.io", "datavolumes", "patch"),
        ("cdi.kubevirt.io", "datasources", "patch"),
        # VirtualApps: their members' VMs (created, powered, removed), each VM's OVF
        # environment (ConfigMap or Secret) and cloud-init Secret, hard stops, their status.
        ("vdcos.io", "virtualapps/status", "patch"),
        ("vdcos.io", "virtualmachines", "create"),
        ("vdcos.io", "virtualmachines", "delete"),
        ("", "configmaps", "create"),
        ("", "configmaps", "patch"),
        ("", "configmaps", "delete"),
        ("", "secrets", "create"),
        ("", "secrets", "patch"),
        ("", "secrets", "delete"),
        ("subresources.kubevirt.io", "virtualmachines/stop", "update"),
        # Snapshots and backups: VDC snapshots (a BackupPolicy's runs and retention) and their
        # status, KubeVirt snapshots, and the restores that revert VMs.
        ("vdcos.io", "virtualmachinesnapshots", "create"),
        ("vdcos.io", "virtualmachinesnapshots", "delete"),
        ("vdcos.io", "virtualmachinesnapshots/status", "patch"),
        ("vdcos.io", "backuppolicies/status", "patch"),
        ("snapshot.kubevirt.io", "virtualmachinesnapshots", "create"),
        ("snapshot.kubevirt.io", "virtualmachinerestores", "create"),
        ("snapshot.kubevirt.io", "virtualmachinerestores", "delete"),
    }


def test_deployment_probes_kopf_health_endpoint_as_the_service_account() -> None:
    deployment = load("deployment.yaml")[0]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == load("serviceaccount.yaml")[0]["metadata"]["name"]
    container = pod["containers"][0]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"


def test_priority_classes_match_what_vms_name() -> None:
    assert load("priorityclasses.yaml") == build_priority_classes()
