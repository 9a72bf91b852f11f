"""The two sagas' definitions (statemachine/*.asl.yaml), checked against the template and the code.

A test that takes `asl`, `state_machine` or `saga` runs on both the booking saga and the
cancellation saga; one that takes `booking_asl` checks a state of the booking saga only.

The saga's safety lives in its Retry and Catch rules: retry only what a retry can fix, never a
customer's rejection; let every forward failure run every compensation; let no compensation's
failure stop the others; page a human for anything not fully undone; and keep the payment token
out of messages, events and outputs. Step Functions validates none of that, so these checks read
the whole definition; tests/saga/test_compensation_paths.py runs its failure paths on the offline
stack.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from booking import errors
from offline import template as cfn

DESIGN_STATES = (
    "Reserve Flight",
    "Reserve Booking",
    "Collect Payment",
    "Confirm Booking",
    "Notify Booking Confirmed",
    "Refund Payment",
    "Cancel Booking",
    "Release Flight Seat",
    "Notify Booking Failed",
    "Booking DLQ",
)
FORWARD = ("Reserve Flight", "Reserve Booking", "Collect Payment", "Confirm Booking")
CONFIRMED_PATH = (*FORWARD, "Notify Booking Confirmed")
COMPENSATIONS = ("Refund Payment", "Cancel Booking", "Release Flight Seat", "Notify Booking Failed")
FIRST_COMPENSATION = COMPENSATIONS[0]
NOTIFICATIONS = ("Notify Booking Confirmed", "Notify Booking Failed")
TOKEN_READERS = frozenset({"Reserve Booking", "Collect Payment", "Confirm Booking", "Refund Payment"})
"""The steps that store, capture, record or refund the charge: the only ones that may see the token
(Confirm Booking records the capture on the charge's claim, which is keyed by the token's digest)."""

TASK_FUNCTIONS = {
    "Reserve Flight": "ReserveFlightFunction",
    "Reserve Booking": "ReserveBookingFunction",
    "Collect Payment": "CollectPaymentFunction",
    "Confirm Booking": "ConfirmBookingFunction",
    "Notify Booking Confirmed": "NotifyBookingFunction",
    "Refund Payment": "RefundPaymentFunction",
    "Cancel Booking": "CancelBookingFunction",
    "Release Flight Seat": "ReleaseFlightFunction",
    "Notify Booking Failed": "NotifyBookingFunction",
}

CANCEL_STATES = (
    "Mark Cancelling",
    "Release Flight Seat",
    "Refund Payment",
    "Mark Cancelled",
    "Notify Booking Cancelled",
    "Cancellation DLQ",
)
_AFTER_RELEASE = {
    "Refund Payment": "RefundPaymentFunction",
    "Mark Cancelled": "CancelBookingFunction",
    "Notify Booking Cancelled": "NotifyBookingFunction",
}
CANCEL_TASK_FUNCTIONS = {
    "Mark Cancelling": "CancelBookingFunction",
    "Release Flight Seat": "ReleaseFlightFunction",
    **_AFTER_RELEASE,
    **{f"{name} After A Failed Release": function for name, function in _AFTER_RELEASE.items()},
}


@dataclass(frozen=True)
class Saga:
    """What each state machine must have: its states, the function behind each task, who may read
    the payment token, the states that notify and the states that write to the DLQ."""

    states: tuple[str, ...]
    task_functions: dict[str, str]
    token_readers: frozenset[str]
    notifications: tuple[str, ...]
    dlq_senders: tuple[str, ...]


SAGAS = {
    "ProcessBooking": Saga(
        DESIGN_STATES,
        TASK_FUNCTIONS,
        TOKEN_READERS,
        NOTIFICATIONS,
        ("Booking DLQ", "Report Missing Notification"),
    ),
    # The cancellation never sees the token: Refund Payment reads it from the booking row.
    "CancelBookingSaga": Saga(
        CANCEL_STATES,
        CANCEL_TASK_FUNCTIONS,
        frozenset(),
        ("Notify Booking Cancelled", "Notify Booking Cancelled After A Failed Release"),
        ("Cancellation DLQ",),
    ),
}

LAMBDA_TRANSIENT = frozenset(
    {
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Runtime.ExitError",
        "Sandbox.Timedout",
    }
)
"""Lambda's transient service errors as Step Functions names them ("Handle Lambda service exceptions",
https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html): the first four
are 500s of the Invoke call, the fifth Lambda's concurrency limit; then a crashed runtime process
(`Runtime.ExitError`: killed, out of memory) and the function's own timeout (`Sandbox.Timedout`),
both retried since every task is idempotent (decision 0014)."""
IN_PROGRESS_ELSEWHERE = frozenset({"IdempotencyAlreadyInProgressError", "IdempotencyPersistenceLayerError"})
"""Powertools idempotency's errors for a record another invocation holds, or a store that failed:
Notify Booking's steps ask again, with backoff, instead of reporting a notification missing."""

