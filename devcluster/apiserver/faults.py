"""Faults devcluster injects on purpose, so that clients (first of all the operator) are tested
against a server that misbehaves as real ones do: writes answered 409 Conflict or 429 Too Many
Requests (with Retry-After), any request answered 500, watches cut every N seconds.

Not a Kubernetes API: set with the `--fault-*` flags of `python -m devcluster` (and `vdcos
up`), read and replaced by an admin at FAULTS_PATH (GET; PUT with the JSON `to_json` gives).
A faulted request is refused before it touches the store, as kube-apiserver's filters refuse
it: it changed nothing.
"""

from __future__ import annotations

import collections
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import web

from . import errors
from .authn import UserInfo
from .errors import ApiError
from .rbac import Attributes

FAULTS_PATH: Final = "/debug/devcluster/faults"

WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})
#: The verbs kube-apiserver answers "the object has been modified" for: a write to one named
#: object whose resourceVersion (or delete precondition) no longer holds.
CONFLICT_VERBS: Final = frozenset({"update", "patch", "delete"})
KNOWN_VERBS: Final = WRITE_VERBS | {"get", "list", "watch"}
#: The codes a fault can answer, with the reason kube's Status gives each.
REASONS: Final = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError",
                  503: "ServiceUnavailable"}
CONFLICT_WHY: Final = ("the object has been modified; please apply your changes to the latest "
                       "version and try again")
# What kube-apiserver's max-in-flight filter answers (with Retry-After: 1).
TOO_MANY_REQUESTS_MESSAGE: Final = "Too many requests, please try again later."


@dataclass(frozen=True)
class ErrorFault:
    """Answer a share of the matching requests with `code` instead of serving them."""

    code: int
    share: float
    verbs: frozenset[str] = WRITE_VERBS
    #: only this client: the User-Agent's product token ("vdcos-operator", "kopf"); "" all.
    user_agent: str = ""
    #: only this resource, "group/plural" ("vdcos.io/virtualmachines", "pods": its
    #: subresources too) or "group/plural/subresource"; "" all.
    resource: str = ""
    retry_after_seconds: int = 1  # 429 only
    message: str = "injected fault"  # 500 and 503 only
    #: watches only: answer 200, then break the stream before any event, as a server that
    #: cannot encode what it replays does (the client sees a payload cut short, no Status).
    mid_stream: bool = False

    def matches(self, agent: str, attributes: Attributes) -> bool:
        if self.user_agent and agent != self.user_agent:
            return False
        if attributes.verb not in self.verbs:
            return False
        if self.resource:
            plural = (f"{attributes.group}/{attributes.resource}" if attributes.group
                      else attributes.resource)
            return self.resource in (plural, f"{plural}/{attributes.subresource}")
        return True

    def error(self, attributes: Attributes) -> ApiError:
        """The Status kube-apiserver answers for this code, worded as it words it."""
        if self.code == 409:
            return errors.stale_resource_version(attributes.resource, attributes.group,
                                                 attributes.name)
        if self.code == 429:
            return ApiError(429, REASONS[429], TOO_MANY_REQUESTS_MESSAGE,
                            {"retryAfterSeconds": self.retry_after_seconds},
                            retry_after_seconds=self.retry_after_seconds)
        return ApiError(self.code, REASONS[self.code], self.message)


@dataclass(frozen=True)
class WatchCut:
    """End every matching watch after `seconds`, cleanly, as a server-side timeout ends it."""

    seconds: float
    user_agent: str = ""


@dataclass(frozen=True)
class FaultSettings:
    errors: tuple[ErrorFault, ...] = ()
    watch_cut: WatchCut | None = None
    #: seeds the draws of `share`, so that a test run can be repeated; None: random.
    seed: int | None = None
    #: the next K writes fail as failed commits do (Store.fail_next_commits); a countdown
    #: the store keeps, so setting it again restarts the count.
    fail_next_commits: int = 0


class CommitFaults(Protocol):
    """The store's side of "fail the next K commits" (devcluster/apiserver/store.py)."""

    def fail_next_commits(self, count: int) -> None: ...

    @property
    def injected_faults_left(self) -> int: ...


