"""The lifecycle matrix: every step of both sagas, every way it fails, and what each party sees after.

Steps: the booking saga's five (Reserve Flight … Notify Booking Confirmed) and the cancellation
saga's five (Mark Cancelling … Notify Booking Cancelled). Faults:

- refusal       a business rejection of the step's own (a full flight, a charge another booking holds,
                a declined card); the cancellation's refusals are the API's, before any step runs;
- error         the step fails for good with a defect no retry fixes;
- timeout       the step runs and writes, and its answer is lost once (Sandbox.Timedout);
- killed        the step's sandbox is SIGKILLed as it answers, once (Runtime.ExitError);
- throttled     the store (DynamoDB; SNS for Notify Booking) throttles the step's calls beyond the
                SDK's own retries, once;
- payment down  the Payment API answers 503 to the step's charge twice (only the steps that call it).

For each scenario the test asserts the end state (execution, booking row and its sequence, seats),
the Payment API's ledger (money moved at most once, and no authorisation held after the end), the
events on the topic and the pushes to subscribers (each once, in order, numbered) and the DLQ (a
message only where a human is needed, listing exactly what they must finish). Every scenario of a
saga runs at once, each on its own flight, card and booking, its faults scoped to its booking: the
matrix costs about as long as its slowest scenario.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from booking.bookings import charge_claim_id
from offline.stack import OfflineStack
from tests.conftest import unique_token

FAULTS = ("refusal", "error", "timeout", "killed", "throttled", "payment down")
SEATS = 3
DEFECT = "BookingStateConflict"
"""An error no retrier names: the step fails for good at its first attempt."""
SDK_ATTEMPTS = 4
"""The SDK's attempts per call (standard retry mode, 3 retries): this many throttled answers in a row
fail one invocation of the step, which the state machine then retries."""


@dataclass(frozen=True)
class Step:
    name: str
    saga: str
    function: str
    where: dict[str, Any] = field(default_factory=dict)
    """The payload fields that tell this step's invocations from another step's of the same function."""
    store: tuple[str, str, tuple[str, ...]] = ("dynamodb", "ProvisionedThroughputExceededException", ())
    """How its store throttles: the service, the error, and what the throttled calls mention besides
    the booking id (or, `flight`, instead of it)."""
    payment: str | None = None
    """The Payment API path it calls, if it calls it."""


BOOKING_STEPS = (
    Step("Reserve Flight", "booking", "ReserveFlightFunction"),
    Step("Reserve Booking", "booking", "ReserveBookingFunction"),
    Step(
        "Collect Payment",
        "booking",
        "CollectPaymentFunction",
        store=("dynamodb", "ProvisionedThroughputExceededException", ("flight",)),
        payment="/capture",
    ),
    Step("Confirm Booking", "booking", "ConfirmBookingFunction"),
    Step(
        "Notify Booking Confirmed",
        "booking",
        "NotifyBookingFunction",
        {"status": "confirmed"},
        ("sns", "Throttling", ("confirmed",)),
    ),
)
CANCEL_STEPS = (
    Step(
        "Mark Cancelling",
        "cancellation",
        "CancelBookingFunction",
        {"action": "begin"},
        ("dynamodb", "ProvisionedThroughputExceededException", ('"CONFIRMED"',)),
    ),
    Step("Release Flight Seat", "cancellation", "ReleaseFlightFunction"),
    Step("Refund Payment", "cancellation", "RefundPaymentFunction", payment="/refund"),
    Step(
        "Mark Cancelled",
        "cancellation",
        "CancelBookingFunction",
        {"action": "finish"},
        ("dynamodb", "ProvisionedThroughputExceededException", ("cancellationReason",)),
    ),
    Step(
        "Notify Booking Cancelled",
        "cancellation",
        "NotifyBookingFunction",
        {"status": "cancelled"},
        ("sns", "Throttling", ("cancelled",)),
    ),
)

NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("Confirm Booking", "refusal"): "nothing about the customer can refuse a confirmation",
    ("Notify Booking Confirmed", "refusal"): "an announcement refuses nothing",
    **{
        (step.name, "refusal"): "the API refuses a cancellation before the saga starts "
        "(tests/saga/test_cancellation.py: not confirmed, checked in, past the cut-off, in progress)"
        for step in CANCEL_STEPS
    },
    **{
        (step.name, "payment down"): "the step does not call the Payment API"
        for step in (*BOOKING_STEPS, *CANCEL_STEPS)
        if step.payment is None
    },
}
"""The cells of the matrix that do not exist, each with why."""


@dataclass(frozen=True)
class Expected:
    execution: str
    row: tuple[str, int] | None
    """The booking row's status and statusSequence (None: no row)."""
    seats: int
    charge: str | None
    """The Payment API's record of the booking's charge (None: never touched)."""
    events: tuple[tuple[str, int], ...]
    pushes: tuple[tuple[str, int], ...]
    dlq: tuple[str, tuple[str, ...]] | None
    """The one DLQ message's kind and the steps it lists for a human (None: nobody is paged)."""
    error: str | None = None


