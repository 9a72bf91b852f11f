"""AppSync's real-time endpoint offline: the graphql-ws protocol as AWS documents it, authorization as
for queries, and each subscriber gets exactly the changes of its booking.

Two kinds of test, as in test_offline_appsync. Most put a scripted Api function behind the real
`AppSyncApi` and serve `api.realtime` from werkzeug's threaded server on a free port (the server
`make run` uses), to pin down the protocol, errors and fan-out in milliseconds. The last ones run the
whole stack behind `OfflineServer`: the sagas' functions push with SigV4 and the real Api function
decides who may subscribe.

Every wait is bounded: a missing message is a TimeoutError, never a hang.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import simple_websocket
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.serving import BaseWSGIServer, make_server
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from booking.api import BOOKING_NAMESPACE
from offline import realtime
from offline.appsync import AppSyncApi
from offline.auth import IamCaller, TokenIssuer
from offline.realtime import RealtimeClient, WebSocketClient, connection_url
from offline.server import OfflineServer
from offline.stack import SCHEMA, TEMPLATE, OfflineStack
from offline.template import ACCOUNT_ID, REGION
from tests.api.scripted import ScriptedLambdas
from tests.conftest import unique_token
from tests.doubles.gate import gate_path

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"
ON_CHANGE = """subscription($id: ID!) {
  onBookingStatusChanged(id: $id) { id customer status bookingReference reason occurredAt }
}"""
PUBLISH = """mutation($i: BookingStatusChangeInput!) {
  publishBookingStatus(input: $i) { id customer status bookingReference reason occurredAt }
}"""
PUBLISHER = f"arn:aws:iam::{ACCOUNT_ID}:role/booking-offline-NotifyBookingFunctionRole"
OWNERS = {f"b-{name}-{n}": f"{name}-sub" for name in ("alice", "bob") for n in range(60)}
"""The scripted function's bookings: b-alice-0… belong to alice-sub, b-bob-0… to bob-sub."""
QUIET = 0.5
"""How long a subscriber listens to be sure nothing more comes."""


class Unauthorized(Exception):
    """The scripted Api function's refusal: errorType Unauthorized, as the real one raises it."""


def _scripted(event: Any) -> Any:
    """The Api function's contract for the two live-status fields: publishBookingStatus answers its
    input; onBookingStatusChanged admits the booking's owner and refuses anyone else."""
    field = event["info"]["fieldName"]
    if field == "publishBookingStatus":
        return event["arguments"]["input"]
    if field == "onBookingStatusChanged":
        if OWNERS.get(event["arguments"]["id"]) != event["identity"].get("sub"):
            raise Unauthorized("Not Authorized to access onBookingStatusChanged on type Subscription")
        return None
    raise AssertionError(f"unexpected field {field}")


@dataclass
class Live:
    """An `AppSyncApi` over the scripted function, its real-time endpoint served on a free port."""

    api: AppSyncApi
    lambdas: ScriptedLambdas
    url: str
    """The GraphQL URL (`http://127.0.0.1:<port>/graphql`); the endpoint is its `/realtime`."""
    publisher: IamCaller

    def token(self, name: str, **kwargs: Any) -> str:
        return self.api.tokens.mint(f"{name}-sub", **kwargs)

    def client(self, name: str = "alice", **kwargs: Any) -> RealtimeClient:
        return RealtimeClient.connect(self.url, self.token(name), **kwargs)

    def raw(self, header: dict[str, str] | None, *, payload: str | None = "e30=") -> Any:
        """A WebSocket to the endpoint with this handshake `header` (None: left out), no connection_init."""
        url = connection_url(self.url, header or {})
        if header is None:
            url = url.split("?", 1)[0] + (f"?payload={payload}" if payload else "")
        elif payload is None:
            url = url.split("&payload=", 1)[0]
        return WebSocketClient.connect(url, subprotocols=[realtime.SUBPROTOCOL])

    def publish(self, booking_id: str, status: str = "CONFIRMED", **extra: Any) -> dict[str, Any]:
        change = {
            "id": booking_id,
            "customer": OWNERS.get(booking_id, "nobody"),
            "status": status,
            "occurredAt": _now(),
            **extra,
        }
        return publish(self.api, self.publisher, PUBLISH, {"i": change})


