"""The booking row, its charge claim and their transitions, each guarded by a condition in the write.

The moves themselves are `booking.lifecycle`'s. The booking saga: UNCONFIRMED → CONFIRMED, or →
CANCELLED by its compensations. A customer's cancellation (decision 0008): the API records the request
on a CONFIRMED booking (`cancellationKey`, one per booking), then the cancellation saga moves CONFIRMED
→ CANCELLING → CANCELLED. Every method is idempotent: a second run with the same booking id (and key)
finds its own earlier write through the condition that failed and returns the same result instead of
an error.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from booking import lifecycle
from booking.clients import plain, read_page, rejected_item, store_error
from booking.errors import (
    BookingNotFound,
    BookingStateConflict,
    BookingStoreUnavailable,
    PaymentTokenInUse,
)
from booking.lifecycle import CANCELLED, CANCELLING, CONFIRMED, UNCONFIRMED

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from booking.conditions import Expression
    from booking.models import NewBooking

__all__ = ["CANCELLED", "CANCELLING", "CONFIRMED", "UNCONFIRMED", "BookingRecord", "BookingRepository"]

CUSTOMER_CANCELLED = "CustomerCancelled"
"""The reason a customer's (or Admin's) cancellation gives, on the row and in the event."""

# No 0/O or 1/I: a reference is read aloud at check-in desks. 32**6 ≈ 1.07e9 references.
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERENCE_LENGTH = 6
REFERENCE_ITEM_PREFIX = "reference#"
"""Each issued reference also owns an item `reference#<REF>` in the booking table, written in
the same transaction as the confirmation, so two bookings can never share a reference. These
items carry no `customer`, so they never appear in the `ByCustomerStatus` index."""

CHARGE_CLAIM_PREFIX = "charge#"

_MAX_REFERENCE_ATTEMPTS = 5


def charge_claim_id(payment_token: str) -> str:
    """The claim's key: a digest, so the table's keys and any log of them never show the token."""
    return CHARGE_CLAIM_PREFIX + hashlib.sha256(payment_token.encode()).hexdigest()


@dataclass(frozen=True)
class BookingRecord:
    """A booking as stored; the payment token stays out of `repr` and of `as_output()`."""

    id: str
    customer: str
    outbound_flight_id: str
    status: str
    created_at: str
    booking_reference: str | None = None
    cancellation_key: str | None = None
    status_sequence: int = 1
    status_changed_at: str | None = None
    charge: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> BookingRecord:
        return cls(
            id=item["id"]["S"],
            customer=item["customer"]["S"],
            outbound_flight_id=item["bookingOutboundFlightId"]["S"],
            status=item["status"]["S"],
            created_at=item["createdAt"]["S"],
            booking_reference=item.get("bookingReference", {}).get("S"),
            cancellation_key=item.get("cancellationKey", {}).get("S"),
            status_sequence=int(item.get("statusSequence", {}).get("N", "1")),
            status_changed_at=item.get("statusChangedAt", {}).get("S") or item.get("updatedAt", {}).get("S"),
            charge=item.get("charge", {}).get("S"),
        )

    def as_output(self) -> dict[str, Any]:
        """What a task returns into the execution's state."""
        output: dict[str, Any] = {"bookingId": self.id, "status": self.status}
        if self.booking_reference:
            output["bookingReference"] = self.booking_reference
        return output


CancelOutcome = Literal["cancelled", "absent"]


