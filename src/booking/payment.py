"""Client for the Payment API, called from the booking Lambda functions.

Only ``urllib`` is used: boto3 has already loaded it, so the client adds
almost nothing to cold starts (its opener is made on first use, see
``PaymentClient._opener``). Failures are mapped onto the booking error
classes by whether a retry can help, because that is what the Step Functions
retry and catch rules key on.

The charge id is the customer's payment token. It is sent to the Payment API
and nowhere else: it never appears in results, error messages or exception
chains, since those end up in logs and in state machine output.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from booking.errors import InvalidPaymentRequest, PaymentDeclined, PaymentUnavailable

__all__ = ["Capture", "PaymentClient", "Refund", "RefundStatus"]

RefundStatus = Literal["refunded", "released", "nothing_to_refund"]

_REFUND_STATUSES: frozenset[str] = frozenset({"refunded", "released", "nothing_to_refund"})
_CURRENCY = re.compile(r"[A-Z]{3}")
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_RESPONSE_BYTES = 1024 * 1024
_DECLINES: frozenset[tuple[int, str]] = frozenset({(402, "card_declined"), (404, "charge_not_found")})
"""The gateway's own answers that refuse the charge itself: a business rejection, nobody is paged.
A 404 without `charge_not_found` is not one of them: it is what any server answers for a path it
does not know, so a wrong `PaymentApiUrl` reads as the outage it is, not as a declined card."""
_REQUEST_REFUSED: frozenset[int] = frozenset({400, 409, 422})
"""The gateway's answers that refuse this request (bad body, charge already captured, key reused):
a defect no retry fixes. Any other status is unexpected and handled as the API being unavailable."""
_USER_AGENT = "booking-service-payment-client/1"


@dataclass(frozen=True, slots=True)
class Capture:
    """A captured payment, without the charge id so it is safe to pass on."""

    capture_id: str
    amount: int
    currency: str

    def as_dict(self) -> dict[str, Any]:
        """Shape used in Step Functions state; camelCase like the rest of it."""
        return {
            "captureId": self.capture_id,
            "amount": self.amount,
            "currency": self.currency,
            "status": "captured",
        }


@dataclass(frozen=True, slots=True)
class Refund:
    """Outcome of giving money back; ``released`` means nothing was captured,
    so the authorisation was dropped and ``amount`` is 0."""

    status: RefundStatus
    amount: int
    currency: str | None

    def as_dict(self) -> dict[str, Any]:
        """Shape used in Step Functions state; camelCase like the rest of it."""
        return {"status": self.status, "amount": self.amount, "currency": self.currency}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would turn a POST into a body-less GET elsewhere; surface it
    as an unexpected answer instead."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


class PaymentClient:
    """Captures and refunds pre-authorised charges.

    Every call carries an idempotency key chosen by the caller, so a retry
    after a lost answer replays the first result instead of moving money
    twice. The caller must therefore reuse the same key for retries of one
    logical operation.
    """

    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        if not timeout_seconds > 0:
            raise ValueError("timeout_seconds must be positive")
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds

    @cached_property
    def _opener(self) -> urllib.request.OpenerDirector:
        """Made on first use, not at import: from Python 3.13 on, making an opener builds its TLS
        context (reading the CA bundle, about 20 ms), which belongs to the first request rather than
        to the cold start; botocore, too, makes its TLS context for its first request."""
        return urllib.request.build_opener(_NoRedirect)

    def capture(self, *, charge_id: str, amount: int, currency: str, idempotency_key: str) -> Capture:
        """Take the money; raises ``PaymentDeclined`` when the card or charge
        is refused, which no retry will change."""
        _require_ids(charge_id, idempotency_key)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise InvalidPaymentRequest("amount must be a positive integer in minor units")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise InvalidPaymentRequest("currency must be 3 upper-case letters")

        path = "/capture"
        body = {"chargeId": charge_id, "amount": amount, "currency": currency}
        status, answer = self._post(path, body, idempotency_key)
        if status == 200:
            return _parse_capture(answer)
        if (status, _code(answer)) in _DECLINES:
            raise PaymentDeclined(_describe(status, path, answer))
        raise _error_for(status, path, answer)

    def refund(self, *, charge_id: str, idempotency_key: str) -> Refund:
        """Give the money back, or release an authorisation that was never
        captured; calling it again with any key has no second effect."""
        _require_ids(charge_id, idempotency_key)
        path = "/refund"
        status, answer = self._post(path, {"chargeId": charge_id}, idempotency_key)
        if status == 200:
            return _parse_refund(answer)
        raise _error_for(status, path, answer)

    def _post(self, path: str, body: dict[str, Any], idempotency_key: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            self._base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Idempotency-Key": idempotency_key,
                "User-Agent": _USER_AGENT,
            },
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return response.status, _decode(response.read(_MAX_RESPONSE_BYTES))
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    answer = _decode(exc.read(_MAX_RESPONSE_BYTES))
                except (OSError, http.client.HTTPException):
                    answer = None
            return exc.code, answer
        except (OSError, http.client.HTTPException) as exc:
            # URLError, timeouts and connection resets are all OSError. The
            # cause is kept for debugging: none of these carry the request body.
            raise PaymentUnavailable(f"payment API unreachable on {path}: {type(exc).__name__}") from exc


def _require_ids(charge_id: str, idempotency_key: str) -> None:
    if not isinstance(charge_id, str) or not charge_id:
        raise InvalidPaymentRequest("charge id must be a non-empty string")
    if not isinstance(idempotency_key, str) or not idempotency_key:
        raise InvalidPaymentRequest("idempotency key must be a non-empty string")


def _decode(raw: bytes) -> Any:
    """Return the JSON answer, or None when the body is not JSON (e.g. an
    HTML error page from a proxy)."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _describe(status: int, path: str, answer: Any) -> str:
    """Error text with the API's error code but never its free-text message,
    which may echo request fields such as the charge id."""
    text = f"payment API answered {status} on {path}"
    code = _code(answer)
    if code:
        text += f" ({code})"
    return text


