"""Embedded stand-in for the Payment API, used by offline runs and tests.

It is the only test double the project owns, so it keeps the real API's
contract (paths, status codes, bodies, idempotency) rather than whatever is
convenient for one test. Tests start it on a loopback port, point the real
``PaymentClient`` at it and then read the ledger to check what money moved.

Test charge ids (the customer's pre-authorised payment tokens) are matched by
prefix, so each test can use fresh ids such as ``tok_visa_<uuid>``:

* ``tok_visa...``            approved pre-authorisation;
* ``tok_chargeDeclined...``  capture answers 402 ``card_declined``;
* ``tok_processingError...`` the first two captures answer 503, then approved;
* anything else              capture answers 404 ``charge_not_found``;

and a path it does not serve answers 404 ``not_found``, as any HTTP server would: no decline code.

Only the standard library is used so the double can run wherever the
service's tests run, with nothing to install.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from offline import changes

__all__ = ["ChargeRecord", "ChargeStatus", "PaymentGateway"]

ChargeStatus = Literal["authorised", "captured", "refunded", "released", "declined"]

CAPTURE_PATH = "/capture"
REFUND_PATH = "/refund"
_PATHS = (CAPTURE_PATH, REFUND_PATH)

VISA_PREFIX = "tok_visa"
DECLINED_PREFIX = "tok_chargeDeclined"
PROCESSING_ERROR_PREFIX = "tok_processingError"
PROCESSING_ERRORS_BEFORE_SUCCESS = 2

_MAX_BODY_BYTES = 64 * 1024
_MAX_KEY_LENGTH = 255
_CURRENCY = re.compile(r"[A-Z]{3}")
_FIELDS = {
    CAPTURE_PATH: frozenset({"chargeId", "amount", "currency"}),
    REFUND_PATH: frozenset({"chargeId"}),
}

Json = dict[str, Any]
Answer = tuple[int, Json]

_UNAVAILABLE: Answer = (503, {"error": "service_unavailable"})


@dataclass(frozen=True, slots=True)
class ChargeRecord:
    """Read-only snapshot of one charge, so tests can assert on money moved
    without racing the server threads that keep mutating the live ledger."""

    charge_id: str
    status: ChargeStatus
    amount_captured: int
    amount_refunded: int
    currency: str | None
    captures: int
    refunds: int


@dataclass(slots=True)
class _Charge:
    charge_id: str
    status: ChargeStatus
    amount_captured: int = 0
    amount_refunded: int = 0
    currency: str | None = None
    captures: int = 0
    refunds: int = 0
    refund_answer: Json | None = None

    def snapshot(self) -> ChargeRecord:
        return ChargeRecord(
            charge_id=self.charge_id,
            status=self.status,
            amount_captured=self.amount_captured,
            amount_refunded=self.amount_refunded,
            currency=self.currency,
            captures=self.captures,
            refunds=self.refunds,
        )


@dataclass(frozen=True, slots=True)
class _StoredAnswer:
    fingerprint: tuple[str, str]
    status: int
    body: Json


@dataclass(slots=True)
class _State:
    charges: dict[str, _Charge] = field(default_factory=dict)
    answers: dict[str, _StoredAnswer] = field(default_factory=dict)
    processing_errors: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    keys: dict[str, list[str | None]] = field(default_factory=dict)
    lost_answers: dict[str, int] = field(default_factory=dict)
    charge_faults: dict[tuple[str, str], int] = field(default_factory=dict)
    outage: bool = False


class _InvalidRequest(Exception):
    """Carries a 400 message out of nested validation without a result type."""


class PaymentGateway:
    """In-process Payment API with a ledger and fault switches.

    One lock guards all state and is held for the whole of a request's
    processing, so an idempotency-key lookup, the ledger change and the stored
    answer are one atomic step, exactly like the real API's guarantee that a
    key takes effect at most once even under concurrent retries.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._released.set()
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread so a test that forgets ``stop()`` cannot
        hang the interpreter at exit; port 0 lets parallel runs never clash."""
        if self._server is not None:
            raise RuntimeError("payment gateway is already running")
        server = _Server((host, port), _Handler, self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="payment-gateway",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self.url

    def stop(self) -> None:
        """Safe to call twice so fixtures can stop in ``finally`` blindly."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("payment gateway is not running")
        host, port = self._server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        if ":" in host_text:
            host_text = f"[{host_text}]"
        return f"http://{host_text}:{port}"

    def __enter__(self) -> PaymentGateway:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- fault switches and inspection -----------------------------------

    def set_outage(self, on: bool) -> None:
        """Model the whole API being down: nothing is processed or stored."""
        with self._lock:
            self._state.outage = on

    def set_hold(self, on: bool) -> None:
        """Model a slow API: while on, every payment request waits (at most `HOLD_LIMIT` seconds) before
        it is processed. A client test holds the sagas at Collect Payment, subscribes to a booking's
        changes, then releases: the push it waits for cannot come before it listens."""
        if on:
            self._released.clear()
        else:
            self._released.set()

    def lose_next_answers(self, path: str, count: int = 1) -> None:
        """Model an answer lost after the write (timeout, dropped connection),
        the case that only idempotency keys make safe to retry."""
        if path not in _PATHS:
            raise ValueError(f"unknown path {path!r}; expected one of {_PATHS}")
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._state.lost_answers[path] = count

    def fail_charge(self, charge_id: str, path: str, count: int) -> None:
        """Model the API down for one charge: its next `count` requests to `path` answer 503 and do
        nothing, as `set_outage` does for all (concurrent tests each fail their own charge)."""
        if path not in _PATHS:
            raise ValueError(f"unknown path {path!r}; expected one of {_PATHS}")
        with self._lock:
            self._state.charge_faults[(charge_id, path)] = count

    def ledger(self, charge_id: str) -> ChargeRecord | None:
        with self._lock:
            charge = self._state.charges.get(charge_id)
            return charge.snapshot() if charge is not None else None

    def charges(self) -> dict[str, ChargeRecord]:
        with self._lock:
            return {cid: c.snapshot() for cid, c in self._state.charges.items()}

    @property
    def requests(self) -> dict[str, int]:
        """Requests received per path, outages and lost answers included, so
        tests can assert how often a client retried."""
        with self._lock:
            return dict(self._state.requests)

    def keys(self, path: str) -> list[str | None]:
        """The Idempotency-Key of every request to `path`, in order: a retry must repeat its key."""
        with self._lock:
            return list(self._state.keys.get(path, []))

    def reset(self) -> None:
        """Let one running server be shared by many tests without leakage."""
        with self._lock:
            self._state = _State()
        self._released.set()

    # -- request processing ---------------------------------------------

    def handle(
        self,
        method: str,
        target: str,
        idempotency_key: str | None,
        body: bytes,
        body_error: str | None = None,
    ) -> Answer:
        """Answer one HTTP request; kept apart from the socket handler so the
        whole contract lives in one place and reads top to bottom.

        ``body_error`` reports a body the handler could not read, so that such
        a request still goes through the outage and routing rules first.
        """
        path = urlsplit(target).path
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path, body)
        self._released.wait(HOLD_LIMIT)
        with self._lock:
            state = self._state
            state.requests[path] = state.requests.get(path, 0) + 1
            state.keys.setdefault(path, []).append(idempotency_key)
            if state.outage or self._charge_fault(state, path, body):
                return _UNAVAILABLE
            if path not in _PATHS:
                return 404, {"error": "not_found", "message": f"no route for {path}"}
            if method != "POST":
                return 405, {"error": "method_not_allowed", "message": "use POST"}
            answer = self._answer(state, path, idempotency_key, body, body_error)
            lost = state.lost_answers.get(path, 0)
            if lost > 0:
                state.lost_answers[path] = lost - 1
                return _UNAVAILABLE
            return answer

    @staticmethod
    def _charge_fault(state: _State, path: str, body: bytes) -> bool:
        """Whether a `fail_charge` fault takes this request (and is used up by one)."""
        if not state.charge_faults:
            return False
        try:
            charge_id = json.loads(body).get("chargeId")
        except (ValueError, AttributeError):
            return False
        left = state.charge_faults.get((str(charge_id), path), 0)
        if left <= 0:
            return False
        state.charge_faults[(str(charge_id), path)] = left - 1
        return True

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        """What tests of the offline server read and switch over HTTP: the ledger and the outage.

        `GET /_offline/ledger` lists every charge record; `POST /_offline/outage {"on": true}` switches
        the outage, `POST /_offline/hold {"on": true}` the hold (`set_hold`). Not part of the Payment
        API's contract: the real API has no such paths.
        """
        if path == CONTROL_PREFIX + "ledger" and method == "GET":
            return 200, {"charges": [dataclasses.asdict(record) for record in self.charges().values()]}
        switches = {"outage": self.set_outage, "hold": self.set_hold}
        name = path.removeprefix(CONTROL_PREFIX)
        if name in switches and method == "POST":
            try:
                on = json.loads(body or b"{}").get("on")
            except (ValueError, AttributeError):
                on = None
            if not isinstance(on, bool):
                return 400, {"error": "invalid_request", "message": 'send {"on": true} or {"on": false}'}
            switches[name](on)
            return 200, {name: on}
        return 404, {"error": "not_found", "message": f"no route for {path}"}

    def _answer(
        self,
        state: _State,
        path: str,
        key: str | None,
        raw: bytes,
        body_error: str | None,
    ) -> Answer:
        if not key:
            return _invalid("Idempotency-Key header is required")
        if len(key) > _MAX_KEY_LENGTH:
            return _invalid(f"Idempotency-Key is longer than {_MAX_KEY_LENGTH}")
        if body_error is not None:
            return _invalid(body_error)
        try:
            body = _parse_body(path, raw)
        except _InvalidRequest as exc:
            return _invalid(str(exc))

        fingerprint = (path, json.dumps(body, sort_keys=True))
        stored = state.answers.get(key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                return 422, {
                    "error": "idempotency_key_reused",
                    "message": "Idempotency-Key was already used for another request",
                }
            return stored.status, dict(stored.body)

        if path == CAPTURE_PATH:
            status, answer = _capture(state, body)
        else:
            status, answer = _refund(state, body)
        if status < 500:
            # Server-side failures are not stored so a retry with the same key
            # gets a fresh attempt, as with the real API.
            state.answers[key] = _StoredAnswer(fingerprint, status, dict(answer))
        return status, answer


def _invalid(message: str) -> Answer:
    return 400, {"error": "invalid_request", "message": message}


def _parse_body(path: str, raw: bytes) -> Json:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _InvalidRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _InvalidRequest("body must be a JSON object")
    allowed = _FIELDS[path]
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _InvalidRequest(f"unknown fields: {', '.join(unknown)}")
    charge_id = body.get("chargeId")
    if not isinstance(charge_id, str) or not charge_id:
        raise _InvalidRequest("chargeId must be a non-empty string")
    if path == CAPTURE_PATH:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _InvalidRequest("amount must be a positive integer in minor units")
        currency = body.get("currency")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise _InvalidRequest("currency must be 3 upper-case letters")
    return cast(Json, body)


def _known_charge(state: _State, charge_id: str) -> _Charge | None:
    """Create the ledger entry the first time a test token is seen, because
    the real API already holds the pre-authorisation before we call it."""
    charge = state.charges.get(charge_id)
    if charge is not None:
        return charge
    if charge_id.startswith((VISA_PREFIX, PROCESSING_ERROR_PREFIX)):
        charge = _Charge(charge_id, "authorised")
    elif charge_id.startswith(DECLINED_PREFIX):
        charge = _Charge(charge_id, "declined")
    else:
        return None
    state.charges[charge_id] = charge
    return charge


def _capture(state: _State, body: Json) -> Answer:
    charge_id: str = body["chargeId"]
    amount: int = body["amount"]
    currency: str = body["currency"]

    if charge_id.startswith(PROCESSING_ERROR_PREFIX):
        failures = state.processing_errors.get(charge_id, 0)
        if failures < PROCESSING_ERRORS_BEFORE_SUCCESS:
            state.processing_errors[charge_id] = failures + 1
            _known_charge(state, charge_id)
            return 503, {"error": "processing_error"}

    charge = _known_charge(state, charge_id)
    if charge is None:
        return 404, {"error": "charge_not_found", "message": "no such charge"}
    if charge.status == "declined":
        return 402, {"error": "card_declined", "message": "the card was declined"}
    if charge.status == "captured":
        return 409, {
            "error": "already_captured",
            "message": "charge was already captured with another Idempotency-Key",
        }
    if charge.status in ("refunded", "released"):
        return 409, {
            "error": "charge_not_capturable",
            "message": f"charge is {charge.status}",
        }

    charge.status = "captured"
    charge.amount_captured = amount
    charge.currency = currency
    charge.captures += 1
    return 200, {
        "id": f"cap_{uuid.uuid4().hex}",
        "chargeId": charge_id,
        "amount": amount,
        "currency": currency,
        "status": "captured",
    }


def _refund(state: _State, body: Json) -> Answer:
    charge_id: str = body["chargeId"]
    charge = _known_charge(state, charge_id)
    if charge is None or charge.status == "declined":
        return 200, {
            "chargeId": charge_id,
            "status": "nothing_to_refund",
            "amount": 0,
            "currency": None,
        }
    if charge.refund_answer is not None:
        return 200, dict(charge.refund_answer)

    answer: Json
    if charge.status == "captured":
        charge.status = "refunded"
        charge.amount_refunded = charge.amount_captured
        answer = {
            "id": f"ref_{uuid.uuid4().hex}",
            "chargeId": charge_id,
            "status": "refunded",
            "amount": charge.amount_captured,
            "currency": charge.currency,
        }
    else:
        charge.status = "released"
        answer = {
            "chargeId": charge_id,
            "status": "released",
            "amount": 0,
            "currency": None,
        }
    charge.refunds += 1
    charge.refund_answer = answer
    return 200, dict(answer)


class _Server(ThreadingHTTPServer):
    """Threading server bound to one gateway.

    The listen backlog is raised from the default 5 so bursts of concurrent
    test clients are queued rather than dropped into SYN-retry delays.
    """

    request_queue_size = 128
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        gateway: PaymentGateway,
    ) -> None:
        self.gateway = gateway
        super().__init__(address, handler)


