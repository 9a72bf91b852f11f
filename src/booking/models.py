"""The typed boundaries of the saga: what each task takes from the state machine.

Every task parses its payload into one of these models before touching anything, so a
malformed payload fails with `InvalidSagaInput` and writes nothing. `extra="forbid"` makes a
drift between `statemachine/process_booking.asl.yaml` and the code fail loudly in tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from booking.errors import InvalidSagaInput

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
"""Booking and flight ids: UUIDs in practice, any short URL-safe id accepted."""

PaymentToken = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{3,128}$", repr=False)]
"""A pre-authorised charge id; `repr=False` keeps it out of reprs and tracebacks."""

Customer = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")]


class _Model(BaseModel):
    # defer_build: a function validates one of these models; building the others at import would
    # only lengthen its cold start.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class SeatRequest(_Model):
    """Reserve Flight and Release Flight Seat: which booking holds a seat on which flight."""

    booking_id: Identifier = Field(alias="bookingId")
    outbound_flight_id: Identifier = Field(alias="outboundFlightId")


class NewBooking(_Model):
    """Reserve Booking: the row that will carry the booking through the saga."""

    booking_id: Identifier = Field(alias="bookingId")
    customer: Customer
    outbound_flight_id: Identifier = Field(alias="outboundFlightId")
    payment_token: PaymentToken = Field(alias="paymentToken")
    created_at: datetime = Field(alias="createdAt")


class CollectPaymentRequest(_Model):
    """Collect Payment: the price is read from the flight, never taken from here."""

    booking_id: Identifier = Field(alias="bookingId")
    outbound_flight_id: Identifier = Field(alias="outboundFlightId")
    payment_token: PaymentToken = Field(alias="paymentToken")


class RefundPaymentRequest(_Model):
    """Refund Payment: give back whatever the charge holds for this booking."""

    booking_id: Identifier = Field(alias="bookingId")
    payment_token: PaymentToken = Field(alias="paymentToken")


class BookingIdentity(_Model):
    """Confirm Booking and Cancel Booking only need the booking id."""

    booking_id: Identifier = Field(alias="bookingId")


class Notification(_Model):
    """Notify Booking: what subscribers (Loyalty) need to act on and deduplicate an event."""

    booking_id: Identifier = Field(alias="bookingId")
    customer: Customer
    outbound_flight_id: Identifier = Field(alias="outboundFlightId")
    status: Literal["confirmed", "cancelled"]
    booking_reference: str | None = Field(default=None, alias="bookingReference", max_length=16)
    amount: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    reason: str | None = Field(default=None, max_length=128)
    refund: dict[str, Any] | None = None


M = TypeVar("M", bound=BaseModel)


def parse_task_input(event: Any, model: type[M]) -> M:
    """Parse a task's payload, or fail with a message that names the fields, never their values.

    pydantic's own message quotes the offending input, which may be a payment token; the message
    built here carries only the field path and what is wrong with it.
    """
    if not isinstance(event, dict):
        raise InvalidSagaInput(f"{model.__name__}: the payload must be a JSON object")
    try:
        return model.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or '<root>'}: {issue['msg']}"
            for issue in error.errors(include_input=False, include_url=False)
        )
        raise InvalidSagaInput(f"{model.__name__}: {problems}") from None