CONFIRMED = Expected(
    "SUCCEEDED", ("CONFIRMED", 2), SEATS - 1, "captured", (("confirmed", 2),), (("CONFIRMED", 2),), None
)
CANCELLED = Expected(
    "SUCCEEDED",
    ("CANCELLED", 4),
    SEATS,
    "refunded",
    (("confirmed", 2), ("cancelled", 4)),
    (("CONFIRMED", 2), ("CANCELLING", 3), ("CANCELLED", 4)),
    None,
)


def expected(step: Step, fault: str) -> Expected:
    """What DESIGN §2 promises for one cell of the matrix."""
    if fault in ("timeout", "killed", "throttled", "payment down"):
        return CONFIRMED if step.saga == "booking" else CANCELLED  # retried, and done once
    cancelled = (("cancelled", 1),), (("CANCELLED", 1),)
    if step.saga == "booking" and fault == "refusal":
        return {
            "Reserve Flight": Expected("FAILED", None, 0, "released", *cancelled, None, "FlightFull"),
            # The charge is another booking's (it claimed it first): left to that booking.
            "Reserve Booking": Expected("FAILED", None, SEATS, None, *cancelled, None, "PaymentTokenInUse"),
            "Collect Payment": Expected(
                "FAILED",
                ("CANCELLED", 2),
                SEATS,
                "declined",
                (("cancelled", 2),),
                (("CANCELLED", 2),),
                None,
                "PaymentDeclined",
            ),
        }[step.name]
    if step.saga == "booking":  # error
        failed = ("BookingFailed", ())
        return {
            "Reserve Flight": Expected("FAILED", None, SEATS, "released", *cancelled, failed, DEFECT),
            "Reserve Booking": Expected("FAILED", None, SEATS, "released", *cancelled, failed, DEFECT),
            "Collect Payment": Expected(
                "FAILED",
                ("CANCELLED", 2),
                SEATS,
                "released",
                (("cancelled", 2),),
                (("CANCELLED", 2),),
                failed,
                "InvalidPaymentRequest",  # the Payment API refused the request itself: a defect
            ),
            "Confirm Booking": Expected(
                "FAILED",
                ("CANCELLED", 2),
                SEATS,
                "refunded",
                (("cancelled", 2),),
                (("CANCELLED", 2),),
                failed,
                DEFECT,
            ),
            # Confirmed and paid all the same: only its announcement is missing, for a human to send.
            "Notify Booking Confirmed": Expected(
                "SUCCEEDED",
                ("CONFIRMED", 2),
                SEATS - 1,
                "captured",
                (),
                (),
                ("NotificationMissing", ("notifyBookingConfirmed",)),
            ),
        }[step.name]
    before = (("confirmed", 2),), (("CONFIRMED", 2),)
    cancelling = (("CONFIRMED", 2), ("CANCELLING", 3))
    every = (
        "markCancelling",
        "releaseFlightSeat",
        "refundPayment",
        "markCancelled",
        "notifyBookingCancelled",
    )
    return {  # the cancellation, error
        # Nothing changed: the booking is still CONFIRMED and paid, every step left to a human.
        "Mark Cancelling": Expected(
            "FAILED", ("CONFIRMED", 2), SEATS - 1, "captured", *before, ("CancellationFailed", every)
        ),
        # The money goes back and the booking is CANCELLED; only the seat waits.
        "Release Flight Seat": Expected(
            "FAILED",
            ("CANCELLED", 4),
            SEATS - 1,
            "refunded",
            CANCELLED.events,
            CANCELLED.pushes,
            ("CancellationFailed", ("releaseFlightSeat",)),
        ),
        # CANCELLED only once the money is back: it stays CANCELLING, and nothing announces CANCELLED.
        "Refund Payment": Expected(
            "FAILED",
            ("CANCELLING", 3),
            SEATS,
            "captured",
            before[0],
            cancelling,
            ("CancellationFailed", ("refundPayment", "markCancelled", "notifyBookingCancelled")),
        ),
        "Mark Cancelled": Expected(
            "FAILED",
            ("CANCELLING", 3),
            SEATS,
            "refunded",
            before[0],
            cancelling,
            ("CancellationFailed", ("markCancelled", "notifyBookingCancelled")),
        ),
        "Notify Booking Cancelled": Expected(
            "FAILED",
            ("CANCELLED", 4),
            SEATS,
            "refunded",
            before[0],
            cancelling,
            ("CancellationFailed", ("notifyBookingCancelled",)),
        ),
    }[step.name]


