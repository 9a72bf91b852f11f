"""Every way the compensations can go, run by moto's Step Functions interpreter on the real
definition (DESIGN §2, decision 0002).

A forward step fails — with a business rejection where that step can reject, with a transient
error that outlasts its retries, or with a defect nobody retries — and any set of compensations
fails after it. Each execution's history, its end, the Booking DLQ and the booking topic must show
that every compensation ran, in order, whichever failed before it; that what failed was tried as
often as its kind deserves; and that only a business rejection fully undone pages nobody.

Faults are injected into the Lambda functions for one booking id each, so every scenario runs at
the same time in one offline stack, with its own booking, flight and card. An execution costs
about half a second of CPU here (moto parses the definition for each one), so every combination
(4 steps x 10 error names x 16 sets of failed compensations: 640 executions) would take minutes;
the cover below keeps every step with every kind of failure, every set of failed compensations
after a rejection and after an error that pages anyway, and every compensation failing both ways.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from booking import errors
from offline.stack import OfflineStack

FORWARD = ("Reserve Flight", "Reserve Booking", "Collect Payment", "Confirm Booking")
COMPENSATIONS = ("Refund Payment", "Cancel Booking", "Release Flight Seat", "Notify Booking Failed")
FUNCTIONS = {
    "Reserve Flight": "ReserveFlightFunction",
    "Reserve Booking": "ReserveBookingFunction",
    "Collect Payment": "CollectPaymentFunction",
    "Confirm Booking": "ConfirmBookingFunction",
    "Refund Payment": "RefundPaymentFunction",
    "Cancel Booking": "CancelBookingFunction",
    "Release Flight Seat": "ReleaseFlightFunction",
    "Notify Booking Failed": "NotifyBookingFunction",
}
OUTCOME_KEYS = {
    "Refund Payment": "refundPayment",
    "Cancel Booking": "cancelBooking",
    "Release Flight Seat": "releaseFlightSeat",
    "Notify Booking Failed": "notifyBookingFailed",
}
"""Where decision 0002 puts each compensation's outcome (`$.compensations.<key>`) and how the DLQ
message's `notUndone` names it."""

Kind = Literal["rejection", "transient", "defect"]
REJECTIONS = frozenset(error.__name__ for error in errors.BUSINESS_REJECTIONS)
FAULT_TIMES = 20
"""More failures than any retrier attempts: a transient fault outlasts every retry."""


@dataclass(frozen=True)
class Failure:
    """How a task fails: the error name Step Functions sees, and whether a retry may fix it."""

    error: str
    kind: Kind

    def __post_init__(self) -> None:
        assert (self.kind == "rejection") == (self.error in REJECTIONS), self


def _rejection(error: type[errors.BookingError]) -> Failure:
    return Failure(error.__name__, "rejection")


def _transient(error: str) -> Failure:
    return Failure(error, "transient")


def _defect(error: str) -> Failure:
    return Failure(error, "defect")


FORWARD_FAILURES: dict[str, tuple[Failure, ...]] = {
    "Reserve Flight": (
        _rejection(errors.FlightFull),
        _rejection(errors.FlightNotFound),
        _transient("Sandbox.Timedout"),
        _defect("InvalidSagaInput"),
    ),
    "Reserve Booking": (
        _rejection(errors.PaymentTokenInUse),
        _transient("Lambda.TooManyRequestsException"),
        _defect("BookingStateConflict"),
    ),
    "Collect Payment": (
        _rejection(errors.PaymentDeclined),
        _transient("PaymentUnavailable"),
        _defect("InvalidPaymentRequest"),
    ),
    "Confirm Booking": (
        _transient("BookingStoreUnavailable"),
        _defect("BookingNotFound"),
    ),
}
"""Each step's own rejections, a transient error its retriers name, and a defect."""

UNDO_FAILURES: dict[str, tuple[Failure, Failure]] = {
    "Refund Payment": (_transient("PaymentUnavailable"), _defect("InvalidPaymentRequest")),
    "Cancel Booking": (_transient("BookingStoreUnavailable"), _defect("BookingStateConflict")),
    "Release Flight Seat": (_transient("Lambda.ServiceException"), _defect("InvalidSagaInput")),
    "Notify Booking Failed": (_transient("BookingStoreUnavailable"), _defect("KeyError")),
}
"""How each compensation fails: after its retries, or at once."""


