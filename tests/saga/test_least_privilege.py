"""Every call a function or a state machine makes is one its role's policies allow, as AWS decides it.

moto lets every call through (decision 0012), so these run with the offline IAM: a call the policies
do not allow is answered AccessDenied and recorded. The whole journey needs nothing the template does
not grant, and a template that grants one permission less breaks the journey and names the permission.
Each mutant is template.yaml with one grant taken away, deployed as the real one is.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from offline import template as cfn
from offline.iam import Denial
from offline.stack import ROOT, TEMPLATE, OfflineStack
from tests.conftest import book, unique_token

BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
CANCEL = "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id status } }"
BY_STATUS = """query($c: String, $l: Int, $n: String) {
  getBookingByStatus(customer: $c, status: {eq: "CONFIRMED"}, limit: $l, nextToken: $n) {
    items { id status outboundFlight { id } } nextToken } }"""
ALICE = "alice-sub"
ACCOUNT = "arn:aws:iam::123456789012"


def _booked(stack: OfflineStack, token: str, card: str) -> tuple[str, str]:
    """A booking made through the API, and how its saga ended."""
    answer = stack.graphql(BOOK, {"i": {"paymentToken": card, "bookingOutboundFlightId": "F1"}}, token=token)
    booking_id: str = answer["data"]["processBooking"]["id"]
    return booking_id, stack.wait(stack.execution_arn("ProcessBooking", booking_id))["status"]


def test_a_booking_a_declined_card_a_cancellation_and_a_page_need_nothing_the_roles_do_not_allow(
    stack: OfflineStack,
) -> None:
    stack.put_flight("F1", seats=5)
    alice = stack.tokens.mint(ALICE)
    kept, kept_status = _booked(stack, alice, unique_token())
    also_kept, _ = _booked(stack, alice, unique_token())
    cancelled, cancelled_status = _booked(stack, alice, unique_token())
    declined, declined_status = _booked(stack, alice, "tok_chargeDeclined")

    answer = stack.graphql(CANCEL, {"i": {"id": cancelled}}, token=alice)
    cancellation = stack.wait(stack.execution_arn("CancelBookingSaga", cancelled))
    first = stack.graphql(BY_STATUS, {"c": ALICE, "l": 1}, token=alice)["data"]["getBookingByStatus"]
    second = stack.graphql(BY_STATUS, {"c": ALICE, "l": 1, "n": first["nextToken"]}, token=alice)

    assert (kept_status, cancelled_status, declined_status) == ("SUCCEEDED", "SUCCEEDED", "FAILED")
    assert answer["data"]["cancelBooking"]["status"] == "CANCELLING"
    assert cancellation["status"] == "SUCCEEDED"
    assert {first["items"][0]["id"], second["data"]["getBookingByStatus"]["items"][0]["id"]} == {
        kept,
        also_kept,
    }
    assert stack.booking(declined)["status"] == "CANCELLED"  # type: ignore[index]
    assert stack.booking(cancelled)["status"] == "CANCELLED"  # type: ignore[index]
    assert stack.seats_left("F1") == 3
    assert stack.iam_denials() == []


# ---------------------------------------------------------------------------------------- mutants
@contextlib.contextmanager
def _beside(deploy: Callable[..., OfflineStack], template: Path) -> Iterator[OfflineStack]:
    """The mutant deployed as another stage beside the suite's stack (stopped by `other_stack`); its
    denials are what the test asserts, not a failure of the fixture."""
    yield deploy(template=template, iam_checked=False)


def _mutant(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """template.yaml with `change` applied to its resources, beside the code and definitions it names."""
    template = cfn.load(TEMPLATE)
    change(template["Resources"])
    for name in ("src", "statemachine", "schema.graphql"):
        (tmp_path / name).symlink_to(ROOT / name)
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(template), encoding="utf-8")
    return path


def _statements(resources: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    return [s for policy in resources[logical_id]["Properties"]["Policies"] for s in policy["Statement"]]


def _without_action(logical_id: str, action: str) -> Callable[[dict[str, Any]], None]:
    def change(resources: dict[str, Any]) -> None:
        for policy in resources[logical_id]["Properties"]["Policies"]:
            for statement in policy["Statement"]:
                statement["Action"] = [a for a in statement["Action"] if a != action]
            policy["Statement"] = [s for s in policy["Statement"] if s["Action"]]
        resources[logical_id]["Properties"]["Policies"] = [
            p for p in resources[logical_id]["Properties"]["Policies"] if p["Statement"]
        ]

    return change


def _only_denial(stack: OfflineStack) -> Denial:
    denials = set(stack.iam_denials())
    assert len(denials) == 1, denials
    return denials.pop()


def test_collect_payment_without_get_item_on_the_flight_table_fails_every_booking_and_is_named(
    tmp_path: Path, other_stack: Callable[..., OfflineStack]
) -> None:
    mutant = _mutant(tmp_path, _without_action("CollectPaymentFunction", "dynamodb:GetItem"))
    with _beside(other_stack, mutant) as stack:
        stack.put_flight("F1", seats=3)
        card = unique_token()

        outcome = book(stack, token=card)

        assert outcome.status == "FAILED"
        assert outcome.booking is not None
        assert outcome.booking["status"] == "CANCELLED"
        assert stack.gateway.ledger(card) is None or stack.gateway.ledger(card).captures == 0  # type: ignore[union-attr]
        denial = _only_denial(stack)
    assert (denial.role, denial.action, denial.resource) == (
        f"{ACCOUNT}:role/booking-{stack.stage}-CollectPaymentFunctionRole",
        "dynamodb:GetItem",
        f"arn:aws:dynamodb:eu-west-1:123456789012:table/{stack.resource('FlightTable')}",
    )
    assert denial.message == (
        f"User: arn:aws:sts::123456789012:assumed-role/booking-{stack.stage}-CollectPaymentFunctionRole/"
        f"booking-{stack.stage}-collect-payment is not authorized to perform: dynamodb:GetItem on resource: "
        f"{denial.resource} because no identity-based policy allows the dynamodb:GetItem action"
    )


def test_an_api_policy_missing_an_attribute_cancel_booking_writes_refuses_the_cancellation_and_names_it(
    tmp_path: Path, other_stack: Callable[..., OfflineStack]
) -> None:
    def without_requested_by(resources: dict[str, Any]) -> None:
        for statement in _statements(resources, "ApiFunction"):
            listed = (
                statement.get("Condition", {}).get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
            )
            if listed:
                listed.remove("cancellationRequestedBy")

    with _beside(other_stack, _mutant(tmp_path, without_requested_by)) as stack:
        stack.put_flight("F1", seats=3)
        alice = stack.tokens.mint(ALICE)
        booking_id, status = _booked(stack, alice, unique_token())
        assert status == "SUCCEEDED"

        answer = stack.graphql(CANCEL, {"i": {"id": booking_id}}, token=alice)

        assert answer["data"]["cancelBooking"] is None
        assert answer["errors"][0]["errorType"] == "InternalFailure"
        assert stack.booking(booking_id)["status"] == "CONFIRMED"  # type: ignore[index]
        assert "cancellationKey" not in stack.booking(booking_id)  # type: ignore[operator]
        denial = _only_denial(stack)
    assert (denial.role, denial.action) == (
        f"{ACCOUNT}:role/booking-{stack.stage}-ApiFunctionRole",
        "dynamodb:UpdateItem",
    )
    assert denial.condition is not None
    assert "ForAllValues:StringEquals dynamodb:Attributes" in denial.condition
    assert denial.condition.endswith("the request has ['cancellationRequestedBy']")


def test_a_booking_saga_that_may_not_invoke_collect_payment_fails_the_booking_and_is_named(
    tmp_path: Path, other_stack: Callable[..., OfflineStack]
) -> None:
    def without_collect_payment(resources: dict[str, Any]) -> None:
        for statement in _statements(resources, "ProcessBooking"):
            if statement["Action"] == ["lambda:InvokeFunction"]:
                statement["Resource"] = [
                    r for r in statement["Resource"] if "CollectPayment" not in json.dumps(r)
                ]

    with _beside(other_stack, _mutant(tmp_path, without_collect_payment)) as stack:
        stack.put_flight("F1", seats=3)

        outcome = book(stack, token=unique_token())

        assert outcome.status == "FAILED"
        assert stack.lambdas.calls("CollectPaymentFunction") == []
        assert stack.seats_left("F1") == 3
        denials = set(stack.iam_denials())
    assert {(d.role, d.action, d.resource) for d in denials} == {
        (
            f"{ACCOUNT}:role/booking-{stack.stage}-ProcessBookingRole",
            "lambda:InvokeFunction",
            f"arn:aws:lambda:eu-west-1:123456789012:function:booking-{stack.stage}-collect-payment",
        )
    }


def test_a_status_push_the_notify_role_may_not_make_is_refused_and_named(
    tmp_path: Path, other_stack: Callable[..., OfflineStack]
) -> None:
    mutant = _mutant(tmp_path, _without_action("NotifyBookingFunction", "appsync:GraphQL"))
    with _beside(other_stack, mutant) as stack:
        stack.put_flight("F1", seats=3)

        outcome = book(stack, token=unique_token())

        assert outcome.status == "SUCCEEDED"  # the push is best effort: the booking stands
        denials = set(stack.iam_denials())
    api = stack.api.arn
    assert {(d.role, d.action, d.resource) for d in denials} == {
        (
            f"{ACCOUNT}:role/booking-{stack.stage}-NotifyBookingFunctionRole",
            "appsync:GraphQL",
            f"{api}/types/Mutation/fields/publishBookingStatus",
        )
    }


def test_a_notification_the_notify_role_may_not_publish_pages_a_human_and_is_named(
    tmp_path: Path, other_stack: Callable[..., OfflineStack]
) -> None:
    mutant = _mutant(tmp_path, _without_action("NotifyBookingFunction", "sns:Publish"))
    with _beside(other_stack, mutant) as stack:
        stack.put_flight("F1", seats=3)

        outcome = book(stack, token=unique_token())

        assert outcome.status == "SUCCEEDED"  # a confirmed, paid booking is not undone for its notice
        assert stack.events() == []
        [message] = stack.dlq_messages()
        assert message["kind"] == "NotificationMissing"
        assert "AuthorizationError" in json.dumps(message)
        denials = set(stack.iam_denials())
    assert {(d.role, d.action, d.resource) for d in denials} == {
        (
            f"{ACCOUNT}:role/booking-{stack.stage}-NotifyBookingFunctionRole",
            "sns:Publish",
            stack.resource("BookingTopic"),
        )
    }