class FaultInjector:
    """The faults in force, and how many of each were served (for tests' figures)."""

    def __init__(self, settings: FaultSettings | None = None,
                 commit_faults: CommitFaults | None = None) -> None:
        self.settings = FaultSettings()
        self._commit_faults = commit_faults
        self._random = random.Random()
        self.injected: collections.Counter[int] = collections.Counter()
        self.watch_cuts = 0
        self.broken_watches = 0
        self.configure(settings or FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)
        if self._commit_faults is not None:
            self._commit_faults.fail_next_commits(settings.fail_next_commits)

    def check(self, agent: str, attributes: Attributes) -> bool:
        """Raise the first fault that matches this request and whose draw comes up; True
        when that fault breaks the watch stream after its headers instead."""
        if not attributes.resource_request:
            return False
        for fault in self.settings.errors:
            if fault.matches(agent, attributes) and self._random.random() < fault.share:
                self.injected[fault.code] += 1
                if fault.mid_stream:
                    self.broken_watches += 1
                    return True
                raise fault.error(attributes)
        return False

    def watch_seconds(self, agent: str, requested: float | None) -> tuple[float | None, bool]:
        """How long a watch may run, and whether that is the cut (not the client's timeout)."""
        cut = self.settings.watch_cut
        if cut is None or (cut.user_agent and agent != cut.user_agent):
            return requested, False
        if requested is not None and requested <= cut.seconds:
            return requested, False
        return cut.seconds, True

    def record_watch_cut(self) -> None:
        self.watch_cuts += 1

    def to_json(self) -> dict[str, Any]:
        return {"settings": settings_to_json(self.settings),
                "injected": {str(code): count for code, count in sorted(self.injected.items())},
                "watchCuts": self.watch_cuts, "brokenWatches": self.broken_watches,
                "failNextCommitsLeft": (self._commit_faults.injected_faults_left
                                        if self._commit_faults is not None else 0)}


# ---- JSON ---------------------------------------------------------------------------------


def settings_to_json(settings: FaultSettings) -> dict[str, Any]:
    found: dict[str, Any] = {"errors": [_error_to_json(fault) for fault in settings.errors]}
    if settings.watch_cut is not None:
        found["watchCut"] = {"seconds": settings.watch_cut.seconds,
                             "userAgent": settings.watch_cut.user_agent}
    if settings.seed is not None:
        found["seed"] = settings.seed
    if settings.fail_next_commits:
        found["failNextCommits"] = settings.fail_next_commits
    return found


def _error_to_json(fault: ErrorFault) -> dict[str, Any]:
    found: dict[str, Any] = {"code": fault.code, "share": fault.share,
                             "verbs": sorted(fault.verbs), "userAgent": fault.user_agent,
                             "resource": fault.resource}
    if fault.code == 429:
        found["retryAfterSeconds"] = fault.retry_after_seconds
    if fault.code >= 500:
        found["message"] = fault.message
    if fault.mid_stream:
        found["midStream"] = True
    return found


def settings_from_json(body: Any) -> FaultSettings:
    """The settings a PUT gives; a 400 naming the field for anything else."""
    if not isinstance(body, Mapping):
        raise errors.bad_request("fault settings must be a JSON object")
    _no_unknown(body, "", {"errors", "watchCut", "seed", "failNextCommits"})
    listed = body.get("errors", [])
    if not isinstance(listed, list):
        raise errors.bad_request("errors: must be a list")
    faults = tuple(_error_from_json(item, f"errors[{index}]") for index, item in
                   enumerate(listed))
    watch_cut = None
    if body.get("watchCut") is not None:
        raw = body["watchCut"]
        if not isinstance(raw, Mapping):
            raise errors.bad_request("watchCut: must be an object")
        _no_unknown(raw, "watchCut.", {"seconds", "userAgent"})
        watch_cut = WatchCut(_positive(raw.get("seconds"), "watchCut.seconds"),
                             _string(raw.get("userAgent", ""), "watchCut.userAgent"))
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise errors.bad_request(f"seed: must be an integer, not {seed!r}")
    fail_next_commits = body.get("failNextCommits", 0)
    if (not isinstance(fail_next_commits, int) or isinstance(fail_next_commits, bool)
            or fail_next_commits < 0):
        raise errors.bad_request(
            f"failNextCommits: must be a whole number, 0 or more, not {fail_next_commits!r}")
    return FaultSettings(faults, watch_cut, seed, fail_next_commits)


