"""Opaque, signed page tokens.

A `nextToken` is DynamoDB's `LastEvaluatedKey` together with the query it belongs to (the scope:
which customer, which status), signed with HMAC-SHA256. A client can only hand back a token the
API issued for the same query: an altered token, or one issued for another customer's page, is
refused instead of reading from an arbitrary key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from booking.errors import BadRequest


class PageTokens:
    """Issues and checks `nextToken` values with one secret key."""

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        """`key` may be a function: it is called once, when the first token is issued or read."""
        self._key_source = key
        self._key: bytes | None = None

    def issue(self, scope: str, last_key: dict[str, Any] | None) -> str | None:
        """The token for the page after `last_key`, or None when this was the last page."""
        if not last_key:
            return None
        body = base64.urlsafe_b64encode(
            json.dumps({"s": scope, "k": last_key}, separators=(",", ":"), sort_keys=True).encode()
        ).decode()
        return f"{body}.{self._sign(body)}"

    def read(self, scope: str, token: str | None) -> dict[str, Any] | None:
        """The `ExclusiveStartKey` a token stands for; None for the first page."""
        if token is None:
            return None
        refused = BadRequest("nextToken is not a token this API issued")
        if not isinstance(token, str) or not token.isascii():
            raise refused  # signatures are hex and bodies base64: anything else was never issued here
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise refused
        try:
            payload = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            raise refused from None
        if not isinstance(payload, dict) or not isinstance(payload.get("k"), dict):
            raise refused
        if payload.get("s") != scope:
            raise BadRequest("nextToken belongs to another query; start again without it")
        start_key: dict[str, Any] = payload["k"]
        return start_key

    def _sign(self, body: str) -> str:
        if self._key is None:
            key = self._key_source() if callable(self._key_source) else self._key_source
            if len(key) < 32:
                raise ValueError("the page token key must be at least 32 bytes")
            self._key = key
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
