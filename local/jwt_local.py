"""HS256 JSON Web Tokens for the local stack (stdlib only).

The local gateway's JWT authorizer accepts tokens signed with LOCAL_JWT_SECRET (default
`local-development-only`), issuer `local`, audience `commerce` (API.md, "Locally"). In AWS
the same role is played by a Cognito user pool and API Gateway's JWT authorizer.

    mint(sub, email=None, groups=None, ttl_seconds=3600, now=None, secret=None) -> str
    verify(token, now=None, secret=None) -> dict of claims, or raises TokenError(reason)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time

DEFAULT_SECRET = "local-development-only"
ISSUER = "local"
AUDIENCE = "commerce"
ALGORITHM = "HS256"

# TokenError.reason values (stable: tests and the gateway's log lines use them).
MALFORMED = "malformed"
UNSUPPORTED_ALG = "unsupported alg"
BAD_SIGNATURE = "bad signature"
WRONG_ISSUER = "wrong issuer"
WRONG_AUDIENCE = "wrong audience"
EXPIRED = "expired"
NOT_YET_VALID = "not yet valid"
MISSING_SUB = "missing sub"

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class TokenError(Exception):
    """A token the authorizer must refuse; `reason` is one of the constants above."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def secret_from_env() -> str:
    return os.environ.get("LOCAL_JWT_SECRET") or DEFAULT_SECRET


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(part: str) -> bytes:
    if not _B64URL.match(part) or len(part) % 4 == 1:
        raise TokenError(MALFORMED)
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError(MALFORMED) from exc


def _json_object(part: str) -> dict:
    try:
        value = json.loads(_b64url_decode(part).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenError(MALFORMED) from exc
    if not isinstance(value, dict):
        raise TokenError(MALFORMED)
    return value


def _sign(signing_input: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _numeric_date(claims: dict, name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(MALFORMED)
    return value


def mint(
    sub: str,
    email: str | None = None,
    groups: list[str] | None = None,
    ttl_seconds: int = 3600,
    now: float | None = None,
    secret: str | None = None,
) -> str:
    """A signed token for `sub`; `groups` becomes the `cognito:groups` claim."""
    issued_at = int(_now(now))
    claims: dict = {"sub": sub}
    if email is not None:
        claims["email"] = email
    if groups is not None:
        claims["cognito:groups"] = list(groups)
    claims.update(
        iss=ISSUER,
        aud=AUDIENCE,
        iat=issued_at,
        exp=issued_at + int(ttl_seconds),
        token_use="id",
    )
    header = {"alg": ALGORITHM, "typ": "JWT"}
    signing_input = ".".join(
        _b64url_encode(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (header, claims)
    )
    signature = _sign(signing_input.encode("ascii"), secret or secret_from_env())
    return f"{signing_input}.{_b64url_encode(signature)}"


def verify(token: str, now: float | None = None, secret: str | None = None) -> dict:
    """The token's claims if it is valid now, else TokenError.

    Checked in this order: shape, algorithm (only HS256; `none` is refused), signature
    (constant-time), iss, aud (a string or a list that contains `commerce`), exp (optional;
    expired when exp <= now), nbf (not yet valid when nbf > now), sub (a non-empty string).
    """
    if not isinstance(token, str):
        raise TokenError(MALFORMED)
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise TokenError(MALFORMED)
    header = _json_object(parts[0])
    claims = _json_object(parts[1])
    signature = _b64url_decode(parts[2])

    if header.get("alg") != ALGORITHM:
        raise TokenError(UNSUPPORTED_ALG)
    expected = _sign(f"{parts[0]}.{parts[1]}".encode("ascii"), secret or secret_from_env())
    if not hmac.compare_digest(signature, expected):
        raise TokenError(BAD_SIGNATURE)

    if claims.get("iss") != ISSUER:
        raise TokenError(WRONG_ISSUER)
    aud = claims.get("aud")
    if not (aud == AUDIENCE or (isinstance(aud, list) and AUDIENCE in aud)):
        raise TokenError(WRONG_AUDIENCE)
    current = _now(now)
    exp = _numeric_date(claims, "exp")
    if exp is not None and exp <= current:
        raise TokenError(EXPIRED)
    nbf = _numeric_date(claims, "nbf")
    if nbf is not None and nbf > current:
        raise TokenError(NOT_YET_VALID)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenError(MISSING_SUB)
    return claims
