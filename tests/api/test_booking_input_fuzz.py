"""processBooking over its whole input space: every request is either booked or refused without a trace.

The process's stack, reset once for the module (hypothesis runs the body many times).
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline.stack import OfflineStack
from tests.api.test_booking_api import BOOK, _state


@pytest.fixture(scope="module")
def fuzzed_stack(shared_stack: OfflineStack) -> OfflineStack:
    shared_stack.reset()
    shared_stack.put_flight("F1", seats=5)
    return shared_stack


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.one_of(st.text(max_size=140), st.from_regex(r"tok_visa_[a-z0-9]{4}", fullmatch=True)),
    flight=st.one_of(st.text(max_size=70), st.just("F1"), st.just("NOPE")),
    key=st.one_of(st.text(max_size=70), st.from_regex(r"[A-Za-z0-9_-]{8,20}", fullmatch=True)),
)
def test_any_processbooking_input_is_either_booked_or_refused_without_a_trace(
    fuzzed_stack: OfflineStack, token: str, flight: str, key: str
) -> None:
    stack = fuzzed_stack
    stack.drain(60)  # sagas of earlier examples write rows: let them finish before counting
    before = _state(stack)

    answer = stack.graphql(
        BOOK,
        {"i": {"paymentToken": token, "bookingOutboundFlightId": flight, "idempotencyKey": key}},
        token=stack.tokens.mint(f"fuzz-{uuid.uuid4().hex[:8]}"),
    )

    if answer.get("errors"):
        assert answer["errors"][0]["errorType"] in {"BadRequest", "ValidationError"}
        assert answer["errors"][0]["message"]
        assert _state(stack) == before
    else:
        assert flight == "F1"
        assert _state(stack)[1] == before[1] + 1
