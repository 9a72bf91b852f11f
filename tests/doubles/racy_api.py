"""The Api function with its two booking writes done wrong: check, pause, then write unconditionally.

It is `booking.handlers.api` exactly, except that `BookingRepository.request_cancellation` (the
recorded cancellation) and `set_checked_in` (check-in) pause and then write with no condition: a
cancellation and a check-in that read the same CONFIRMED booking both win, the race the real writes'
conditions (`updatedAt` as read, `checkedIn = false`, no other request) rule out.
tests/saga/test_cancellation.py runs its race against this double, where its check must fail.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from booking import bookings

PAUSE_SECONDS = 0.3


def _request_cancellation(
    self: bookings.BookingRepository, booking_id: str, key: str, requested_by: str, seen_updated_at: str
) -> bool:
    time.sleep(PAUSE_SECONDS)
    self._client.update_item(
        TableName=self._table,
        Key={"id": {"S": booking_id}},
        UpdateExpression="SET cancellationKey = :key, cancellationRequestedBy = :by, updatedAt = :now",
        ExpressionAttributeValues={":key": {"S": key}, ":by": {"S": requested_by}, ":now": {"S": "racy"}},
    )
    return True


def _set_checked_in(
    self: bookings.BookingRepository, booking_id: str, checked_in: bool, seen_updated_at: str
) -> bool:
    time.sleep(PAUSE_SECONDS)
    self._client.update_item(
        TableName=self._table,
        Key={"id": {"S": booking_id}},
        UpdateExpression="SET checkedIn = :checked_in, updatedAt = :now",
        ExpressionAttributeValues={":checked_in": {"BOOL": checked_in}, ":now": {"S": "racy"}},
    )
    return True


bookings.BookingRepository.request_cancellation = _request_cancellation  # type: ignore[method-assign]
bookings.BookingRepository.set_checked_in = _set_checked_in  # type: ignore[method-assign]

from booking.handlers.api import handler as _handler  # noqa: E402


def handler(event: Any, context: Any) -> Any:
    return _handler(event, context)