def cells(steps: tuple[Step, ...]) -> list[tuple[Step, str]]:
    return [(step, fault) for step in steps for fault in FAULTS if (step.name, fault) not in NOT_APPLICABLE]


@dataclass
class Scenario:
    step: Step
    fault: str
    booking_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    flight: str = field(default_factory=lambda: f"M-{uuid.uuid4().hex[:8]}")
    customer: str = field(default_factory=lambda: f"matrix-{uuid.uuid4().hex[:8]}")
    token: str = ""

    @property
    def name(self) -> str:
        return f"{self.step.name} / {self.fault}"


def _inject(stack: OfflineStack, scenario: Scenario) -> None:
    """Make this scenario's step fail its way, for this booking only."""
    step, booking = scenario.step, scenario.booking_id
    where = {"where": step.where, "booking_id": booking}
    if scenario.fault == "error":
        error = "InvalidPaymentRequest" if step.payment else DEFECT
        stack.lambdas.inject(step.function, "error", times=20, error_type=error, **where)
    elif scenario.fault == "timeout":
        stack.lambdas.inject(step.function, "timeout_after_run", times=1, **where)
    elif scenario.fault == "killed":
        stack.lambdas.inject(step.function, "killed_after_run", times=1, **where)
    elif scenario.fault == "throttled":
        service, code, extra = step.store
        mentions = tuple(scenario.flight if text == "flight" else text for text in extra)
        if "flight" not in extra:
            mentions = (booking, *mentions)
        stack.fail_service(step.function, service, code, SDK_ATTEMPTS, mentions)
    elif scenario.fault == "payment down":
        assert step.payment is not None
        stack.gateway.fail_charge(scenario.token, step.payment, 2)


def _prepare(stack: OfflineStack, scenario: Scenario) -> None:
    """The scenario's own flight and card, and what its refusal needs."""
    refusing = scenario.fault == "refusal"
    full = refusing and scenario.step.name == "Reserve Flight"
    stack.put_flight(scenario.flight, seats=0 if full else SEATS, maximum=SEATS)
    declined = refusing and scenario.step.name == "Collect Payment"
    scenario.token = unique_token("tok_chargeDeclined" if declined else "tok_visa")
    if refusing and scenario.step.name == "Reserve Booking":
        stack.dynamodb.put_item(  # another booking claimed this charge first
            TableName=stack.resource("BookingTable"),
            Item={
                "id": {"S": charge_claim_id(scenario.token)},
                "bookingId": {"S": str(uuid.uuid4())},
                "charge": {"S": "authorised"},
            },
        )


def _observe(
    stack: OfflineStack,
    scenario: Scenario,
    execution: dict[str, Any],
    events: dict[str, list[dict[str, Any]]],
    pushes: list[dict[str, Any]],
    dlq: dict[str, list[dict[str, Any]]],
) -> tuple[Expected, list[str]]:
    """What every party sees of one scenario, as an `Expected`, and what broke a rule of money."""
    row = stack.booking(scenario.booking_id)
    charge = stack.gateway.ledger(scenario.token)
    messages = dlq.get(scenario.booking_id, [])
    problems = []
    if charge is not None and (charge.captures > 1 or charge.refunds > 1):
        problems.append(f"money moved more than once: {charge}")
    if len(messages) > 1:
        problems.append(f"{len(messages)} DLQ messages for one booking")
    message = messages[0] if messages else None
    listed = (message or {}).get(
        "notDone" if (message or {}).get("kind") == "NotificationMissing" else "notUndone"
    )
    seen = Expected(
        execution["status"],
        (row["status"], int(row["statusSequence"])) if row else None,
        stack.seats_left(scenario.flight),
        charge.status if charge else None,
        tuple((event["status"], event["sequence"]) for event in events.get(scenario.booking_id, [])),
        tuple((push["status"], push["sequence"]) for push in pushes if push["id"] == scenario.booking_id),
        (message["kind"], tuple(step for step in listed or () if step)) if message else None,
        execution.get("error")
        if scenario.step.saga == "booking" and execution["status"] == "FAILED"
        else None,
    )
    return seen, problems


