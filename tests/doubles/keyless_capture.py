"""Collect Payment done wrong: a new Idempotency-Key at every attempt instead of one per booking.

A retry after a capture whose answer was lost then asks the Payment API for a second capture of the
same charge, which the API refuses (`already_captured`): the booking that was paid is cancelled and
refunded. The real handler's per-booking key makes the retry read the first capture back.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "src"))

from booking.handlers import collect_payment

collect_payment.capture_key = lambda booking_id: f"booking-{booking_id}-capture-{uuid.uuid4().hex}"
handler = collect_payment.handler
