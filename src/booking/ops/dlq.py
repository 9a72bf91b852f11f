"""The Booking DLQ, for the person paged: list what is in it, and redrive what it says is not undone.

Each message names the steps a saga could not complete (`notUndone`, or `notDone` for a missing
notification). `redrive` invokes, for each such step, the same function with the same payload the
state machine sends, so the same idempotency keys apply: a step that in fact went through (its
answer lost) is not done twice, and running `redrive` again is harmless. Then it reads the booking's
end state back — status, seat, money — and deletes the message only when all of them agree. A message
it cannot settle stays in the queue, visible again, with the reason printed.

Why not Step Functions' RedriveExecution: docs/decisions/0010-redrive.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from booking.ops.aws import QUEUE_VISIBILITY_SECONDS, Stack

Print = Callable[[str], None]

BOOKING_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""What the saga accepts as a booking id (booking.models.Identifier); a test keeps the two in step."""

WORK_VISIBILITY_SECONDS = 900
"""A message being redriven stays hidden this long, so a second operator does not redrive it too."""

SETTLED_REFUNDS = frozenset({"refunded", "released", "nothing_to_refund", "not_claimed", "not_this_booking"})
"""Refund Payment's answers that leave this booking holding no money (`not_this_booking`: the charge
is another booking's, and this one took nothing from it)."""

Role = Literal["undo", "gate", "closing"]


@dataclass(frozen=True)
class Step:
    """One step a DLQ message can name, and the function that does it.

    `undo` steps are independent and all run even if one fails (as the saga's compensations do);
    a `gate` that fails stops every step after it (nothing may follow a cancellation that did not
    begin); a `closing` step (a status or an event that announces the end) runs only when every
    step before it in this redrive succeeded, because it can happen once: an event published on a
    half-done state could never be corrected (subscribers deduplicate on booking id and status).
    """

    name: str
    function: str
    role: Role


STEPS = {
    step.name: step
    for step in (
        Step("refundPayment", "refund-payment", "undo"),
        Step("cancelBooking", "cancel-booking", "undo"),
        Step("releaseFlightSeat", "release-flight", "undo"),
        Step("notifyBookingFailed", "notify-booking", "closing"),
        Step("notifyBookingConfirmed", "notify-booking", "closing"),
        Step("markCancelling", "cancel-booking", "gate"),
        Step("markCancelled", "cancel-booking", "closing"),
        Step("notifyBookingCancelled", "notify-booking", "closing"),
    )
}

CHAINS: dict[str, tuple[str, ...]] = {
    "BookingFailed": ("refundPayment", "cancelBooking", "releaseFlightSeat", "notifyBookingFailed"),
    "NotificationMissing": ("notifyBookingConfirmed",),
    "CancellationFailed": (
        "markCancelling",
        "releaseFlightSeat",
        "refundPayment",
        "markCancelled",
        "notifyBookingCancelled",
    ),
}
"""The steps each kind of message may list, in the order its state machine runs them (and redrive too)."""


class Unsettleable(Exception):
    """This message cannot be redriven by this tool; the text says why."""


# ---------------------------------------------------------------------------------------- messages


