"""The GraphQL operations, as plain Python behind the Api function's resolvers.

Every operation takes the `Caller` first and checks it before reading anything; every argument is
validated before anything is written or started, so a rejected request changes nothing.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from booking.access import Caller
from booking.bookings import BookingRepository
from booking.conditions import booking_filter, status_condition
from booking.errors import BadRequest, BookingInProgress, NotFound, Unauthorized
from booking.flights import FlightRepository
from booking.lifecycle import CANCELLED, CANCELLING, CONFIRMED, STATUSES, UNCONFIRMED
from booking.paging import PageTokens

BOOKING_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PAYMENT_TOKEN = re.compile(r"^[A-Za-z0-9_]{3,128}$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
AIRPORT = re.compile(r"^[A-Z]{3}$")
DEFAULT_PAGE, MAX_PAGE = 10, 100

BOOKING_NAMESPACE = uuid.UUID("8f0d6c1e-5f4a-4c1b-9a57-4b1f2a0e6d3c")
"""Booking ids are uuid5(namespace, caller sub + idempotency key): the same key from the same caller
names the same booking, and so the same execution, which Step Functions starts only once. Without a
key, uuid5(namespace, caller sub + the payment token): a pre-authorised charge pays for one booking,
so the same token from the same caller is the same booking (keys have no newline, so the two never
name the same id)."""

SERVER_SET = ("id", "status", "customer", "checkedIn")
"""Fields of CreateBookingInput (the seed's Amplify input) that only the server sets."""

MASK = "****"
READ_REFUSED = "Not Authorized to access getBooking on type Query"
WRITE_REFUSED = "Not Authorized to access updateBooking on type Mutation"
SAGA_WAIT_SECONDS = 2.0
"""How long cancelBooking waits for a booking saga in its last steps before it refuses the cancellation."""
SAGA_POLL_SECONDS = 0.2
CANCEL_REFUSED = "Not Authorized to access cancelBooking on type Mutation"
SUBSCRIBE_REFUSED = "Not Authorized to access onBookingStatusChanged on type Subscription"

_EXECUTION_STATUS = {"RUNNING": "UNCONFIRMED", "SUCCEEDED": "CONFIRMED"}


class BookingApi:
    """The operations of schema.graphql."""

    def __init__(
        self,
        bookings: BookingRepository,
        flights: FlightRepository,
        stepfunctions: Any,
        state_machine_arn: str,
        tokens: PageTokens,
        cancel_state_machine_arn: str = "",
        cancellation_cutoff: timedelta = timedelta(hours=2),
    ) -> None:
        self.bookings = bookings
        self.flights = flights
        self.sfn = stepfunctions
        self.state_machine_arn = state_machine_arn
        self.tokens = tokens
        self.cancel_state_machine_arn = cancel_state_machine_arn
        self.cancellation_cutoff = cancellation_cutoff

    # ------------------------------------------------------------------ mutations
    def process_booking(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate, then start the saga named after the booking id; answer with that id at once."""
        customer = caller.customer()
        for name in SERVER_SET:
            if arguments.get(name) is not None:
                raise BadRequest(f"input.{name} is set by the server; leave it out")
        token = _matching(arguments, "paymentToken", PAYMENT_TOKEN, "a payment token ([A-Za-z0-9_], 3-128)")
        flight_id = _matching(arguments, "bookingOutboundFlightId", BOOKING_ID, "a flight id")
        key = None
        if arguments.get("idempotencyKey") is not None:
            key = _matching(arguments, "idempotencyKey", IDEMPOTENCY_KEY, "8-64 characters [A-Za-z0-9_-]")
        flight = self.flights.get_item(flight_id)
        if flight is None:
            raise BadRequest(f"flight {flight_id} does not exist")
        departure = _timestamp(str(flight.get("departureDateTime", "")))
        if departure is None or departure <= datetime.now(UTC):
            raise BadRequest(f"flight {flight_id} has already departed; choose a later flight")
        name = f"{customer}\n{key}" if key is not None else f"{customer}\npaymentToken\n{token}"
        booking_id = str(uuid.uuid5(BOOKING_NAMESPACE, name))
        saga_input = {
            "bookingId": booking_id,
            "customer": customer,
            "outboundFlightId": flight_id,
            "paymentToken": token,
            "createdAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        try:
            self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=booking_id, input=json.dumps(saga_input)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return self._replay(booking_id, saga_input, "paymentToken" if key is None else "idempotencyKey")
        return {"id": booking_id, "status": "UNCONFIRMED"}

    def _replay(self, booking_id: str, saga_input: dict[str, Any], named_by: str) -> dict[str, Any]:
        """The same key (or, without a key, token) again: the same booking, if it is the same request."""
        started = self._execution(booking_id)
        if started is None:  # pragma: no cover - Step Functions said it exists a moment ago
            raise BadRequest(f"this {named_by} is being used; try again")
        first = json.loads(started["input"])
        same = ("customer", "outboundFlightId", "paymentToken")
        if any(first.get(name) != saga_input[name] for name in same):
            if named_by == "paymentToken":
                raise BadRequest("paymentToken already pays for another booking; a charge pays for one")
            raise BadRequest("idempotencyKey was already used for a different booking; use a new key")
        current = self.bookings.get_item(booking_id)
        status = current["status"] if current else _saga_status(started["status"])
        return {"id": booking_id, "status": status}

    def update_booking(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check in (or undo it): the only change the API makes to a booking."""
        booking_id = _matching(arguments, "id", BOOKING_ID, "a booking id")
        checked_in = arguments.get("checkedIn")
        if not isinstance(checked_in, bool):
            raise BadRequest("input.checkedIn must be true or false")
        for _ in range(3):
            booking = self.bookings.get_item(booking_id)
            if booking is None:
                if caller.is_admin:
                    raise NotFound(f"booking {booking_id} does not exist")
                raise Unauthorized(WRITE_REFUSED)  # as for another's booking: no existence oracle
            caller.require_writer_of(booking.get("customer"))
            if checked_in and booking.get("status") != CONFIRMED:
                raise BadRequest(
                    f"booking {booking_id} is {booking.get('status')}: only a CONFIRMED booking can check in"
                )
            if checked_in and booking.get("cancellationKey"):
                raise BadRequest(f"booking {booking_id} is being cancelled: it cannot check in")
            if booking.get("checkedIn") is checked_in:
                return _booking(booking, caller)
            if self.bookings.set_checked_in(booking_id, checked_in, str(booking.get("updatedAt", ""))):
                updated = self.bookings.get_item(booking_id)
                return _booking(updated or booking, caller)
        raise BadRequest(f"booking {booking_id} keeps changing; try again")

    def cancel_booking(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
        """Refuse what must be refused, record the request on the row, start the cancellation saga.

        The recorded request is the one arbiter of every race (decision 0008): it is written only on
        a CONFIRMED, not checked-in booking that holds no other request, and only if the booking is
        still the version these checks read; so two cancellations, or a cancellation and a check-in,
        cannot both win. The saga is named after the booking, so it starts once.
        """
        booking_id = _matching(arguments, "id", BOOKING_ID, "a booking id")
        given = arguments.get("idempotencyKey")
        if given is not None:
            given = _matching(arguments, "idempotencyKey", IDEMPOTENCY_KEY, "8-64 characters [A-Za-z0-9_-]")
        key = given or uuid.uuid4().hex  # no key: this request is unlike any other
        for _ in range(3):
            booking = self.bookings.get_item(booking_id)
            if booking is None:
                self._refuse_cancelling_no_row(caller, booking_id)
            caller.require_writer_of(booking.get("customer"), "cancelBooking")
            if given is not None and booking.get("cancellationKey") == given:
                return self._start_cancellation(booking, given)  # the same request again
            self._refuse_while_booking(booking_id)
            self._check_cancellable(booking)
            seen = str(booking.get("updatedAt", ""))
            if self.bookings.request_cancellation(booking_id, key, caller.label, seen):
                return self._start_cancellation(booking, key)
        raise BadRequest(f"booking {booking_id} keeps changing; try again")

    def _refuse_while_booking(self, booking_id: str) -> None:
        """A booking whose saga still runs is not cancelled: its Notify Booking Confirmed has yet to
        announce CONFIRMED, and a cancellation now would let that announcement follow CANCELLING. A
        client that read CONFIRMED and cancels at once usually finds the saga in its last step: the
        API waits for it a moment (`SAGA_WAIT_SECONDS`), then refuses with `BookingInProgress`."""
        deadline = time.monotonic() + SAGA_WAIT_SECONDS
        while True:
            saga = self._execution(booking_id)
            if saga is None or saga["status"] != "RUNNING":
                return
            if time.monotonic() >= deadline:
                raise BookingInProgress(
                    f"booking {booking_id} is still being booked; cancel it once it is CONFIRMED and its "
                    "confirmation is sent (subscribe to onBookingStatusChanged, or read getBooking)"
                )
            time.sleep(SAGA_POLL_SECONDS)

    def _refuse_cancelling_no_row(self, caller: Caller, booking_id: str) -> NoReturn:
        """No row yet: the booking saga may still be on its first step; never an existence oracle."""
        execution = self._execution(booking_id)
        if execution is not None:
            caller.require_writer_of(json.loads(execution["input"]).get("customer"), "cancelBooking")
            raise BadRequest(f"booking {booking_id} is not confirmed yet; cancel it once it is CONFIRMED")
        if caller.is_admin:
            raise NotFound(f"booking {booking_id} does not exist")
        raise Unauthorized(CANCEL_REFUSED)

    def _check_cancellable(self, booking: dict[str, Any]) -> None:
        booking_id, status = booking["id"], booking.get("status")
        if status == UNCONFIRMED:
            raise BadRequest(f"booking {booking_id} is not confirmed yet; cancel it once it is CONFIRMED")
        if status == CANCELLED:
            raise BadRequest(f"booking {booking_id} is already cancelled")
        if status == CANCELLING or booking.get("cancellationKey"):
            raise BadRequest(f"booking {booking_id} is already being cancelled")
        if status != CONFIRMED:  # pragma: no cover - the enum has no other value
            raise BadRequest(f"booking {booking_id} is {status}; only a CONFIRMED booking can be cancelled")
        if booking.get("checkedIn"):
            raise BadRequest(
                f"booking {booking_id} is checked in; undo the check-in (updateBooking checkedIn: false) "
                "to cancel it"
            )
        flight = self.flights.get_item(str(booking.get("bookingOutboundFlightId")))
        departure = _timestamp(str((flight or {}).get("departureDateTime", "")))
        if departure is None:
            raise BadRequest(f"the flight of booking {booking_id} no longer exists; it cannot be cancelled")
        closes = departure - self.cancellation_cutoff
        if datetime.now(UTC) >= closes:
            minutes = int(self.cancellation_cutoff.total_seconds() // 60)
            raise BadRequest(
                f"too late to cancel booking {booking_id}: cancellations close {minutes} minutes before "
                f"departure ({closes.isoformat().replace('+00:00', 'Z')})"
            )

    def _start_cancellation(self, booking: dict[str, Any], key: str) -> dict[str, Any]:
        """Start (or find started) the saga of the cancellation recorded with this key."""
        booking_id = booking["id"]
        saga_input = {
            "bookingId": booking_id,
            "customer": booking.get("customer"),
            "outboundFlightId": booking.get("bookingOutboundFlightId"),
            "cancellationKey": key,
        }
        try:
            self.sfn.start_execution(
                stateMachineArn=self.cancel_state_machine_arn, name=booking_id, input=json.dumps(saga_input)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            started = self._execution(booking_id, self.cancel_state_machine_arn)
            if started is None or json.loads(started["input"]).get("cancellationKey") != key:
                raise BadRequest(f"booking {booking_id} is already being cancelled") from None
        status = booking.get("status")
        return {"id": booking_id, "status": CANCELLING if status == CONFIRMED else status}

    def publish_booking_status(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
        """A saga's push of a status change: checked, then answered as is, for AppSync to hand to the
        subscribers of that booking (`@aws_subscribe`). It writes nothing: the sagas have written."""
        caller.require_publisher()
        booking_id = _matching(arguments, "id", BOOKING_ID, "a booking id")
        customer = arguments.get("customer")
        if not isinstance(customer, str) or not customer or len(customer) > 128:
            raise BadRequest("customer must be a customer id (the user pool sub)")
        status = arguments.get("status")
        if status not in STATUSES:
            raise BadRequest("status must be a BookingStatus")
        occurred = arguments.get("occurredAt")
        if _timestamp(str(occurred)) is None:
            raise BadRequest("occurredAt must be an ISO-8601 date and time")
        change = {"id": booking_id, "customer": customer, "status": status, "occurredAt": occurred}
        sequence = arguments.get("sequence")
        if sequence is not None and (
            isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1
        ):
            raise BadRequest("sequence must be a positive whole number")
        change["sequence"] = sequence
        for name in ("bookingReference", "reason"):
            value = arguments.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > 128):
                raise BadRequest(f"{name} must be text of at most 128 characters")
            change[name] = value
        return change

    def on_booking_status_changed(self, caller: Caller, arguments: dict[str, Any]) -> None:
        """Runs when a client subscribes: the owner (or Admin) of the booking only, as getBooking.

        A booking that is neither written nor started is refused like another customer's (no
        existence oracle); a client subscribes once processBooking has answered with the id."""
        booking_id = _matching(arguments, "id", BOOKING_ID, "a booking id")
        booking = self.bookings.get_item(booking_id)
        if booking is not None:
            caller.require_reader_of(booking.get("customer"), "onBookingStatusChanged", "Subscription")
            return
        execution = self._execution(booking_id)
        if execution is None:
            if caller.is_admin:
                raise NotFound(f"booking {booking_id} does not exist")
            raise Unauthorized(SUBSCRIBE_REFUSED)
        caller.require_reader_of(
            json.loads(execution["input"]).get("customer"), "onBookingStatusChanged", "Subscription"
        )

    # ------------------------------------------------------------------ queries
    def get_booking(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any] | None:
        """The row once the saga has written it; before that, the saga's own view of the booking."""
        booking_id = _matching(arguments, "id", BOOKING_ID, "a booking id")
        booking = self.bookings.get_item(booking_id)
        if booking is not None:
            caller.require_reader_of(booking.get("customer"), "getBooking")
            return _booking(booking, caller)
        execution = self._execution(booking_id)
        if execution is None:
            if caller.is_admin or caller.is_service:
                return None  # they may read every booking: "none" tells them nothing they could not see
            raise Unauthorized(READ_REFUSED)  # as for another's booking: no existence oracle
        started = json.loads(execution["input"])
        caller.require_reader_of(started.get("customer"), "getBooking")
        return _booking(
            {
                "id": booking_id,
                "status": _saga_status(execution["status"]),
                "customer": started.get("customer"),
                "bookingOutboundFlightId": started.get("outboundFlightId"),
                "paymentToken": started.get("paymentToken"),
                "createdAt": started.get("createdAt"),
                "checkedIn": False,
            },
            caller,
        )

    def get_booking_by_status(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
        """The seed's Amplify `@key` query: a customer's bookings by a condition on their status."""
        customer = arguments.get("customer")
        if customer is None and caller.sub is not None:
            customer = caller.sub
        if not isinstance(customer, str) or not customer or len(customer) > 128:
            raise BadRequest("customer must be a customer id (the user pool sub)")
        caller.require_reader_of(customer, "getBookingByStatus")
        status = status_condition(arguments.get("status"))
        filter_ = booking_filter(arguments.get("filter"))
        forward = arguments.get("sortDirection") != "DESC"
        limit = _limit(arguments)
        scope = "getBookingByStatus\n" + json.dumps(
            [customer, arguments.get("status"), forward, arguments.get("filter")], sort_keys=True
        )
        items, last = self.bookings.by_customer(
            customer, status, filter_, forward, limit, self.tokens.read(scope, arguments.get("nextToken"))
        )
        return {
            "items": [_booking(item, caller) for item in items],
            "nextToken": self.tokens.issue(scope, last),
        }

    def list_bookings(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
        caller.require_admin("listBookings")
        scope = "listBookings"
        items, last = self.bookings.scan(
            _limit(arguments), self.tokens.read(scope, arguments.get("nextToken"))
        )
        return {
            "items": [_booking(item, caller) for item in items],
            "nextToken": self.tokens.issue(scope, last),
        }

    def get_flight(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any] | None:
        return self.flights.get_item(_matching(arguments, "id", BOOKING_ID, "a flight id"))

    def get_flight_by_schedule(self, caller: Caller, arguments: dict[str, Any]) -> dict[str, Any]:
        departure = _matching(arguments, "departureAirportCode", AIRPORT, "a 3-letter IATA code")
        arrival = _matching(arguments, "arrivalAirportCode", AIRPORT, "a 3-letter IATA code")
        day = arguments.get("departureDate")
        try:
            date.fromisoformat(str(day))
        except ValueError:
            raise BadRequest("departureDate must be a date, YYYY-MM-DD") from None
        scope = f"getFlightBySchedule\n{departure}\n{arrival}\n{day}"
        items, last = self.flights.by_schedule(
            departure,
            arrival,
            str(day),
            _limit(arguments),
            self.tokens.read(scope, arguments.get("nextToken")),
        )
        return {"items": items, "nextToken": self.tokens.issue(scope, last)}

    def outbound_flights(self, sources: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
        """`Booking.outboundFlight` for a whole batch of bookings: one BatchGetItem."""
        ids = [(source or {}).get("bookingOutboundFlightId") for source in sources]
        found = self.flights.get_items(i for i in ids if isinstance(i, str))
        return [found.get(i) if isinstance(i, str) else None for i in ids]

    # ------------------------------------------------------------------ helpers
    def _execution(self, booking_id: str, state_machine_arn: str | None = None) -> dict[str, Any] | None:
        machine = state_machine_arn or self.state_machine_arn
        arn = machine.replace(":stateMachine:", ":execution:") + f":{booking_id}"
        try:
            description: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return description


def _booking(item: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """A booking row as the schema's Booking; `bookingOutboundFlightId` stays for `outboundFlight`.

    Only Admin sees the whole payment token; everyone else its last 4 characters (`****4242`).
    """
    token = item.get("paymentToken")
    return {
        "id": item["id"],
        "status": item.get("status"),
        "customer": item.get("customer"),
        "paymentToken": token if caller.is_admin else masked(token),
        "checkedIn": bool(item.get("checkedIn", False)),
        "createdAt": item.get("createdAt"),
        "bookingReference": item.get("bookingReference"),
        "bookingOutboundFlightId": item.get("bookingOutboundFlightId"),
        "refund": item.get("refund"),
    }


def masked(token: str | None) -> str | None:
    """A payment token shown to its owner: its last 4 characters; a short one (under 8) not at all."""
    if token is None:
        return None
    return MASK + token[-4:] if len(token) >= 8 else MASK


def _saga_status(execution_status: str) -> str:
    """How a booking looks from its execution alone: running is UNCONFIRMED, any failure CANCELLED."""
    return _EXECUTION_STATUS.get(execution_status, "CANCELLED")


def _matching(arguments: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"{name} must be {what}")
    return value


def _limit(arguments: dict[str, Any]) -> int:
    limit = arguments.get("limit")
    if limit is None:
        return DEFAULT_PAGE
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE}")
    return limit


def _timestamp(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
