"""`python -m booking.ops payments check`: every ended booking whose charge is still only authorised.

No authorisation may outlive its booking (DESIGN §2): the front end pre-authorises the card before
`processBooking`, and every booking that ends without a capture must release it. The sagas do (Refund
Payment claims and releases a charge nobody claimed); this check is how an operator knows they did,
whatever happened in between (a Payment API down for good, an execution that timed out or was
stopped before its compensations, a bug).

It reads the booking saga's executions started in the last `--since` hours (default 7 days, longer
than a card issuer keeps an authorisation) and, for each that has ended, the charge's claim in the
booking table, where the sagas record what became of it (`booking.lifecycle`): `authorised`,
`captured`, `refunded`, `released`. A charge still `authorised`, or never claimed at all, by an ended
booking is listed, one line each, and the command exits 1; a charge another booking claimed is that
booking's to settle. It needs no Payment API access, and never prints a payment token.

Cost: one DescribeExecution and one GetItem per ended execution in the window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from booking.bookings import charge_claim_id
from booking.lifecycle import AUTHORISED
from booking.ops.aws import Stack
from booking.ops.dlq import Print

DEFAULT_SINCE_HOURS = 7 * 24


@dataclass(frozen=True)
class Held:
    """An ended booking whose pre-authorisation was never captured nor released."""

    booking_id: str
    execution_status: str
    error: str | None
    charge: str
    """What the claim records (`authorised`), or `never claimed`."""
    started: datetime

    def line(self) -> str:
        ended = self.execution_status + (f" {self.error}" if self.error else "")
        return (
            f"booking {self.booking_id}  saga {ended}  charge {self.charge}  "
            f"started {self.started.isoformat(timespec='seconds')}"
        )


def held_authorisations(stack: Stack, since: timedelta) -> tuple[int, list[Held]]:
    """(how many ended bookings were checked, those whose authorisation is still held)."""
    table = stack.table_name("BookingTable")
    checked = 0
    held: list[Held] = []
    for execution in _ended_executions(stack, datetime.now(UTC) - since):
        described = stack.sfn.describe_execution(executionArn=execution["executionArn"])
        token = json.loads(described.get("input") or "{}").get("paymentToken")
        if not isinstance(token, str) or not token:
            continue
        checked += 1
        booking_id = str(described["name"])
        claim = stack.dynamodb.get_item(
            TableName=table, Key={"id": {"S": charge_claim_id(token)}}, ConsistentRead=True
        ).get("Item")
        if claim is None:
            charge = "never claimed"
        elif claim["bookingId"]["S"] != booking_id:
            continue  # another booking's charge: that booking settles it
        else:
            charge = claim.get("charge", {}).get("S", AUTHORISED)
            if charge != AUTHORISED:
                continue
        held.append(
            Held(booking_id, str(described["status"]), described.get("error"), charge, execution["startDate"])
        )
    return checked, held


def _ended_executions(stack: Stack, after: datetime) -> Iterator[dict[str, Any]]:
    """The booking saga's executions that started after `after` and are no longer running, newest first
    (ListExecutions' order, so the walk stops at the first one older than the window)."""
    pages = stack.sfn.get_paginator("list_executions").paginate(
        stateMachineArn=stack.state_machine_arn("process-booking")
    )
    for page in pages:
        for execution in page.get("executions", []):
            started = execution["startDate"]
            if started.tzinfo is None:
                started = started.replace(tzinfo=UTC)
            if started < after:
                return
            if execution["status"] != "RUNNING":
                yield {**execution, "startDate": started}


def check(stack: Stack, since_hours: float, out: Print = print) -> int:
    """Print the held authorisations; 0 when there is none, 1 otherwise."""
    checked, held = held_authorisations(stack, timedelta(hours=since_hours))
    for found in held:
        out(found.line())
    window = f"started in the last {since_hours:g} h"
    if not held:
        out(f"no authorisation held: {checked} ended bookings {window} checked, on {stack.where()}")
        return 0
    out(
        f"{len(held)} of {checked} ended bookings {window} still hold the customer's authorisation: "
        "release each (python -m booking.ops dlq redrive --booking ID if the DLQ lists it; else the "
        "Payment API's refund with the booking's refund key)"
    )
    return 1