@dataclass
class DlqMessage:
    """One received message: its body parsed, its receipt handle kept to delete or release it."""

    message_id: str
    receipt_handle: str
    kind: str
    body: dict[str, Any] | None
    sent_at: datetime | None
    problem: str | None = None
    """Why the body cannot be read, if it cannot."""

    @classmethod
    def from_sqs(cls, raw: dict[str, Any]) -> DlqMessage:
        attributes = raw.get("MessageAttributes") or {}
        kind = str(attributes.get("kind", {}).get("StringValue") or "")
        sent = raw.get("Attributes", {}).get("SentTimestamp")
        sent_at = datetime.fromtimestamp(int(sent) / 1000, UTC) if sent and str(sent).isdigit() else None
        body: dict[str, Any] | None = None
        problem = None
        try:
            parsed = json.loads(raw.get("Body", ""))
        except ValueError:
            problem = "the body is not JSON"
        else:
            if isinstance(parsed, dict):
                body = parsed
                kind = kind or str(parsed.get("kind") or "")
            else:
                problem = "the body is not a JSON object"
        return cls(raw["MessageId"], raw["ReceiptHandle"], kind or "unknown", body, sent_at, problem)

    @property
    def booking_id(self) -> str:
        value = (self.body or {}).get("bookingId")
        return value if isinstance(value, str) and value else "?"

    @property
    def listed(self) -> list[str]:
        """The steps the message says are not done, as written (the empty strings a States.StringSplit
        of an empty list leaves are dropped)."""
        body = self.body or {}
        steps = body.get("notDone") if self.kind == "NotificationMissing" else body.get("notUndone")
        if not isinstance(steps, list):
            return []
        return [str(step) for step in steps if step not in ("", None)]

    @property
    def error_name(self) -> str:
        """The error that sent the message: the saga's `error`, or (a cancellation records one outcome
        per step) the first step that failed."""
        body = self.body or {}
        error = body.get("error")
        if not isinstance(error, dict):
            steps = body.get("steps")
            failed = (
                [o for o in steps.values() if isinstance(o, dict) and "Error" in o]
                if isinstance(steps, dict)
                else []
            )
            error = failed[0] if failed else None
        return str(error.get("Error", "?")) if isinstance(error, dict) else "?"

    def plan(self) -> list[Step]:
        """The listed steps in the order the state machine runs them, or why they cannot be run."""
        if self.problem:
            raise Unsettleable(self.problem)
        chain = CHAINS.get(self.kind)
        if chain is None:
            raise Unsettleable(f"unknown kind {self.kind!r}: this tool does not know how to settle it")
        if not BOOKING_ID.fullmatch(self.booking_id):
            raise Unsettleable("the message has no valid bookingId")
        listed = self.listed
        unknown = [step for step in listed if step not in chain]
        if unknown:
            raise Unsettleable(f"{self.kind} lists {', '.join(unknown)}: a step this tool does not know")
        return [STEPS[name] for name in chain if name in listed]

    def age(self, now: datetime) -> str:
        if self.sent_at is None:
            return "?"
        seconds = max(0, int((now - self.sent_at).total_seconds()))
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        if days:
            return f"{days}d{hours:02d}h"
        if hours:
            return f"{hours}h{minutes:02d}m"
        return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"

    def line(self, now: datetime) -> str:
        """`dlq list`'s one line: kind, booking, what is not undone, age (and the error that paged)."""
        if self.problem:
            return f"{self.kind}  booking {self.booking_id}  unreadable: {self.problem}  age {self.age(now)}"
        label = "not done" if self.kind == "NotificationMissing" else "not undone"
        steps = ",".join(self.listed) or "-"
        return (
            f"{self.kind}  booking {self.booking_id}  {label}: {steps}  age {self.age(now)}"
            f"  error {self.error_name}"
        )