def _error_from_json(raw: Any, where: str) -> ErrorFault:
    if not isinstance(raw, Mapping):
        raise errors.bad_request(f"{where}: must be an object")
    _no_unknown(raw, f"{where}.", {"code", "share", "verbs", "userAgent", "resource",
                                   "retryAfterSeconds", "message", "midStream"})
    code = raw.get("code")
    if code not in REASONS:
        raise errors.bad_request(
            f"{where}.code: must be one of {', '.join(map(str, REASONS))}, not {code!r}")
    share = raw.get("share")
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
        raise errors.bad_request(f"{where}.share: must be a number from 0 to 1, not {share!r}")
    default_verbs = CONFLICT_VERBS if code == 409 else WRITE_VERBS
    verbs = raw.get("verbs", sorted(default_verbs))
    if not isinstance(verbs, list) or not verbs or not set(verbs) <= KNOWN_VERBS:
        raise errors.bad_request(
            f"{where}.verbs: must be a non-empty list of {', '.join(sorted(KNOWN_VERBS))}, "
            f"not {verbs!r}")
    if code == 409 and not set(verbs) <= CONFLICT_VERBS:
        raise errors.bad_request(
            f"{where}.verbs: 409 Conflict is answered to writes of one named object only "
            f"({', '.join(sorted(CONFLICT_VERBS))}), not {verbs!r}")
    mid_stream = raw.get("midStream", False)
    if not isinstance(mid_stream, bool):
        raise errors.bad_request(f"{where}.midStream: must be true or false, not {mid_stream!r}")
    if mid_stream and verbs != ["watch"]:
        raise errors.bad_request(
            f'{where}.midStream: breaks watch streams only: verbs must be ["watch"], '
            f"not {verbs!r}")
    retry_after = raw.get("retryAfterSeconds", 1)
    if not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0:
        raise errors.bad_request(
            f"{where}.retryAfterSeconds: must be a whole number of seconds, not {retry_after!r}")
    return ErrorFault(int(code), float(share), frozenset(verbs),
                      _string(raw.get("userAgent", ""), f"{where}.userAgent"),
                      _string(raw.get("resource", ""), f"{where}.resource"),
                      retry_after, _string(raw.get("message", "injected fault"),
                                           f"{where}.message"), mid_stream)


def _no_unknown(raw: Mapping[str, Any], prefix: str, known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise errors.bad_request(f'{prefix}{unknown[0]}: unknown field "{unknown[0]}"')


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise errors.bad_request(f"{where}: must be a string, not {value!r}")
    return value


def _positive(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise errors.bad_request(f"{where}: must be a positive number of seconds, not {value!r}")
    return float(value)


# ---- the flags ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultFlags:
    """What `python -m devcluster --fault-*` asked for (devcluster/options.py)."""

    conflict_share: float = 0.0
    throttle_share: float = 0.0
    retry_after_seconds: int = 1
    user_agent: str = ""
    watch_cut_seconds: float | None = None
    watch_cut_user_agent: str = ""
    seed: int | None = None


def settings_from_flags(flags: FaultFlags) -> FaultSettings:
    faults: list[ErrorFault] = []
    if flags.conflict_share > 0:
        faults.append(ErrorFault(409, flags.conflict_share, CONFLICT_VERBS, flags.user_agent))
    if flags.throttle_share > 0:
        faults.append(ErrorFault(429, flags.throttle_share, WRITE_VERBS, flags.user_agent,
                                 retry_after_seconds=flags.retry_after_seconds))
    watch_cut = (WatchCut(flags.watch_cut_seconds, flags.watch_cut_user_agent)
                 if flags.watch_cut_seconds else None)
    return FaultSettings(tuple(faults), watch_cut, flags.seed)


def describe(settings: FaultSettings) -> list[str]:
    """One line per fault in force, for the server's output."""
    lines = []
    for fault in settings.errors:
        client = f" by {fault.user_agent}" if fault.user_agent else ""
        resource = f" of {fault.resource}" if fault.resource else ""
        lines.append(f"Injecting faults: {fault.code} {REASONS[fault.code]} to "
                     f"{fault.share:.0%} of {', '.join(sorted(fault.verbs))}{resource}{client}")
    if settings.watch_cut is not None:
        client = f" of {settings.watch_cut.user_agent}" if settings.watch_cut.user_agent else ""
        lines.append(f"Injecting faults: watches{client} cut after "
                     f"{settings.watch_cut.seconds:g}s")
    return lines


def break_stream(request: web.Request) -> None:
    """End a prepared watch response without its last chunk: the client reads a payload
    cut short (aiohttp: ClientPayloadError), as when the server fails mid-stream."""
    if request.transport is not None:
        request.transport.close()


# ---- the endpoint -------------------------------------------------------------------------


async def serve_faults(injector: FaultInjector, request: web.Request,
                       user: UserInfo) -> web.Response:
    """GET: the faults in force and the counts served; PUT: replace them (admin only)."""
    if not user.privileged:
        raise errors.forbidden(f'User "{user.name}" cannot {request.method.lower()} path '
                               f'"{FAULTS_PATH}": only an admin sets devcluster\'s faults')
    if request.method == "PUT":
        try:
            body = json.loads(await request.read())
        except ValueError as error:
            raise errors.bad_request(f"error decoding fault settings: {error}") from error
        injector.configure(settings_from_json(body))
    elif request.method != "GET":
        raise errors.method_not_allowed(f"{FAULTS_PATH} answers GET and PUT only")
    return web.json_response(injector.to_json())


__all__ = ["FAULTS_PATH", "ErrorFault", "FaultFlags", "FaultInjector", "FaultSettings",
           "WatchCut", "break_stream", "describe", "serve_faults", "settings_from_flags",
           "settings_from_json"]
