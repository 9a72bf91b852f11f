"""Domain errors.

Each class name is an error name the state machine matches in `Retry` and `Catch`: Lambda reports
an unhandled exception with its class name as `errorType`, and Step Functions uses that as the
error name. `tests/template/test_statemachine.py` keeps the two in step, so renaming a class here
without touching `statemachine/process_booking.asl.yaml` fails the build.
"""

from __future__ import annotations


class BookingError(Exception):
    """Base of every error the booking domain raises on purpose."""


# Business rejections: an ordinary outcome for the customer, never retried, nobody paged.
class FlightFull(BookingError):
    """The flight has no free seat left for this booking."""


class FlightNotFound(BookingError):
    """The flight the booking names does not exist."""


class PaymentDeclined(BookingError):
    """The Payment API refused to capture the pre-authorised charge."""


class PaymentTokenInUse(BookingError):
    """The pre-authorised charge already pays for another booking: one charge, one booking."""


# Transient: worth a retry with backoff.
class PaymentUnavailable(BookingError):
    """The Payment API did not answer, or answered 429/5xx; a retry with the same key is safe."""


class BookingStoreUnavailable(BookingError):
    """DynamoDB still throttled, failing or unreachable after the SDK's own retries."""


class NotificationUnavailable(BookingError):
    """SNS still throttled, failing or unreachable after the SDK's own retries."""


# Defects or broken contracts: not retried, and they page someone.
class InvalidPaymentRequest(BookingError):
    """The Payment API rejected the request itself (400/409/422): a bug, not a customer's fault."""


class InvalidSagaInput(BookingError):
    """A task was invoked with input that does not match its model."""


class BookingStateConflict(BookingError):
    """A status transition was asked for a booking that is in a state that forbids it."""


class BookingNotFound(BookingError):
    """A forward step needs the booking row and it is not there."""


# The API's errors: AppSync reports a direct Lambda resolver's exception class name as `errorType`.
class Unauthorized(BookingError):
    """The caller may not see or change this booking (AppSync's own name for the error)."""


class BadRequest(BookingError):
    """The request is malformed or impossible; the message says what to fix. Nothing was written."""


class NotFound(BookingError):
    """The booking the request names does not exist."""


class BookingInProgress(BookingError):
    """The booking's saga is still running (it is still being booked): the request would race it, so
    it is refused and changes nothing; the client asks again once the booking has its outcome."""


class InternalFailure(BookingError):
    """Anything else went wrong in the Api function: logged with its trace, reported by this name only,
    so no Python exception name or message reaches a client."""


BUSINESS_REJECTIONS: tuple[type[BookingError], ...] = (
    FlightFull,
    FlightNotFound,
    PaymentDeclined,
    PaymentTokenInUse,
)
TRANSIENT_ERRORS: tuple[type[BookingError], ...] = (
    PaymentUnavailable,
    BookingStoreUnavailable,
    NotificationUnavailable,
)
