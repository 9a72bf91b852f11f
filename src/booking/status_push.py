"""The live status push: a booking's status change sent to its subscribers through AppSync.

The functions that change a status (Notify Booking for CONFIRMED and CANCELLED, Cancel Booking for
CANCELLING) call the IAM-only `publishBookingStatus` mutation, signed with their role's credentials
(SigV4); AppSync hands its answer to every `onBookingStatusChanged` subscriber of that booking. A push
is a courtesy to a waiting client, not part of the booking: it is tried a few times, then counted
(`FailedStatusPush`) and given up, and never fails the step that called it (decision 0011). The
client that missed it still reads the truth with getBooking.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from booking.observability import count, logger

PUBLISH = (
    "mutation($i: BookingStatusChangeInput!) { publishBookingStatus(input: $i) "
    "{ id customer status bookingReference reason occurredAt sequence } }"
)
ATTEMPTS = 3
TIMEOUT_SECONDS = 4.0
"""How long one attempt waits for AppSync's answer when the caller gives no deadline. With a deadline
(`push(deadline=…)`, Notify Booking's and Cancel Booking's: 1.5 s before the function's timeout), an
attempt waits until the deadline: a slow AppSync still gets its answer in, and the push never
outlives the function that makes it. An attempt AppSync refused (an error answer, a refused
connection) is tried again; one left unanswered is not, since it may have reached the subscribers
already and a second would push the change twice: it is counted as failed."""
MINIMUM_ATTEMPT_SECONDS = 0.2
"""An attempt with less time than this left before the deadline is not started."""


class PushRefused(Exception):
    """AppSync answered with errors (or not at all): this attempt did not reach the subscribers."""


class StatusPusher:
    """Signs and sends `publishBookingStatus` to the stack's GraphQL endpoint."""

    def __init__(self, url: str, region: str | None = None) -> None:
        self.url = url
        self.region = region or os.environ.get("AWS_REGION") or "us-east-1"
        self._credentials: Any = None

    def push(
        self,
        booking_id: str,
        customer: str,
        status: str,
        *,
        booking_reference: str | None = None,
        reason: str | None = None,
        occurred_at: str | None = None,
        sequence: int | None = None,
        deadline: float | None = None,
    ) -> bool:
        """True when AppSync took the change; False (counted, logged) when every attempt failed or the
        time ran out. `occurred_at` and `sequence` are the transition's (`booking.lifecycle`);
        `deadline` (a `time.monotonic()` value) is when the caller must be done."""
        change = {
            "id": booking_id,
            "customer": customer,
            "status": status,
            "bookingReference": booking_reference,
            "reason": reason,
            "occurredAt": occurred_at
            or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "sequence": sequence,
        }
        body = json.dumps({"query": PUBLISH, "variables": {"i": change}}).encode()
        problem = "no time left before the deadline"
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.1 * 2**attempt))
            timeout = TIMEOUT_SECONDS if deadline is None else deadline - time.monotonic()
            if timeout < MINIMUM_ATTEMPT_SECONDS:
                break
            try:
                self._send(body, timeout)
            except (PushRefused, OSError, ValueError) as error:
                problem = str(error)[:300]
                if _unanswered(error):
                    break
                continue
            logger.info("status pushed", status=status)
            return True
        count("FailedStatusPush")
        logger.warning(
            "status push failed; subscribers read it with getBooking", status=status, problem=problem
        )
        return False

    def _send(self, body: bytes, timeout: float = TIMEOUT_SECONDS) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            import botocore.session

            self._credentials = botocore.session.get_session().get_credentials()
        request = AWSRequest(
            method="POST", url=self.url, data=body, headers={"Content-Type": "application/json"}
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), "appsync", self.region).add_auth(request)
        sent = urllib.request.Request(
            self.url, data=body, headers=dict(request.headers.items()), method="POST"
        )
        try:
            with urllib.request.urlopen(sent, timeout=timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise PushRefused(f"HTTP {error.code}: {error.read()[:200]!r}") from None
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if (
            errors
            or not isinstance(answer, dict)
            or not (answer.get("data") or {}).get("publishBookingStatus")
        ):
            first = (errors or [{}])[0]
            raise PushRefused(f"{first.get('errorType')}: {first.get('message')}")


def _unanswered(error: Exception) -> bool:
    """A timeout: the push may have arrived, so repeating it could deliver the change twice."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, TimeoutError)