def _by_booking(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        grouped[str(message.get("bookingId"))].append(message)
    return grouped


def _report(
    stack: OfflineStack,
    scenarios: list[Scenario],
    executions: dict[str, dict[str, Any]],
    pushes: list[dict[str, Any]],
) -> Iterator[str]:
    events, dlq = _by_booking(stack.events()), _by_booking(stack.dlq_messages())
    for scenario in scenarios:
        want = expected(scenario.step, scenario.fault)
        seen, problems = _observe(stack, scenario, executions[scenario.booking_id], events, pushes, dlq)
        if scenario.step.name == "Reserve Booking" and scenario.fault == "refusal":
            pass  # the charge is another booking's: its authorisation is that booking's to settle
        elif seen.charge in (None, "authorised"):
            problems.append(f"the authorisation is still held ({seen.charge or 'never released'})")
        for name in Expected.__dataclass_fields__:
            if getattr(seen, name) != getattr(want, name):
                problems.append(f"{name}: expected {getattr(want, name)!r}, saw {getattr(seen, name)!r}")
        if problems:
            yield f"{scenario.name}:\n    " + "\n    ".join(problems)


def test_every_booking_step_and_fault_ends_with_money_status_events_and_pages_right(
    stack: OfflineStack, pushes: list[dict[str, Any]]
) -> None:
    scenarios = [Scenario(step, fault) for step, fault in cells(BOOKING_STEPS)]
    for scenario in scenarios:
        _prepare(stack, scenario)
        _inject(stack, scenario)
    arns = {
        scenario.booking_id: stack.start_booking(
            scenario.booking_id, customer=scenario.customer, flight_id=scenario.flight, token=scenario.token
        )
        for scenario in scenarios
    }
    executions = {booking_id: stack.wait(arn) for booking_id, arn in arns.items()}

    failures = list(_report(stack, scenarios, executions, pushes))

    assert len(scenarios) == 24
    assert not failures, f"{len(failures)} of {len(scenarios)} scenarios broke a promise:\n" + "\n".join(
        failures
    )


def test_every_cancellation_step_and_fault_ends_with_money_status_events_and_pages_right(
    stack: OfflineStack, pushes: list[dict[str, Any]]
) -> None:
    scenarios = [Scenario(step, fault) for step, fault in cells(CANCEL_STEPS)]
    for scenario in scenarios:
        _prepare(stack, scenario)
    for scenario in scenarios:
        stack.start_booking(
            scenario.booking_id, customer=scenario.customer, flight_id=scenario.flight, token=scenario.token
        )
    for scenario in scenarios:
        assert stack.wait(stack.execution_arn("ProcessBooking", scenario.booking_id))["status"] == "SUCCEEDED"
        _inject(stack, scenario)
    cancel = "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id status } }"
    for scenario in scenarios:
        answer = stack.graphql(
            cancel, {"i": {"id": scenario.booking_id}}, token=stack.tokens.mint(scenario.customer)
        )
        assert answer["data"]["cancelBooking"] == {"id": scenario.booking_id, "status": "CANCELLING"}, answer
    executions = {
        scenario.booking_id: stack.wait(stack.execution_arn("CancelBookingSaga", scenario.booking_id))
        for scenario in scenarios
    }

    failures = list(_report(stack, scenarios, executions, pushes))

    assert len(scenarios) == 21
    assert not failures, f"{len(failures)} of {len(scenarios)} scenarios broke a promise:\n" + "\n".join(
        failures
    )


def test_the_matrix_names_every_cell_it_leaves_out_and_why() -> None:
    every = {(step.name, fault) for step in (*BOOKING_STEPS, *CANCEL_STEPS) for fault in FAULTS}
    run = {(step.name, fault) for step, fault in cells(BOOKING_STEPS) + cells(CANCEL_STEPS)}

    assert run | set(NOT_APPLICABLE) == every
    assert not run & set(NOT_APPLICABLE)
    assert all(reason for reason in NOT_APPLICABLE.values())
