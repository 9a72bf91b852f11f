"""Collect Payment: capture the pre-authorised charge for the flight's price.

The amount comes from the flight, read now, never from the input. The Idempotency-Key is derived
from the booking id, so however often Step Functions or Lambda retries this step, the Payment API
captures at most once and answers every retry with the same capture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from booking.clients import dynamodb
from booking.errors import FlightNotFound, InvalidPaymentRequest, PaymentDeclined, PaymentUnavailable
from booking.flights import FlightRepository
from booking.models import CollectPaymentRequest, parse_task_input
from booking.observability import CORRELATION_ID_PATH, count, logger, metrics, tracer
from booking.payment import PaymentClient
from booking.settings import optional_float, require

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

flights = FlightRepository(require("FLIGHT_TABLE_NAME"), dynamodb())
payments = PaymentClient(require("PAYMENT_API_URL"), optional_float("PAYMENT_API_TIMEOUT_SECONDS", 5.0))


def capture_key(booking_id: str) -> str:
    """One capture per booking: the key the Payment API deduplicates on."""
    return f"booking-{booking_id}-capture"


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_task_input(event, CollectPaymentRequest)
    flight = flights.get(request.outbound_flight_id)
    if flight is None:
        raise FlightNotFound(f"flight {request.outbound_flight_id} does not exist")
    try:
        capture = payments.capture(
            charge_id=request.payment_token,
            amount=flight.ticket_price,
            currency=flight.ticket_currency,
            idempotency_key=capture_key(request.booking_id),
        )
    except (PaymentDeclined, PaymentUnavailable) as failure:
        count("FailedPayment")
        logger.warning("payment not captured", reason=type(failure).__name__)
        raise
    except InvalidPaymentRequest:
        count("InvalidPaymentRequest")
        logger.exception("payment request rejected by the Payment API")
        raise
    count("SuccessfulPayment")
    logger.info("payment captured", amount=capture.amount, currency=capture.currency)
    return capture.as_dict()
