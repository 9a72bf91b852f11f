"""The typed boundaries of the saga: what each task takes from the state machine.

Every task parses its payload into one of these models before touching anything, so a malformed
payload fails with `InvalidSagaInput` and writes nothing. Unknown keys are refused, so a drift
between `statemachine/process_booking.asl.yaml` and the code fails loudly in tests.

The models are frozen dataclasses. A field's key in the payload is its name in camelCase, and its
type carries its check (`Annotated`, as pydantic reads it):

    @dataclass(frozen=True)
    class BookingIdentity:
        booking_id: Identifier

    parse_task_input({"bookingId": "b 1"}, BookingIdentity)
    # InvalidSagaInput: BookingIdentity: bookingId: String should match pattern '^[A-Za-z0-9]…'

A payload is a handful of flat fields, and checking them takes a few lines; pydantic would take
most of a task function's cold start to import (docs/decisions/0007-cold-starts.md). The messages
keep pydantic's wording, and, like pydantic's here, name the field and never quote its value (a
payment token must not reach a log or an error).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, get_args, get_type_hints

from booking.errors import InvalidSagaInput

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Check = Callable[[Any], Any]
"""Returns the field's value from its JSON value, or raises `Invalid` saying what is wrong."""


class Invalid(ValueError):
    """One field's value is not acceptable; the message says why, without the value."""


def text(*, pattern: str | None = None, min_length: int = 0, max_length: int | None = None) -> Check:
    """A string, optionally bounded in length and matching `pattern`."""
    compiled = re.compile(pattern) if pattern is not None else None

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("Input should be a valid string")
        if len(value) < min_length:
            raise Invalid(f"String should have at least {min_length} character{'s' * (min_length != 1)}")
        if max_length is not None and len(value) > max_length:
            raise Invalid(f"String should have at most {max_length} characters")
        if compiled is not None and not compiled.search(value):
            raise Invalid(f"String should match pattern '{pattern}'")
        return value

    return check


