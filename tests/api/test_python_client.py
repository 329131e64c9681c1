"""The official `kubernetes` Python client against the embedded API server."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.exceptions import ApiException

from tests.api import wire
from tests.harness import DevCluster, start_devcluster

GROUP, VERSION, PLURAL = "example.test", "v1", "widgets"
_names = itertools.count(1)


# The client's generated models type every field Optional; the tests read them as a user
# does (a missing field fails the test anyway), so its APIs are used untyped.
def core_api(api: Any) -> Any:
    return client.CoreV1Api(api)


def custom_api(api: Any) -> Any:
    return client.CustomObjectsApi(api)


def new_watch() -> Any:
    watch_class: Any = watch.Watch
    return watch_class()


def dynamic_client(api: Any) -> Any:
    dynamic_class: Any = dynamic.DynamicClient
    return dynamic_class(api)


@pytest.fixture(scope="module")
def api(apiserver: DevCluster) -> Iterator[client.ApiClient]:
    wire.install_crd(apiserver)
    api_client = apiserver.api_client()
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> str:
    name = f"py-{next(_names)}"
    core_api(api).create_namespace(client.V1Namespace(
        metadata=client.V1ObjectMeta(name=name)))
    return name


def configmap(name: str, labels: dict[str, str] | None = None,
              **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels),
                              data=data)


# ---- core kinds ------------------------------------------------------------------------------


def test_configmap_crud(api: client.ApiClient, namespace: str) -> None:
    core = core_api(api)
    created = core.create_namespaced_config_map(namespace, configmap("settings", a="1"))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    read = core.read_namespaced_config_map("settings", namespace)
    assert read.data == {"a": "1"} and read.metadata.uid == created.metadata.uid
    read.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("settings", namespace, read)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    # A dict patch of a core kind is a strategic merge patch.
    patched = core.patch_namespaced_config_map("settings", namespace, {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    core.delete_namespaced_config_map("settings", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("settings", namespace)
    assert missing.value.status == 404


def test_secret_string_data_is_stored_as_data(api: client.ApiClient, namespace: str) -> None:
    core = core_api(api)
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="login"),
                             data={"user": base64.b64encode(b"admin").decode()},
                             string_data={"password": "hunter2"})
    created = core.create_namespaced_secret(namespace, secret)
    assert created.string_data is None and created.type == "Opaque"
    decoded = {key: base64.b64decode(value).decode() for key, value in created.data.items()}
    assert decoded == {"user": "admin", "password": "hunter2"}
    patched = core.patch_namespaced_secret("login", namespace,
                                           {"stringData": {"password": "changed"}})
    assert base64.b64decode(patched.data["password"]) == b"changed"
    assert core.read_namespaced_secret("login", namespace).string_data is None


def test_create_twice_is_409_already_exists(api: client.ApiClient, namespace: str) -> None:
    core = core_api(api)
    core.create_namespaced_config_map(namespace, configmap("twice"))
    with pytest.raises(ApiException) as duplicate:
        core.create_namespaced_config_map(namespace, configmap("twice"))
    assert duplicate.value.status == 409
    status = json.loads(str(duplicate.value.body))
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "twice" already exists'


def test_replace_with_a_stale_resource_version_is_409(api: client.ApiClient,
                                                       namespace: str) -> None:
    core = core_api(api)
    core.create_namespaced_config_map(namespace, configmap("contested", v="1"))
    mine = core.read_namespaced_config_map("contested", namespace)
    theirs = core.read_namespaced_config_map("contested", namespace)
    theirs.data["v"] = "theirs"
    core.replace_namespaced_config_map("contested", namespace, theirs)
    mine.data["v"] = "mine"
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("contested", namespace, mine)
    assert stale.value.status == 409
    assert "the object has been modified" in str(stale.value.body)
    assert core.read_namespaced_config_map("contested", namespace).data == {"v": "theirs"}


def test_label_and_field_selectors(api: client.ApiClient, namespace: str) -> None:
    core = core_api(api)
    for name, tier in (("a", "gold"), ("b", "gold"), ("c", "tin"), ("d", None)):
        core.create_namespaced_config_map(
            namespace, configmap(name, {"tier": tier} if tier else None))

    def names(**selectors: str) -> list[str]:
        listed = core.list_namespaced_config_map(namespace, **selectors)
        return [item.metadata.name for item in listed.items]

    assert names(label_selector="tier=gold") == ["a", "b"]
    assert names(label_selector="tier in (gold,tin),tier!=gold") == ["c"]
    assert names(label_selector="!tier") == ["d"]
    assert names(label_selector="tier") == ["a", "b", "c"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="metadata.name!=a", label_selector="tier=gold") == ["b"]
    every = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={namespace}")
    assert sorted(item.metadata.name for item in every.items) == ["a", "b", "c", "d"]
    with pytest.raises(ApiException) as unsupported:
        core.list_namespaced_config_map(namespace, field_selector="data.color=red")
    assert unsupported.value.status == 400


def test_pagination_with_limit_and_continue(api: client.ApiClient, namespace: str) -> None:
    core = core_api(api)
    expected = [f"page-{i}" for i in range(7)]
    for name in expected:
        core.create_namespaced_config_map(namespace, configmap(name))
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"limit": 3}
        if token:
            kwargs["_continue"] = token
        page = core.list_namespaced_config_map(namespace, **kwargs)
        pages += 1
        assert len(page.items) <= 3
        seen += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == len(expected) - len(seen)
    assert pages == 3
    assert seen == expected


# ---- custom objects ---------------------------------------------------------------------------


def test_custom_object_crud(api: client.ApiClient, namespace: str) -> None:
    custom = custom_api(api)
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, wire.widget("gizmo", namespace, 2))
    assert created["spec"] == {"size": 2, "color": "blue"}  # the schema default
    assert created["metadata"]["generation"] == 1
    got = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gizmo")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    # A dict patch of a custom object is a merge patch.
    patched = custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gizmo",
                                                    {"spec": {"size": 5}})
    assert patched["spec"]["size"] == 5 and patched["metadata"]["generation"] == 2
    status = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "gizmo", {"status": {"phase": "Ready"}})
    assert status["status"] == {"phase": "Ready"}
    assert status["metadata"]["generation"] == 2  # status does not bump the generation
    latest = status
    latest["spec"]["size"] = 6
    latest["status"] = {"phase": "Ignored"}
    replaced = custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                       "gizmo", latest)
    assert replaced["spec"]["size"] == 6
    assert replaced["status"] == {"phase": "Ready"}  # the main endpoint ignores status
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["gizmo"]
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gizmo")
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gizmo")
    assert missing.value.status == 404


def test_custom_object_stale_and_missing_resource_version(api: client.ApiClient,
                                                          namespace: str) -> None:
    custom = custom_api(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                           wire.widget("raced", namespace))
    stale = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "raced")
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "raced",
                                          {"spec": {"size": 9}})
    stale["spec"]["size"] = 1
    with pytest.raises(ApiException) as conflict:
        custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "raced",
                                                stale)
    assert conflict.value.status == 409
    without_version = wire.widget("raced", namespace, 1)
    with pytest.raises(ApiException) as invalid:
        custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "raced",
                                                without_version)
    assert invalid.value.status == 422
    assert "metadata.resourceVersion" in str(invalid.value.body)
    got = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "raced")
    assert got["spec"]["size"] == 9


def test_dry_run_is_honoured_on_every_verb(api: client.ApiClient, namespace: str) -> None:
    custom = custom_api(api)
    phantom = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, wire.widget("phantom", namespace), dry_run="All")
    assert phantom["spec"]["color"] == "blue"  # defaulted as a real create would be
    real = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                  wire.widget("real", namespace))
    version = real["metadata"]["resourceVersion"]
    patched = custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "real",
                                                    {"spec": {"size": 50}}, dry_run="All")
    assert patched["spec"]["size"] == 50
    real["spec"]["size"] = 60
    replaced = custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                       "real", real, dry_run="All")
    assert replaced["spec"]["size"] == 60
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "real",
                                           dry_run="All")
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert [(item["metadata"]["name"], item["spec"]["size"],
             item["metadata"]["resourceVersion"]) for item in listed["items"]] == [
        ("real", 3, version)]


def test_dynamic_client(api: client.ApiClient, namespace: str) -> None:
    dyn = dynamic_client(api)
    widgets = dyn.resources.get(api_version="example.test/v1", kind="Widget")
    assert widgets.namespaced and widgets.name == "widgets"
    created = widgets.create(body=wire.widget("dyn", namespace, 4), namespace=namespace)
    assert created.spec.size == 4 and created.spec.color == "blue"
    patched = widgets.patch(name="dyn", namespace=namespace, body={"spec": {"color": "green"}},
                            content_type="application/merge-patch+json")
    assert patched.spec.color == "green"
    listed = widgets.get(namespace=namespace)
    assert [item.metadata.name for item in listed.items] == ["dyn"]
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.create(body={"metadata": {"name": "dyn-cm"}, "data": {"k": "v"}},
                      namespace=namespace)
    assert configmaps.get(name="dyn-cm", namespace=namespace).data.k == "v"
    widgets.delete(name="dyn", namespace=namespace)
    assert widgets.get(namespace=namespace).items == []


# ---- watch ------------------------------------------------------------------------------------


def test_watch_from_a_resource_version_sees_only_later_events(api: client.ApiClient,
                                                              namespace: str) -> None:
    core = core_api(api)
    core.create_namespaced_config_map(namespace, configmap("before"))
    listed = core.list_namespaced_config_map(namespace)
    core.create_namespaced_config_map(namespace, configmap("after"))
    core.patch_namespaced_config_map("before", namespace, {"data": {"x": "1"}})
    core.delete_namespaced_config_map("after", namespace)
    events: list[tuple[str, str]] = []
    watcher = new_watch()
    for event in watcher.stream(core.list_namespaced_config_map, namespace,
                                resource_version=listed.metadata.resource_version,
                                timeout_seconds=20):
        events.append((event["type"], event["object"].metadata.name))
        if len(events) == 3:
            watcher.stop()
    assert events == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]


def test_watch_of_custom_objects_follows_changes(api: client.ApiClient, namespace: str) -> None:
    custom = custom_api(api)
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                           wire.widget("followed", namespace))
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "followed",
                                                 {"status": {"phase": "Ready"}})
    watcher = new_watch()
    seen = []
    for event in watcher.stream(custom.list_namespaced_custom_object, GROUP, VERSION,
                                namespace, PLURAL,
                                resource_version=listed["metadata"]["resourceVersion"],
                                timeout_seconds=20):
        seen.append(event["type"])
        if (event["object"].get("status") or {}).get("phase") == "Ready":
            watcher.stop()
    assert seen == ["ADDED", "MODIFIED"]


def test_unauthenticated_client_gets_401(apiserver: DevCluster, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(base64.b64decode(
        apiserver.config["clusters"][0]["cluster"]["certificate-authority-data"]))
    configuration = client.Configuration()
    configuration.host = apiserver.url
    configuration.ssl_ca_cert = str(ca_file)
    configuration.assert_hostname = False
    with client.ApiClient(configuration) as anonymous, pytest.raises(ApiException) as denied:
        core_api(anonymous).list_namespace()
    assert denied.value.status == 401


# ---- 410 Gone and re-list (a server with a short watch history) -------------------------------


@pytest.fixture(scope="module")
def short_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    cluster = start_devcluster(tmp_path_factory.mktemp("short-history"), "--no-sim",
                               "--watch-history", "3")
    yield cluster
    cluster.stop()


def test_expired_watch_gets_410_in_stream_and_a_relist_recovers(short_history: DevCluster,
                                                                 tmp_path: Path) -> None:
    api_client = short_history.api_client()
    core = core_api(api_client)
    core.create_namespaced_config_map("default", configmap("churn", n="0"))
    old = core.list_namespaced_config_map("default").metadata.resource_version
    for i in range(1, 8):  # more changes than the server keeps: `old` falls out of history
        core.patch_namespaced_config_map("churn", "default", {"data": {"n": str(i)}})
    # On the wire: HTTP 200, then an ERROR event whose object is a Status with code 410.
    with wire.watch(short_history, "/api/v1/namespaces/default/configmaps?watch=true"
                    f"&resourceVersion={old}") as stream:
        assert stream.status == 200
        event = stream.next()
        assert event is not None and event["type"] == "ERROR"
        assert event["object"]["kind"] == "Status" and event["object"]["code"] == 410
        assert event["object"]["reason"] == "Expired"
    # The client sees it as an ApiException 410 ...
    with pytest.raises(ApiException) as gone:
        for _ in new_watch().stream(core.list_namespaced_config_map, "default",
                                      resource_version=old, timeout_seconds=10):
            pass
    assert gone.value.status == 410
    # ... and recovers as documented: re-list, then watch from the list's resourceVersion.
    relisted = core.list_namespaced_config_map("default")
    assert relisted.items[0].data == {"n": "7"}
    core.patch_namespaced_config_map("churn", "default", {"data": {"n": "8"}})
    watcher = new_watch()
    after_relist = []
    for event in watcher.stream(core.list_namespaced_config_map, "default",
                                resource_version=relisted.metadata.resource_version,
                                timeout_seconds=20):
        after_relist.append((event["type"], event["object"].data))
        watcher.stop()
    assert after_relist == [("MODIFIED", {"n": "8"})]
    api_client.close()
