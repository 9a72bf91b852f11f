"""Release Flight Seat: give back the seat this booking holds.

A compensation: when the booking holds no seat (Reserve Flight was refused, never ran, or this is
a rerun) it changes nothing and says `not_held`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from booking.clients import dynamodb
from booking.flights import FlightRepository
from booking.models import SeatRequest, parse_task_input
from booking.observability import CORRELATION_ID_PATH, logger, metrics, tracer
from booking.settings import require

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

flights = FlightRepository(require("FLIGHT_TABLE_NAME"), dynamodb())


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_task_input(event, SeatRequest)
    outcome = flights.release_seat(request.outbound_flight_id, request.booking_id)
    logger.info("seat released" if outcome == "released" else "no seat to release", outcome=outcome)
    return {"status": outcome}