class Queue:
    """The Booking DLQ, read so that nothing is lost: every message received is hidden only briefly,
    and given back (made visible again) unless it was settled and deleted."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.queue_url

    def receive_all(self) -> list[DlqMessage]:
        """Every message in the queue, oldest first. Each batch stays hidden for a short while, so
        the next receive returns the next messages; callers must give back what they do not delete."""
        seen: dict[str, DlqMessage] = {}
        while True:
            batch = self.stack.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=QUEUE_VISIBILITY_SECONDS,
                WaitTimeSeconds=1,  # long polling asks every SQS server: an empty answer means empty
                MessageAttributeNames=["All"],
                AttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            if not batch:
                break
            for raw in batch:
                message = DlqMessage.from_sqs(raw)
                seen[message.message_id] = message  # received again: only the newest handle works
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(seen.values(), key=lambda message: message.sent_at or epoch)

    def hide(self, messages: Iterable[DlqMessage], seconds: int) -> None:
        for chunk in _chunks(list(messages), 10):
            self.stack.sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                    for i, m in enumerate(chunk)
                ],
            )

    def give_back(self, messages: Iterable[DlqMessage]) -> None:
        """Visible again at once, as if never received."""
        self.hide(messages, 0)

    def delete(self, message: DlqMessage) -> None:
        self.stack.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)


def _chunks(items: list[DlqMessage], size: int) -> Iterator[list[DlqMessage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------------------- list


def list_messages(stack: Stack, out: Print = print) -> int:
    """One line per message; the queue is left as it was found (every message visible again)."""
    queue = Queue(stack)
    messages = queue.receive_all()
    try:
        now = datetime.now(UTC)
        for message in messages:
            out(message.line(now))
        if not messages:
            out("the Booking DLQ is empty")
    finally:
        queue.give_back(messages)
    return 0


# ---------------------------------------------------------------------------------------- redrive


@dataclass
class StepOutcome:
    step: Step
    result: dict[str, Any] | None = None
    failure: str | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.skipped is None


@dataclass
class Redrive:
    """Settles one message: run its steps, check the end state, then delete or give it back."""

    stack: Stack
    message: DlqMessage
    out: Print
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    refund_planned: bool = False
    """A dry run that would refund shows the closing steps' `refund` as that answer, not the old one."""

    # -- payloads: exactly what the state machines send ------------------------------------------
    def _refund(self) -> Any:
        """What the closing steps carry as `refund`: this redrive's refund if it ran one, else the
        outcome the saga recorded."""
        outcome = self.outcomes.get("refundPayment")
        if outcome is not None and outcome.result is not None:
            return {key: outcome.result.get(key) for key in ("status", "amount", "currency")}
        if self.refund_planned and outcome is None:
            return "<refundPayment's answer>"
        body = self.message.body or {}
        recorded = body.get("compensations") if self.message.kind == "BookingFailed" else body.get("steps")
        return (recorded or {}).get("refundPayment")

    def payload(self, step: Step) -> dict[str, Any]:
        body = self.message.body or {}
        booking = {"bookingId": body["bookingId"]}
        party = {**booking, "customer": body["customer"], "outboundFlightId": body["outboundFlightId"]}
        match step.name:
            case "refundPayment" | "cancelBooking":
                return booking
            case "releaseFlightSeat":
                return {**booking, "outboundFlightId": body["outboundFlightId"]}
            case "notifyBookingFailed":
                reason = body["error"]["Error"]
                return {**party, "status": "cancelled", "reason": reason, "refund": self._refund()}
            case "notifyBookingConfirmed":
                return {
                    **party,
                    "status": "confirmed",
                    "bookingReference": body["booking"]["bookingReference"],
                    "amount": body["payment"]["amount"],
                    "currency": body["payment"]["currency"],
                }
            case "markCancelling":
                return {**booking, "action": "begin", "cancellationKey": body["cancellationKey"]}
            case "markCancelled":
                key = body["cancellationKey"]
                return {**booking, "action": "finish", "cancellationKey": key, "refund": self._refund()}
            case "notifyBookingCancelled":
                reason = "CustomerCancelled"
                return {**party, "status": "cancelled", "reason": reason, "refund": self._refund()}
        raise Unsettleable(f"no payload for {step.name}")  # pragma: no cover - STEPS and this match agree

    # -- running --------------------------------------------------------------------------------
    def invoke(self, step: Step, payload: dict[str, Any]) -> StepOutcome:
        name = self.stack.function_name(step.function)
        try:
            answer = self.stack.lambda_.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
            raw = answer["Payload"].read()
        except (ClientError, BotoCoreError) as error:
            return StepOutcome(step, failure=f"could not invoke {name}: {_aws_error(error)}")
        try:
            result = json.loads(raw or b"null")
        except ValueError:
            result = None
        if answer.get("FunctionError"):
            error_type = result.get("errorType", "?") if isinstance(result, dict) else "?"
            message = result.get("errorMessage", "") if isinstance(result, dict) else ""
            return StepOutcome(step, failure=f"{error_type}: {message}".rstrip(": "))
        if not isinstance(result, dict):
            return StepOutcome(step, failure=f"{name} answered {raw[:200]!r}, not a JSON object")
        if step.name == "refundPayment" and result.get("status") not in SETTLED_REFUNDS:
            return StepOutcome(step, result, failure=f"refund answered status {result.get('status')!r}")
        if step.function == "notify-booking" and result.get("status") == "not_announced":
            current = result.get("current", "?")
            return StepOutcome(step, result, failure=f"not announced: the booking is {current}")
        return StepOutcome(step, result)

    def run_steps(self, plan: list[Step], *, dry_run: bool) -> None:
        self.refund_planned = dry_run and STEPS["refundPayment"] in plan
        stopped_by: str | None = None
        failed: list[str] = []
        for step in plan:
            function = self.stack.function_name(step.function)
            if stopped_by or (step.role == "closing" and failed):
                why = f"{stopped_by} failed" if stopped_by else f"{', '.join(failed)} did not succeed"
                self.outcomes[step.name] = StepOutcome(step, skipped=f"not run: {why}")
                self.out(f"  {step.name}: not run ({why})")
                continue
            payload = self.payload(step)
            if dry_run:
                self.out(f"  would invoke {function} {json.dumps(payload)}")
                continue
            outcome = self.invoke(step, payload)
            self.outcomes[step.name] = outcome
            if outcome.ok:
                self.out(f"  {step.name}: {function} answered {json.dumps(outcome.result)}")
            else:
                self.out(f"  {step.name}: {function} failed: {outcome.failure}")
                failed.append(step.name)
                if step.role == "gate":
                    stopped_by = step.name

    # -- checking -------------------------------------------------------------------------------
    def _item(self, logical_id: str, key: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.stack.dynamodb.get_item(
            TableName=self.stack.table_name(logical_id), Key={"id": {"S": key}}, ConsistentRead=True
        ).get("Item")
        return item

    def check(self) -> list[str]:
        """What in the booking's end state disagrees with a settled message (empty: all agree)."""
        body = self.message.body or {}
        booking_id = body["bookingId"]
        flight_id = body["outboundFlightId"]
        confirmed = self.message.kind == "NotificationMissing"
        problems: list[str] = []
        facts: list[str] = []

        booking = self._item("BookingTable", booking_id)
        status = booking.get("status", {}).get("S") if booking else None
        wanted = "CONFIRMED" if confirmed else "CANCELLED"
        if status == wanted or (status is None and self.message.kind == "BookingFailed"):
            facts.append(f"booking {status or 'absent'}")
        else:
            problems.append(f"booking is {status or 'absent'}, not {wanted}")

        flight = self._item("FlightTable", str(flight_id))
        held = booking_id in (flight or {}).get("heldBy", {}).get("SS", [])
        if held == confirmed:
            facts.append("seat held" if held else "no seat held")
        else:
            problems.append("the seat is still held" if held else "the booking holds no seat")

        refund = self.outcomes.get("refundPayment")
        if refund is not None:
            if refund.ok and refund.result is not None:
                facts.append(f"money {refund.result.get('status')}")
            else:
                problems.append("the money is not given back (refundPayment did not succeed)")
        for name, outcome in self.outcomes.items():
            if not outcome.ok and name != "refundPayment":
                problems.append(f"{name} did not succeed")
        if not problems:
            self.out(f"  checked: {', '.join(facts)}")
        return problems

    def precheck(self) -> str | None:
        """A confirmed event for a booking no longer confirmed (cancelled since) would mislead every
        subscriber for good: such a message is left for a human before anything is published."""
        if self.message.kind != "NotificationMissing":
            return None
        booking = self._item("BookingTable", (self.message.body or {})["bookingId"])
        status = booking.get("status", {}).get("S") if booking else None
        return None if status == "CONFIRMED" else f"the booking is {status or 'absent'}, no longer CONFIRMED"


def _aws_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', '?')}: {details.get('Message', '')}".rstrip(": ")
    return str(error)


def redrive(
    stack: Stack,
    *,
    booking_id: str | None,
    dry_run: bool,
    out: Print = print,
) -> int:
    """Redrive the messages of one booking (or all, when `booking_id` is None). 0: every selected
    message settled (or none found); 1: something is left in the DLQ."""
    queue = Queue(stack)
    messages = queue.receive_all()
    selected = [m for m in messages if booking_id is None or m.booking_id == booking_id]
    pending = list(selected)
    try:
        queue.give_back([m for m in messages if m not in selected])
        queue.hide(selected, WORK_VISIBILITY_SECONDS)
        if not selected:
            out(f"no DLQ message for booking {booking_id}" if booking_id else "the Booking DLQ is empty")
            return 0
        settled = 0
        for message in selected:
            if _settle(stack, queue, message, dry_run=dry_run, out=out):
                settled += 1
                if not dry_run:
                    pending.remove(message)  # deleted
        left = len(selected) - settled
        if dry_run:
            out(f"dry run: {len(selected)} message(s) would be redriven; nothing was invoked or deleted")
            return 0 if left == 0 else 1
        out(f"{settled} settled, {left} left in the DLQ")
        return 0 if left == 0 else 1
    finally:
        queue.give_back(pending)


def _settle(stack: Stack, queue: Queue, message: DlqMessage, *, dry_run: bool, out: Print) -> bool:
    """True when the message is settled and deleted (or, in a dry run, when it has a plan)."""
    out(message.line(datetime.now(UTC)))
    work = Redrive(stack, message, out)
    try:
        plan = message.plan()
        if dry_run:
            work.run_steps(plan, dry_run=True)
            out("  (dry run) the end state would be checked, and the message deleted only if it agrees")
            return True
        refused = work.precheck()
        if refused:
            out(f"  left in the DLQ: {refused}")
            return False
        work.run_steps(plan, dry_run=False)
        problems = work.check()
    except Unsettleable as reason:
        out(f"  left in the DLQ: {reason}")
        return False
    except KeyError as missing:
        out(f"  left in the DLQ: the message has no {missing.args[0]!r}")
        return False
    except (ClientError, BotoCoreError) as error:
        out(f"  left in the DLQ: {_aws_error(error)}")
        return False
    if problems:
        out(f"  left in the DLQ: {'; '.join(problems)}")
        return False
    queue.delete(message)
    out("  settled: message deleted")
    return True
