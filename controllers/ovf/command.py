"""`vdcos import ovf PATH`: an OVF or OVA as a VDC VirtualMachine or VirtualApp.

Everything is read and checked first (the manifest's sums, the descriptor, the flags, that
every disk file is there); only then is anything created. `--dry-run` prints the objects
and needs no cluster. Without it the disk images are uploaded through CDI's upload proxy
(`cluster_import.py`), then the VirtualMachine or VirtualApp is created.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controllers.virtualmachine.models import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN

from .descriptor import read_envelope
from .errors import OvfError
from .mapping import ImportOptions, ImportPlan, plan_import
from .model import Envelope
from .package import Package, check_href, check_manifest, open_package


@dataclass
class PreparedImport:
    package: Package
    envelope: Envelope
    plan: ImportPlan


def _pairs(values: Sequence[str] | None, flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in values or ():
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise OvfError(f"{flag} {raw!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


def prepare(path: Path, *, namespace: str = "default", name: str | None = None,
            storage_policy: str | None = None, network_map: Sequence[str] | None = None,
            deployment_option: str | None = None,
            properties: Sequence[str] | None = None) -> PreparedImport:
    """Read and check everything the import needs; raises OvfError naming what is wrong."""
    for flag, value, pattern in (("--name", name, DNS_LABEL_PATTERN),
                                 ("--namespace", namespace, DNS_LABEL_PATTERN),
                                 ("--storage-policy", storage_policy, DNS_SUBDOMAIN_PATTERN)):
        if value is not None and (len(value) > 63 or not re.match(pattern, value)):
            raise OvfError(f"{flag} {value!r}: not a valid name (lowercase letters, digits "
                           "and '-', at most 63 characters)")
    package = open_package(path)
    check_manifest(package)
    source = package.where(package.descriptor_name)
    envelope = read_envelope(package.descriptor, source, deployment_option=deployment_option,
                             overrides=_pairs(properties, "--property"))
    options = ImportOptions(namespace=namespace, name=name, storage_policy=storage_policy,
                            network_map=_pairs(network_map, "--network-map"),
                            source=path.name)
    plan = plan_import(envelope, options)
    for image in plan.images:
        href = image.file.href
        check_href(href, source)
        if not package.has(href):
            raise OvfError(f"{package.where(href)}: disk file {href!r} (File "
                           f"{image.file.id}) is missing from the package")
        actual = package.size(href)
        if image.file.size is not None and actual != image.file.size:
            raise OvfError(f"{package.where(href)}: disk file {href!r} has {actual} bytes, "
                           f"the descriptor's ovf:size says {image.file.size}")
    return PreparedImport(package=package, envelope=envelope, plan=plan)


def render(objects: list[dict[str, Any]], output: str) -> str:
    if output == "json":
        body: Any = objects[0] if len(objects) == 1 else {
            "apiVersion": "v1", "kind": "List", "metadata": {}, "items": objects}
        return json.dumps(body, indent=2) + "\n"
    return yaml.safe_dump_all(objects, sort_keys=False)


def command_import_ovf(args: argparse.Namespace) -> int:
    try:
        prepared = prepare(args.path, namespace=args.namespace, name=args.name,
                           storage_policy=args.storage_policy, network_map=args.network_map,
                           deployment_option=args.deployment_option,
                           properties=args.property)
    except OvfError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    plan = prepared.plan
    for line in plan.network_choices:
        print(line, file=sys.stderr)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        sys.stdout.write(render(plan.objects(), args.output))
        return 0
    from .cluster_import import run_import

    return run_import(prepared, kubeconfig=args.kubeconfig,
                      uploadproxy_url=args.uploadproxy_url, insecure=args.insecure)


def register(commands: Any) -> None:
    """Adds `import ovf PATH` to the vdcos subcommands."""
    importer: argparse.ArgumentParser = commands.add_parser(
        "import", help="import workloads from other platforms (ovf)")
    kinds = importer.add_subparsers(dest="import_kind", required=True)
    text = ("import an OVF descriptor or an OVA: a VirtualMachine for a VirtualSystem, a "
            "VirtualApp for a VirtualSystemCollection, its disks uploaded through CDI")
    ovf = kinds.add_parser("ovf", help=text, description=text)
    ovf.add_argument("path", type=Path, metavar="PATH", help="an .ovf (disks beside it) or .ova")
    ovf.add_argument("-n", "--namespace", default="default", help="namespace of the objects")
    ovf.add_argument("--name", default=None,
                     help="name of the VirtualMachine or VirtualApp (default: the descriptor's)")
    ovf.add_argument("--storage-policy", default=None, metavar="NAME",
                     help="StoragePolicy of every disk (default: the default policy)")
    ovf.add_argument("--network-map", action="append", metavar="OVFNET=PORTGROUP",
                     help="connect an OVF network to a port group, or to 'pod' (repeatable)")
    ovf.add_argument("--deployment-option", default=None, metavar="NAME",
                     help="the DeploymentOptionSection configuration (default: its default)")
    ovf.add_argument("--property", action="append", metavar="KEY=VALUE",
                     help="value of a userConfigurable ProductSection property (repeatable)")
    ovf.add_argument("--dry-run", action="store_true",
                     help="print the objects instead of creating them (needs no cluster)")
    ovf.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml",
                     help="format of --dry-run's output")
    ovf.add_argument("--kubeconfig", type=Path, default=None,
                     help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    ovf.add_argument("--uploadproxy-url", default=None, metavar="URL",
                     help="CDI's upload proxy (default: the CDIConfig's status.uploadProxyURL)")
    ovf.add_argument("--insecure", action="store_true",
                     help="do not verify the upload proxy's certificate")
    ovf.set_defaults(handler=command_import_ovf)
