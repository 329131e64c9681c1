"""The flags of `python -m devcluster`, shared with `python -m devcluster.sim` and `vdcos up`.

Kept apart from serve.py so that reading them (e.g. for `vdcos --help`) imports nothing of
the API server, and so that a supervisor can pass what it was given on to its children.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

DEFAULT_STATE_DIR = Path(".vdcos")
# kube-apiserver's deadlines on reading requests (apiserver/connection_limits.py applies
# them); here so that reading the flags imports nothing of the API server.
HEADER_SECONDS = 32.0
BODY_SECONDS = 60.0
IDLE_SECONDS = 90.0


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0,
                        help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--kubeconfig", type=Path, default=DEFAULT_STATE_DIR / "kubeconfig",
                        help="where to write the kubeconfig (default: .vdcos/kubeconfig)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep objects in SQLite here (default: in memory)")
    parser.add_argument("--token", default=None, help="bearer token (default: random)")
    parser.add_argument("--watch-history", type=int, default=1000,
                        help="events kept per resource for watch replay before 410 Gone")
    parser.add_argument("--request-header-seconds", type=float, default=HEADER_SECONDS,
                        help="close a connection whose request headers take longer "
                             f"(kube-apiserver's ReadHeaderTimeout: {HEADER_SECONDS:g})")
    parser.add_argument("--request-body-seconds", type=float, default=BODY_SECONDS,
                        help="close a connection whose request body takes longer after its "
                             f"headers (kube-apiserver's request timeout: {BODY_SECONDS:g})")
    parser.add_argument("--idle-connection-seconds", type=float, default=IDLE_SECONDS,
                        help="close a keep-alive connection idle this long between requests "
                             f"(kube-apiserver's IdleTimeout: {IDLE_SECONDS:g})")
    add_fault_arguments(parser)


# ---- faults injected on purpose (devcluster/apiserver/faults.py) -------------------------
# Server flags, so that they reach the API server process. Also settable at run time by an
# admin: GET/PUT /debug/devcluster/faults.


def share(text: str) -> float:
    """A share of requests: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, not {text!r}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def whole_seconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds, not {text!r}")
    return int(text)


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("faults (for testing clients against a hostile server)")
    faults.add_argument("--fault-conflict-share", type=share, default=0.0, metavar="SHARE",
                        help="answer this share (0-1) of updates, patches and deletes with "
                             "409 Conflict (\"the object has been modified\")")
    faults.add_argument("--fault-throttle-share", type=share, default=0.0, metavar="SHARE",
                        help="answer this share (0-1) of writes with 429 Too Many Requests")
    faults.add_argument("--fault-retry-after-seconds", type=whole_seconds, default=1,
                        metavar="SECONDS",
                        help="the Retry-After of those 429s (default 1)")
    faults.add_argument("--fault-user-agent", default="", metavar="PRODUCT",
                        help="fault only this client's writes: its User-Agent product, "
                             "e.g. vdcos-operator (default: every client)")
    faults.add_argument("--fault-watch-cut-seconds", type=positive_seconds, default=None,
                        metavar="SECONDS",
                        help="end every watch after this long, as a server timeout ends it")
    faults.add_argument("--fault-watch-cut-user-agent", default="", metavar="PRODUCT",
                        help="cut only this client's watches, e.g. kopf (default: every "
                             "client)")
    faults.add_argument("--fault-seed", type=int, default=None, metavar="N",
                        help="seed the draws of the shares, to repeat a run")
    faults.add_argument("--fail-next-commits", type=int, default=0, metavar="K",
                        help="once the server is up, the next K writes fail as failed commits "
                             "do (500, nothing kept; default 0)")


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", type=int, default=3, help="simulated hosts (default 3)")
    parser.add_argument("--host-cpu", default="32", help="CPU cores per host (default 32)")
    parser.add_argument("--host-memory", default="128Gi", help="memory per host")
    parser.add_argument("--node-grace-seconds", type=float, default=50.0,
                        help="seconds without heartbeat before a host turns NotReady "
                             "(Kubernetes 1.32 default: 50)")
    parser.add_argument("--host-pods", type=int, default=110,
                        help="pods per host (kubelet maxPods, default 110)")
    parser.add_argument("--zones", type=int, default=1,
                        help="spread hosts over this many zones (zone-a, zone-b, ...)")
    parser.add_argument("--node-status-seconds", type=float, default=10.0,
                        help="kubelet lease renewal period (default 10)")
    parser.add_argument("--node-monitor-seconds", type=float, default=5.0,
                        help="node lifecycle controller check period (default 5)")
    parser.add_argument("--pod-gc-seconds", type=float, default=20.0,
                        help="PodGC period: force-delete pods of out-of-service hosts "
                             "(default 20)")
    parser.add_argument("--virt-handler-heartbeat-seconds", type=float, default=60.0,
                        help="virt-handler Node heartbeat period (KubeVirt default: 60)")
    parser.add_argument("--virt-handler-timeout-seconds", type=float, default=300.0,
                        help="heartbeat age after which virt-controller fails the VMIs of a "
                             "host whose launcher pods are gone (KubeVirt default: 300)")
    parser.add_argument("--vmi-start-seconds", type=float, default=0.5,
                        help="time a guest takes to boot once its pod runs (default 0.5)")
    parser.add_argument("--migration-seconds", type=float, default=1.0,
                        help="fixed part of a live migration: target start and handover "
                             "(default 1); the guest memory copy adds to it")
    parser.add_argument("--migration-bandwidth-gbps", type=float, default=10.0,
                        help="live migration network in Gb/s: guest memory is copied at "
                             "this rate (default 10: 8 GiB in about 7 s)")
    parser.add_argument("--volume-migration-mbps", type=float, default=1000.0,
                        help="storage live migration (Storage vMotion) copies a volume at "
                             "this rate in MB/s (default 1000: 100 GiB in about 107 s)")
    parser.add_argument("--import-seconds", type=float, default=2.0,
                        help="time a DataVolume import takes (default 2)")
    parser.add_argument("--clone-csi-seconds", type=float, default=3.0,
                        help="time a CSI clone or snapshot clone takes, whatever the size "
                             "(copy-on-write in the storage; default 3)")
    parser.add_argument("--clone-copy-mbps", type=float, default=200.0,
                        help="rate of a host-assisted (copy) clone in MB/s: a 10 GiB image "
                             "takes about 54 s at the default 200")
    parser.add_argument("--nmstate-apply-seconds", type=float, default=1.0,
                        help="time nmstate takes to apply a policy on a host (default 1)")
    parser.add_argument("--nmstate-retry-seconds", type=float, default=1.0,
                        help="first backoff after a failed nmstate apply, doubling up to "
                             "30 s over 5 tries (nmstate default: 1)")


def forward_arguments(args: argparse.Namespace,
                      add_arguments: Callable[[argparse.ArgumentParser], None]) -> list[str]:
    """The command line that gives a child process the values `args` holds for the flags
    `add_arguments` defines (all of them, defaults too: the child then sees what we saw)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    argv: list[str] = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        flag = action.option_strings[-1] if action.option_strings else ""
        if not flag or value is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            argv += [flag] if value else []
        else:
            argv += [flag, str(value)]
    return argv