def count(*, minimum: int = 0) -> Check:
    """A whole number (a JSON number without a fractional part) of at least `minimum`."""

    def check(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid("Input should be a valid integer")
        if value < minimum:
            raise Invalid(f"Input should be greater than or equal to {minimum}")
        return value

    return check


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            raise Invalid("Input should be " + " or ".join(repr(choice) for choice in choices))
        return str(value)

    return check


def moment(value: Any) -> datetime:
    """An ISO-8601 date or date and time (`2027-01-15T08:00:00Z`), as the API writes `createdAt`."""
    if not isinstance(value, str):
        raise Invalid("Input should be a valid datetime")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("Input should be a valid datetime") from None


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("Input should be a valid dictionary")
    return value


def optional(check: Check) -> Check:
    """`null` is accepted as well (and is what a field left out defaults to)."""
    return lambda value: None if value is None else check(value)


Identifier = Annotated[str, text(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
"""Booking and flight ids: UUIDs in practice, any short URL-safe id accepted."""

PaymentToken = Annotated[str, text(pattern=r"^[A-Za-z0-9_]{3,128}$")]
"""A pre-authorised charge id; a field of this type is declared `field(repr=False)`, out of tracebacks."""

Customer = Annotated[str, text(min_length=1, max_length=128, pattern=r"^[^\s]+$")]


@dataclass(frozen=True)
class SeatRequest:
    """Reserve Flight and Release Flight Seat: which booking holds a seat on which flight."""

    booking_id: Identifier
    outbound_flight_id: Identifier


@dataclass(frozen=True)
class NewBooking:
    """Reserve Booking: the row that will carry the booking through the saga."""

    booking_id: Identifier
    customer: Customer
    outbound_flight_id: Identifier
    payment_token: PaymentToken = field(repr=False)
    created_at: Annotated[datetime, moment]


@dataclass(frozen=True)
class CollectPaymentRequest:
    """Collect Payment: the price is read from the flight, never taken from here."""

    booking_id: Identifier
    outbound_flight_id: Identifier
    payment_token: PaymentToken = field(repr=False)


@dataclass(frozen=True)
class RefundPaymentRequest:
    """Refund Payment: give back whatever the charge holds for this booking.

    Without a token the function reads it from the booking row: the cancellation saga and a redrive
    from the DLQ name the booking only, so no payment token travels through them."""

    booking_id: Identifier
    payment_token: Annotated[str | None, optional(text(pattern=r"^[A-Za-z0-9_]{3,128}$"))] = field(
        default=None, repr=False
    )


@dataclass(frozen=True)
class BookingIdentity:
    """What only needs the booking id."""

    booking_id: Identifier


@dataclass(frozen=True)
class ConfirmRequest:
    """Confirm Booking: the booking, and the charge Collect Payment captured for it, whose claim it
    records as captured in the same write (a redrive may name the booking only)."""

    booking_id: Identifier
    payment_token: Annotated[str | None, optional(text(pattern=r"^[A-Za-z0-9_]{3,128}$"))] = field(
        default=None, repr=False
    )


CancellationKey = Annotated[str | None, optional(text(pattern=r"^[A-Za-z0-9_-]{8,64}$"))]


@dataclass(frozen=True)
class CancelRequest:
    """Cancel Booking. `compensate` (the booking saga's compensation): any booking → CANCELLED.
    `begin` and `finish` (the cancellation saga): CONFIRMED → CANCELLING → CANCELLED, for the
    cancellation `cancellation_key` names; `finish` records the refund's outcome."""

    booking_id: Identifier
    action: Annotated[str, one_of("compensate", "begin", "finish")] = "compensate"
    cancellation_key: CancellationKey = None
    refund: Annotated[dict[str, Any] | None, optional(json_object)] = None


@dataclass(frozen=True)
class Notification:
    """Notify Booking: what subscribers (Loyalty) need to act on and deduplicate an event."""

    booking_id: Identifier
    customer: Customer
    outbound_flight_id: Identifier
    status: Annotated[Literal["confirmed", "cancelled"], one_of("confirmed", "cancelled")]
    booking_reference: Annotated[str | None, optional(text(max_length=16))] = None
    amount: Annotated[int | None, optional(count(minimum=0))] = None
    currency: Annotated[str | None, optional(text(pattern=r"^[A-Z]{3}$"))] = None
    reason: Annotated[str | None, optional(text(max_length=128))] = None
    refund: Annotated[dict[str, Any] | None, optional(json_object)] = None

    def as_payload(self) -> dict[str, Any]:
        """The notification as Notify Booking's payload: every field, by its key."""
        return {json_key(f.name): getattr(self, f.name) for f in fields(self)}


def json_key(name: str) -> str:
    """A field's key in the payload: `outbound_flight_id` is `outboundFlightId`."""
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


M = TypeVar("M", bound="DataclassInstance")


def parse_task_input(event: Any, model: type[M]) -> M:
    """Parse a task's payload, or fail with a message that names the fields, never their values."""
    if not isinstance(event, dict):
        raise InvalidSagaInput(f"{model.__name__}: the payload must be a JSON object")
    values: dict[str, Any] = {}
    problems: list[str] = []
    known = set()
    for name, (key, check, required) in _checks(model).items():
        known.add(key)
        if key not in event:
            if required:
                problems.append(f"{key}: Field required")
            continue
        try:
            values[name] = check(event[key])
        except Invalid as problem:
            problems.append(f"{key}: {problem}")
    problems.extend(f"{key}: Extra inputs are not permitted" for key in event if key not in known)
    if problems:
        raise InvalidSagaInput(f"{model.__name__}: {'; '.join(problems)}")
    return model(**values)


@cache
def _checks(model: type[DataclassInstance]) -> dict[str, tuple[str, Check, bool]]:
    """Each field of a model: its key in the payload, its check, and whether it is required."""
    hints = get_type_hints(model, include_extras=True)
    return {
        declared.name: (
            json_key(declared.name),
            get_args(hints[declared.name])[1],
            declared.default is MISSING,
        )
        for declared in fields(model)
    }
