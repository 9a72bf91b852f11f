"""Seats under concurrency: more customers than seats, all at once."""

from __future__ import annotations

import threading
import uuid

from offline.stack import OfflineStack
from tests.conftest import unique_token


def test_twelve_concurrent_bookings_on_five_seats_confirm_exactly_five(stack: OfflineStack) -> None:
    stack.put_flight("F1", seats=5)
    bookings = {str(uuid.uuid4()): unique_token() for _ in range(12)}
    barrier = threading.Barrier(len(bookings))
    arns: list[str] = []

    def start(booking_id: str, token: str) -> None:
        barrier.wait()
        arns.append(
            stack.start_booking(booking_id, customer=f"c-{booking_id[:8]}", flight_id="F1", token=token)
        )

    starters = [threading.Thread(target=start, args=item) for item in bookings.items()]
    for thread in starters:
        thread.start()
    lowest = stack.seats_left("F1")
    for thread in starters:
        thread.join()
    while any(stack.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" for arn in arns):
        lowest = min(lowest, stack.seats_left("F1"))
    results = [stack.wait(arn) for arn in arns]

    statuses = sorted((result["status"], result.get("error")) for result in results)
    assert statuses == [("FAILED", "FlightFull")] * 7 + [("SUCCEEDED", None)] * 5
    assert lowest >= 0
    assert stack.seats_left("F1") == 0
    confirmed = [b for b in bookings if (row := stack.booking(b)) and row["status"] == "CONFIRMED"]
    assert len(confirmed) == 5
    assert stack.flight("F1")["heldBy"] == set(confirmed)  # type: ignore[index]
    captured = [token for token in bookings.values() if (c := stack.gateway.ledger(token)) and c.captures]
    assert sorted(captured) == sorted(bookings[b] for b in confirmed)
    assert all(stack.gateway.ledger(token).captures == 1 for token in captured)  # type: ignore[union-attr]
    assert stack.dlq_messages() == []
