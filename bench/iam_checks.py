"""What the offline IAM (offline/iam.py, decision 0012) costs: once per deployment, and per checked call.

Every call a function or a state machine makes is turned into IAM requests (`calls`) and decided
against its role (`OfflineIam.authorize`); this times both, in place, over real bookings and
cancellations. A denied call is an error (the template's policies must allow what the code does);
the timings have no goal set yet. Run: `.venv/bin/python bench/iam_checks.py [--quick]`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import boto3  # noqa: E402
from goals import Goals, add_quick_option  # noqa: E402

from offline import iam  # noqa: E402
from offline.stack import OfflineStack  # noqa: E402
from offline.template import REGION  # noqa: E402

BOOKINGS = 20
QUICK_BOOKINGS = 2
NO_GOAL = "none set: the checks' cost is watched, not bounded yet"
timings: dict[str, list[float]] = {"calls": [], "authorize": []}


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timings[name].append(time.perf_counter() - start)

    return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_quick_option(parser)
    args = parser.parse_args()
    bookings = QUICK_BOOKINGS if args.quick else BOOKINGS
    goals = Goals(quick=args.quick)
    iam.calls = _timed("calls", iam.calls)  # type: ignore[assignment]
    iam.OfflineIam.authorize = _timed("authorize", iam.OfflineIam.authorize)  # type: ignore[method-assign]
    with (
        contextlib.redirect_stdout(io.StringIO()),
        OfflineStack(fast_retries=True, sandboxes="preloaded") as stack,
    ):
        start = time.perf_counter()
        stack.roles.load(boto3.client("iam", region_name=REGION))
        load = time.perf_counter() - start
        stack.put_flight("F1", seats=bookings)
        alice = stack.tokens.mint("bench-sub")
        for _ in range(bookings):
            card = f"tok_visa_{uuid.uuid4().hex[:8]}"
            answer = stack.graphql(
                "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id } }",
                {"i": {"paymentToken": card, "bookingOutboundFlightId": "F1"}},
                token=alice,
            )
            booking_id = answer["data"]["processBooking"]["id"]
            stack.wait(stack.execution_arn("ProcessBooking", booking_id))
            stack.graphql(
                "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id } }",
                {"i": {"id": booking_id}},
                token=alice,
            )
            stack.wait(stack.execution_arn("CancelBookingSaga", booking_id))
        denials = stack.iam_denials()
    if denials:
        print("error: calls the template's policies do not allow:", *denials, sep="\n  ", file=sys.stderr)
        return 1
    checked = len(timings["authorize"])
    per_call = [a * 1e6 for a in timings["authorize"]]
    parse = [c * 1e6 for c in timings["calls"]]
    print(f"roles compiled from IAM (get_account_authorization_details): {load * 1e3:.1f} ms")
    print(f"{bookings} bookings + cancellations through the API: {checked} calls checked, 0 denied")
    total = (sum(timings["authorize"]) + sum(timings["calls"])) / bookings
    goals.without_goal("roles compiled per deployment", load * 1e3, "ms", digits=1, why=NO_GOAL)
    goals.without_goal("checked calls per booking + cancellation", checked / bookings, digits=1, why=NO_GOAL)
    goals.without_goal("deciding a call, median", statistics.median(per_call), "µs", digits=1, why=NO_GOAL)
    goals.without_goal("reading a request, median", statistics.median(parse), "µs", digits=1, why=NO_GOAL)
    goals.without_goal("per booking + cancellation, in all", total * 1e3, "ms", why=NO_GOAL)
    return goals.exit_status()


if __name__ == "__main__":
    sys.exit(main())
