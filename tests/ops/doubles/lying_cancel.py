"""Cancel Booking done wrong: answers `cancelled` and writes nothing. Only the status check of
`dlq redrive` (reading the booking row) can tell."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"status": "cancelled"}