class BookingRepository:
    """The booking table, one transition at a time."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def get(self, booking_id: str) -> BookingRecord | None:
        item = self._read(booking_id)
        return BookingRecord.from_item(item) if item else None

    def get_item(self, booking_id: str) -> dict[str, Any] | None:
        """The booking as the API shows it; claim items are not bookings."""
        if booking_id.startswith((REFERENCE_ITEM_PREFIX, CHARGE_CLAIM_PREFIX)):
            return None
        item = self._read(booking_id)
        return plain(item) if item else None

    def _read(self, item_id: str) -> dict[str, Any] | None:
        """A strongly consistent read: every status check must see the latest transition."""
        try:
            item: dict[str, Any] | None = self._client.get_item(
                TableName=self._table, Key={"id": {"S": item_id}}, ConsistentRead=True
            ).get("Item")
        except ClientError as error:
            raise store_error(error) from None
        return item

    def by_customer(
        self,
        customer: str,
        status: Expression | None,
        filter_: Expression | None,
        forward: bool,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a customer's bookings from the ByCustomerStatus index (no scan).

        `status` is a condition on the index's sort key (`booking.conditions`), `filter_` a
        FilterExpression applied after `limit`, `forward` the sort-key order (ScanIndexForward).
        """
        key = "customer = :customer" + (f" AND {status.text}" if status else "")
        names = {**(status.names if status else {}), **(filter_.names if filter_ else {})}
        values = {
            ":customer": {"S": customer},
            **(status.values if status else {}),
            **(filter_.values if filter_ else {}),
        }
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "ByCustomerStatus",
            "KeyConditionExpression": key,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
            "Limit": limit,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if filter_:
            request["FilterExpression"] = filter_.text
        return read_page(self._client.query, request, start_key, plain)

    def scan(
        self, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Every booking, a page at a time, for Admin; claim items (no `customer`) are filtered out."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "attribute_exists(customer)",
            "Limit": limit,
        }
        return read_page(self._client.scan, request, start_key, plain)

    def set_checked_in(self, booking_id: str, checked_in: bool, seen_updated_at: str) -> bool:
        """Write `checkedIn` only if the booking is still the version the caller's checks were made on.

        The write names `id`, `checkedIn` and `updatedAt` and nothing else, so the Api function's IAM
        policy can forbid every other attribute: status, seats and money stay the sagas' business.
        False means the booking changed meanwhile (read it again and re-check).
        """
        return self._written_if(
            booking_id,
            "SET checkedIn = :checked_in, updatedAt = :now",
            "attribute_exists(id) AND updatedAt = :seen",
            {":checked_in": {"BOOL": checked_in}, ":now": {"S": _now()}, ":seen": {"S": seen_updated_at}},
        )

    def _written_if(
        self, booking_id: str, update: str, condition: str, values: dict[str, Any], **names: str
    ) -> bool:
        """One conditional UpdateItem; False when its condition refused it (the booking changed)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"id": {"S": booking_id}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            self._client.update_item(**request)
        except ClientError as error:
            rejected_item(error)
            return False
        return True

    def reserve(self, booking: NewBooking) -> BookingRecord:
        """Put the booking as UNCONFIRMED and claim its charge, or find the same booking already put.

        The claim item (`charge#<sha256 of the token>`) makes a pre-authorised charge belong to one
        booking: a second booking on the same charge is refused here, and Refund Payment gives back
        only a charge its own booking claimed, never another booking's money.
        """
        now = _now()
        item: dict[str, Any] = {
            "id": {"S": booking.booking_id},
            "customer": {"S": booking.customer},
            "bookingOutboundFlightId": {"S": booking.outbound_flight_id},
            "paymentToken": {"S": booking.payment_token},
            **lifecycle.first_state(now),
            "checkedIn": {"BOOL": False},
            "createdAt": {"S": booking.created_at.isoformat().replace("+00:00", "Z")},
            "updatedAt": {"S": now},
        }
        claim = {
            "id": {"S": charge_claim_id(booking.payment_token)},
            "bookingId": {"S": booking.booking_id},
            "charge": {"S": lifecycle.AUTHORISED},
            "updatedAt": {"S": now},
        }
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": claim,
                            "ConditionExpression": "attribute_not_exists(id) OR bookingId = :me",
                            "ExpressionAttributeValues": {":me": {"S": booking.booking_id}},
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise store_error(error) from None
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return self._same_booking(booking)
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise PaymentTokenInUse("the payment token already pays for another booking") from None
            raise BookingStoreUnavailable(f"DynamoDB transaction cancelled: {reasons}") from None
        return BookingRecord.from_item(item)

    def _same_booking(self, booking: NewBooking) -> BookingRecord:
        existing = self.get(booking.booking_id)
        if existing is None:  # the row was there a moment ago: only a manual delete explains this
            raise BookingStateConflict(f"booking {booking.booking_id} vanished while being reserved")
        if (existing.customer, existing.outbound_flight_id) != (booking.customer, booking.outbound_flight_id):
            raise BookingStateConflict(
                f"booking {booking.booking_id} already exists for another customer or flight"
            )
        return existing

    def payment_token(self, booking_id: str) -> str | None:
        """The charge a booking row carries; None when there is no row (so it claimed no charge)."""
        item = self._read(booking_id)
        return item["paymentToken"]["S"] if item and "paymentToken" in item else None

    def charge_owner(self, payment_token: str) -> str | None:
        """The booking that claimed this charge, if any."""
        item = self._read(charge_claim_id(payment_token))
        return item["bookingId"]["S"] if item else None

    def charge_state(self, payment_token: str) -> tuple[str | None, str | None]:
        """(the booking that claimed the charge, what became of it); (None, None) when unclaimed."""
        item = self._read(charge_claim_id(payment_token))
        if not item:
            return None, None
        return item["bookingId"]["S"], item.get("charge", {}).get("S")

    def claim_to_release(self, payment_token: str, booking_id: str) -> str:
        """Claim a charge nobody has claimed, so this booking can give its authorisation back (its saga
        ended before Reserve Booking claimed it); the booking that owns the charge after this call.

        The first claim wins: a second booking on the same pre-authorised charge is refused at its
        Reserve Booking (PaymentTokenInUse), never paid with an authorisation already released."""
        claim = {
            "id": {"S": charge_claim_id(payment_token)},
            "bookingId": {"S": booking_id},
            "charge": {"S": lifecycle.AUTHORISED},
            "updatedAt": {"S": _now()},
        }
        try:
            self._client.put_item(
                TableName=self._table, Item=claim, ConditionExpression="attribute_not_exists(id)"
            )
        except ClientError as error:
            found = rejected_item(error)
            owner = (found or self._read(charge_claim_id(payment_token)) or {}).get("bookingId", {}).get("S")
            if owner is None:
                raise BookingStateConflict("the charge's claim vanished while it was being claimed") from None
            return str(owner)
        return booking_id

    def record_charge(self, payment_token: str, booking_id: str, state: str) -> None:
        """What became of the charge, on its claim and on the booking's row when there is one. Only the
        booking that claimed the charge writes it; the row's write is skipped when there is no row."""
        now = _now()
        self._written_if(
            charge_claim_id(payment_token),
            "SET charge = :charge, updatedAt = :now",
            "bookingId = :me",
            {":charge": {"S": state}, ":now": {"S": now}, ":me": {"S": booking_id}},
        )
        self._written_if(
            booking_id,
            "SET charge = :charge",
            "attribute_exists(id) AND paymentToken = :token",
            {":charge": {"S": state}, ":token": {"S": payment_token}},
        )

    def confirm(self, booking_id: str, payment_token: str | None = None) -> BookingRecord:
        """UNCONFIRMED → CONFIRMED with a reference no other booking has, and its charge recorded as
        captured (Collect Payment ran first); a rerun returns it again."""
        for _ in range(_MAX_REFERENCE_ATTEMPTS):
            reference = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
            move = lifecycle.transition(UNCONFIRMED, CONFIRMED, _now())
            items: list[Any] = [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"id": {"S": booking_id}},
                        "UpdateExpression": f"SET {move.update}, bookingReference = :ref, charge = :captured",
                        "ConditionExpression": move.condition,
                        "ExpressionAttributeNames": move.names,
                        "ExpressionAttributeValues": {
                            **move.values,
                            ":ref": {"S": reference},
                            ":captured": {"S": lifecycle.CAPTURED},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "id": {"S": REFERENCE_ITEM_PREFIX + reference},
                            "bookingId": {"S": booking_id},
                        },
                        "ConditionExpression": "attribute_not_exists(id)",
                    }
                },
            ]
            if payment_token:
                items.append(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"id": {"S": charge_claim_id(payment_token)}},
                            "UpdateExpression": "SET charge = :captured, updatedAt = :changed",
                            "ConditionExpression": "bookingId = :me",
                            "ExpressionAttributeValues": {
                                ":captured": {"S": lifecycle.CAPTURED},
                                ":changed": move.values[":changed"],
                                ":me": {"S": booking_id},
                            },
                        }
                    }
                )
            try:
                self._client.transact_write_items(TransactItems=items)
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise store_error(error) from None
                reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return self._already_confirmed(booking_id)
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    continue  # this reference belongs to another booking: draw another one
                if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
                    raise BookingStateConflict(
                        f"booking {booking_id} did not claim the charge it was paid with"
                    ) from None
                raise BookingStoreUnavailable(f"DynamoDB transaction cancelled: {reasons}") from None
            confirmed = self.get(booking_id)
            if confirmed is None:  # deleted between the two calls: nothing sane to return
                raise BookingNotFound(f"booking {booking_id} vanished after it was confirmed")
            return confirmed
        raise BookingStoreUnavailable("could not draw a free booking reference")

    def _already_confirmed(self, booking_id: str) -> BookingRecord:
        current = self.get(booking_id)
        if current is None:
            raise BookingNotFound(f"booking {booking_id} does not exist")
        if current.status != CONFIRMED:
            raise BookingStateConflict(f"booking {booking_id} is {current.status}, it cannot be confirmed")
        return current

    def cancel(self, booking_id: str) -> CancelOutcome:
        """The booking saga's compensation: the booking → CANCELLED; no row (its forward step never ran)
        is a no-op. An UNCONFIRMED booking moves straight there; a CONFIRMED one (Confirm Booking wrote,
        then the saga failed) goes through CANCELLING, the only way out of CONFIRMED. A booking a
        customer is cancelling is that cancellation's business: a conflict, never cancelled twice."""
        for _ in range(4):
            item = self._read(booking_id)
            if not item:
                return "absent"
            current = BookingRecord.from_item(item)
            if current.status == CANCELLED:
                return "cancelled"
            if current.status == CANCELLING and current.cancellation_key:
                raise BookingStateConflict(f"booking {booking_id} is being cancelled by its customer")
            target = CANCELLING if current.status == CONFIRMED else CANCELLED
            try:
                self._move(booking_id, lifecycle.transition(current.status, target, _now()))
            except _Refused:
                continue  # it changed meanwhile: read it again
        raise BookingStateConflict(f"booking {booking_id} kept changing while it was being cancelled")

    def request_cancellation(
        self, booking_id: str, key: str, requested_by: str, seen_updated_at: str
    ) -> bool:
        """Record a customer's cancellation on a CONFIRMED, not checked-in booking: one per booking.

        The API's only write besides check-in, and like it conditional on the version its checks were
        made on (`updatedAt`), so a cancellation and a check-in at once cannot both win: whichever
        writes first changes `updatedAt`, and the other's write fails and is re-checked. The status
        stays CONFIRMED: status changes belong to the cancellation saga. False: the booking changed.

        The condition does not name `status`: IAM counts an attribute a condition evaluates as one the
        request accesses (`dynamodb:Attributes`), and the Api function's policy lists no `status`, so
        that it can never write one (decision 0012). The caller saw CONFIRMED on the version `updatedAt`
        names; every status change writes `updatedAt`, and the one way out of CONFIRMED a customer can
        race is a cancellation, which `cancellationKey` guards.
        """
        return self._written_if(
            booking_id,
            "SET cancellationKey = :key, cancellationRequestedBy = :by, cancellationRequestedAt = :now, "
            "updatedAt = :now",
            "checkedIn = :false AND updatedAt = :seen AND attribute_not_exists(cancellationKey)",
            {
                ":key": {"S": key},
                ":by": {"S": requested_by},
                ":now": {"S": _now()},
                ":false": {"BOOL": False},
                ":seen": {"S": seen_updated_at},
            },
        )

    def begin_cancellation(self, booking_id: str, key: str) -> tuple[BookingRecord, bool]:
        """CONFIRMED → CANCELLING for the cancellation this key names; a rerun finds it done. The
        flag says whether this call made the change (and so whether it is news to push)."""
        move = lifecycle.transition(CONFIRMED, CANCELLING, _now())
        try:
            before = self._move(
                booking_id, move, condition="cancellationKey = :key", values={":key": {"S": key}}
            )
        except _Refused as refused:
            current = self._found(booking_id, refused.item, key)
            if current.status in (CANCELLING, CANCELLED):
                return current, False  # a step further along already: this rerun has nothing to do
            raise BookingStateConflict(f"booking {booking_id} is {current.status}") from None
        return _moved(before, move), True

    def finish_cancellation(
        self, booking_id: str, key: str, refund: dict[str, Any]
    ) -> tuple[BookingRecord, bool]:
        """CANCELLING → CANCELLED with the refund's outcome and what became of the charge; a rerun (a
        redrive after the refund finally went through) writes the newer outcome, and moves nothing."""
        move = lifecycle.transition(CANCELLING, CANCELLED, _now())
        values = {
            ":key": {"S": key},
            ":reason": {"S": CUSTOMER_CANCELLED},
            ":refund": {"M": {name: _attribute(value) for name, value in refund.items()}},
            ":charge": {"S": lifecycle.charge_after_refund(str(refund.get("status"))) or lifecycle.REFUNDED},
        }
        outcome = "cancellationReason = :reason, refund = :refund, charge = :charge"
        try:
            before = self._move(
                booking_id, move, extra=outcome, condition="cancellationKey = :key", values=values
            )
        except _Refused as refused:
            current = self._found(booking_id, refused.item, key)
            if current.status != CANCELLED:
                raise BookingStateConflict(f"booking {booking_id} is {current.status}") from None
            self._written_if(
                booking_id,
                f"SET {outcome}, updatedAt = :now",
                "#status = :cancelled AND cancellationKey = :key",
                {**values, ":cancelled": {"S": CANCELLED}, ":now": {"S": _now()}},
                **{"#status": "status"},
            )
            return current, False
        return _moved(before, move), True

    def _move(
        self,
        booking_id: str,
        move: lifecycle.Transition,
        *,
        extra: str = "",
        condition: str = "",
        values: dict[str, Any] | None = None,
    ) -> BookingRecord:
        """One transition of `booking.lifecycle` (and `extra` assignments) in one conditional UpdateItem;
        the booking as it was before. Raises `_Refused` with the item as it is when the booking is not
        in the state the move leaves (or `condition` is false)."""
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": booking_id}},
                UpdateExpression=f"SET {move.update}" + (f", {extra}" if extra else ""),
                ConditionExpression=move.condition + (f" AND {condition}" if condition else ""),
                ExpressionAttributeNames=move.names,
                ExpressionAttributeValues={**move.values, **(values or {})},
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            raise _Refused(rejected_item(error)) from None
        return BookingRecord.from_item(answer["Attributes"])

    def _found(self, booking_id: str, item: dict[str, Any], key: str) -> BookingRecord:
        """The booking a cancellation step's write was refused on: it must exist and be this
        cancellation's."""
        if not item:
            raise BookingNotFound(f"booking {booking_id} does not exist")
        current = BookingRecord.from_item(item)
        if current.cancellation_key != key:
            raise BookingStateConflict(
                f"booking {booking_id} is {current.status}, for another cancellation than this one"
            )
        return current


class _Refused(Exception):
    """A transition's condition failed; `item` is the booking as it is (`{}`: there is none)."""

    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("transition refused")
        self.item = item


def _moved(before: BookingRecord, move: lifecycle.Transition) -> BookingRecord:
    """The booking after `move`, from the booking before it."""
    return replace(
        before,
        status=move.target,
        status_sequence=before.status_sequence + 1,
        status_changed_at=move.values[":changed"]["S"],
    )


def _attribute(value: Any) -> dict[str, Any]:
    """A refund outcome's field as a DynamoDB attribute (strings, whole numbers, null)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


def _now() -> str:
    return lifecycle.now()