SERVICE_RETRYABLE = frozenset(
    {
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "Runtime.ExitError",
        "Sandbox.Timedout",
        "States.Timeout",
        "SQS.SdkClientException",
        "SQS.AmazonSQSException",
        "CloudWatch.InternalServiceFaultException",
        "CloudWatch.SdkClientException",
    }
)
"""Failures of the services around the code, which a retry may fix."""
SERVICE_PREFIXES = ("States.", "Lambda.", "Sandbox.", "Runtime.", "SQS.", "CloudWatch.")
NEVER_RETRIED = frozenset(
    {"States.ALL", "InvalidSagaInput", "InvalidPaymentRequest"}
    | {error.__name__ for error in errors.BUSINESS_REJECTIONS}
)
"""A rejection or a defect: a retry only repeats it, and delays the compensations it needs."""

SQS_SEND = "arn:aws:states:::sqs:sendMessage"
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def _names(error_classes: tuple[type[errors.BookingError], ...]) -> set[str]:
    return {error.__name__ for error in error_classes}


def _strings(node: Any) -> Iterator[str]:
    """Every string of a definition fragment, keys included, comments left out."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Comment":
                continue
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state by name, those inside Parallel branches and Map iterators included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(_states(branch))
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.update(_states(state[key]))
    return found


def _tasks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in _states(definition).items() if state["Type"] == "Task"}


def _retriers(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in _states(definition).items():
        for retrier in state.get("Retry", []):
            yield name, retrier


def _catch_all(state: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]), None)


def _choice_errors(rule: dict[str, Any]) -> set[str]:
    """Error names a Choice rule compares `$.error.Error` with, through And, Or and Not."""
    names = set()
    if rule.get("Variable") == "$.error.Error" and "StringEquals" in rule:
        names.add(rule["StringEquals"])
    for nested in [*rule.get("And", []), *rule.get("Or", []), *([rule["Not"]] if "Not" in rule else [])]:
        names |= _choice_errors(nested)
    return names


def _routes_to(definition: dict[str, Any], target: str) -> list[tuple[str, dict[str, Any]]]:
    """(Choice state, rule) of every Choice rule whose Next is `target`."""
    return [
        (name, rule)
        for name, state in _states(definition).items()
        if state["Type"] == "Choice"
        for rule in state["Choices"]
        if rule["Next"] == target
    ]


# ---------------------------------------------------------------------------------------- substitutions


@pytest.fixture
def substitutions(state_machine: dict[str, Any], dummy_resolver: cfn.Resolver) -> dict[str, Any]:
    """DefinitionSubstitutions as Step Functions receives them, with made-up physical ids."""
    resolved: dict[str, Any] = dummy_resolver.resolve(state_machine["DefinitionSubstitutions"])
    return resolved


@pytest.fixture
def deployed(asl_text: str, substitutions: dict[str, Any]) -> dict[str, Any]:
    """The definition as deployed: placeholders replaced, then parsed."""
    definition: dict[str, Any] = yaml.safe_load(cfn.substitute_definition(asl_text, substitutions))
    return definition


def test_every_placeholder_has_a_substitution_and_every_substitution_is_used(
    asl: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    used = {name for text in _strings(asl) for name in PLACEHOLDER.findall(text)}
    provided = set(state_machine["DefinitionSubstitutions"])

    assert sorted(used - provided) == [], "placeholders DefinitionSubstitutions does not define"
    assert sorted(provided - used) == [], "DefinitionSubstitutions the definition never uses"


def test_deployed_definition_has_no_placeholder_left(deployed: dict[str, Any]) -> None:
    assert [text for text in _strings(deployed) if PLACEHOLDER.search(text)] == []


def test_each_task_invokes_the_function_that_implements_it(
    deployed: dict[str, Any], dummy_resolver: cfn.Resolver, saga: str
) -> None:
    invoked = {
        name: state["Parameters"].get("FunctionName")
        for name, state in _tasks(deployed).items()
        if state["Resource"] == "arn:aws:states:::lambda:invoke"
    }
    expected = {
        name: dummy_resolver.attributes[function]["Arn"]
        for name, function in SAGAS[saga].task_functions.items()
    }

    assert invoked == expected


def test_every_message_goes_to_the_booking_dlq(
    deployed: dict[str, Any], dummy_resolver: cfn.Resolver
) -> None:
    queues = {
        name: state["Parameters"].get("QueueUrl")
        for name, state in _tasks(deployed).items()
        if state["Resource"].startswith("arn:aws:states:::sqs:")
    }

    assert queues
    assert set(queues.values()) == {dummy_resolver.refs["BookingDLQ"]}


def test_lambda_tasks_wait_longer_than_their_function_may_run(
    asl: dict[str, Any], template: dict[str, Any], saga: str
) -> None:
    # A task timeout shorter than the function's gives up on (and, on States.Timeout, retries) an
    # invocation that is still running: two runs of the same step race, or a compensation starts
    # while the forward step it undoes is still writing.
    default = template["Globals"]["Function"]["Timeout"]
    too_short = {
        name: (state.get("TimeoutSeconds"), timeout)
        for name, function in SAGAS[saga].task_functions.items()
        for state in [_states(asl)[name]]
        for timeout in [template["Resources"][function]["Properties"].get("Timeout", default)]
        if not state.get("TimeoutSeconds", 0) > timeout
    }

    assert too_short == {}


# ---------------------------------------------------------------------------------------- states, timeouts


def test_definition_has_every_state_of_the_design(asl: dict[str, Any], saga: str) -> None:
    assert sorted(set(SAGAS[saga].states) - set(_states(asl))) == []


def test_the_saga_and_every_task_have_a_timeout(asl: dict[str, Any]) -> None:
    assert isinstance(asl.get("TimeoutSeconds"), int)
    assert asl["TimeoutSeconds"] > 0
    assert sorted(name for name, state in _tasks(asl).items() if not state.get("TimeoutSeconds")) == []


# ---------------------------------------------------------------------------------------- retries


def test_retries_never_repeat_a_rejection_or_a_defect(asl: dict[str, Any]) -> None:
    assert not NEVER_RETRIED & _names(errors.TRANSIENT_ERRORS)

    retried = [
        (name, error) for name, r in _retriers(asl) for error in r["ErrorEquals"] if error in NEVER_RETRIED
    ]

    assert retried == []


def test_retries_match_only_errors_a_retry_can_fix(asl: dict[str, Any]) -> None:
    allowed = SERVICE_RETRYABLE | _names(errors.TRANSIENT_ERRORS) | IN_PROGRESS_ELSEWHERE

    unexpected = [
        (name, error)
        for name, retrier in _retriers(asl)
        for error in retrier["ErrorEquals"]
        if error not in allowed
    ]

    assert unexpected == []


def test_every_retrier_backs_off_with_full_jitter(asl: dict[str, Any]) -> None:
    retriers = list(_retriers(asl))
    assert retriers

    # Defaults from the Amazon States Language: JitterStrategy NONE, BackoffRate 2.0, MaxAttempts 3.
    settings = {
        (name, tuple(retrier["ErrorEquals"])): (
            retrier.get("JitterStrategy", "NONE"),
            retrier.get("BackoffRate", 2.0) >= 1,
            retrier.get("MaxAttempts", 3) >= 1,
        )
        for name, retrier in retriers
    }

    assert settings == dict.fromkeys(settings, ("FULL", True, True))


def test_every_lambda_task_retries_lambdas_transient_errors(asl: dict[str, Any]) -> None:
    missing = {
        name: sorted(LAMBDA_TRANSIENT - {e for r in state.get("Retry", []) for e in r["ErrorEquals"]})
        for name, state in _tasks(asl).items()
        if state["Resource"] == "arn:aws:states:::lambda:invoke"
    }

    assert missing
    assert {name: errors for name, errors in missing.items() if errors} == {}


def test_every_transient_error_is_retried_somewhere(asl: dict[str, Any]) -> None:
    retried = {error for _, retrier in _retriers(asl) for error in retrier["ErrorEquals"]}

    assert sorted(_names(errors.TRANSIENT_ERRORS) - retried) == []


def test_a_dlq_message_sqs_refuses_still_pages_through_the_booking_not_reported_alarm(
    asl: dict[str, Any], resources: dict[str, dict[str, Any]], saga: str
) -> None:
    states = _states(asl)
    senders = {name: state for name, state in _tasks(asl).items() if state["Resource"] == SQS_SEND}
    page = states["Page Without The DLQ"]
    metric = page["Parameters"]["MetricData"][0]

    assert sorted(senders) == sorted(SAGAS[saga].dlq_senders)
    assert all((_catch_all(state) or {}).get("Next") == "Page Without The DLQ" for state in senders.values())
    assert page["Resource"] == "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
    # Whether or not CloudWatch takes the count, the execution ends in a Fail of its own.
    (ending,) = {page["Next"], (_catch_all(page) or {}).get("Next")}
    assert states[ending]["Type"] == "Fail"
    assert states[ending]["Error"] == "BookingNotReported"
    alarms = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Namespace") == page["Parameters"]["Namespace"]
        and resource["Properties"].get("MetricName") == metric["MetricName"]
    ]
    assert [alarm["Dimensions"] for alarm in alarms] == [metric["Dimensions"]]
    assert (alarms[0]["ComparisonOperator"], float(alarms[0]["Threshold"])) == ("GreaterThanThreshold", 0.0)


# ---------------------------------------------------------------------------------------- error names


def test_every_custom_error_name_is_a_class_of_booking_errors(asl: dict[str, Any]) -> None:
    matched = set()
    for state in _states(asl).values():
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]:
            matched |= set(rule["ErrorEquals"])
        for rule in state.get("Choices", []):
            matched |= _choice_errors(rule)
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == errors.__name__
    }

    custom = {name for name in matched if not name.startswith(SERVICE_PREFIXES)} - IN_PROGRESS_ELSEWHERE

    assert custom, "the definition matches the domain's own errors"
    assert sorted(custom - classes) == []


def test_powertools_idempotency_errors_are_matched_by_their_real_names() -> None:
    from aws_lambda_powertools.utilities.idempotency import exceptions

    assert {name for name in IN_PROGRESS_ELSEWHERE if inspect.isclass(getattr(exceptions, name, None))} == (
        IN_PROGRESS_ELSEWHERE
    )


def test_every_notify_step_waits_for_an_announcement_in_progress_elsewhere(asl: dict[str, Any]) -> None:
    notify = {
        name: {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        for name, state in _tasks(asl).items()
        if "NotifyBookingFunction" in json.dumps(state.get("Parameters", {}))
    }

    assert notify
    assert {name: sorted(IN_PROGRESS_ELSEWHERE - names) for name, names in notify.items()} == {
        name: [] for name in notify
    }


def test_business_rejections_and_nothing_else_end_in_booking_rejected(booking_asl: dict[str, Any]) -> None:
    routes = _routes_to(booking_asl, "Booking Rejected")
    assert routes, "a Choice routes business rejections to Booking Rejected"

    rejected = set().union(*(_choice_errors(rule) for _, rule in routes))

    assert sorted(rejected) == sorted(_names(errors.BUSINESS_REJECTIONS))
    choices = {choice for choice, _ in routes}
    assert all(_states(booking_asl)[choice].get("Default") != "Booking Rejected" for choice in choices)


# ---------------------------------------------------------------------------------------- the saga's shape


def _through_passes(states: dict[str, dict[str, Any]], name: str) -> str:
    """The first state that is not a Pass, starting at `name`: Pass states only reshape the data."""
    seen = set()
    while states[name]["Type"] == "Pass" and name not in seen:
        seen.add(name)
        name = states[name]["Next"]
    return name


@pytest.mark.parametrize("name", FORWARD)
def test_forward_step_failure_enters_the_compensations_at_refund_payment(
    name: str, booking_asl: dict[str, Any]
) -> None:
    states = _states(booking_asl)
    catch_all = _catch_all(states[name])

    assert catch_all is not None, f"{name} catches States.ALL"
    entries = [_through_passes(states, catcher["Next"]) for catcher in states[name]["Catch"]]
    assert entries == [FIRST_COMPENSATION] * len(entries)
    # Notify Booking Failed and Needs A Human? read the failure from $.error.
    assert catch_all.get("ResultPath") == "$.error"


@pytest.mark.parametrize("name", COMPENSATIONS)
def test_compensation_that_fails_records_it_and_continues_to_the_next_one(
    name: str, booking_asl: dict[str, Any]
) -> None:
    states = _states(booking_asl)
    state = states[name]
    catch_all = _catch_all(state)

    assert catch_all is not None, f"{name} catches States.ALL"
    assert "Next" in state
    after = _through_passes(states, state["Next"])
    if states[after]["Type"] == "Choice":
        # Notify Booking Failed's "Failure Announced?": a `cancelled` the booking's state does not
        # hold is not announced, and joins the failures in what is not undone.
        [rule] = states[after]["Choices"]
        assert (rule["Variable"], rule["StringEquals"]) == (f"{state['ResultPath']}.status", "not_announced")
        assert rule["Next"] == catch_all["Next"]
        after = _through_passes(states, states[after]["Default"])
    assert _through_passes(states, catch_all["Next"]) == after
    assert str(state.get("ResultPath")).startswith("$.compensations.")
    assert str(catch_all.get("ResultPath")).startswith("$.compensations.")


def test_compensations_run_in_reverse_order_of_the_forward_steps(booking_asl: dict[str, Any]) -> None:
    states = _states(booking_asl)
    chain = [FIRST_COMPENSATION]
    while len(chain) < len(COMPENSATIONS) and "Next" in states[chain[-1]]:
        chain.append(_through_passes(states, states[chain[-1]]["Next"]))

    assert tuple(chain) == COMPENSATIONS


def test_confirmed_path_is_five_tasks_ending_at_notify_booking_confirmed(booking_asl: dict[str, Any]) -> None:
    states = _states(booking_asl)
    path = [booking_asl["StartAt"]]
    while "Next" in states[path[-1]] and len(path) <= len(states):
        path.append(states[path[-1]]["Next"])

    assert tuple(path) == CONFIRMED_PATH
    assert states[path[-1]].get("End") is True
    assert {states[name]["Type"] for name in path} == {"Task"}


def test_failed_confirmed_notification_is_reported_to_the_dlq_and_ends_the_saga(
    booking_asl: dict[str, Any],
) -> None:
    states = _states(booking_asl)
    catch_all = _catch_all(states["Notify Booking Confirmed"])
    assert catch_all is not None

    # Through Summarise Errors (which drops stack traces) and the Choice that picks the message.
    summarise = _through_passes(states, catch_all["Next"])
    assert states[summarise]["Type"] == "Map"
    report = states[states[states[summarise]["Next"]]["Default"]]

    assert report["Type"] == "Task"
    assert report["Resource"] == SQS_SEND
    assert report["Parameters"]["QueueUrl"] == "${BookingDLQUrl}"
    assert report.get("End") is True


# ---------------------------------------------------------------------------------------- payment token


def _reads_whole_input(path: str) -> bool:
    return path == "$" or path.startswith("$$.Execution.Input")


def test_payment_token_is_read_only_by_the_steps_that_store_charge_or_refund_it(
    asl: dict[str, Any], saga: str
) -> None:
    readers = {
        name
        for name, state in _states(asl).items()
        if any("paymentToken" in text or "$$.Execution.Input" in text for text in _strings(state))
    }

    assert readers == SAGAS[saga].token_readers


def test_no_dlq_message_or_notification_carries_the_payment_token(asl: dict[str, Any], saga: str) -> None:
    states = _states(asl)
    notifications = SAGAS[saga].notifications
    outgoing = {
        name: state["Parameters"]["MessageBody"]
        for name, state in states.items()
        if state.get("Resource") == SQS_SEND
    }
    outgoing |= {name: states[name]["Parameters"]["Payload"] for name in notifications}
    assert len(outgoing) > len(notifications), "the saga sends DLQ messages"

    leaks = {
        name: text
        for name, body in outgoing.items()
        for text in _strings(body)
        if "paymentToken" in text or _reads_whole_input(text)
    }

    assert leaks == {}


def test_execution_output_never_carries_the_saga_input(asl: dict[str, Any]) -> None:
    # A state that ends the execution hands its output to whoever started it, and to the console.
    endings = {  # top-level states only: a Map iteration's end hands its output to the Map
        name: state.get("OutputPath", "$")
        for name, state in asl["States"].items()
        if state.get("End") is True or state["Type"] == "Succeed"
    }
    assert endings

    leaks = {
        name: path
        for name, path in endings.items()
        if path is not None and (_reads_whole_input(path) or "paymentToken" in path)
    }

    assert leaks == {}
