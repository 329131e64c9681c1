"""Authentication and authorization of every request, and the built-in auth APIs.

`AccessControl` is what the server calls: `authenticate` (bearer token and impersonation
headers -> UserInfo), `check` (RBAC on the request, 403 with kube's message), and the handlers
of:
- authorization.k8s.io/v1 SelfSubjectAccessReview, SubjectAccessReview,
  LocalSubjectAccessReview, SelfSubjectRulesReview (`kubectl auth can-i [--list]`);
- authentication.k8s.io/v1 SelfSubjectReview (`kubectl auth whoami`) and TokenReview;
- the `serviceaccounts/token` TokenRequest subresource (`kubectl create token`).

The RBAC index is rebuilt lazily, on the first request after any Role, RoleBinding,
ClusterRole or ClusterRoleBinding event; decisions are cached until then. Requests of
system:masters never reach RBAC.

kubectl sends these review and token requests as protobuf; the few messages they use are
decoded here (field numbers from k8s.io/api authorization/v1 and authentication/v1
generated.proto).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import web

from . import errors
from .authn import (
    API_AUDIENCE,
    Authenticator,
    HeaderSource,
    TokenSigner,
    UserInfo,
    impersonation,
    load_or_create_signing_key,
    wants_impersonation,
)
from .body_decoding import PROTOBUF, decode_body
from .errors import Cause
from .protobuf import PROTOBUF_MAGIC, ProtobufError, decode_message, read_wire_fields
from .rbac import Attributes, Decision, RbacPolicy, forbidden
from .rbac_admission import set_requesting_user
from .request_info import request_attributes
from .resources import Registry, ResourceType
from .store import Event, Store
from .typed_bodies import decode_typed
from .wire_values import MAX_REQUEST_BYTES

USER_KEY = "devcluster.user"  # where the middleware leaves the caller's UserInfo
SERVICE_ACCOUNTS_KEY = ("", "serviceaccounts")
_RBAC_KEYS = frozenset({("rbac.authorization.k8s.io", plural) for plural in
                        ("roles", "rolebindings", "clusterroles", "clusterrolebindings")})
AUTHORIZATION_GROUP = "authorization.k8s.io"
AUTHENTICATION_GROUP = "authentication.k8s.io"
DEFAULT_TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600
MAX_TOKEN_SECONDS = 1 << 32
_DECISION_CACHE_LIMIT = 10_000


class TargetLike(Protocol):
    """The part of server.Target the handlers read."""

    @property
    def namespace(self) -> str | None: ...

    @property
    def name(self) -> str: ...


Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServedApi:
    group: str
    version: str
    resources: list[ResourceType]
    handler: Handler


def _review_type(group: str, kind: str, plural: str, namespaced: bool = False) -> ResourceType:
    return ResourceType(group=group, version="v1", kind=kind, plural=plural,
                        singular=kind.lower(), namespaced=namespaced, list_kind=f"{kind}List",
                        verbs=("create",), builtin=True)


_AUTHORIZATION_TYPES = {
    "selfsubjectaccessreviews": _review_type(AUTHORIZATION_GROUP, "SelfSubjectAccessReview",
                                             "selfsubjectaccessreviews"),
    "subjectaccessreviews": _review_type(AUTHORIZATION_GROUP, "SubjectAccessReview",
                                         "subjectaccessreviews"),
    "localsubjectaccessreviews": _review_type(AUTHORIZATION_GROUP, "LocalSubjectAccessReview",
                                              "localsubjectaccessreviews", namespaced=True),
    "selfsubjectrulesreviews": _review_type(AUTHORIZATION_GROUP, "SelfSubjectRulesReview",
                                            "selfsubjectrulesreviews"),
}
_AUTHENTICATION_KINDS = frozenset({"SelfSubjectReview", "TokenReview", "TokenRequest"})
_AUTHENTICATION_TYPES = {
    "selfsubjectreviews": _review_type(AUTHENTICATION_GROUP, "SelfSubjectReview",
                                       "selfsubjectreviews"),
    "tokenreviews": _review_type(AUTHENTICATION_GROUP, "TokenReview", "tokenreviews"),
}


class AccessControl:
    def __init__(self, store: Store, registry: Registry, admin_token: str,
                 data_dir: Path | None) -> None:
        self.store = store
        self.registry = registry
        self.signer = TokenSigner(load_or_create_signing_key(data_dir))
        self.authenticator = Authenticator(admin_token, self.signer, self._service_account_uid)
        self._policy: RbacPolicy | None = None
        self._decisions: dict[tuple[Any, ...], Decision] = {}
        store.on_event(self._on_event)
        service_accounts = registry.get("", "v1", "serviceaccounts")
        if service_accounts is not None and "token" not in service_accounts.subresources:
            registry.add(replace(service_accounts,
                                 subresources=service_accounts.subresources | {"token"}))

    # ---- per request -------------------------------------------------------------------

    def authenticate(self, headers: Any) -> UserInfo:
        """The caller (after impersonation); ApiError 401 without a valid credential, 403 when
        impersonation is not allowed."""
        user = self.authenticator.authenticate(headers.get("Authorization", ""), time.time())
        if user is None:
            raise errors.unauthorized()
        if not wants_impersonation(list(headers.keys())):
            return user
        requested = impersonation(HeaderSource(list(headers.items())))
        if requested is None:
            return user
        for check in requested.checks:
            attributes = Attributes(user, "impersonate", group=check.group,
                                    resource=check.resource, subresource=check.subresource,
                                    namespace=check.namespace, name=check.name)
            decision = self.authorize(attributes)
            if not decision.allowed:
                raise forbidden(attributes, decision.reason)
        return requested.user

    def check(self, user: UserInfo, method: str, path: str, query: Any) -> None:
        """Raise kube's 403 unless RBAC allows this request."""
        set_requesting_user(user)  # for the escalation checks of RBAC writes
        if user.privileged:
            return
        attributes = request_attributes(user, method, path, query)
        decision = self.authorize(attributes)
        if not decision.allowed:
            raise forbidden(attributes, decision.reason)

    def authorize(self, attributes: Attributes) -> Decision:
        if attributes.user.privileged:
            return Decision(True)
        policy = self.policy()
        user = attributes.user
        key = (user.name, user.groups, attributes.verb, attributes.resource_request,
               attributes.group, attributes.resource, attributes.subresource,
               attributes.namespace, attributes.name, attributes.path)
        decision = self._decisions.get(key)
        if decision is None:
            decision = policy.authorize(attributes)
            if len(self._decisions) >= _DECISION_CACHE_LIMIT:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def policy(self) -> RbacPolicy:
        if self._policy is None:
            rbac = "rbac.authorization.k8s.io"
            self._policy = RbacPolicy.build(
                self.store.list((rbac, "roles")), self.store.list((rbac, "rolebindings")),
                self.store.list((rbac, "clusterroles")),
                self.store.list((rbac, "clusterrolebindings")))
            self._decisions = {}
        return self._policy

    def _on_event(self, event: Event) -> None:
        if event.key in _RBAC_KEYS:
            self._policy = None

    def _service_account_uid(self, namespace: str, name: str) -> str | None:
        account = self.store.get(SERVICE_ACCOUNTS_KEY, namespace, name)
        return None if account is None else str(account["metadata"].get("uid", ""))

    # ---- the APIs ----------------------------------------------------------------------

    def served_apis(self) -> list[ServedApi]:
        return [
            ServedApi(AUTHORIZATION_GROUP, "v1", list(_AUTHORIZATION_TYPES.values()),
                      self._authorization_api),
            ServedApi(AUTHENTICATION_GROUP, "v1", list(_AUTHENTICATION_TYPES.values()),
                      self._authentication_api),
        ]

    async def _authorization_api(self, request: web.Request, target: Any) -> web.Response:
        body = await _create_body(request, target.resource.kind)
        user: UserInfo = request[USER_KEY]
        resource = target.resource.plural
        if target.name:
            raise errors.method_not_allowed("POST is not allowed on a named object")
        spec = body.get("spec") or {}
        kind = target.resource.kind
        if resource == "selfsubjectrulesreviews":
            return _created(self._rules_review(user, body))
        subject = user if resource == "selfsubjectaccessreviews" else _subject_of(kind, spec)
        namespace = target.namespace if resource == "localsubjectaccessreviews" else None
        attributes = _review_attributes(kind, subject, spec, namespace)
        decision = self.authorize(attributes)
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return _created(_review_answer(kind, AUTHORIZATION_GROUP, body, status))

    def _rules_review(self, user: UserInfo, body: dict[str, Any]) -> dict[str, Any]:
        namespace = (body.get("spec") or {}).get("namespace", "")
        rules, problems = self.policy().rules_for(user, namespace)
        resource_rules = [
            {"verbs": rule.get("verbs") or [],
             **{key: rule[key] for key in ("apiGroups", "resources", "resourceNames")
                if rule.get(key)}}
            for rule in rules if rule.get("resources")]
        non_resource_rules = [
            {"verbs": rule.get("verbs") or [], "nonResourceURLs": rule["nonResourceURLs"]}
            for rule in rules if rule.get("nonResourceURLs")]
        status: dict[str, Any] = {"resourceRules": resource_rules,
                                  "nonResourceRules": non_resource_rules,
                                  "incomplete": False}
        if problems:
            status["evaluationError"] = "; ".join(problems)
        return _review_answer("SelfSubjectRulesReview", AUTHORIZATION_GROUP, body, status)

    async def _authentication_api(self, request: web.Request, target: Any) -> web.Response:
        body = await _create_body(request, target.resource.kind)
        user: UserInfo = request[USER_KEY]
        if target.resource.plural == "selfsubjectreviews":
            answer = _review_answer("SelfSubjectReview", AUTHENTICATION_GROUP, body,
                                    {"userInfo": user.to_dict()})
            answer.pop("spec", None)
            return _created(answer)
        token = str((body.get("spec") or {}).get("token", ""))
        reviewed = self.authenticator.authenticate(f"Bearer {token}", time.time())
        status: dict[str, Any] = {"user": {}, "error": "invalid bearer token"}
        if reviewed is not None:
            status = {"authenticated": True, "user": reviewed.to_dict(),
                      "audiences": [API_AUDIENCE]}
        return _created(_review_answer("TokenReview", AUTHENTICATION_GROUP, body, status))

    async def create_token(self, request: web.Request, target: TargetLike) -> web.Response:
        """POST serviceaccounts/<name>/token: a signed token for that ServiceAccount."""
        body = await _create_body(request, "TokenRequest")
        namespace, name = target.namespace or "", target.name
        account = self.store.get(SERVICE_ACCOUNTS_KEY, namespace, name)
        if account is None:
            raise errors.not_found("serviceaccounts", "", name)
        spec = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS
        if seconds < MIN_TOKEN_SECONDS:
            raise errors.invalid("TokenRequest", AUTHENTICATION_GROUP, name, [Cause(
                "spec.expirationSeconds",
                f"Invalid value: {seconds}: may not specify a duration less than 10 minutes")])
        if seconds > MAX_TOKEN_SECONDS:
            raise errors.invalid("TokenRequest", AUTHENTICATION_GROUP, name, [Cause(
                "spec.expirationSeconds",
                f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds")])
        audiences = list(spec.get("audiences") or [API_AUDIENCE])
        now = int(time.time())
        issued = self.signer.issue(namespace, name, str(account["metadata"].get("uid", "")),
                                   audiences, seconds, now)
        return _created({
            "kind": "TokenRequest", "apiVersion": f"{AUTHENTICATION_GROUP}/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "creationTimestamp": _rfc3339(now)},
            "spec": {"audiences": audiences, "expirationSeconds": seconds,
                     "boundObjectRef": spec.get("boundObjectRef")},
            "status": {"token": issued.token,
                       "expirationTimestamp": _rfc3339(issued.expires_at)},
        })


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _created(obj: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=201, content_type="application/json")


def _review_answer(kind: str, group: str, body: dict[str, Any],
                   status: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": f"{group}/v1",
            "metadata": {**(body.get("metadata") or {}), "creationTimestamp": None},
            "spec": body.get("spec") or {}, "status": status}


def _subject_of(kind: str, spec: dict[str, Any]) -> UserInfo:
    user, groups = str(spec.get("user") or ""), tuple(spec.get("groups") or ())
    if not user and not groups:
        raise errors.invalid(kind, AUTHORIZATION_GROUP, "", [Cause(
            "spec.user", 'Invalid value: "": at least one of user or group must be specified')])
    extra = {str(k): tuple(v or ()) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(user, groups, str(spec.get("uid") or ""), extra)


def _review_attributes(kind: str, user: UserInfo, spec: dict[str, Any],
                       namespace: str | None) -> Attributes:
    resource: dict[str, Any] = spec.get("resourceAttributes") or {}
    non_resource: dict[str, Any] = spec.get("nonResourceAttributes") or {}
    if bool(resource) == bool(non_resource):
        raise errors.invalid(kind, AUTHORIZATION_GROUP, "", [Cause(
            "spec.resourceAttributes",
            "Invalid value: exactly one of nonResourceAttributes or resourceAttributes must "
            "be specified")])
    if non_resource:
        return Attributes(user, str(non_resource.get("verb", "")), resource_request=False,
                          path=str(non_resource.get("path", "")))
    if namespace is not None:  # LocalSubjectAccessReview: the URL's namespace
        asked = resource.get("namespace") or namespace
        if asked != namespace:
            raise errors.bad_request(f"spec.resourceAttributes.namespace must match "
                                     f"namespace: {namespace}")
        resource = {**resource, "namespace": namespace}
    return Attributes(user, str(resource.get("verb", "")), group=str(resource.get("group", "")),
                      resource=str(resource.get("resource", "")),
                      subresource=str(resource.get("subresource", "")),
                      namespace=str(resource.get("namespace", "")),
                      name=str(resource.get("name", "")))


# ---- request bodies -----------------------------------------------------------------------


async def _create_body(request: web.Request, kind: str) -> dict[str, Any]:
    """The body of a POST, decoded as kube decodes it into `kind` (400 for a wrong type)."""
    if request.method != "POST":
        raise errors.method_not_allowed(f"the server does not allow this method: "
                                        f"{request.method}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise errors.request_entity_too_large(MAX_REQUEST_BYTES) from error
    content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
    if content_type == PROTOBUF:
        try:
            body: Any = decode_protobuf_review(raw)
        except (ValueError, ProtobufError) as error:
            raise errors.bad_request(f"error decoding the request body: {error}") from error
    elif raw.strip():
        body = decode_body(raw, content_type.strip())
    else:
        body = {}
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be an object")
    group = AUTHENTICATION_GROUP if kind in _AUTHENTICATION_KINDS else AUTHORIZATION_GROUP
    return decode_typed(body, group, "v1", kind)


# field number -> (JSON name, "string" | "int" | a message of _MESSAGES, repeated)
_Field = tuple[str, str, bool]
_METADATA: _Field = ("metadata", "meta.ObjectMeta", False)
_SUBJECT_ACCESS_REVIEW = {1: _METADATA, 2: ("spec", "SubjectAccessReviewSpec", False)}
_MESSAGES: dict[str, dict[int, _Field]] = {
    "SelfSubjectAccessReview": {1: _METADATA, 2: ("spec", "SelfSubjectAccessReviewSpec", False)},
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", False),
        2: ("nonResourceAttributes", "NonResourceAttributes", False)},
    "SubjectAccessReview": _SUBJECT_ACCESS_REVIEW,
    "LocalSubjectAccessReview": _SUBJECT_ACCESS_REVIEW,
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", False),
        2: ("nonResourceAttributes", "NonResourceAttributes", False),
        3: ("user", "string", False), 4: ("groups", "string", True),
        6: ("uid", "string", False)},
    "ResourceAttributes": {
        1: ("namespace", "string", False), 2: ("verb", "string", False),
        3: ("group", "string", False), 4: ("version", "string", False),
        5: ("resource", "string", False), 6: ("subresource", "string", False),
        7: ("name", "string", False)},
    "NonResourceAttributes": {1: ("path", "string", False), 2: ("verb", "string", False)},
    "SelfSubjectRulesReview": {1: _METADATA, 2: ("spec", "SelfSubjectRulesReviewSpec", False)},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string", False)},
    "SelfSubjectReview": {1: _METADATA},
    "TokenReview": {1: _METADATA, 2: ("spec", "TokenReviewSpec", False)},
    "TokenReviewSpec": {1: ("token", "string", False), 2: ("audiences", "string", True)},
    "TokenRequest": {1: _METADATA, 2: ("spec", "TokenRequestSpec", False)},
    "TokenRequestSpec": {
        1: ("audiences", "string", True), 4: ("expirationSeconds", "int", False),
        3: ("boundObjectRef", "BoundObjectReference", False)},
    "BoundObjectReference": {
        1: ("kind", "string", False), 2: ("apiVersion", "string", False),
        3: ("name", "string", False), 4: ("uid", "string", False)},
}


def _decode(message: str, data: bytes) -> dict[str, Any]:
    """Known fields only: status (filled by the server) and newer fields are skipped."""
    result: dict[str, Any] = {}
    for field in read_wire_fields(data):
        spec = _MESSAGES[message].get(field.number)
        if spec is None:
            continue
        json_name, kind, repeated = spec
        value: Any
        if kind == "int":
            if not isinstance(field.value, int):
                raise ProtobufError(f"{message}.{json_name}: expected a varint")
            value = field.value
        elif not isinstance(field.value, bytes):
            raise ProtobufError(f"{message}.{json_name}: expected a length-delimited field")
        elif kind == "string":
            value = field.value.decode("utf-8")
        elif kind == _METADATA[1]:
            value = decode_message(kind, field.value)
        else:
            value = _decode(kind, field.value)
        if repeated:
            result.setdefault(json_name, []).append(value)
        elif value not in ("", {}) or kind == "int":
            result[json_name] = value
    return result


def decode_protobuf_review(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded review or TokenRequest (the `k8s\\0` runtime.Unknown envelope)."""
    if not body.startswith(PROTOBUF_MAGIC):
        raise ProtobufError("the body does not start with the k8s\\x00 magic")
    api_version = kind = ""
    raw = b""
    for field in read_wire_fields(body[len(PROTOBUF_MAGIC):]):
        if field.number == 1 and isinstance(field.value, bytes):
            for type_field in read_wire_fields(field.value):
                if isinstance(type_field.value, bytes):
                    text = type_field.value.decode("utf-8")
                    if type_field.number == 1:
                        api_version = text
                    elif type_field.number == 2:
                        kind = text
        elif field.number == 2 and isinstance(field.value, bytes):
            raw = field.value
    if kind not in _MESSAGES:
        raise ProtobufError(f"kind {kind!r} is not decoded here")
    return {"apiVersion": api_version, "kind": kind, **_decode(kind, raw)}
