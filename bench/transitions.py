"""State transitions per booking outcome, and per cancellation, read from the execution history.

A Standard workflow bills every state transition, so the confirmed path is kept as short as the
saga's rules allow. Goals: a confirmed booking ≤ 5 (README's bench table), a customer's
cancellation ≤ 6 (docs/decisions/0008). Every outcome must end as the saga says it does (a declined
card FAILED, the Payment API down twice SUCCEEDED…): one that does not is an error, not a figure.

Each outcome is one execution, so `--quick` runs the same six: a count of transitions needs no
samples. Sandboxes are forked from a preloaded process (`sandboxes="preloaded"`), as the test suite
runs them: how a sandbox starts changes no transition.

Run: `make bench` (or `.venv/bin/python bench/transitions.py [--quick]`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from goals import Goals, add_quick_option  # noqa: E402

from offline.stack import OfflineStack  # noqa: E402

CONFIRMED_GOAL = 5
CANCELLATION_GOAL = 6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_quick_option(parser)
    args = parser.parse_args()
    goals = Goals(quick=args.quick)
    # moto's interpreter logs every failed state it runs: a declined card is an outcome here, not news.
    logging.getLogger("moto").setLevel(logging.CRITICAL)

    bookings = [
        (label, flight, f"{prefix}_{uuid.uuid4().hex[:8]}", expected)
        for label, flight, prefix, expected in [
            ("confirmed", "F1", "tok_visa", "SUCCEEDED"),
            ("card declined", "F1", "tok_chargeDeclined", "FAILED"),
            ("flight full", "FULL", "tok_visa", "FAILED"),
            ("payment API down twice", "F1", "tok_processingError", "SUCCEEDED"),
        ]
    ]
    cancellations = [("cancelled by customer", False, "SUCCEEDED"), ("cancel, refund fails", True, "FAILED")]
    counted: dict[str, int] = {}
    rows = []
    # The functions' own logs and metrics go to stdout: keep them out of the figures.
    with (
        contextlib.redirect_stdout(io.StringIO()),
        OfflineStack(fast_retries=True, sandboxes="preloaded") as stack,
    ):
        stack.put_flight("F1", seats=10)
        stack.put_flight("FULL", seats=0, maximum=10)
        # Started together: an execution's history is its own, and their retries wait side by side.
        started = [
            (
                label,
                expected,
                stack.start_booking(str(uuid.uuid4()), customer="bench", flight_id=flight, token=token),
            )
            for label, flight, token, expected in bookings
        ]
        ended = [
            (label, expected, str(stack.wait(arn)["status"]), stack.states_entered(arn))
            for label, expected, arn in started
        ]
        for label, outage, expected in cancellations:
            arn = _cancellation(stack, outage)
            status = str(stack.sfn.describe_execution(executionArn=arn)["status"])
            ended.append((label, expected, status, stack.states_entered(arn)))
    wrong = []
    for label, expected, status, states in ended:
        counted[label] = len(states)
        rows.append(f"{label:<24} {status:<10} {len(states):>11}  {' → '.join(states)}")
        if status != expected:
            wrong.append(f"{label}: {status}, expected {expected}")
    print(f"{'outcome':<24} {'status':<10} {'transitions':>11}  states")
    print("\n".join(rows))
    if wrong:
        raise SystemExit("an outcome is not what the saga promises: " + "; ".join(wrong))

    goals.at_most(
        "confirmed booking, transitions",
        counted["confirmed"],
        CONFIRMED_GOAL,
        digits=0,
        source="README's bench table",
    )
    goals.at_most(
        "customer's cancellation, transitions",
        counted["cancelled by customer"],
        CANCELLATION_GOAL,
        digits=0,
        source="docs/decisions/0008",
    )
    return goals.exit_status()


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
    cancelled = stack.graphql(
        "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id } }",
        {"i": {"id": booking_id}},
        token=token,
    )
    if cancelled.get("errors"):
        raise SystemExit(f"cancelBooking was refused: {cancelled['errors']}")
    arn = stack.execution_arn("CancelBookingSaga", booking_id)
    stack.wait(arn)
    stack.gateway.set_outage(False)
    return arn


if __name__ == "__main__":
    sys.exit(main())