@dataclass(frozen=True)
class Scenario:
    """One forward step failing one way, and the compensations that fail after it."""

    step: str
    failure: Failure
    undo_failures: tuple[tuple[str, Failure], ...]
    """The compensations that fail, in the chain's order, each with how it fails."""

    @property
    def name(self) -> str:
        failed = ", ".join(f"{name} ({failure.error})" for name, failure in self.undo_failures)
        return f"{self.step} fails with {self.failure.error}; compensations failing: {failed or 'none'}"

    @property
    def failing(self) -> dict[str, Failure]:
        return dict(self.undo_failures)

    @property
    def pages(self) -> bool:
        return self.failure.kind != "rejection" or bool(self.undo_failures)


def _cover() -> list[Scenario]:
    """Each rejection with nothing else failing (each must end in Booking Rejected); then the 15
    other sets of failed compensations dealt out over the rejections, and all 16 over the other
    failures; each compensation fails by turns after its retries and at once."""
    cases = [(step, failure) for step, failures in FORWARD_FAILURES.items() for failure in failures]
    rejections = [case for case in cases if case[1].kind == "rejection"]
    others = [case for case in cases if case[1].kind != "rejection"]
    failing_sets = [
        names
        for size in range(len(COMPENSATIONS) + 1)
        for names in itertools.combinations(COMPENSATIONS, size)
    ]
    scenarios = [Scenario(step, failure, ()) for step, failure in rejections]
    turns = {name: itertools.count() for name in COMPENSATIONS}
    for group, sets in ((rejections, failing_sets[1:]), (others, failing_sets)):
        for index, names in enumerate(sets):
            step, failure = group[index % len(group)]
            undo = tuple((name, UNDO_FAILURES[name][next(turns[name]) % 2]) for name in names)
            scenarios.append(Scenario(step, failure, undo))
    return scenarios


SCENARIOS = _cover()


# ---------------------------------------------------------------------------------------- running them


def _expected(scenario: Scenario) -> dict[str, Any]:
    """What DESIGN §2 and decision 0002 promise for one scenario."""
    failing = scenario.failing
    # Notify Booking announces `cancelled` only while it holds: a booking row that Cancel Booking
    # could not cancel (the saga failed after Reserve Booking wrote it) is not announced, and the
    # event is left, in notUndone, to the human who finishes the cancellation.
    row_written = FORWARD.index(scenario.step) > FORWARD.index("Reserve Booking")
    unannounced = row_written and "Cancel Booking" in failing and "Notify Booking Failed" not in failing
    not_undone = [OUTCOME_KEYS[name] for name in COMPENSATIONS if name in failing]
    if unannounced:
        not_undone.append(OUTCOME_KEYS["Notify Booking Failed"])
    ending = (
        ["Summarise Errors", "Which Message?", "Booking DLQ", "Failed By Step Functions?", "Booking Failed"]
        if scenario.pages
        else ["Booking Rejected"]
    )
    announced = [] if "Notify Booking Failed" in failing else ["Failure Announced?"]
    attempts = {scenario.step: "once" if scenario.failure.kind != "transient" else "retried"}
    attempts |= {
        name: "once" if failure.kind != "transient" else "retried" for name, failure in failing.items()
    }
    compensations = {
        OUTCOME_KEYS[name]: failing[name].error if name in failing else "done" for name in COMPENSATIONS
    }
    if unannounced:
        compensations[OUTCOME_KEYS["Notify Booking Failed"]] = "not announced"
    return {
        # Pass states only reshape the data; what they build is checked in the DLQ message.
        "states": [
            *FORWARD[: FORWARD.index(scenario.step) + 1],
            *COMPENSATIONS,
            *announced,
            "Needs A Human?",
            *ending,
        ],
        "end": ("FAILED", scenario.failure.error),
        "attempts": attempts,
        "dlq": {
            "kind": "BookingFailed",
            "error": scenario.failure.error,
            "compensations": compensations,
            "notUndone": not_undone,
            "stack traces": False,
        }
        if scenario.pages
        else None,
        "cancelled events": 0 if "Notify Booking Failed" in failing or unannounced else 1,
    }


@dataclass(frozen=True)
class _Started:
    scenario: Scenario
    booking_id: str
    arn: str


