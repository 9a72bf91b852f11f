"""Reserve Flight: take one seat on the outbound flight for this booking.

A rerun after a lost answer finds the seat already held by this booking and returns the same
result; `FlightFull` and `FlightNotFound` are business rejections the state machine never retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from booking.clients import dynamodb
from booking.errors import FlightFull, FlightNotFound
from booking.flights import FlightRepository
from booking.models import SeatRequest, parse_task_input
from booking.observability import CORRELATION_ID_PATH, count, logger, metrics, tracer
from booking.settings import require

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

flights = FlightRepository(require("FLIGHT_TABLE_NAME"), dynamodb())


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_task_input(event, SeatRequest)
    try:
        outcome = flights.reserve_seat(request.outbound_flight_id, request.booking_id)
    except (FlightFull, FlightNotFound) as rejection:
        count("FailedReservation")
        logger.warning("seat refused", reason=type(rejection).__name__, flight_id=request.outbound_flight_id)
        raise
    logger.info("seat held", flight_id=request.outbound_flight_id)
    return {"status": outcome}
