"""200 concurrent bookings while every status push to AppSync takes 4 s: each booking's event once,
no page for nothing, no authorisation left held.

Before the lifecycle work, a slow push made Notify Booking time out inside its idempotent section and
publish the same event up to four times, and 16 of 200 bookings paged a human (`NotificationMissing`
in the DLQ) although their event had been delivered. This run reproduces that load and counts what
the customers and the pager would see:

- events published per booking on the booking topic (each booking: exactly 1, its outcome);
- status pushes per booking and status (each exactly 1: a 4 s push is inside Notify's deadline, and
  a push is never repeated);
- false `NotificationMissing`: a DLQ message for a booking whose event was published (goal 0), and
  DLQ messages of any kind (goal 0: nothing in this run needs a human);
- authorisations held: cards pre-authorised by the front end that the Payment API neither captured
  nor released once every saga has ended (goal 0).

A tenth of the bookings are refused (the flight has fewer seats than bookings), so the released
authorisations count as well as the captured ones. All 200 sagas start at once. Lambda would run a
sandbox for each concurrent invocation; offline, Notify Booking gets up to `SANDBOXES` (its
invocations wait 4 s each) and the other functions `OTHER_SANDBOXES` (the offline default: more
processes than that only share the same 2 cores). An invocation's wait for a free sandbox is the
laptop's, and a task's timeout leaves it out, as `offline.stepfunctions` says.

`--quick`: 8 bookings, a 1 s push; the same figures, not judged.

Run: `make bench` (or `.venv/bin/python bench/notify_load.py [--quick]`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import logging
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from goals import Goals, add_quick_option  # noqa: E402

from offline.stack import OfflineStack  # noqa: E402

BOOKINGS, QUICK_BOOKINGS = 200, 8
PUSH_SECONDS, QUICK_PUSH_SECONDS = 4.0, 1.0
SANDBOXES = 60
OTHER_SANDBOXES = 4
REFUSED_SHARE = 10
"""One booking in REFUSED_SHARE finds the flight full."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_quick_option(parser)
    parser.add_argument("--bookings", type=int, help=f"concurrent bookings (default {BOOKINGS})")
    parser.add_argument("--push-seconds", type=float, help=f"each push's wait (default {PUSH_SECONDS:g})")
    parser.add_argument("--sandboxes", type=int, default=SANDBOXES, help="Notify Booking's sandboxes at most")
    args = parser.parse_args()
    goals = Goals(quick=args.quick)
    count = args.bookings or (QUICK_BOOKINGS if args.quick else BOOKINGS)
    push_seconds = args.push_seconds or (QUICK_PUSH_SECONDS if args.quick else PUSH_SECONDS)
    seats = count - max(1, count // REFUSED_SHARE)
    logging.getLogger("moto").setLevel(logging.CRITICAL)

    pushes: collections.Counter[tuple[str, str]] = collections.Counter()
    lock = threading.Lock()
    # The functions' own logs and metrics go to stdout: keep them out of the figures.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        OfflineStack(fast_retries=True, sandboxes="preloaded") as stack,
    ):
        stack.lambdas.max_sandboxes = OTHER_SANDBOXES
        stack.lambdas.sandbox_limits["NotifyBookingFunction"] = args.sandboxes
        answer = stack.endpoint_app.graphql
        assert answer is not None

        def slow_push(body: bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
            request = json.loads(body)
            if "publishBookingStatus" in request.get("query", ""):
                time.sleep(push_seconds)  # AppSync slow to answer; the push still arrives
                change = request["variables"]["i"]
                with lock:
                    pushes[(change["id"], change["status"])] += 1
            return answer(body, **kwargs)

        stack.endpoint_app.graphql = slow_push
        stack.put_flight("F1", seats=seats, maximum=count)
        bookings = {str(uuid.uuid4()): f"tok_visa_{uuid.uuid4().hex[:12]}" for _ in range(count)}
        started = time.perf_counter()
        arns = [
            stack.start_booking(booking_id, customer=f"customer-{n}", flight_id="F1", token=token)
            for n, (booking_id, token) in enumerate(bookings.items())
        ]
        ended = [stack.wait(arn, timeout=1800) for arn in arns]
        outcomes = collections.Counter(execution["status"] for execution in ended)
        errors = collections.Counter(execution.get("error") for execution in ended if execution.get("error"))
        elapsed = time.perf_counter() - started
        events = collections.Counter(event["bookingId"] for event in stack.events())
        dlq = stack.dlq_messages()
        held = [
            token
            for token in bookings.values()
            if (charge := stack.gateway.ledger(token)) is None or charge.status == "authorised"
        ]

    missing = [message for message in dlq if message.get("kind") == "NotificationMissing"]
    false_pages = [message for message in missing if events[message.get("bookingId", "")] > 0]
    per_booking = collections.Counter(events[booking_id] for booking_id in bookings)
    repeated_pushes = sum(1 for seen in pushes.values() if seen > 1)
    pushed_statuses = collections.Counter(status for _, status in pushes)

    print(f"{count} concurrent bookings, {seats} seats, every status push {push_seconds:g} s")
    print(f"  sagas ended in {elapsed:.1f} s: " + ", ".join(f"{n} {s}" for s, n in sorted(outcomes.items())))
    print(
        "  events published per booking: "
        + ", ".join(f"{n} bookings {k}" for k, n in sorted(per_booking.items()))
    )
    if errors:
        print("  their errors: " + ", ".join(f"{n} {error}" for error, n in errors.most_common()))
    for message in dlq[:3]:
        print(f"  DLQ, for example: {json.dumps(message.get('error'))[:300]}")
    print(
        f"  status pushes: {sum(pushes.values())} for {len(pushes)} changes "
        f"({', '.join(f'{n} {status}' for status, n in sorted(pushed_statuses.items()))}); "
        f"DLQ messages: {len(dlq)}"
    )
    kinds = collections.Counter(f"{message.get('kind')} ({_error_name(message)})" for message in dlq)
    if kinds:
        print("  in the DLQ: " + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))
    if (outcomes["SUCCEEDED"], errors["FlightFull"]) != (seats, count - seats):
        print(
            f"error: {seats} bookings should confirm and the rest find the flight full: {dict(outcomes)}, "
            f"{dict(errors)}",
            file=sys.stderr,
        )
        return 1
    goals.at_most("events published per booking, most", max(per_booking), 1, digits=0)
    goals.at_least("events published per booking, fewest", min(per_booking), 1, digits=0)
    goals.at_most("status changes pushed more than once", repeated_pushes, 0, digits=0)
    goals.at_most("status changes never pushed", count - len(pushes), 0, digits=0)
    goals.at_most("false NotificationMissing in the DLQ", len(false_pages), 0, digits=0)
    goals.at_most("DLQ messages (nothing here needs a human)", len(dlq), 0, digits=0)
    goals.at_most("authorisations held after the end", len(held), 0, digits=0)
    return goals.exit_status()


def _error_name(message: dict[str, Any]) -> str:
    error = message.get("error")
    return str(error.get("Error", "?") if isinstance(error, dict) else error)


if __name__ == "__main__":
    sys.exit(main())
