"""A saga step held at a gate: the booking saga stays where it is while a test acts, then goes on.

A test creates `gate_path(booking_id)` before the booking starts; the step waits while that file
exists (at most HOLD_SECONDS, under the functions' 10 s timeout) and then does exactly what the real
function does. So "a cancellation while the booking saga runs" is a state the test holds, not a
race it hopes to win. Runs in the function's own sandbox, with its environment.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

HOLD_SECONDS = 8.0


def gate_path(booking_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"booking-gate-{booking_id}"


def _wait(event: dict[str, Any]) -> None:
    deadline = time.monotonic() + HOLD_SECONDS
    while gate_path(str(event.get("bookingId"))).exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def reserve_flight(event: dict[str, Any], context: Any) -> Any:
    """Reserve Flight behind the gate: no booking row exists yet."""
    _wait(event)
    from booking.handlers.reserve_flight import handler

    return handler(event, context)


def confirm_booking(event: dict[str, Any], context: Any) -> Any:
    """Confirm Booking behind the gate: the row is UNCONFIRMED and the payment captured."""
    _wait(event)
    from booking.handlers.confirm_booking import handler

    return handler(event, context)


def notify_booking(event: dict[str, Any], context: Any) -> Any:
    """Notify Booking behind the gate: the booking is CONFIRMED, its saga still running."""
    _wait(event)
    from booking.handlers.notify_booking import handler

    return handler(event, context)
