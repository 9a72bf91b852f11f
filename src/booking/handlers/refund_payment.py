"""Refund Payment: give back the money of the charge this booking claimed, whatever it holds.

A captured charge is refunded, an authorisation never captured is released, and a charge with
nothing on it (declined, or capture never reached the Payment API) is a no-op: the compensation is
safe whether or not Collect Payment ran, and nobody needs to know which.

Only a charge this booking claimed (see `BookingRepository.reserve`) is touched. A charge claimed by
another booking is that booking's money; a charge nobody has claimed yet may be about to pay for
another booking on the same token (its Reserve Booking not yet run), so releasing it would cancel
that booking's authorisation. This booking never captured an unclaimed charge either: Collect
Payment runs only after Reserve Booking has written the claim.

The key is one per booking, whichever saga refunds: a booking is refunded at most once, by its
failed booking saga or by its cancellation, and a redrive of either repeats the same refund.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        logger.info("no booking row: this booking never claimed a charge")
        return {"status": "not_claimed", "amount": 0, "currency": None}
    owner = bookings.charge_owner(token)
    if owner is None:
        logger.info("charge claimed by no booking; this booking took nothing from it")
        return {"status": "not_claimed", "amount": 0, "currency": None}
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
    count("SuccessfulRefund")
    logger.info("payment given back", outcome=refund.status, amount=refund.amount)
    return refund.as_dict()