def publish(api: AppSyncApi, caller: IamCaller, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A mutation signed with SigV4 as the sagas' functions sign it (botocore's signer)."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = AWSRequest(
        method="POST",
        url="https://appsync.offline.test/graphql",
        data=body,
        headers={"Content-Type": "application/json", "Host": "appsync.offline.test"},
    )
    SigV4Auth(Credentials(caller.access_key_id, caller.secret_access_key), "appsync", REGION).add_auth(
        request
    )
    status, answer = api.execute(body, authorization=None, headers=dict(request.headers.items()))
    assert status == 200, answer
    return answer


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _serve(app: Any) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def live() -> Iterator[Live]:
    lambdas = ScriptedLambdas(_scripted)
    api = AppSyncApi(SCHEMA, TEMPLATE, lambdas, TokenIssuer())  # type: ignore[arg-type]
    publisher = api.iam.add(IamCaller.role_session(PUBLISHER, "notify"))

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        assert environ["PATH_INFO"] == realtime.PATH
        return api.realtime(environ, start_response)

    server, url = _serve(app)
    yield Live(api, lambdas, f"{url}/graphql", publisher)
    api.realtime.close()
    server.shutdown()
    server.server_close()


def _silent(client: RealtimeClient, seconds: float = QUIET) -> None:
    """Nothing but keep-alives arrives for `seconds`."""
    try:
        message = client.receive(seconds)
    except TimeoutError:
        return
    pytest.fail(f"unexpected message: {message}")


def _closed_by_server(client: RealtimeClient, timeout: float = 5.0) -> None:
    try:
        message = client.receive(timeout)
    except ConnectionError:
        return
    pytest.fail(f"expected the server to close, got {message}")


def _unsupported(operation: str) -> list[dict[str, Any]]:
    return [
        {
            "errorType": "UnsupportedOperation",
            "message": f"{operation} not supported through the realtime channel",
        }
    ]


# ---------------------------------------------------------------------- the protocol
def test_connection_init_is_acknowledged_with_appsyncs_timeout_and_keep_alives_follow(live: Live) -> None:
    live.api.realtime.keep_alive = 0.2
    with live.client(init=False) as client:
        client.send({"type": "connection_init"})
        assert client.receive(5) == {"type": "connection_ack", "payload": {"connectionTimeoutMs": 300_000}}
        started = time.monotonic()
        kinds = [client.receive(5, skip_ka=False)["type"] for _ in range(3)]
        assert kinds == ["ka", "ka", "ka"]
        assert time.monotonic() - started < 2.0


def test_start_is_acknowledged_and_stop_completes_and_unregisters(live: Live) -> None:
    with live.client() as client:
        answer = client.subscribe("s-1", ON_CHANGE, {"id": "b-alice-0"}, live.token("alice"))
        assert answer == {"type": "start_ack", "id": "s-1"}
        assert live.api.realtime.subscriptions("onBookingStatusChanged") == 1

        client.send({"type": "stop", "id": "s-1"})
        assert client.receive(5) == {"type": "complete", "id": "s-1"}
        assert live.api.realtime.subscriptions() == 0
        live.publish("b-alice-0")
        _silent(client)


def test_the_subscription_resolver_gets_appsyncs_event_for_the_caller(live: Live) -> None:
    with live.client() as client:
        client.subscribe("s-1", ON_CHANGE, {"id": "b-alice-0"}, live.token("alice"))
    [event] = [e for e in live.lambdas.payloads if e["info"]["fieldName"] == "onBookingStatusChanged"]
    assert event["arguments"] == {"id": "b-alice-0"}
    assert event["info"]["parentTypeName"] == "Subscription"
    assert event["info"]["selectionSetList"] == [
        "id",
        "customer",
        "status",
        "bookingReference",
        "reason",
        "occurredAt",
    ]
    assert event["identity"]["sub"] == "alice-sub"


def test_a_subscriber_gets_the_changes_of_its_booking_and_nothing_of_anothers(live: Live) -> None:
    with live.client("alice") as alice, live.client("bob") as bob:
        assert (
            alice.subscribe("a", ON_CHANGE, {"id": "b-alice-0"}, live.token("alice"))["type"] == "start_ack"
        )
        assert bob.subscribe("b", ON_CHANGE, {"id": "b-bob-0"}, live.token("bob"))["type"] == "start_ack"

        published = live.publish("b-alice-0", "CONFIRMED", bookingReference="REF123")
        assert "errors" not in published

        assert alice.receive(5) == {
            "type": "data",
            "id": "a",
            "payload": {"data": {"onBookingStatusChanged": published["data"]["publishBookingStatus"]}},
        }
        _silent(bob)
        _silent(alice)

        live.publish("b-bob-0", "CANCELLED", reason="PaymentDeclined")
        change = bob.receive(5)["payload"]["data"]["onBookingStatusChanged"]
        assert (change["id"], change["status"], change["reason"]) == (
            "b-bob-0",
            "CANCELLED",
            "PaymentDeclined",
        )
        _silent(alice)


