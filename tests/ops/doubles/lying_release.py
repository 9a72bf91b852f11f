"""Release Flight Seat done wrong: answers `released` and gives nothing back. Only the seat check of
`dlq redrive` (reading the flight's `heldBy`) can tell; the function's answer cannot."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"status": "released"}