def _start(stack: OfflineStack, machine_arn: str, scenarios: Iterable[Scenario]) -> list[_Started]:
    """Start every scenario's booking (its own flight and card), its faults injected first."""
    sfn = stack.sfn
    started = []
    for scenario in scenarios:
        booking_id = str(uuid.uuid4())
        flight_id = f"F-{booking_id[:8]}"
        stack.put_flight(flight_id, seats=3)
        for name, failure in [(scenario.step, scenario.failure), *scenario.undo_failures]:
            stack.lambdas.inject(
                FUNCTIONS[name], "error", FAULT_TIMES, error_type=failure.error, booking_id=booking_id
            )
        saga_input = stack.saga_input(
            booking_id, customer="alice", flight_id=flight_id, token=f"tok_visa_{uuid.uuid4().hex}"
        )
        arn = sfn.start_execution(stateMachineArn=machine_arn, name=booking_id, input=json.dumps(saga_input))
        started.append(_Started(scenario, booking_id, arn["executionArn"]))
    return started


def _wait_all(stack: OfflineStack, started: list[_Started], timeout: float = 120.0) -> dict[str, Any]:
    """`describe_execution` of each, once all have ended. One client and a slow poll, so that the
    executions, not the waiting, get the CPU."""
    sfn = stack.sfn
    machines = {run.arn.rsplit(":", 1)[0].replace(":execution:", ":stateMachine:") for run in started}
    deadline = time.monotonic() + timeout
    while any(
        sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)["executions"]
        for machine in machines
    ):
        assert time.monotonic() < deadline, f"executions still running after {timeout} s"
        time.sleep(0.25)
    return {run.arn: sfn.describe_execution(executionArn=run.arn) for run in started}


SUMMARY_STEPS = {"Has An Error Body?", "Has A Message?"}
"""The states of each Summarise Errors iteration: they reshape one error, as Pass states do."""


def _entered(history: list[dict[str, Any]]) -> list[str]:
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in history
        if "stateEnteredEventDetails" in event
        and event["type"] != "PassStateEntered"
        and event["stateEnteredEventDetails"]["name"] not in SUMMARY_STEPS
    ]