def _code(answer: Any) -> str | None:
    """The gateway's error code, when the answer is the gateway's own error body."""
    code = answer.get("error") if isinstance(answer, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


def _error_for(status: int, path: str, answer: Any) -> PaymentUnavailable | InvalidPaymentRequest:
    """A request the gateway refused is a defect; anything else (throttling, server-side trouble, or a
    status the gateway never sends, such as a 404 for a path it does not serve) is retried, then pages."""
    message = _describe(status, path, answer)
    if status in _REQUEST_REFUSED:
        return InvalidPaymentRequest(message)
    return PaymentUnavailable(message)


def _unreadable(path: str) -> PaymentUnavailable:
    """A 200 we cannot read may still have moved money; retrying with the same
    idempotency key is safe and replays the answer, so call it retryable."""
    return PaymentUnavailable(f"payment API answered 200 on {path} with an unreadable body")


def _parse_capture(answer: Any) -> Capture:
    if not isinstance(answer, dict):
        raise _unreadable("/capture")
    capture_id = answer.get("id")
    amount = answer.get("amount")
    currency = answer.get("currency")
    if (
        answer.get("status") != "captured"
        or not isinstance(capture_id, str)
        or not capture_id
        or isinstance(amount, bool)
        or not isinstance(amount, int)
        or not isinstance(currency, str)
    ):
        raise _unreadable("/capture")
    return Capture(capture_id=capture_id, amount=amount, currency=currency)


def _parse_refund(answer: Any) -> Refund:
    if not isinstance(answer, dict):
        raise _unreadable("/refund")
    status = answer.get("status")
    amount = answer.get("amount")
    currency = answer.get("currency")
    if (
        status not in _REFUND_STATUSES
        or isinstance(amount, bool)
        or not isinstance(amount, int)
        or amount < 0
        or not (currency is None or isinstance(currency, str))
    ):
        raise _unreadable("/refund")
    return Refund(status=status, amount=amount, currency=currency)
