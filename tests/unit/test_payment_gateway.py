"""Contract tests for the embedded Payment API, driven through the real client.

Each test checks the ledger, not just the answer, because the point of
idempotency and fault handling is what money moved, not what was said.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from booking.errors import (
    BookingError,
    InvalidPaymentRequest,
    PaymentDeclined,
    PaymentUnavailable,
)
from booking.payment import Capture, PaymentClient, Refund
from offline.payment_gateway import ChargeRecord, PaymentGateway


def _token(prefix: str = "tok_visa") -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _key() -> str:
    return f"key-{uuid.uuid4().hex}"


@pytest.fixture
def client(gateway: PaymentGateway) -> PaymentClient:
    return PaymentClient(gateway.url, timeout_seconds=2.0)


def _capture(client: PaymentClient, token: str, key: str | None = None) -> Capture:
    return client.capture(charge_id=token, amount=12_500, currency="EUR", idempotency_key=key or _key())


def _ledger(gateway: PaymentGateway, token: str) -> ChargeRecord:
    record = gateway.ledger(token)
    assert record is not None
    return record


def _raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            content_type, status, raw = exc.headers["Content-Type"], exc.code, exc.read()
    assert content_type == "application/json"
    return status, json.loads(raw)


def test_approved_capture_captures_once(gateway: PaymentGateway, client: PaymentClient) -> None:
    token = _token()

    capture = _capture(client, token)

    assert capture.capture_id.startswith("cap_")
    assert (capture.amount, capture.currency) == (12_500, "EUR")
    assert capture.as_dict() == {
        "captureId": capture.capture_id,
        "amount": 12_500,
        "currency": "EUR",
        "status": "captured",
    }
    record = _ledger(gateway, token)
    assert record.status == "captured"
    assert (record.captures, record.amount_captured, record.currency) == (
        1,
        12_500,
        "EUR",
    )
    assert record.refunds == 0


def test_same_key_twice_replays_the_first_capture(gateway: PaymentGateway, client: PaymentClient) -> None:
    token, key = _token(), _key()

    first = _capture(client, token, key)
    second = _capture(client, token, key)

    assert second == first
    assert _ledger(gateway, token).captures == 1
    assert gateway.requests["/capture"] == 2


def test_second_capture_with_another_key_is_rejected(gateway: PaymentGateway, client: PaymentClient) -> None:
    token = _token()
    _capture(client, token)

    with pytest.raises(InvalidPaymentRequest, match="409"):
        _capture(client, token)

    assert _ledger(gateway, token).captures == 1


def test_declined_card_raises_declined_and_captures_nothing(
    gateway: PaymentGateway, client: PaymentClient
) -> None:
    token = _token("tok_chargeDeclined")

    with pytest.raises(PaymentDeclined, match="402"):
        _capture(client, token)

    record = _ledger(gateway, token)
    assert record.status == "declined"
    assert (record.captures, record.amount_captured) == (0, 0)


def test_unknown_charge_is_declined_and_not_in_ledger(gateway: PaymentGateway, client: PaymentClient) -> None:
    with pytest.raises(PaymentDeclined, match="404"):
        _capture(client, "tok_nobodyKnowsMe")

    assert gateway.charges() == {}


def test_processing_error_fails_twice_then_captures_once(
    gateway: PaymentGateway, client: PaymentClient
) -> None:
    token, key = _token("tok_processingError"), _key()

    for _ in range(2):
        with pytest.raises(PaymentUnavailable, match="503"):
            _capture(client, token, key)
    capture = _capture(client, token, key)

    assert capture.amount == 12_500
    record = _ledger(gateway, token)
    assert (record.status, record.captures) == ("captured", 1)


def test_outage_is_unavailable_and_changes_nothing(gateway: PaymentGateway, client: PaymentClient) -> None:
    token = _token()
    gateway.set_outage(True)

    with pytest.raises(PaymentUnavailable, match="503"):
        _capture(client, token)
    with pytest.raises(PaymentUnavailable, match="503"):
        client.refund(charge_id=token, idempotency_key=_key())

    assert gateway.charges() == {}
    gateway.set_outage(False)
    _capture(client, token)
    assert _ledger(gateway, token).captures == 1


def test_a_hold_over_http_keeps_a_capture_waiting_until_released(gateway: PaymentGateway) -> None:
    """`POST /_offline/hold` (what client tests use to be listening before a saga can finish): a
    capture sent while held is not processed until the hold is released, then once."""
    token, client = _token(), PaymentClient(gateway.url, timeout_seconds=10.0)
    assert _raw_post(f"{gateway.url}/_offline/hold", b'{"on": true}', {}) == (200, {"hold": True})
    with ThreadPoolExecutor(1) as pool:
        capture = pool.submit(_capture, client, token)
        with pytest.raises(TimeoutError):
            capture.result(timeout=0.5)
        assert gateway.charges() == {}
        assert _raw_post(f"{gateway.url}/_offline/hold", b'{"on": false}', {}) == (200, {"hold": False})
        capture.result(timeout=5)
    assert _ledger(gateway, token).captures == 1
    assert _raw_post(f"{gateway.url}/_offline/hold", b'{"on": 1}', {})[0] == 400


def test_lost_answer_retry_with_same_key_returns_original_capture(
    gateway: PaymentGateway, client: PaymentClient
) -> None:
    token, key = _token(), _key()
    gateway.lose_next_answers("/capture")

    with pytest.raises(PaymentUnavailable):
        _capture(client, token, key)
    # The write happened even though the answer was lost.
    assert _ledger(gateway, token).captures == 1

    retried = _capture(client, token, key)

    assert retried.capture_id.startswith("cap_")
    assert _capture(client, token, key) == retried
    record = _ledger(gateway, token)
    assert (record.status, record.captures) == ("captured", 1)


def test_refund_after_capture_refunds_once_even_when_called_twice(
    gateway: PaymentGateway, client: PaymentClient
) -> None:
    token = _token()
    _capture(client, token)

    first = client.refund(charge_id=token, idempotency_key=_key())
    second = client.refund(charge_id=token, idempotency_key=_key())

    assert first == second == Refund(status="refunded", amount=12_500, currency="EUR")
    assert first.as_dict() == {"status": "refunded", "amount": 12_500, "currency": "EUR"}
    record = _ledger(gateway, token)
    assert (record.status, record.refunds, record.amount_refunded) == (
        "refunded",
        1,
        12_500,
    )


def test_capture_after_refund_is_rejected(gateway: PaymentGateway, client: PaymentClient) -> None:
    token = _token()
    _capture(client, token)
    client.refund(charge_id=token, idempotency_key=_key())

    with pytest.raises(InvalidPaymentRequest, match="409"):
        _capture(client, token)

    record = _ledger(gateway, token)
    assert (record.status, record.captures, record.refunds) == ("refunded", 1, 1)


def test_refund_without_capture_releases_authorisation(
    gateway: PaymentGateway, client: PaymentClient
) -> None:
    token = _token()

    refund = client.refund(charge_id=token, idempotency_key=_key())
    again = client.refund(charge_id=token, idempotency_key=_key())

    assert refund == again == Refund(status="released", amount=0, currency=None)
    record = _ledger(gateway, token)
    assert (record.status, record.captures, record.refunds) == ("released", 0, 1)
    assert record.amount_refunded == 0


@pytest.mark.parametrize(
    "token", [_token("tok_chargeDeclined"), "tok_unknown_123"], ids=["declined", "unknown"]
)
def test_refund_of_declined_or_unknown_has_nothing_to_refund(
    gateway: PaymentGateway, client: PaymentClient, token: str
) -> None:
    refund = client.refund(charge_id=token, idempotency_key=_key())

    assert refund == Refund(status="nothing_to_refund", amount=0, currency=None)
    record = gateway.ledger(token)
    assert record is None or (record.status, record.refunds) == ("declined", 0)


def test_key_reused_with_other_body_is_invalid(gateway: PaymentGateway, client: PaymentClient) -> None:
    token, key = _token(), _key()
    _capture(client, token, key)

    with pytest.raises(InvalidPaymentRequest, match="422"):
        client.capture(charge_id=token, amount=1, currency="EUR", idempotency_key=key)

    record = _ledger(gateway, token)
    assert (record.captures, record.amount_captured) == (1, 12_500)


def test_token_never_leaks_into_errors_or_results(gateway: PaymentGateway, client: PaymentClient) -> None:
    tokens = {
        "visa": _token(),
        "declined": _token("tok_chargeDeclined"),
        "flaky": _token("tok_processingError"),
        "unknown": _token("tok_unknown"),
    }
    outputs: list[str] = []
    errors: list[BookingError] = []

    def attempt(call: Any) -> None:
        try:
            outputs.append(json.dumps(call().as_dict()))
        except BookingError as exc:
            errors.append(exc)

    key = _key()
    attempt(lambda: _capture(client, tokens["visa"], key))
    attempt(lambda: client.capture(charge_id=tokens["visa"], amount=1, currency="EUR", idempotency_key=key))
    attempt(lambda: _capture(client, tokens["declined"]))
    attempt(lambda: _capture(client, tokens["flaky"]))
    attempt(lambda: _capture(client, tokens["unknown"]))
    attempt(lambda: client.refund(charge_id=tokens["visa"], idempotency_key=_key()))
    attempt(lambda: client.refund(charge_id=tokens["unknown"], idempotency_key=_key()))
    attempt(
        lambda: client.capture(charge_id=tokens["visa"], amount=0, currency="EUR", idempotency_key=_key())
    )
    gateway.set_outage(True)
    attempt(lambda: client.refund(charge_id=tokens["visa"], idempotency_key=_key()))

    assert {type(e) for e in errors} == {
        InvalidPaymentRequest,
        PaymentDeclined,
        PaymentUnavailable,
    }
    assert len(outputs) == 3
    for error in errors:
        texts = [str(error), repr(error), *map(str, error.args)]
        cause = error.__cause__
        if cause is not None:
            texts += [str(cause), repr(cause)]
        outputs.extend(texts)
    for text in outputs:
        for token in tokens.values():
            assert token not in text


def test_transport_failures_are_unavailable() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()
        slow = PaymentClient(f"http://{host}:{port}", timeout_seconds=0.2)
        with pytest.raises(PaymentUnavailable, match="unreachable"):
            slow.refund(charge_id=_token(), idempotency_key=_key())

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host, port = probe.getsockname()
    refused = PaymentClient(f"http://{host}:{port}", timeout_seconds=0.5)
    with pytest.raises(PaymentUnavailable, match="unreachable"):
        refused.refund(charge_id=_token(), idempotency_key=_key())


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"{not json", {"Idempotency-Key": "k1"}, "JSON"),
        (b"[]", {"Idempotency-Key": "k2"}, "object"),
        (b'{"amount": 100, "currency": "EUR"}', {"Idempotency-Key": "k3"}, "chargeId"),
        (
            b'{"chargeId": "tok_visa_x", "amount": -5, "currency": "EUR"}',
            {"Idempotency-Key": "k4"},
            "amount",
        ),
        (
            b'{"chargeId": "tok_visa_x", "amount": 100, "currency": "eur"}',
            {"Idempotency-Key": "k5"},
            "currency",
        ),
        (b'{"chargeId": "tok_visa_x", "amount": 100, "currency": "EUR"}', {}, "Key"),
    ],
)
def test_bad_request_over_raw_http_is_400(
    gateway: PaymentGateway, body: bytes, headers: dict[str, str], message: str
) -> None:
    headers = {"Content-Type": "application/json", **headers}

    status, answer = _raw_post(gateway.url + "/capture", body, headers)

    assert status == 400
    assert answer["error"] == "invalid_request"
    assert message in answer["message"]
    assert gateway.charges() == {}


def test_unknown_path_is_404(gateway: PaymentGateway) -> None:
    status, answer = _raw_post(gateway.url + "/charges", b"{}", {"Idempotency-Key": "k"})

    assert (status, answer["error"]) == (404, "not_found")


def test_twenty_concurrent_captures_of_different_tokens(
    gateway: PaymentGateway, client: PaymentClient
) -> None:
    tokens = [_token() for _ in range(20)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        captures = list(pool.map(lambda t: _capture(client, t), tokens))

    assert len({c.capture_id for c in captures}) == 20
    charges = gateway.charges()
    assert sorted(charges) == sorted(tokens)
    assert all(r.status == "captured" and r.captures == 1 for r in charges.values())


def test_concurrent_retries_with_one_key_capture_once(gateway: PaymentGateway, client: PaymentClient) -> None:
    token, key = _token(), _key()
    barrier = threading.Barrier(10)

    def race(_: int) -> Capture:
        barrier.wait()
        return _capture(client, token, key)

    with ThreadPoolExecutor(max_workers=10) as pool:
        captures = set(pool.map(race, range(10)))

    assert len(captures) == 1
    assert _ledger(gateway, token).captures == 1


@pytest.fixture
def private_gateway() -> Iterator[PaymentGateway]:
    gateway = PaymentGateway()
    yield gateway
    gateway.stop()


def test_start_stop_lifecycle(private_gateway: PaymentGateway) -> None:
    url = private_gateway.start()
    assert url == private_gateway.url
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        private_gateway.start()

    private_gateway.stop()
    private_gateway.stop()

    with pytest.raises(RuntimeError):
        _ = private_gateway.url
    with pytest.raises(PaymentUnavailable):
        PaymentClient(url, timeout_seconds=0.5).refund(charge_id=_token(), idempotency_key=_key())


def test_a_wrong_api_url_is_unavailable_not_a_declined_card(gateway: PaymentGateway) -> None:
    """A 404 of a path the gateway does not serve is a configuration fault that must page, not a
    business rejection: only the gateway's own decline codes decline."""
    misrouted = PaymentClient(gateway.url + "/v0", timeout_seconds=2.0)
    token = _token()

    with pytest.raises(PaymentUnavailable, match=r"404 on /capture \(not_found\)"):
        _capture(misrouted, token)
    with pytest.raises(PaymentUnavailable, match=r"404 on /refund \(not_found\)"):
        misrouted.refund(charge_id=token, idempotency_key=_key())

    assert gateway.ledger(token) is None
    assert gateway.requests == {"/v0/capture": 1, "/v0/refund": 1}