def _observed(
    stack: OfflineStack,
    run: _Started,
    description: dict[str, Any],
    dlq: dict[str, list[dict[str, Any]]],
    events: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """The same facts as `_expected`, read from the execution, the functions, the DLQ and the topic."""
    scenario = run.scenario
    attempts = {}
    for name in [scenario.step, *scenario.failing]:
        calls = [
            call
            for call in stack.lambdas.calls(FUNCTIONS[name])
            if isinstance(call.payload, dict) and call.payload.get("bookingId") == run.booking_id
        ]
        attempts[name] = {0: "never", 1: "once"}.get(len(calls), "retried")
    messages = [_dlq_view(message) for message in dlq.get(run.booking_id, [])]
    return {
        "states": _entered(stack.history(run.arn)),
        "end": (description["status"], description.get("error")),
        "attempts": attempts,
        "dlq": messages[0] if len(messages) == 1 else messages or None,
        "cancelled events": sum(
            event.get("status") == "cancelled" for event in events.get(run.booking_id, [])
        ),
    }


def _dlq_view(message: dict[str, Any]) -> dict[str, Any]:
    """A DLQ message as `_expected` describes it: each compensation's error name, or "done"."""
    return {
        "kind": message.get("kind"),
        "error": message.get("error", {}).get("Error"),
        "compensations": {
            key: _outcome(outcome) for key, outcome in message.get("compensations", {}).items()
        },
        "notUndone": message.get("notUndone"),
        "stack traces": "stackTrace" in json.dumps(message),
    }


def _outcome(outcome: Any) -> Any:
    """A compensation's outcome as `_expected` names it: its error, "not announced", or "done"."""
    if not isinstance(outcome, dict):
        return outcome
    if "Error" in outcome:
        return outcome["Error"]
    return "not announced" if outcome.get("status") == "not_announced" else "done"


def _by_booking(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        grouped[str(message.get("bookingId"))].append(message)
    return grouped


def _run(stack: OfflineStack, runs: dict[str, list[Scenario]]) -> dict[str, list[str]]:
    """Run the scenarios on the state machines given by ARN, all at once. For each machine, one
    line per fact of a scenario that differs from what is promised."""
    started = {arn: _start(stack, arn, scenarios) for arn, scenarios in runs.items()}
    ended = _wait_all(stack, [run for runs_of_machine in started.values() for run in runs_of_machine])
    dlq, events = _by_booking(stack.dlq_messages()), _by_booking(stack.events())
    differences: dict[str, list[str]] = {}
    for arn, runs_of_machine in started.items():
        differences[arn] = []
        for run in runs_of_machine:
            expected = _expected(run.scenario)
            observed = _observed(stack, run, ended[run.arn], dlq, events)
            differences[arn] += [
                f"{run.scenario.name}: {fact}\n  expected {expected[fact]!r}\n  observed {observed[fact]!r}"
                for fact in expected
                if observed[fact] != expected[fact]
            ]
    return differences


# ------------------------------------------------------------------------------------ the saga as deployed


def test_the_cover_keeps_every_kind_of_failure_of_every_step_and_every_set_of_failed_compensations() -> None:
    every_set = {
        frozenset(names) for size in range(5) for names in itertools.combinations(COMPENSATIONS, size)
    }
    rejected = [s for s in SCENARIOS if s.failure.kind == "rejection"]
    paged = [s for s in SCENARIOS if s.failure.kind != "rejection"]

    assert {(s.step, s.failure.kind) for s in SCENARIOS} == {
        (step, kind) for step in FORWARD for kind in ("transient", "defect")
    } | {("Reserve Flight", "rejection"), ("Reserve Booking", "rejection"), ("Collect Payment", "rejection")}
    assert {frozenset(s.failing) for s in rejected} == every_set
    assert {frozenset(s.failing) for s in paged} == every_set
    assert {(name, failure.kind) for s in SCENARIOS for name, failure in s.undo_failures} == {
        (name, kind) for name in COMPENSATIONS for kind in ("transient", "defect")
    }
    assert {s.failure.error for s in SCENARIOS if s.failure.kind == "rejection"} == REJECTIONS
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


def test_every_compensation_runs_whichever_step_failed_and_only_a_rejection_fully_undone_pages_nobody(
    stack: OfflineStack,
) -> None:
    machine = stack.resource("ProcessBooking")

    differences = _run(stack, {machine: SCENARIOS})

    assert not differences[machine], "\n".join(differences[machine])


# ---------------------------------------------------------------------------------------- the check catches


Mutation = Callable[[dict[str, Any]], None]


def _without_catch(state: str) -> Mutation:
    def mutate(definition: dict[str, Any]) -> None:
        del definition["States"][state]["Catch"]

    return mutate


def _catch_skips_to(state: str, target: str) -> Mutation:
    def mutate(definition: dict[str, Any]) -> None:
        definition["States"][state]["Catch"][0]["Next"] = target

    return mutate


def _retrying(state: str, error: str) -> Mutation:
    def mutate(definition: dict[str, Any]) -> None:
        definition["States"][state]["Retry"][0]["ErrorEquals"].append(error)

    return mutate


MUTANTS: dict[str, tuple[Mutation, Callable[[Scenario], bool]]] = {
    "Cancel Booking catches nothing": (
        _without_catch("Cancel Booking"),
        lambda s: "Cancel Booking" in s.failing,
    ),
    "Cancel Booking's failure skips Release Flight Seat": (
        _catch_skips_to("Cancel Booking", "Notify Booking Failed"),
        lambda s: "Cancel Booking" in s.failing,
    ),
    "Release Flight Seat's failure is not listed": (
        _catch_skips_to("Release Flight Seat", "Notify Booking Failed"),
        lambda s: "Release Flight Seat" in s.failing,
    ),
    "a declined card is retried": (
        _retrying("Collect Payment", "PaymentDeclined"),
        lambda s: s.failure.error == "PaymentDeclined",
    ),
}
"""Definitions broken the way a reviewer could miss, each with the scenarios that would show it."""


def _deploy_mutant(stack: OfflineStack, mutate: Mutation) -> str:
    """The deployed definition, changed by `mutate`, as one more state machine of the stack."""
    sfn = stack.sfn
    deployed = sfn.describe_state_machine(stateMachineArn=stack.resource("ProcessBooking"))
    definition = json.loads(deployed["definition"])
    mutate(definition)
    created = sfn.create_state_machine(
        name=f"mutant-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=deployed["roleArn"]
    )
    return str(created["stateMachineArn"])


def test_each_broken_definition_fails_some_scenario(stack: OfflineStack) -> None:
    runs = {}
    names = {}
    for name, (mutate, shows) in MUTANTS.items():
        arn = _deploy_mutant(stack, mutate)
        names[arn] = name
        runs[arn] = [scenario for scenario in SCENARIOS if shows(scenario)][:1]
        assert runs[arn], f"no scenario of the cover would show: {name}"

    differences = _run(stack, runs)

    assert [names[arn] for arn, found in differences.items() if not found] == []
