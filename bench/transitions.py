"""State transitions per booking outcome, and per cancellation, read from the execution history.

A Standard workflow bills every state transition, so the confirmed path is kept as short as the
saga's rules allow (goal: a customer's cancellation ≤ 6). Run: `make bench` (or
`.venv/bin/python bench/transitions.py`).
"""

from __future__ import annotations

import contextlib
import io
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from offline.stack import OfflineStack  # noqa: E402


def main() -> None:
    scenarios = [
        ("confirmed", "F1", "tok_visa"),
        ("card declined", "F1", "tok_chargeDeclined"),
        ("flight full", "FULL", "tok_visa"),
        ("payment API down twice", "F1", "tok_processingError"),
    ]
    rows = []
    # The functions' own logs and metrics go to stdout: keep them out of the figures.
    with contextlib.redirect_stdout(io.StringIO()), OfflineStack(fast_retries=True) as stack:
        stack.put_flight("F1", seats=10)
        stack.put_flight("FULL", seats=0, maximum=10)
        for label, flight, prefix in scenarios:
            booking_id = str(uuid.uuid4())
            token = f"{prefix}_{uuid.uuid4().hex[:8]}"
            arn = stack.start_booking(booking_id, customer="bench", flight_id=flight, token=token)
            status = stack.wait(arn)["status"]
            states = stack.states_entered(arn)
            rows.append(f"{label:<24} {status:<10} {len(states):>11}  {' → '.join(states)}")
        for label, outage in [("cancelled by customer", False), ("cancel, refund fails", True)]:
            arn = _cancellation(stack, outage)
            states = stack.states_entered(arn)
            status = stack.sfn.describe_execution(executionArn=arn)["status"]
            rows.append(f"{label:<24} {status:<10} {len(states):>11}  {' → '.join(states)}")
    print(f"{'outcome':<24} {'status':<10} {'transitions':>11}  states")
    print("\n".join(rows))


def _cancellation(stack: OfflineStack, outage: bool) -> str:
    """Book and confirm through the API, then cancel (with the Payment API down if `outage`)."""
    token = stack.tokens.mint(f"bench-{uuid.uuid4().hex[:8]}")
    booked = stack.graphql(
        "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id } }",
        {"i": {"paymentToken": f"tok_visa_{uuid.uuid4().hex[:8]}", "bookingOutboundFlightId": "F1"}},
        token=token,
    )
    booking_id = booked["data"]["processBooking"]["id"]
    stack.wait(stack.execution_arn("ProcessBooking", booking_id))
    stack.gateway.set_outage(outage)
    stack.graphql(
        "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id } }",
        {"i": {"id": booking_id}},
        token=token,
    )
    arn = stack.execution_arn("CancelBookingSaga", booking_id)
    stack.wait(arn)
    stack.gateway.set_outage(False)
    return arn


if __name__ == "__main__":
    main()
