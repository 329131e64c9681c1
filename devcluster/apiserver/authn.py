"""Who is calling: the admin token, ServiceAccount tokens, and impersonation headers.

Identities follow kube-apiserver:
- the kubeconfig's admin token is user `kubernetes-admin` in `system:masters` (which bypasses
  authorization, as kube's privileged-group authorizer does) and `system:authenticated`;
- a ServiceAccount token is `system:serviceaccount:<ns>:<name>` in `system:serviceaccounts`,
  `system:serviceaccounts:<ns>` and `system:authenticated`, with the ServiceAccount's uid.

ServiceAccount tokens are JWTs shaped like kube's (the same claims: iss, sub, aud, exp, iat,
nbf, jti and the `kubernetes.io` claim with the namespace and the ServiceAccount's name and
uid) but signed with HS256 (HMAC-SHA256) under a random server key rather than RS256: only this
server verifies them, and HMAC needs no key pair. The key lives in `<data-dir>/sa-signing-key`
when there is a data dir (tokens outlive a restart), else in memory. A token is accepted while
it has not expired, names this server's audience, and its ServiceAccount still exists with the
same uid (a deleted and re-created ServiceAccount invalidates old tokens, as in kube).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

from ..private_files import private_directory, tighten, write_private
from .errors import ApiError

ADMIN_USER = "kubernetes-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
# What kind (and most clusters) use as issuer and API audience.
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
ISSUER = API_AUDIENCE
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
_SIGNING_KEY_FILE = "sa-signing-key"
_VERIFIED_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class UserInfo:
    """kube's user.Info: what the authorizer decides on."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def privileged(self) -> bool:
        """In system:masters: allowed everything without consulting RBAC."""
        return MASTERS in self.groups

    def to_dict(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo."""
        info: dict[str, Any] = {"username": self.name}
        if self.uid:
            info["uid"] = self.uid
        if self.groups:
            info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra.items()}
        return info


ADMIN = UserInfo(ADMIN_USER, (MASTERS, AUTHENTICATED))


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of `system:serviceaccount:<ns>:<name>`, None for other users."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    parts = username[len(SERVICE_ACCOUNT_PREFIX):].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}")


# ---- tokens -------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(_bytes_of(text) + b"=" * (-len(text) % 4))


def _bytes_of(text: str) -> bytes:
    """A header's text as the bytes the client sent (aiohttp keeps undecodable bytes as
    surrogates)."""
    return text.encode("utf-8", "surrogateescape")


def _text_of(text: str) -> str:
    """Text that can be signed: what the client sent, undecodable bytes replaced."""
    return _bytes_of(text).decode("utf-8", "replace")


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int  # unix seconds


class TokenSigner:
    """Issues and verifies ServiceAccount JWTs (HS256 under one server key)."""

    _HEADER = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"},
                                    separators=(",", ":")).encode())

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, signing_input: str) -> str:
        return _b64encode(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())

    def issue(self, namespace: str, name: str, uid: str, audiences: list[str],
              expiration_seconds: int, now: int) -> IssuedToken:
        expires_at = now + expiration_seconds
        claims = {
            "aud": audiences,
            "exp": expires_at,
            "iat": now,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {"namespace": namespace,
                              "serviceaccount": {"name": name, "uid": uid}},
            "nbf": now,
            "sub": service_account_username(namespace, name),
        }
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{self._HEADER}.{payload}"
        return IssuedToken(f"{signing_input}.{self._sign(signing_input)}", expires_at)

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this signer issued (signature only; the caller checks time)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        # As bytes: compare_digest refuses a str holding non-ASCII (`Bearer a.b.é`), and a
        # header aiohttp could not decode holds surrogates, which only this encoding keeps.
        expected = self._sign(_text_of(f"{parts[0]}.{parts[1]}")).encode("ascii")
        if not hmac.compare_digest(expected, _bytes_of(parts[2])):
            return None
        try:
            claims = orjson.loads(_b64decode(parts[1]))
        except (ValueError, binascii.Error):
            return None
        return claims if isinstance(claims, dict) else None


def load_or_create_signing_key(data_dir: Path | None) -> bytes:
    """The ServiceAccount token key, kept with the data so tokens survive a restart."""
    if data_dir is None:
        return secrets.token_bytes(32)
    path = data_dir / _SIGNING_KEY_FILE
    private_directory(data_dir)
    if path.exists():
        tighten(path)
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    write_private(path, key.hex().encode())  # 0600 from its first byte
    return key


# Looks up the uid of a ServiceAccount: None when it does not exist.
ServiceAccountUid = Callable[[str, str], str | None]


class Authenticator:
    """Bearer token -> UserInfo (None: not a valid credential, answer 401)."""

    def __init__(self, admin_token: str, signer: TokenSigner,
                 service_account_uid: ServiceAccountUid) -> None:
        self._admin_header = f"Bearer {admin_token}".encode()
        self._signer = signer
        self._service_account_uid = service_account_uid
        # Signature checks are the costly part; time and uid are checked on every request.
        self._verified: dict[str, dict[str, Any]] = {}

    def authenticate(self, authorization: str, now: float) -> UserInfo | None:
        if hmac.compare_digest(_bytes_of(authorization), self._admin_header):
            return ADMIN
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.authenticate_token(token.strip(), now)

    def authenticate_token(self, token: str, now: float) -> UserInfo | None:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._signer.verify(token)
            if claims is None:
                return None
            if len(self._verified) >= _VERIFIED_CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = claims
        return self._service_account_user(claims, now)

    def _service_account_user(self, claims: dict[str, Any], now: float) -> UserInfo | None:
        try:
            expires_at = float(claims["exp"])
            not_before = float(claims.get("nbf", 0))
            audiences = claims.get("aud") or []
            kube = claims["kubernetes.io"]
            namespace = str(kube["namespace"])
            name = str(kube["serviceaccount"]["name"])
            uid = str(kube["serviceaccount"]["uid"])
        except (KeyError, TypeError, ValueError):
            return None
        if now >= expires_at or now < not_before or API_AUDIENCE not in audiences:
            return None
        if self._service_account_uid(namespace, name) != uid:
            return None  # the ServiceAccount is gone (or was re-created): the token with it
        extra = {CREDENTIAL_ID: (f"JTI={claims.get('jti', '')}",)}
        return UserInfo(service_account_username(namespace, name),
                        (*service_account_groups(namespace), AUTHENTICATED), uid, extra)


# ---- impersonation ------------------------------------------------------------------------

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_EXTRA_PREFIX = "impersonate-extra-"


@dataclass(frozen=True)
class ImpersonationCheck:
    """One `impersonate` permission the requester needs (kube checks each in turn)."""

    group: str
    resource: str
    name: str
    namespace: str = ""
    subresource: str = ""


@dataclass(frozen=True)
class Impersonation:
    user: UserInfo
    checks: tuple[ImpersonationCheck, ...]


class HeaderSource:
    """What impersonation reads of the request headers (aiohttp's CIMultiDictProxy fits)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items

    def all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.items if key.lower() == lowered]


