"""Seats under concurrency: more customers than seats, all at once, in parallel sandboxes.

The scenario is a function, so the same one runs twice: against the real Reserve Flight, where every
invariant must hold, and against a deliberately racy one (tests/doubles/racy_seats.py: read, pause,
unconditional write), where the same checks must find the oversell. A check that passes both would
prove nothing.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline.stack import OfflineStack
from tests.conftest import unique_token

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


@dataclass(frozen=True)
class Rush:
    """What every party saw after many customers tried to book one flight at the same moment."""

    seats: int
    results: dict[str, dict[str, Any]]
    tokens: dict[str, str]
    lowest_seen: int
    most_in_parallel: int

    def violations(self, stack: OfflineStack) -> list[str]:
        """Every way the end state breaks the seat and money invariants (empty when all hold)."""
        found = []
        confirmed = {b for b in self.results if (row := stack.booking(b)) and row["status"] == "CONFIRMED"}
        succeeded = {b for b, result in self.results.items() if result["status"] == "SUCCEEDED"}
        holders = set(stack.flight("F1").get("heldBy", set()))  # type: ignore[union-attr]
        left = stack.seats_left("F1")
        if len(confirmed) > self.seats:
            found.append(f"oversold: {len(confirmed)} confirmed on {self.seats} seats")
        if left != self.seats - len(holders):
            found.append(f"lost update: {left} seats left but {len(holders)} held of {self.seats}")
        if self.lowest_seen < 0 or left < 0:
            found.append(f"seat count went below zero ({min(self.lowest_seen, left)})")
        if holders != confirmed or succeeded != confirmed:
            found.append("the seats held, the executions that succeeded and the confirmed bookings differ")
        captured = {
            b for b, token in self.tokens.items() if (c := stack.gateway.ledger(token)) and c.captures
        }
        if captured != confirmed:
            found.append("the money captured does not match the confirmed bookings")
        return found


def rush(stack: OfflineStack, *, seats: int, customers: int) -> Rush:
    """Start `customers` bookings of flight F1 at once and wait for every one to end."""
    stack.put_flight("F1", seats=seats)
    tokens = {str(uuid.uuid4()): unique_token() for _ in range(customers)}
    barrier = threading.Barrier(customers)
    arns: list[str] = []

    def start(booking_id: str, token: str) -> None:
        barrier.wait()
        arns.append(
            stack.start_booking(booking_id, customer=f"c-{booking_id[:8]}", flight_id="F1", token=token)
        )

    starters = [threading.Thread(target=start, args=item) for item in tokens.items()]
    for thread in starters:
        thread.start()
    lowest = stack.seats_left("F1")
    for thread in starters:
        thread.join()
    while any(stack.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" for arn in arns):
        lowest = min(lowest, stack.seats_left("F1"))
    results = {arn.rsplit(":", 1)[1]: stack.wait(arn) for arn in arns}
    calls = stack.lambdas.calls("ReserveFlightFunction")
    return Rush(seats, results, tokens, lowest, _most_in_parallel(calls))


def _most_in_parallel(calls: list[Any]) -> int:
    """How many distinct sandboxes served the function: more than one means real parallelism."""
    return len({call.sandbox for call in calls if call.sandbox is not None})


def test_twelve_concurrent_bookings_on_five_seats_confirm_exactly_five(stack: OfflineStack) -> None:
    outcome = rush(stack, seats=5, customers=12)

    statuses = sorted((result["status"], result.get("error")) for result in outcome.results.values())
    assert statuses == [("FAILED", "FlightFull")] * 7 + [("SUCCEEDED", None)] * 5
    assert outcome.violations(stack) == []
    assert stack.seats_left("F1") == 0
    charges = [stack.gateway.ledger(t) for t in outcome.tokens.values()]
    # A FlightFull booking never claimed its charge, so the Payment API never saw it (decision 0004).
    assert sorted(c.captures if c else 0 for c in charges) == [0] * 7 + [1] * 5
    assert stack.dlq_messages() == []
    assert outcome.most_in_parallel > 1, "Reserve Flight never ran in two sandboxes: no race was possible"


def test_the_same_rush_catches_a_seat_taken_without_a_condition(stack: OfflineStack) -> None:
    stack.lambdas.replace_handler("ReserveFlightFunction", "racy_seats.handler", code_path=str(DOUBLES))
    flights = stack.dynamodb.describe_table(TableName=stack.resource("FlightTable"))["Table"]["TableArn"]
    stack.grant("ReserveFlightFunction", "dynamodb:GetItem", flights)  # the double's read before its write

    outcome = rush(stack, seats=5, customers=12)

    assert outcome.most_in_parallel > 1
    found = outcome.violations(stack)
    assert any(problem.startswith(("oversold", "lost update")) for problem in found), found
