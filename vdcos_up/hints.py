"""What `vdcos up` prints once the datacenter is up: commands that work on what it applied.

Pure: built from the applied documents, so every hint names an object that exists and does
what it says (a hot-add hint only for a running VM whose disks can live-migrate, because
KubeVirt completes a CPU hot-plug with a live migration; otherwise it is RestartRequired).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

VDC_GROUP = "vdcos.io"
LIVE_MIGRATABLE_ACCESS = "ReadWriteMany"  # a StoragePolicy's accessMode default


def _of_kind(objects: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [o for o in objects
            if o.get("kind") == kind and str(o.get("apiVersion", "")).startswith(VDC_GROUP)]


def vdc_vm_names(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(vm["metadata"]["name"]) for vm in _of_kind(objects, "VirtualMachine")]


def powered_on(vm: Mapping[str, Any]) -> bool:
    return bool((vm.get("spec") or {}).get("powerState", "PoweredOn") == "PoweredOn")


def live_migratable_policies(objects: Iterable[Mapping[str, Any]]) -> tuple[set[str], str | None]:
    """Names of the applied StoragePolicies whose disks can live-migrate, and the default's."""
    migratable, default = set(), None
    for policy in _of_kind(objects, "StoragePolicy"):
        spec = policy.get("spec") or {}
        name = str(policy["metadata"]["name"])
        if spec.get("accessMode", LIVE_MIGRATABLE_ACCESS) == LIVE_MIGRATABLE_ACCESS:
            migratable.add(name)
        if spec.get("default"):
            default = name
    return migratable, default


def hot_add_candidate(objects: Sequence[Mapping[str, Any]]) -> tuple[str, int] | None:
    """(name, new CPU count) of a powered-on VM that hot-adds CPU live, if one was applied."""
    migratable, default = live_migratable_policies(objects)
    for vm in _of_kind(objects, "VirtualMachine"):
        spec = vm.get("spec") or {}
        cpu = spec.get("cpu") or {}
        if not (powered_on(vm) and cpu.get("hotAdd")):
            continue
        policies = {d.get("storagePolicyName") or default for d in spec.get("disks") or []}
        if policies <= migratable:
            return str(vm["metadata"]["name"]), int(cpu.get("count", 1)) * 2
    return None


def _patch(name: str, spec: dict[str, Any], comment: str) -> str:
    command = f"kubectl patch vdcvm {name} --type merge -p '{json.dumps({'spec': spec})}'"
    return f"  {command:<72} # {comment}"


def _line(command: str, comment: str) -> str:
    return f"  {command:<48} # {comment}"


def next_steps(kubeconfig: Path, objects: Sequence[Mapping[str, Any]], *,
               applied_from: Path | None) -> str:
    """The commands to try, for the objects applied (or, when none was, those of examples/)."""
    lines = ["", "In another terminal:", "", f"  export KUBECONFIG={kubeconfig.resolve()}"]
    if applied_from is None:
        lines.append(_line("kubectl apply -f examples/", "a cluster, storage policies and VMs"))
    lines += [_line("kubectl get vdc", "everything in the datacenter"),
              _line("kubectl get vdcvm -o wide", "power, host, IP, CPU, memory")]
    running = [vm for vm in _of_kind(objects, "VirtualMachine") if powered_on(vm)]
    if running:
        name = str(running[0]["metadata"]["name"])
        lines += [_patch(name, {"powerState": "PoweredOff"}, "power off"),
                  _patch(name, {"powerState": "PoweredOn"}, "power on")]
    candidate = hot_add_candidate(objects)
    if candidate is not None:
        name, count = candidate
        lines += [_patch(name, {"cpu": {"count": count}}, "hot-add CPU (a live migration)"),
                  _line(f"kubectl describe vdcvm {name}", "conditions and events")]
    lines += [_line("kubectl get vm,vmi,dv,pvc,pods", "what KubeVirt and CDI run"),
              _line("kubectl top nodes", "host load (metrics.k8s.io)"),
              _line("kubectl annotate node host-1 sim.vdcos.io/power=off", "fail a host")]
    switches = _of_kind(objects, "DistributedSwitch")
    if switches:
        uplinks = [str(u) for u in (switches[0].get("spec") or {}).get("uplinks") or []]
        lines += [_line("kubectl get vds,dvpg", "switches (hosts available), port groups"),
                  _line("kubectl get nncp,nnce", "what nmstate applies on each host")]
        if len(uplinks) > 1:
            lines.append(_line(f"kubectl annotate node host-1 sim.vdcos.io/nic-down={uplinks[0]}",
                               "pull an uplink: the switch is Degraded, VMs keep running"))
    clusters = _of_kind(objects, "ComputeCluster")
    if clusters:
        name = str(clusters[0]["metadata"]["name"])
        lines.append(_line(f"kubectl get cc {name} -o yaml", "hosts, capacity and allocation"))
        if ((clusters[0].get("spec") or {}).get("drs") or {}).get("enabled"):
            lines += [_line("kubectl get cc -o wide", "DRS: CPU/memory use %, imbalance, target"),
                      _line(f"vdcos drs run {name}", "a DRS pass now (else every interval)")]
    templates = _of_kind(objects, "VirtualMachineTemplate")
    if templates:
        lines.append(_line("kubectl get vdcvmt", "templates: image import, the DataSource"))
    apps = _of_kind(objects, "VirtualApp")
    if apps:
        app = apps[0]
        members = (app.get("spec") or {}).get("members") or []
        scalable = next((m for m in members if int(m.get("maxReplicas") or 1) > 1), None)
        lines.append(_line(f"kubectl describe vapp {app['metadata']['name']}",
                           "members, start order, one Event per step"))
        if scalable is not None:
            wanted = min(int(scalable.get("maxReplicas") or 1),
                         int(scalable.get("replicas") or 1) + 1)
            lines.append(_line(f"vdcos vapp scale {app['metadata']['name']} "
                               f"{scalable['name']} {wanted}", "scale a member out"))
    backups = _of_kind(objects, "BackupPolicy")
    if backups:
        name = str(backups[0]["metadata"]["name"])
        lines += [_line(f"vdcos backup run {name}", "a backup now (else on its schedule)"),
                  _line("kubectl get vdcsnap", "snapshots: consistency, parent, ready")]
    lines += ["", "Ctrl-C stops the datacenter."]
    return "\n".join(lines)