def test_a_subscriber_sees_its_selection_and_null_for_what_the_mutation_did_not_select(live: Live) -> None:
    with live.client() as client:
        query = (
            'subscription { change: onBookingStatusChanged(id: "b-alice-0") '
            "{ s: status bookingReference __typename } }"
        )
        assert client.subscribe("s", query, {}, live.token("alice"))["type"] == "start_ack"

        publish(
            live.api,
            live.publisher,
            "mutation($i: BookingStatusChangeInput!) { publishBookingStatus(input: $i) { i: id status } }",
            {
                "i": {
                    "id": "b-alice-0",
                    "customer": "alice-sub",
                    "status": "CONFIRMED",
                    "occurredAt": _now(),
                    "bookingReference": "REF9",
                }
            },
        )
        assert client.receive(5)["payload"] == {
            "data": {
                "change": {"s": "CONFIRMED", "bookingReference": None, "__typename": "BookingStatusChange"}
            }
        }

        # The argument is filtered against the mutation's answer: without `id` in it, nobody matches.
        publish(
            live.api,
            live.publisher,
            "mutation($i: BookingStatusChangeInput!) { publishBookingStatus(input: $i) { status } }",
            {"i": {"id": "b-alice-0", "customer": "alice-sub", "status": "CANCELLED", "occurredAt": _now()}},
        )
        _silent(client)


def test_fifty_subscribers_each_get_exactly_their_own_changes(live: Live) -> None:
    bookings = [f"b-{'alice' if n % 2 else 'bob'}-{n}" for n in range(50)]
    clients = [live.client(OWNERS[b].removesuffix("-sub")) for b in bookings]
    try:
        for client, booking in zip(clients, bookings, strict=True):
            token = live.token(OWNERS[booking].removesuffix("-sub"))
            assert client.subscribe(booking, ON_CHANGE, {"id": booking}, token)["type"] == "start_ack"

        statuses = ("CONFIRMED", "CANCELLING", "CANCELLED")
        with ThreadPoolExecutor(max_workers=10) as pool:
            for status in statuses:  # every booking's change at once, one status after the other
                list(pool.map(lambda booking, status=status: live.publish(booking, status), bookings))

        for client, booking in zip(clients, bookings, strict=True):
            received = [client.receive(10) for _ in statuses]
            assert {m["id"] for m in received} == {booking}
            changes = [m["payload"]["data"]["onBookingStatusChanged"] for m in received]
            assert [c["id"] for c in changes] == [booking] * 3
            assert [c["status"] for c in changes] == list(statuses)
        for client in clients:
            _silent(client, 0.05)
    finally:
        for client in clients:
            client.close()


