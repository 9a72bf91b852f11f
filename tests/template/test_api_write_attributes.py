"""The Api function's writes name only the attributes its policy lets it touch, before anything runs.

The Api function may UpdateItem the booking table only under `ForAllValues:StringEquals` on
`dynamodb:Attributes` (template.yaml): status, seats and money stay the sagas'. DynamoDB counts every
attribute a request writes, reads or evaluates in its condition (keys included), so a write that
names one more attribute, even in its ConditionExpression, is AccessDenied in AWS (decision 0012).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from booking.bookings import BookingRepository
from offline.iam import dynamodb_attributes


class _RecordedWrites:
    """A DynamoDB client that keeps the UpdateItem requests it is given and answers each as written."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {}


API_WRITES: dict[str, Callable[[BookingRepository], object]] = {
    "updateBooking (check-in)": lambda repository: repository.set_checked_in(
        "b-1", True, seen_updated_at="2020-01-01T00:00:00.000Z"
    ),
    "cancelBooking (the recorded request)": lambda repository: repository.request_cancellation(
        "b-1", "cancel-key-01", "alice", seen_updated_at="2020-01-01T00:00:00.000Z"
    ),
}
"""Every write of the Api function (src/booking/api.py: the booking table's `set_checked_in` and
`request_cancellation`; everything else it does is a read)."""


def _api_update_attributes(resources: dict[str, dict[str, Any]]) -> set[str]:
    """The `dynamodb:Attributes` the Api function's UpdateItem statement lists."""
    listed = [
        statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
        for policy in resources["ApiFunction"]["Properties"]["Policies"]
        for statement in policy["Statement"]
        if "dynamodb:UpdateItem" in statement["Action"]
    ]
    assert len(listed) == 1, "the Api function has one UpdateItem statement, conditioned on its attributes"
    return set(listed[0])


@pytest.mark.parametrize("write", API_WRITES)
def test_each_api_write_names_only_attributes_its_policy_lists(
    write: str, resources: dict[str, dict[str, Any]]
) -> None:
    client = _RecordedWrites()
    API_WRITES[write](BookingRepository("booking-table", client))  # type: ignore[arg-type]

    [request] = client.requests
    named = dynamodb_attributes(request)

    assert named <= _api_update_attributes(resources), (
        f"{write} names {sorted(named - _api_update_attributes(resources))}, which the Api function's "
        "dynamodb:Attributes condition does not list: AWS would answer AccessDenied"
    )


def test_the_api_policy_lists_no_attribute_of_the_sagas(resources: dict[str, dict[str, Any]]) -> None:
    """Status, seats, money and the reference are written by the sagas only (DESIGN §3)."""
    sagas_own = {"status", "seatCapacity", "paymentToken", "refund", "bookingReference", "cancellationReason"}

    assert not _api_update_attributes(resources) & sagas_own