CONTROL_PREFIX = "/_offline/"
HOLD_LIMIT = 30.0
"""Seconds a held payment request waits at most: a test that forgets to release does not hang."""


class _Handler(BaseHTTPRequestHandler):
    server_version = "PaymentGateway/1.0"
    sys_version = ""

    # Method names are fixed by http.server; every verb goes through the same
    # path so unsupported ones get a JSON 404/405 instead of an HTML 501.
    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: per-request stderr lines drown test output."""

    def _serve(self) -> None:
        gateway = cast(_Server, self.server).gateway
        raw, body_error = b"", None
        try:
            raw = self._read_body()
        except _InvalidRequest as exc:
            # The unread body would be parsed as the next request.
            self.close_connection = True
            body_error = str(exc)
        status, body = gateway.handle(
            self.command,
            self.path,
            self.headers.get("Idempotency-Key"),
            raw,
            body_error,
        )
        self._send(status, body)
        changes.notify()  # the ledger may have moved: a test waiting on it looks again

    def _read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _InvalidRequest("Content-Length is not a number") from None
        if length < 0 or length > _MAX_BODY_BYTES:
            raise _InvalidRequest(f"body must be at most {_MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _send(self, status: int, body: Json) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == 405:
            self.send_header("Allow", "POST")
        self.end_headers()
        self.wfile.write(payload)