def test_a_client_that_vanishes_or_stops_reading_disturbs_nobody(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(realtime, "OUTBOX_LIMIT", 100)
    token = live.token("alice")
    with live.client() as steady:
        vanished = live.client()
        for name, client in (("steady", steady), ("vanished", vanished)):
            assert client.subscribe(name, ON_CHANGE, {"id": "b-alice-0"}, token)["type"] == "start_ack"
        stalled = _stalled_subscriber(live, token)  # subscribes, then never reads a byte
        vanished.ws.sock.close()  # gone without a close frame, mid-stream

        filler = secrets.token_hex(25_000)  # 50 kB messages fill the stalled client's socket quickly
        change = {"id": "b-alice-0", "customer": "alice-sub", "status": "CONFIRMED"}
        received: list[dict[str, Any]] = []
        for batch in range(12):  # as fast as the steady client reads, far faster than the stalled one
            started = time.monotonic()
            for n in range(batch * 50, batch * 50 + 50):
                live.api.realtime.publish(
                    "publishBookingStatus", {**change, "bookingReference": f"{n}.{filler}"}
                )
            assert time.monotonic() - started < 2.0  # publishing queues; it never waits for a client
            received += [steady.receive(10)["payload"]["data"]["onBookingStatusChanged"] for _ in range(50)]
        assert [int(c["bookingReference"].split(".")[0]) for c in received] == list(range(600))
        deadline = time.monotonic() + 10
        while live.api.realtime.subscriptions() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.api.realtime.subscriptions() == 1  # the vanished and the stalled are let go
        assert "errors" not in live.publish("b-alice-0", "CANCELLING")
        assert steady.receive(5)["payload"]["data"]["onBookingStatusChanged"]["status"] == "CANCELLING"
        stalled.close()


def _stalled_subscriber(live: Live, token: str) -> socket.socket:
    """A client that opens the WebSocket and subscribes (framed by wsproto, as any client frames it),
    then never reads: what the server sends it piles up in its socket, then in its outbox."""
    host, port = live.url.removeprefix("http://").removesuffix("/graphql").split(":")
    raw = socket.create_connection((host, int(port)), timeout=5)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ws = WSConnection(ConnectionType.CLIENT)
    target = connection_url(live.url, {"Authorization": token, "host": "x"}).split(port, 1)[1]
    raw.sendall(ws.send(Request(host=host, target=target, subprotocols=[realtime.SUBPROTOCOL])))
    ws.receive_data(raw.recv(4096))
    assert isinstance(next(ws.events()), AcceptConnection)
    data = json.dumps({"query": ON_CHANGE, "variables": {"id": "b-alice-0"}})
    start = {
        "id": "stalled",
        "type": "start",
        "payload": {"data": data, "extensions": {"authorization": {"Authorization": token, "host": "x"}}},
    }
    raw.sendall(ws.send(TextMessage(json.dumps(start))))
    deadline = time.monotonic() + 5
    while live.api.realtime.subscriptions() < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.api.realtime.subscriptions() == 3
    return raw


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("frame", "error_id"),
    [
        ("{not json", ""),
        (b"\x00\x01binary", ""),
        ('["start"]', ""),
        ('{"type": "subscribe", "id": "s-1"}', "s-1"),
        ('{"id": "s-1"}', "s-1"),
        ('{"type": "start", "id": "s-1", "payload": {"query": "subscription { x }"}}', "s-1"),
        ('{"type": "start", "id": "s-1", "payload": {"data": "{not json"}}', "s-1"),
        ('{"type": "start", "payload": {"data": "{}"}}', ""),
    ],
    ids=[
        "not-json",
        "binary",
        "not-an-object",
        "unknown-type",
        "no-type",
        "start-without-data",
        "data-not-json",
        "start-without-id",
    ],
)
def test_a_message_appsync_cannot_read_gets_unsupported_operation_and_the_connection_goes_on(
    live: Live, frame: str | bytes, error_id: str
) -> None:
    with live.client() as client:
        client.send(frame)
        assert client.receive(5) == {
            "type": "error",
            "id": error_id,
            "payload": {"errors": _unsupported("unknown")},
        }
        assert (
            client.subscribe("ok", ON_CHANGE, {"id": "b-alice-0"}, live.token("alice"))["type"] == "start_ack"
        )


@pytest.mark.parametrize(
    ("query", "operation"),
    [
        ('query { getBooking(id: "b-alice-0") { id } }', "query"),
        ('mutation { cancelBooking(input: {id: "b-alice-0"}) { id } }', "mutation"),
    ],
)
def test_a_query_or_mutation_sent_to_start_is_refused_and_runs_nothing(
    live: Live, query: str, operation: str
) -> None:
    with live.client() as client:
        answer = client.subscribe("s-1", query, {}, live.token("alice"))
    assert answer == {"type": "error", "id": "s-1", "payload": {"errors": _unsupported(operation)}}
    assert live.lambdas.payloads == []
    assert live.api.realtime.subscriptions() == 0


def _expired(live: Live) -> str:
    return live.token("alice", expires_in=-60)


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Missing authorization header"),
        ("forged", "Token signature does not match"),
        ("expired", "Token has expired."),
    ],
)
def test_a_start_without_a_valid_token_is_unauthorized_and_registers_nothing(
    live: Live, authorization: str | None, message: str
) -> None:
    token = {
        None: None,
        "forged": TokenIssuer("another key, long enough for HS256 keys").mint("alice-sub"),
        "expired": _expired(live),
    }[authorization]
    with live.client() as client:
        extensions = {
            "authorization": {"host": "x"} if token is None else {"Authorization": token, "host": "x"}
        }
        client.send(
            {
                "id": "s-1",
                "type": "start",
                "payload": {
                    "data": json.dumps({"query": ON_CHANGE, "variables": {"id": "b-alice-0"}}),
                    "extensions": extensions,
                },
            }
        )
        answer = client.receive(5)
    assert answer["type"] == "error"
    assert answer["id"] == "s-1"
    [error] = answer["payload"]["errors"]
    assert error["errorType"] == "UnauthorizedException"
    assert error["message"].startswith(message)
    assert live.lambdas.payloads == []
    assert live.api.realtime.subscriptions() == 0


