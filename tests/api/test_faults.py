"""devcluster's fault injection (/debug/devcluster/faults), as clients meet it: kube's exact
409 and 429 answers for one client only, nothing changed by a refused write, watches that end
cleanly after the cut, and settings only an admin may change, checked field by field."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from tests.harness import DevCluster
from tests.integration.faults import get_faults, put_faults

CONFLICT_MESSAGE = ('Operation cannot be fulfilled on configmaps "settings": the object has '
                    "been modified; please apply your changes to the latest version and try "
                    "again")


@pytest.fixture
def no_faults(apiserver: DevCluster) -> Iterator[DevCluster]:
    put_faults(apiserver, {"errors": []})
    yield apiserver
    put_faults(apiserver, {"errors": []})


def core(cluster: DevCluster, user_agent: str) -> client.CoreV1Api:
    api_client = cluster.api_client()
    api_client.user_agent = user_agent
    return client.CoreV1Api(api_client)


def config_map(api: client.CoreV1Api, name: str) -> Any:
    return api.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name), data={"value": "1"}))


def test_conflicts_for_one_client_only_with_kubes_status(no_faults: DevCluster) -> None:
    operator = core(no_faults, "vdcos-operator/1.0")
    config_map(operator, "settings")
    put_faults(no_faults, {"errors": [{"code": 409, "share": 1,
                                       "userAgent": "vdcos-operator"}]})
    with pytest.raises(client.ApiException) as refused:
        operator.patch_namespaced_config_map("settings", "default", {"data": {"value": "2"}})
    assert refused.value.status == 409
    assert json.loads(str(refused.value.body)) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": CONFLICT_MESSAGE, "reason": "Conflict", "code": 409,
        "details": {"name": "settings", "kind": "configmaps"}}
    # The refused write changed nothing; another client's write goes through.
    assert operator.read_namespaced_config_map("settings", "default").data == {"value": "1"}
    no_faults.kubectl("patch", "configmap", "settings", "-n", "default", "--type", "merge",
                      "-p", '{"data":{"value":"3"}}')
    assert operator.read_namespaced_config_map("settings", "default").data == {"value": "3"}
    assert get_faults(no_faults)["injected"]["409"] >= 1


def test_throttled_writes_say_when_to_retry(no_faults: DevCluster) -> None:
    api = core(no_faults, "tester")
    put_faults(no_faults, {"errors": [{"code": 429, "share": 1, "retryAfterSeconds": 7,
                                       "userAgent": "tester"}]})
    with pytest.raises(client.ApiException) as refused:
        config_map(api, "throttled")
    assert refused.value.status == 429
    assert refused.value.headers is not None
    assert refused.value.headers["Retry-After"] == "7"
    body = json.loads(str(refused.value.body))
    assert (body["reason"], body["message"], body["details"]) == (
        "TooManyRequests", "Too many requests, please try again later.",
        {"retryAfterSeconds": 7})
    put_faults(no_faults, {"errors": []})
    with pytest.raises(client.ApiException) as missing:
        api.read_namespaced_config_map("throttled", "default")
    assert missing.value.status == 404


def test_watches_end_cleanly_at_the_cut(no_faults: DevCluster) -> None:
    before = get_faults(no_faults)["watchCuts"]
    put_faults(no_faults, {"errors": [], "watchCut": {"seconds": 1}})
    api = core(no_faults, "tester")
    config_map(api, "watched")
    # The client asks for 300 s; the stream ends after the cut, without an error event.
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        api.list_namespaced_config_map, "default", timeout_seconds=300, _request_timeout=60)
    events = list(stream)
    assert "ERROR" not in [event["type"] for event in events]
    assert "watched" in [event["object"].metadata.name for event in events]
    put_faults(no_faults, {"errors": []})
    assert get_faults(no_faults)["watchCuts"] == before + 1


def test_the_next_commits_fail_and_leave_nothing(no_faults: DevCluster) -> None:
    put_faults(no_faults, {"errors": [], "failNextCommits": 2})
    assert get_faults(no_faults)["failNextCommitsLeft"] == 2
    api = core(no_faults, "tester")
    for name in ("lost-1", "lost-2"):
        with pytest.raises(client.ApiException) as failed:
            config_map(api, name)
        assert failed.value.status == 500
    config_map(api, "kept")
    names = {item.metadata.name for item in api.list_namespaced_config_map("default").items}
    assert "kept" in names and not names & {"lost-1", "lost-2"}
    assert get_faults(no_faults)["failNextCommitsLeft"] == 0


def _put(cluster: DevCluster, body: bytes, token: str) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(cluster.url + "/debug/devcluster/faults", data=body,
                                     method="PUT", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(("settings", "message"), [
    ({"errors": [{"code": 418, "share": 1}]}, "errors[0].code: must be one of 409, 429, 500, 503"),
    ({"errors": [{"code": 409, "share": 1.5}]}, "errors[0].share: must be a number from 0 to 1"),
    ({"errors": [{"code": 409, "share": 1, "verbs": ["create"]}]},
     "errors[0].verbs: 409 Conflict is answered to writes of one named object only"),
    ({"errors": [{"code": 429, "share": 1, "retryAfterSeconds": "soon"}]},
     "errors[0].retryAfterSeconds: must be a whole number of seconds"),
    ({"watchCut": {"seconds": 0}}, "watchCut.seconds: must be a positive number of seconds"),
    ({"errors": [{"code": 500, "share": 1, "midStream": True}]},
     "errors[0].midStream: breaks watch streams only"),
    ({"errors": [], "failEvery": 3}, 'failEvery: unknown field "failEvery"'),
    ({"failNextCommits": -1}, "failNextCommits: must be a whole number, 0 or more"),
])
def test_bad_settings_are_refused_naming_the_field(
    no_faults: DevCluster, settings: dict[str, Any], message: str,
) -> None:
    code, status = _put(no_faults, json.dumps(settings).encode(), no_faults.token)
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"].startswith(message), status
    assert get_faults(no_faults)["settings"]["errors"] == []


def test_only_an_admin_sets_faults(no_faults: DevCluster) -> None:
    no_faults.kubectl("create", "serviceaccount", "chaos-monkey", "-n", "default")
    token = no_faults.kubectl("create", "token", "chaos-monkey", "-n", "default").stdout.strip()
    code, status = _put(no_faults, b'{"errors": [{"code": 500, "share": 1}]}', token)
    assert code == 403 and status["reason"] == "Forbidden"
    assert get_faults(no_faults)["settings"]["errors"] == []
