"""Alibaba Cloud's ACS3-HMAC-SHA256 request signature (the V3 signature the dysmsapi SDK sends), checked
from the request as received — what the Aliyun fake does with every call, so a request our provider
builds wrongly fails in tests as it would at Aliyun.

The signed string is ``ACS3-HMAC-SHA256`` and the hex SHA-256 of the canonical request: method, path,
the query sorted by name with values percent-encoded (``~`` kept), the signed headers (lower-cased names,
sorted, values trimmed), their names joined by ``;``, and the hex SHA-256 of the body (also sent as
``x-acs-content-sha256``).  ``Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=…,
Signature=<hex HMAC-SHA256 with the AccessKeySecret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"
_AUTH = re.compile(rf"^{ALGORITHM} Credential=([^,]+),SignedHeaders=([^,]*),Signature=([0-9a-f]{{64}})$")
REQUIRED_HEADERS = ("host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce")


class SignatureError(Exception):
    """The request is not signed by a known key (``code`` as Aliyun names it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed: list[str],
    body_hash: str,
) -> str:
    canonical_query = "&".join(f"{name}={quote(query[name], safe='~')}" for name in sorted(query))
    lowered = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered.get(name, '').strip()}\n" for name in signed)
    return f"{method}\n{path or '/'}\n{canonical_query}\n{canonical_headers}\n{';'.join(signed)}\n{body_hash}"


def sign(secret: str, canonical: str) -> str:
    to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
) -> str:
    """The AccessKeyId that signed the request; :class:`SignatureError` when none did."""
    match = _AUTH.match(headers.get("Authorization", "") or headers.get("authorization", ""))
    if match is None:
        raise SignatureError("MissingAuthorization", "Authorization header missing or not ACS3-HMAC-SHA256")
    key_id, signed_names, signature = match.groups()
    signed = signed_names.split(";") if signed_names else []
    if signed != sorted(signed) or any(name not in signed for name in REQUIRED_HEADERS):
        raise SignatureError(
            "IncompleteSignature", "the signed headers must include " + ", ".join(REQUIRED_HEADERS)
        )
    body_hash = hashlib.sha256(body).hexdigest()
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("x-acs-content-sha256", body_hash) != body_hash:
        raise SignatureError("InvalidPayloadHash", "x-acs-content-sha256 does not match the body")
    secret = secrets.get(key_id)
    if secret is None:
        raise SignatureError("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    expected = sign(secret, canonical_request(method, path, query, headers, signed, body_hash))
    if not hmac.compare_digest(expected, signature):
        raise SignatureError("SignatureDoesNotMatch", "Specified signature does not match our calculation.")
    return key_id
