"""What the offline IAM (offline/iam.py, decision 0012) costs: once per deployment, and per checked call.

Every call a function or a state machine makes is turned into IAM requests (`calls`) and decided
against its role (`OfflineIam.authorize`); this times both, in place, over real bookings and
cancellations. Run: `.venv/bin/python bench/iam_checks.py`.
"""

from __future__ import annotations

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

from offline import iam  # noqa: E402
from offline.stack import OfflineStack  # noqa: E402
from offline.template import REGION  # noqa: E402

BOOKINGS = 20
timings: dict[str, list[float]] = {"calls": [], "authorize": []}


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timings[name].append(time.perf_counter() - start)

    return timed


def main() -> None:
    iam.calls = _timed("calls", iam.calls)  # type: ignore[assignment]
    iam.OfflineIam.authorize = _timed("authorize", iam.OfflineIam.authorize)  # type: ignore[method-assign]
    with contextlib.redirect_stdout(io.StringIO()), OfflineStack(fast_retries=True) as stack:
        start = time.perf_counter()
        stack.roles.load(boto3.client("iam", region_name=REGION))
        load = time.perf_counter() - start
        stack.put_flight("F1", seats=BOOKINGS)
        alice = stack.tokens.mint("bench-sub")
        for _ in range(BOOKINGS):
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
    checked = len(timings["authorize"])
    per_call = [a * 1e6 for a in timings["authorize"]]
    parse = [c * 1e6 for c in timings["calls"]]
    print(f"roles compiled from IAM (get_account_authorization_details): {load * 1e3:.1f} ms")
    print(
        f"{BOOKINGS} bookings + cancellations through the API: {checked} calls checked, {len(denials)} denied"
    )
    print(f"  per booking and its cancellation: {checked / BOOKINGS:.1f} checked calls")
    print(
        f"  per call, deciding (authorize): median {statistics.median(per_call):.1f} µs, "
        f"p95 {statistics.quantiles(per_call, n=20)[18]:.1f} µs"
    )
    print(
        f"  per call, reading the request (calls): median {statistics.median(parse):.1f} µs, "
        f"p95 {statistics.quantiles(parse, n=20)[18]:.1f} µs"
    )
    total = (sum(timings["authorize"]) + sum(timings["calls"])) / BOOKINGS
    print(f"  total per booking and its cancellation: {total * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