@pytest.mark.parametrize(
    ("header", "code", "error_type"),
    [
        ({"host": "x"}, 401, "UnauthorizedException"),
        ({"Authorization": "forged", "host": "x"}, 401, "UnauthorizedException"),
        (None, 400, "BadRequestException"),
    ],
    ids=["no-token", "forged-token", "no-header-parameter"],
)
def test_a_handshake_without_a_valid_token_gets_connection_error_and_is_closed(
    live: Live, header: dict[str, str] | None, code: int, error_type: str
) -> None:
    ws = live.raw(header)
    try:
        message = json.loads(ws.receive(timeout=5))  # sent at once, whether or not connection_init comes
        assert message["type"] == "connection_error"
        [error] = message["payload"]["errors"]
        assert (error["errorType"], error["errorCode"]) == (error_type, code)
        with pytest.raises(simple_websocket.ConnectionClosed):
            ws.receive(timeout=5)  # closed by the server: nothing more comes
    finally:
        ws.close() if ws.connected else None


def test_an_expired_token_at_the_handshake_is_refused_too(live: Live) -> None:
    ws = live.raw({"Authorization": _expired(live), "host": "x"})
    message = json.loads(ws.receive(timeout=5))
    assert message == {
        "type": "connection_error",
        "payload": {
            "errors": [
                {"errorType": "UnauthorizedException", "message": "Token has expired.", "errorCode": 401}
            ]
        },
    }


def test_a_subscription_field_the_caller_may_not_read_is_unauthorized_before_any_resolver_runs(
    live: Live,
) -> None:
    """onBookingStatusChanged is @aws_cognito_user_pools only: an IAM caller is refused by its directive."""
    caller = live.api.iam.add(IamCaller.role_session(f"arn:aws:iam::{ACCOUNT_ID}:role/some-service"))
    data = json.dumps({"query": ON_CHANGE, "variables": {"id": "b-alice-0"}})
    request = AWSRequest(
        method="POST",
        url="https://appsync.offline.test/graphql",
        data=data.encode(),
        headers={"Host": "appsync.offline.test"},
    )
    SigV4Auth(Credentials(caller.access_key_id, caller.secret_access_key), "appsync", REGION).add_auth(
        request
    )
    with live.client() as client:
        client.send(
            {
                "id": "s-1",
                "type": "start",
                "payload": {"data": data, "extensions": {"authorization": dict(request.headers.items())}},
            }
        )
        answer = client.receive(5)
    [error] = answer["payload"]["errors"]
    assert (answer["type"], error["errorType"], error["message"]) == (
        "error",
        "Unauthorized",
        "Not Authorized to access onBookingStatusChanged on type Subscription",
    )
    assert live.lambdas.payloads == []
    assert live.api.realtime.subscriptions() == 0


def test_another_customers_booking_is_refused_by_the_resolver_and_nothing_is_registered(live: Live) -> None:
    with live.client("bob") as bob:
        answer = bob.subscribe("s-1", ON_CHANGE, {"id": "b-alice-0"}, live.token("bob"))
        assert answer["type"] == "error"
        assert answer["id"] == "s-1"
        [error] = answer["payload"]["errors"]
        assert (error["errorType"], error["message"]) == (
            "Unauthorized",
            "Not Authorized to access onBookingStatusChanged on type Subscription",
        )
        assert live.api.realtime.subscriptions() == 0
        live.publish("b-alice-0")
        _silent(bob)


@pytest.mark.parametrize(
    "query",
    [
        'subscription { onBookingStatusChanged(id: "b-alice-0") { id nosuchfield } }',
        'subscription { a: onBookingStatusChanged(id: "b-alice-0") { id } '
        'b: onBookingStatusChanged(id: "x") { id } }',
        "subscription { onBookingStatusChanged { id } }",
    ],
    ids=["unknown-field", "two-root-fields", "missing-argument"],
)
def test_a_subscription_the_schema_refuses_gets_validation_errors_and_runs_nothing(
    live: Live, query: str
) -> None:
    with live.client() as client:
        answer = client.subscribe("s-1", query, {}, live.token("alice"))
    assert answer["type"] == "error"
    assert answer["id"] == "s-1"
    assert {error["errorType"] for error in answer["payload"]["errors"]} == {"ValidationError"}
    assert live.lambdas.payloads == []


