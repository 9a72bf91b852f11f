"""Refund Payment: give back the money of this booking's charge, whatever it holds.

A captured charge is refunded, an authorisation never captured is released, and a charge with
nothing on it (declined, or capture never reached the Payment API) is a no-op: the compensation is
safe whether or not Collect Payment ran, and nobody needs to know which. What became of the charge is
recorded on its claim and on the booking's row (`booking.lifecycle`: refunded or released).

No authorisation outlives its booking (DESIGN §2, "No money held"). A booking that failed before
Reserve Booking claimed its charge (a full flight, a crash) claims it now, to release it: the first
claim wins, so a second booking on the same pre-authorised charge is refused at its own Reserve
Booking rather than paid with an authorisation already given back. A charge claimed by another
booking is that booking's money and is left alone.

The key is one per booking, whichever saga refunds: a booking is refunded at most once, by its
failed booking saga or by its cancellation, and a redrive of either repeats the same refund.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from booking import lifecycle
from booking.bookings import BookingRepository
from booking.clients import dynamodb
from booking.errors import InvalidPaymentRequest
from booking.models import RefundPaymentRequest, parse_task_input
from booking.observability import CORRELATION_ID_PATH, count, logger, metrics, tracer
from booking.payment import PaymentClient
from booking.settings import optional_float, require

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

bookings = BookingRepository(require("BOOKING_TABLE_NAME"), dynamodb())
payments = PaymentClient(require("PAYMENT_API_URL"), optional_float("PAYMENT_API_TIMEOUT_SECONDS", 5.0))


def refund_key(booking_id: str) -> str:
    """One refund per booking: the key the Payment API deduplicates on."""
    return f"booking-{booking_id}-refund"


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_task_input(event, RefundPaymentRequest)
    token = request.payment_token or bookings.payment_token(request.booking_id)
    if token is None:
        logger.info("no booking row and no charge named: this booking holds no charge")
        return {"status": "not_claimed", "amount": 0, "currency": None}
    owner = bookings.charge_owner(token)
    if owner is None:
        owner = bookings.claim_to_release(token, request.booking_id)
        logger.info(
            "charge claimed by no booking: claimed to be released", claimed=owner == request.booking_id
        )
    if owner != request.booking_id:
        logger.warning("charge belongs to another booking; nothing to give back", owner=owner)
        return {"status": "not_this_booking", "amount": 0, "currency": None}
    try:
        refund = payments.refund(charge_id=token, idempotency_key=refund_key(request.booking_id))
    except InvalidPaymentRequest:
        count("InvalidPaymentRequest")
        logger.exception("refund request rejected by the Payment API")
        raise
    except Exception:
        count("FailedRefund")
        raise
    charge = lifecycle.charge_after_refund(refund.status)
    if charge is not None:
        bookings.record_charge(token, request.booking_id, charge)
    count("SuccessfulRefund")
    logger.info("payment given back", outcome=refund.status, amount=refund.amount)
    return refund.as_dict()
