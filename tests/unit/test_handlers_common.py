"""Pure pieces shared by the controllers: the work queue, retries, status compare, caches."""

from __future__ import annotations

import asyncio

import aiohttp

from controllers.common.apply import build_event, status_changed, whole_status_patch
from controllers.common.caches import slim_pod
from controllers.common.kube import KubeError, resource_of, retriable
from controllers.storagepolicy.builders import count_disks, immutable_differences, mutable_patch
from kubekit.workqueue import WorkQueue


async def test_work_queue_coalesces_a_burst_into_one_reconcile() -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def reconcile(key: str) -> None:
        seen.append(key)
        done.set()

    queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=2)
    for _ in range(5):
        queue.enqueue("a", 0.01)
    queue.start()
    await asyncio.wait_for(done.wait(), 5)
    await queue.stop()
    assert seen == ["a"]


async def test_work_queue_runs_again_when_asked_while_running() -> None:
    runs: list[int] = []
    release = asyncio.Event()
    second = asyncio.Event()

    async def reconcile(key: str) -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            await release.wait()
        else:
            second.set()

    queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=2)
    queue.start()
    queue.enqueue("a")
    while not runs:
        await asyncio.sleep(0)
    queue.enqueue("a")  # while the first pass runs: one more pass afterwards, never two at once
    queue.enqueue("a")
    release.set()
    await asyncio.wait_for(second.wait(), 5)
    await queue.stop()
    assert runs == [0, 1]


async def test_work_queue_a_sooner_deadline_wins() -> None:
    """A key waiting out a long backoff runs at once when a new event asks sooner."""
    ran = asyncio.Event()

    async def reconcile(key: str) -> None:
        ran.set()

    queue: WorkQueue[str] = WorkQueue("test", reconcile, workers=1)
    queue.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    queue.enqueue("a", 3.0)
    queue.enqueue("a", 0.1)
    await asyncio.wait_for(ran.wait(), 2.0)
    await queue.stop()
    assert loop.time() - started < 1.0


def test_retries_follow_what_the_server_says() -> None:
    busy = KubeError(429, {"reason": "TooManyRequests"}, {"Retry-After": "1"})
    unavailable = KubeError(503, {"reason": "ServiceUnavailable"})
    assert retriable("POST", busy) and retriable("PATCH", busy)
    # A POST answered 503 without Retry-After may have created its object: not repeated.
    assert not retriable("POST", unavailable) and retriable("PATCH", unavailable)
    assert not retriable("PATCH", KubeError(409, {"reason": "Conflict"}))
    assert not retriable("GET", KubeError(404, {"reason": "NotFound"}))
    assert retriable("GET", aiohttp.ServerDisconnectedError())
    assert not retriable("POST", aiohttp.ServerDisconnectedError())


def test_whole_status_patch_removes_what_the_new_status_lacks() -> None:
    current = {"powerState": "PoweredOn", "host": "host-1", "conditions": []}
    desired = {"conditions": [{"type": "Ready", "status": "False"}]}
    assert whole_status_patch(current, desired) == {
        "powerState": None, "host": None, "conditions": desired["conditions"]}
    # After that write the status is exactly `desired`: the next pass sees no change.
    assert not status_changed(desired, desired)


def test_writes_are_counted_per_resource() -> None:
    assert resource_of("/apis/vdcos.io/v1alpha1/namespaces/a/virtualmachines/x/status") == (
        "virtualmachines/status")
    assert resource_of("/api/v1/namespaces/a/events") == "events"
    assert resource_of("/apis/storage.k8s.io/v1/storageclasses/gold") == "storageclasses"


def test_status_compare_ignores_what_the_server_drops() -> None:
    assert not status_changed({"powerState": "PoweredOff"},
                              {"powerState": "PoweredOff", "host": None, "ipAddresses": []})
    assert status_changed({"powerState": "PoweredOff", "host": "h"},
                          {"powerState": "PoweredOff", "host": None})


def test_event_names_the_object_it_concerns() -> None:
    event = build_event({"apiVersion": "vdcos.io/v1alpha1", "kind": "VirtualMachine",
                         "metadata": {"name": "web", "namespace": "prod", "uid": "u"}},
                        "Normal", "PoweringOff", "Powering off")
    assert event["metadata"]["namespace"] == "prod"
    assert event["metadata"]["name"].startswith("web.")
    assert event["involvedObject"]["uid"] == "u" and event["reason"] == "PoweringOff"
    # eventTime keeps microseconds, so two Events of one second keep their order.
    assert event["eventTime"].startswith(event["firstTimestamp"][:-1] + ".")


def test_storage_policy_counts_disks_including_the_default() -> None:
    specs = [{"disks": [{"name": "a"}, {"name": "b", "storagePolicyName": "gold"}]},
             {"disks": [{"name": "c", "storagePolicyName": "thin"}]}, {}]
    assert count_disks("thin", specs, default="thin") == 2
    assert count_disks("gold", specs, default="thin") == 1


def test_storage_class_changes_split_into_patchable_and_immutable() -> None:
    desired = {"metadata": {"labels": {"a": "1"}, "annotations": {"p": "Thick"}},
               "provisioner": "x", "reclaimPolicy": "Delete", "allowVolumeExpansion": True}
    live = {"metadata": {"labels": {"a": "1"}, "annotations": {"p": "Thin"}},
            "provisioner": "y", "reclaimPolicy": "Delete", "allowVolumeExpansion": False}
    assert immutable_differences(desired, live) == ["provisioner"]
    assert mutable_patch(desired, live) == {"metadata": {"annotations": {"p": "Thick"}},
                                            "allowVolumeExpansion": True}


def test_pods_keep_only_what_allocation_needs() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "h", "containers": [
        {"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}}}]},
        "status": {"phase": "Running", "podIP": "1.2.3.4"}}
    assert slim_pod(pod) == {"spec": {"nodeName": "h", "containers": [
        {"resources": {"requests": {"cpu": "1"}}}], "initContainers": [], "overhead": {}},
        "status": {"phase": "Running"}}


async def test_work_queue_honours_a_delay_asked_for_while_running() -> None:
    """A reconcile that postpones itself must not spin: its delay is kept."""
    runs: list[float] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    queue: WorkQueue[str]

    async def reconcile(key: str) -> None:
        runs.append(loop.time())
        if len(runs) == 1:
            queue.enqueue(key, 0.2)
        else:
            done.set()

    queue = WorkQueue("test", reconcile, workers=1)
    queue.start()
    queue.enqueue("a")
    await asyncio.wait_for(done.wait(), 5)
    await queue.stop()
    assert len(runs) == 2 and runs[1] - runs[0] >= 0.19