def _signed_headers(caller: IamCaller, path: str, body: bytes) -> dict[str, str]:
    """The headers of a SigV4-signed POST of `body` to `path`, as AWS documents the IAM `header`
    (for the handshake: `/graphql/connect` and `{}`; for a start: `/graphql` and the `data`)."""
    request = AWSRequest(
        method="POST",
        url=f"https://appsync.offline.test{path}",
        data=body,
        headers={
            "accept": "application/json, text/javascript",
            "content-encoding": "amz-1.0",
            "content-type": "application/json; charset=UTF-8",
            "host": "appsync.offline.test",
        },
    )
    SigV4Auth(Credentials(caller.access_key_id, caller.secret_access_key), "appsync", REGION).add_auth(
        request
    )
    return dict(request.headers.items())


def test_an_iam_signature_of_graphql_connect_opens_the_connection_and_a_wrong_one_does_not(
    live: Live,
) -> None:
    signed = _signed_headers(live.publisher, realtime.CONNECT_PATH, b"{}")
    ws = live.raw(signed)
    try:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.receive(timeout=5))["type"] == "connection_ack"
    finally:
        ws.close()

    signed_elsewhere = _signed_headers(live.publisher, "/graphql", b"{}")  # not what the handshake signs
    ws = live.raw(signed_elsewhere)
    [error] = json.loads(ws.receive(timeout=5))["payload"]["errors"]
    assert (error["errorType"], error["errorCode"]) == ("UnauthorizedException", 401)
    assert (
        error["message"] == "The request signature we calculated does not match the signature you provided."
    )


@pytest.mark.parametrize(
    ("graphql_url", "expected"),
    [
        (
            "https://abc123.appsync-api.eu-west-1.amazonaws.com/graphql",
            "wss://abc123.appsync-realtime-api.eu-west-1.amazonaws.com/graphql",
        ),
        ("https://api.example.com/graphql", "wss://api.example.com/graphql/realtime"),
        ("http://127.0.0.1:4000/graphql", "ws://127.0.0.1:4000/graphql/realtime"),
    ],
    ids=["appsync-domain", "custom-domain", "offline"],
)
def test_the_realtime_url_of_a_graphql_url_is_the_one_aws_documents(graphql_url: str, expected: str) -> None:
    assert realtime.realtime_url(graphql_url) == expected
    header = {"Authorization": "token", "host": "h"}
    url = connection_url(graphql_url, header)
    assert url.startswith(expected + "?header=")
    assert url.endswith("&payload=e30=")
    encoded = url.split("header=", 1)[1].split("&", 1)[0]
    assert json.loads(base64.b64decode(urllib.parse.unquote(encoded))) == header


def test_a_plain_http_request_or_another_subprotocol_gets_a_400_not_a_5xx(live: Live) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{live.url}/realtime", timeout=5)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["errors"][0]["errorType"] == "BadRequestException"

    url = connection_url(live.url, {"Authorization": live.token("alice"), "host": "x"})
    with pytest.raises(simple_websocket.ConnectionError) as rejected:
        WebSocketClient.connect(url, subprotocols=["graphql-transport-ws"])
    assert rejected.value.status_code == 400


@pytest.mark.parametrize(
    "encode",
    [
        lambda raw: base64.b64encode(raw).decode(),  # as AWS's examples put it in the URL: + / = unescaped
        lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ],
    ids=["standard-unescaped", "url-safe-unpadded"],
)
def test_the_handshake_header_is_read_as_clients_write_it(live: Live, encode: Any) -> None:
    header = json.dumps({"Authorization": live.token("alice"), "host": "x", "note": ">>>???"}).encode()
    assert set("+/") <= set(base64.b64encode(header).decode())
    url = f"{live.url.replace('http', 'ws', 1)}/realtime?header={encode(header)}&payload=e30="
    ws = WebSocketClient.connect(url, subprotocols=[realtime.SUBPROTOCOL])
    try:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.receive(timeout=5))["type"] == "connection_ack"
    finally:
        ws.close()


