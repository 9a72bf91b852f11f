"""The Api function: every field of schema.graphql, as direct Lambda resolvers (Powertools AppSyncResolver).

AppSync sends one event per field (a list of events for the batched `Booking.outboundFlight`); the
caller's identity comes from AppSync, never from arguments. Bad input raises `BadRequest`, which
AppSync shows as the error's `errorType`, and counts `InvalidBookingRequest` by operation. Any other
exception is logged and answered as `InternalFailure`: a client never sees a Python exception's name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import AppSyncResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from booking.access import Caller, trusted_roles
from booking.api import BookingApi
from booking.bookings import BookingRepository
from booking.clients import dynamodb, secretsmanager, stepfunctions
from booking.errors import BadRequest, BookingError, InternalFailure
from booking.flights import FlightRepository
from booking.observability import logger, metrics, tracer
from booking.paging import PageTokens
from booking.settings import optional_float, optional_text, require

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.appsync_resolver_event import AppSyncResolverEvent
    from aws_lambda_powertools.utilities.typing import LambdaContext

PAGE_TOKEN_SECRET_ARN = require("PAGE_TOKEN_SECRET_ARN")
TRUSTED_SERVICE_ROLES = trusted_roles(optional_text("TRUSTED_SERVICE_ROLE_ARNS"))
"""IAM roles whose sessions may read as services (template parameter TrustedServiceRoleArns; empty:
no IAM caller is trusted)."""
PUBLISHER_ROLES = trusted_roles(optional_text("PUBLISHER_ROLE_ARNS"))
"""The roles of the functions that push status changes: the only callers of publishBookingStatus."""


def _page_key() -> bytes:
    """Fetched on first use, not at import: most requests never page."""
    return str(secretsmanager().get_secret_value(SecretId=PAGE_TOKEN_SECRET_ARN)["SecretString"]).encode()


api = BookingApi(
    bookings=BookingRepository(require("BOOKING_TABLE_NAME"), dynamodb()),
    flights=FlightRepository(require("FLIGHT_TABLE_NAME"), dynamodb()),
    stepfunctions=stepfunctions(),
    state_machine_arn=require("STATE_MACHINE_ARN"),
    tokens=PageTokens(_page_key),
    cancel_state_machine_arn=require("CANCEL_STATE_MACHINE_ARN"),
    cancellation_cutoff=timedelta(minutes=optional_float("CANCELLATION_CUTOFF_MINUTES", 120.0)),
)
app = AppSyncResolver()


def _run(operation: str, call: Callable[[Caller, dict[str, Any]], Any], arguments: dict[str, Any]) -> Any:
    """Run one operation for the current caller; count and log what it refuses as bad input."""
    event = app.current_event
    caller = Caller.from_identity(
        event.get("identity") if event is not None else None, TRUSTED_SERVICE_ROLES, PUBLISHER_ROLES
    )
    logger.append_keys(caller=caller.label, operation=operation)
    try:
        return call(caller, arguments)
    except BadRequest as error:
        with single_metric(
            name="InvalidBookingRequest", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension(name="operation", value=operation)
        logger.warning("request refused", reason=str(error))
        raise
    except BookingError:
        raise
    except Exception:
        logger.exception("request failed")
        raise InternalFailure(f"{operation} failed; it has been logged, try again") from None


@app.resolver(type_name="Mutation", field_name="processBooking")
def process_booking(input: dict[str, Any]) -> Any:
    answer = _run("processBooking", api.process_booking, input)
    logger.info("booking requested", booking_id=answer["id"], flight_id=input.get("bookingOutboundFlightId"))
    return answer


@app.resolver(type_name="Mutation", field_name="updateBooking")
def update_booking(input: dict[str, Any]) -> Any:
    return _run("updateBooking", api.update_booking, input)


@app.resolver(type_name="Mutation", field_name="cancelBooking")
def cancel_booking(input: dict[str, Any]) -> Any:
    answer = _run("cancelBooking", api.cancel_booking, input)
    logger.info("cancellation requested", booking_id=answer["id"])
    return answer


@app.resolver(type_name="Mutation", field_name="publishBookingStatus")
def publish_booking_status(input: dict[str, Any]) -> Any:
    return _run("publishBookingStatus", api.publish_booking_status, input)


@app.resolver(type_name="Subscription", field_name="onBookingStatusChanged")
def on_booking_status_changed(**arguments: Any) -> Any:
    """AppSync runs it when a client subscribes; an error refuses the subscription."""
    return _run("onBookingStatusChanged", api.on_booking_status_changed, arguments)


@app.resolver(type_name="Query", field_name="getBooking")
def get_booking(**arguments: Any) -> Any:
    return _run("getBooking", api.get_booking, arguments)


@app.resolver(type_name="Query", field_name="getBookingByStatus")
def get_booking_by_status(**arguments: Any) -> Any:
    return _run("getBookingByStatus", api.get_booking_by_status, arguments)


@app.resolver(type_name="Query", field_name="listBookings")
def list_bookings(**arguments: Any) -> Any:
    return _run("listBookings", api.list_bookings, arguments)


@app.resolver(type_name="Query", field_name="getFlight")
def get_flight(**arguments: Any) -> Any:
    return _run("getFlight", api.get_flight, arguments)


@app.resolver(type_name="Query", field_name="getFlightBySchedule")
def get_flight_by_schedule(**arguments: Any) -> Any:
    return _run("getFlightBySchedule", api.get_flight_by_schedule, arguments)


@app.batch_resolver(type_name="Booking", field_name="outboundFlight", aggregate=True)
def outbound_flight(event: list[AppSyncResolverEvent]) -> list[dict[str, Any]]:
    """AppSync batch invoke: the flights of a whole page of bookings in one BatchGetItem.

    AppSync reads each item of a batched direct resolver's answer as `{"data", "errorMessage",
    "errorType"}` (decisions 0005, 0013): a flight is `{"data": flight}`, a booking whose flight is missing
    gets its own `NotFound` error, and the other bookings of the page keep their flights.
    """
    sources: list[dict[str, Any] | None] = [item.source for item in event]
    flights = api.outbound_flights(sources)
    return [batch_item(flight, source) for flight, source in zip(flights, sources, strict=True)]


def batch_item(flight: dict[str, Any] | None, source: dict[str, Any] | None) -> dict[str, Any]:
    """One item of the batch answer in the shape AppSync's default batch response template reads."""
    if flight is not None:
        return {"data": flight}
    source = source or {}
    message = f"flight {source.get('bookingOutboundFlightId')} of booking {source.get('id')} does not exist"
    logger.error("booking without its flight", booking_id=source.get("id"))
    return {"data": None, "errorMessage": message, "errorType": "NotFound"}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.APPSYNC_RESOLVER)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any] | list[dict[str, Any]], context: LambdaContext) -> Any:
    return app.resolve(event, context)