def wants_impersonation(header_names: list[str]) -> bool:
    return any(name.lower().startswith("impersonate-") for name in header_names)


def impersonation(headers: HeaderSource) -> Impersonation | None:
    """The identity the `Impersonate-*` headers ask for and the checks it needs; None when
    the request impersonates nobody. Raises ApiError 500 (as kube does) for groups, extras or
    a uid without a user."""
    users = headers.all(IMPERSONATE_USER)
    groups = headers.all(IMPERSONATE_GROUP)
    uids = headers.all(IMPERSONATE_UID)
    extras: dict[str, list[str]] = {}
    for key, value in headers.items:
        if key.lower().startswith(IMPERSONATE_EXTRA_PREFIX):
            extra_key = unquote(key[len(IMPERSONATE_EXTRA_PREFIX):]).lower()
            extras.setdefault(extra_key, []).append(value)
    if not (users or groups or uids or extras):
        return None
    if not users:
        raise ApiError(500, "InternalError",
                       "Internal error occurred: requested impersonation of groups, extras or "
                       "a uid without impersonating a user")
    username = users[0]
    checks: list[ImpersonationCheck] = []
    impersonated_groups: list[str] = []
    service_account = split_service_account_username(username)
    if service_account is not None:
        namespace, name = service_account
        checks.append(ImpersonationCheck("", "serviceaccounts", name, namespace))
        if not groups:
            # A ServiceAccount's groups are a fixed mapping: kube adds them when none are asked.
            impersonated_groups.extend(service_account_groups(namespace))
    else:
        checks.append(ImpersonationCheck("", "users", username))
    for group in groups:
        checks.append(ImpersonationCheck("", "groups", group))
        impersonated_groups.append(group)
    for extra_key, values in extras.items():
        for value in values:
            checks.append(ImpersonationCheck("authentication.k8s.io", "userextras", value,
                                             subresource=extra_key))
    uid = uids[0] if uids else ""
    if uid:
        checks.append(ImpersonationCheck("authentication.k8s.io", "uids", uid))
    if username != "system:anonymous" and not (
        AUTHENTICATED in impersonated_groups or UNAUTHENTICATED in impersonated_groups
    ):
        impersonated_groups.append(AUTHENTICATED)
    user = UserInfo(username, tuple(impersonated_groups), uid,
                    {key: tuple(values) for key, values in extras.items()})
    return Impersonation(user, tuple(checks))