def test_the_handshake_header_in_a_subprotocol_as_amplify_and_apollos_link_send_it(live: Live) -> None:
    """Amplify JS v6 and aws-appsync-subscription-link offer `graphql-ws` and `header-<base64url JSON,
    unpadded>` and send no query string; the server picks `graphql-ws`, reads the headers from the
    other, and refuses a bad token or a header that is not base64 JSON as it does in the query."""
    header = json.dumps({"Authorization": live.token("alice"), "host": "x", "note": ">>>???"}).encode()
    encoded = base64.urlsafe_b64encode(header).decode().rstrip("=")
    assert "-" in encoded or "_" in encoded
    url = f"{live.url.replace('http', 'ws', 1)}/realtime"
    ws = WebSocketClient.connect(url, subprotocols=[realtime.SUBPROTOCOL, f"header-{encoded}"])
    client = RealtimeClient(ws, "x")  # keep-alives skipped
    try:
        assert ws.subprotocol == realtime.SUBPROTOCOL
        ws.send(json.dumps({"type": "connection_init"}))
        assert client.receive(5)["type"] == "connection_ack"
        query = json.dumps({"query": ON_CHANGE, "variables": {"id": "b-alice-1"}})
        authorization = {"Authorization": live.token("alice"), "host": "x"}
        start = {
            "id": "s1",
            "type": "start",
            "payload": {"data": query, "extensions": {"authorization": authorization}},
        }
        ws.send(json.dumps(start))
        assert client.receive(5) == {"id": "s1", "type": "start_ack"}
        live.publish("b-alice-1")
        pushed = client.receive(5)
        assert pushed["payload"]["data"]["onBookingStatusChanged"]["status"] == "CONFIRMED"
    finally:
        ws.close()
    forged = base64.urlsafe_b64encode(json.dumps({"Authorization": "forged", "host": "x"}).encode())
    for protocol, error_type in [
        (f"header-{forged.decode().rstrip('=')}", "UnauthorizedException"),
        ("header-not*base64", "BadRequestException"),
    ]:
        refused = WebSocketClient.connect(url, subprotocols=[realtime.SUBPROTOCOL, protocol])
        try:
            error = json.loads(refused.receive(timeout=5))
            assert error["type"] == "connection_error", error
            assert error["payload"]["errors"][0]["errorType"] == error_type
        finally:
            refused.close() if refused.connected else None


# ---------------------------------------------------------------------- the whole stack
BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"


def _held_booking(stack: OfflineStack, sub: str, key: str, card: str = "") -> str:
    """processBooking for `sub`, its saga held before Reserve Flight until the test lets it go."""
    booking_id = str(uuid.uuid5(BOOKING_NAMESPACE, f"{sub}\n{key}"))
    gate_path(booking_id).touch()
    request = {"paymentToken": card or unique_token(), "bookingOutboundFlightId": "F1", "idempotencyKey": key}
    answer = stack.graphql(BOOK, {"i": request}, token=stack.tokens.mint(sub))
    assert answer["data"]["processBooking"]["id"] == booking_id, answer
    return booking_id


def _rest(client: RealtimeClient, seconds: float = 0.2) -> list[dict[str, Any]]:
    """The changes that arrive in the next `seconds` (none, usually)."""
    rest = []
    while True:
        try:
            rest.append(client.receive(seconds)["payload"]["data"]["onBookingStatusChanged"])
        except TimeoutError:
            return rest


def _changes(client: RealtimeClient, until: str, timeout: float = 60) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    while not changes or changes[-1]["status"] != until:
        changes.append(client.receive(timeout)["payload"]["data"]["onBookingStatusChanged"])
    return changes


