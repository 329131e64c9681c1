"""The OVF environment of a vApp's VMs: the standard's document, on a CD-ROM KubeVirt takes."""

from __future__ import annotations

import base64
from xml.dom import minidom
from xml.etree import ElementTree

from controllers.virtualapp.builders import environment_object, environments, member_vm, replicas_of
from controllers.virtualapp.models import Property, VirtualAppSpec
from controllers.virtualapp.ovf_environment import (
    ENVIRONMENT_NAMESPACE,
    EnvironmentEntity,
    build_ovf_environment,
    effective_properties,
    read_entities,
    read_properties,
)
from controllers.virtualmachine.builders import build_kubevirt_vm
from controllers.virtualmachine.models import VirtualMachineSpec
from tests.oracles import KUBEVIRT_SWAGGER, validate_against_swagger

OE = f"{{{ENVIRONMENT_NAMESPACE}}}"
TEMPLATE = {"spec": {"cpu": {"count": 1}, "memory": {"size": "256Mi"}}}
APP_BODY = {"apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualApp",
            "metadata": {"name": "shop", "namespace": "apps", "uid": "u-1"}}


def spec(**extra: object) -> VirtualAppSpec:
    return VirtualAppSpec.model_validate({
        "properties": [{"key": "app.name", "value": "shop"}, {"key": "db.port", "value": "5432"}],
        "members": [
            {"name": "db", "template": TEMPLATE,
             "properties": [{"key": "db.port", "value": "6432"}]},
            {"name": "web", "replicas": 2, "maxReplicas": 2, "template": TEMPLATE,
             "properties": [{"key": "web.greeting", "value": 'a <b> & "c"'}]},
        ],
        **extra,
    })


def test_the_document_is_the_standards_environment() -> None:
    vm = EnvironmentEntity("shop-web", [Property(key="k", value="v")])
    text = build_ovf_environment(vm, [vm, EnvironmentEntity("shop-db", [])],
                                 platform_version="1.0")
    minidom.parseString(text)  # well-formed
    root = ElementTree.fromstring(text)
    assert root.tag == f"{OE}Environment" and root.get(f"{OE}id") == "shop-web"
    assert [child.tag for child in root] == [f"{OE}PlatformSection", f"{OE}PropertySection",
                                             f"{OE}Entity"]
    platform = root.find(f"{OE}PlatformSection")
    assert platform is not None
    assert [child.tag for child in platform] == [f"{OE}{tag}" for tag in
                                                 ("Kind", "Version", "Vendor", "Locale")]
    # Attributes are qualified (oe:key, oe:value, oe:id), as the standard's examples have them.
    assert 'oe:key="k"' in text and 'oe:value="v"' in text


def test_each_vm_sees_the_apps_properties_its_members_overrides_and_its_siblings() -> None:
    documents = environments("shop", spec(), "1.0")
    assert set(documents) == {"shop-db", "shop-web", "shop-web-2"}
    db = documents["shop-db"].document
    assert read_properties(db) == {"app.name": "shop", "db.port": "6432"}
    assert set(read_entities(db)) == {"shop-web", "shop-web-2"}
    web = documents["shop-web"].document
    assert read_properties(web)["web.greeting"] == 'a <b> & "c"'  # escaped and read back
    assert read_entities(web)["shop-db"]["db.port"] == "6432"
    assert set(read_entities(web)) == {"shop-db", "shop-web-2"}  # not itself
    assert not documents["shop-db"].secret


def test_a_password_property_puts_every_document_in_a_secret() -> None:
    secret_spec = spec(properties=[{"key": "db.password", "value": "s3cret", "password": True}])
    documents = environments("shop", secret_spec, "1.0")
    assert all(document.secret for document in documents.values())
    resource, obj = environment_object(APP_BODY, "db", "shop-db", documents["shop-db"])
    assert (resource.plural, obj["kind"], obj["immutable"]) == ("secrets", "Secret", True)
    text = base64.b64decode(obj["data"]["ovf-env.xml"]).decode()
    assert read_properties(text)["db.password"] == "s3cret"


def test_a_changed_property_is_a_new_document_object() -> None:
    before = environments("shop", spec(), "1.0")["shop-db"]
    changed = spec(properties=[{"key": "app.name", "value": "store"}])
    after = environments("shop", changed, "1.0")["shop-db"]
    assert after.object_name != before.object_name
    assert after.object_name.startswith("shop-db-ovf-env-")


def test_member_properties_override_app_properties_by_key() -> None:
    merged = effective_properties([Property(key="a", value="1"), Property(key="b", value="2")],
                                  [Property(key="b", value="3")])
    assert [(p.key, p.value) for p in merged] == [("a", "1"), ("b", "3")]


def test_the_member_vm_mounts_its_document_as_a_cdrom_kubevirt_accepts() -> None:
    app = spec()
    replica = replicas_of("shop", app)[1]
    environment = environments("shop", app, "1.0")[replica.name]
    vdc_vm = member_vm(APP_BODY, replica, "PoweredOn", environment, None)
    assert vdc_vm["metadata"]["name"] == "shop-web"
    assert vdc_vm["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    vm_spec = VirtualMachineSpec.model_validate(vdc_vm["spec"])
    kubevirt = build_kubevirt_vm(vm_spec, "shop-web", "apps", storage_policies={},
                                 cluster=None)
    validate_against_swagger(kubevirt, KUBEVIRT_SWAGGER, "v1.VirtualMachine")
    template = kubevirt["spec"]["template"]["spec"]
    assert {"name": "ovfenv", "cdrom": {"bus": "sata", "readonly": True}} in \
        template["domain"]["devices"]["disks"]
    assert {"name": "ovfenv", "configMap": {"name": environment.object_name}} in \
        template["volumes"]
