"""CDI upload tokens: what cdi-apiserver signs for an UploadTokenRequest and the upload
proxy checks (`pkg/token`): a JWT naming the PVC, the operation Upload and the resource
persistentvolumeclaims, valid for five minutes. Signed here with HMAC-SHA256 (CDI signs
with its RSA key; only the two simulated components ever read the token)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

ISSUER = "cdi-apiserver"  # common.UploadTokenIssuer
LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 10  # uploadTokenLeeway


class InvalidToken(ValueError):
    pass


@dataclass(frozen=True)
class UploadTarget:
    namespace: str
    name: str


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UploadTokens:
    """Issues and checks upload tokens with one key, kept in memory."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _sign(self, signed: str) -> str:
        return _encode(hmac.new(self._key, signed.encode(), hashlib.sha256).digest())

    def issue(self, namespace: str, pvc_name: str, *, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        header = _encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _encode(json.dumps({
            "iss": ISSUER, "iat": issued, "nbf": issued, "exp": issued + LIFETIME_SECONDS,
            "operation": "Upload", "name": pvc_name, "namespace": namespace,
            "resource": {"group": "", "version": "v1", "resource": "persistentvolumeclaims"},
        }).encode())
        return f"{header}.{payload}.{self._sign(f'{header}.{payload}')}"

    def validate(self, token: str, *, now: float | None = None) -> UploadTarget:
        parts = token.split(".")
        if len(parts) != 3 or not hmac.compare_digest(parts[2], self._sign(".".join(parts[:2]))):
            raise InvalidToken("bad signature")
        try:
            claims = json.loads(_decode(parts[1]))
        except ValueError as error:
            raise InvalidToken("bad payload") from error
        moment = now if now is not None else time.time()
        if claims.get("iss") != ISSUER or moment > claims.get("exp", 0) + LEEWAY_SECONDS:
            raise InvalidToken("expired or not issued by cdi-apiserver")
        resource = claims.get("resource") or {}
        if claims.get("operation") != "Upload" or not claims.get("name") or \
                not claims.get("namespace") or \
                resource.get("resource") != "persistentvolumeclaims":
            raise InvalidToken("not an upload token for a PVC")
        return UploadTarget(namespace=str(claims["namespace"]), name=str(claims["name"]))