def test_over_the_server_each_customer_learns_its_own_bookings_outcome_and_nothing_else(
    stack: OfflineStack, served: OfflineServer
) -> None:
    stack.put_flight("F1", seats=5)
    stack.lambdas.replace_handler("ReserveFlightFunction", "gate.reserve_flight", code_path=str(DOUBLES))
    alice_token, bob_token = stack.tokens.mint("alice-sub"), stack.tokens.mint("bob-sub")
    confirmed = _held_booking(stack, "alice-sub", "live-alice-1")
    declined = _held_booking(stack, "bob-sub", "live-bob-1", card=unique_token("tok_chargeDeclined"))
    try:
        with (
            RealtimeClient.connect(f"{served.url}/graphql", alice_token) as alice,
            RealtimeClient.connect(f"{served.url}/graphql", bob_token) as bob,
            RealtimeClient.connect(f"{served.url}/graphql", bob_token) as leaving,
        ):
            assert alice.subscribe("mine", ON_CHANGE, {"id": confirmed}, alice_token)["type"] == "start_ack"
            refused = alice.subscribe("theirs", ON_CHANGE, {"id": declined}, alice_token)
            assert (refused["type"], refused["payload"]["errors"][0]["errorType"]) == (
                "error",
                "Unauthorized",
            )
            assert bob.subscribe("mine", ON_CHANGE, {"id": declined}, bob_token)["type"] == "start_ack"
            assert leaving.subscribe("gone", ON_CHANGE, {"id": declined}, bob_token)["type"] == "start_ack"
            leaving.ws.sock.close()  # a client that disconnects mid-saga

            for booking_id in (confirmed, declined):
                gate_path(booking_id).unlink()

            [alice_change] = _changes(alice, until="CONFIRMED")
            assert alice_change["id"] == confirmed
            assert alice_change["customer"] == "alice-sub"
            assert alice_change["bookingReference"] == stack.booking(confirmed)["bookingReference"]
            [bob_change] = _changes(bob, until="CANCELLED")
            assert (bob_change["id"], bob_change["reason"]) == (declined, "PaymentDeclined")
            _silent(alice, 1.0)
            _silent(bob, 0.2)
    finally:
        for booking_id in (confirmed, declined):
            gate_path(booking_id).unlink(missing_ok=True)
    arn = stack.resource("ProcessBooking").replace(":stateMachine:", ":execution:")
    assert stack.wait(f"{arn}:{confirmed}")["status"] == "SUCCEEDED"
    assert stack.wait(f"{arn}:{declined}")["status"] == "FAILED"
    assert stack.booking(confirmed)["status"] == "CONFIRMED"
    assert stack.dlq_messages() == []


def test_fifty_subscribers_of_fifty_concurrent_bookings_each_learn_exactly_their_own_outcome(
    stack: OfflineStack, served: OfflineServer
) -> None:
    stack.put_flight("F1", seats=60)
    stack.lambdas.replace_handler("ReserveFlightFunction", "gate.reserve_flight", code_path=str(DOUBLES))
    customers = [f"crowd-{n}-sub" for n in range(50)]
    declined = {customer for n, customer in enumerate(customers) if n % 5 == 0}
    bookings = {
        customer: _held_booking(
            stack,
            customer,
            f"crowd-key-{n}",
            card=unique_token("tok_chargeDeclined" if customer in declined else "tok_visa"),
        )
        for n, customer in enumerate(customers)
    }
    clients: dict[str, RealtimeClient] = {}
    try:
        for customer, booking_id in bookings.items():
            token = stack.tokens.mint(customer)
            clients[customer] = RealtimeClient.connect(f"{served.url}/graphql", token)
            assert (
                clients[customer].subscribe("mine", ON_CHANGE, {"id": booking_id}, token)["type"]
                == "start_ack"
            )
        for booking_id in bookings.values():  # every saga at once
            gate_path(booking_id).unlink()
        outcome = {c: "CANCELLED" if c in declined else "CONFIRMED" for c in customers}
        changes = {c: _changes(client, until=outcome[c], timeout=120) for c, client in clients.items()}
        time.sleep(QUIET)  # then whatever else came
        for customer, client in clients.items():
            received = changes[customer] + _rest(client, 0.01)
            # Its own booking's outcome, nothing else. A push the publisher retried after its own
            # timeout (the first attempt did arrive) comes twice: AppSync delivers what is published.
            assert {(c["id"], c["customer"], c["status"]) for c in received} == {
                (bookings[customer], customer, outcome[customer])
            }
    finally:
        for booking_id in bookings.values():
            gate_path(booking_id).unlink(missing_ok=True)
        for client in clients.values():
            client.close()
    assert stack.drain(60) == []


def test_the_server_closes_its_subscribers_when_it_stops(stack: OfflineStack) -> None:
    server = OfflineServer(stack, port=0)
    server.start()
    token = stack.tokens.mint("alice-sub")
    client = RealtimeClient.connect(f"{server.url}/graphql", token)
    server.shutdown()
    _closed_by_server(client)


def test_a_connection_that_never_sends_anything_is_not_a_5xx_or_a_hang(live: Live) -> None:
    port = int(live.url.removesuffix("/graphql").rsplit(":", 1)[1])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        raw.sendall(f"GET {realtime.PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    finally:
        raw.close()
