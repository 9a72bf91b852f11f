"""`/graphql` over HTTP as AppSync answers it (decision 0015): CORS for a page of another origin, the
`x-amzn-ErrorType` and `x-amzn-RequestId` headers AWS's clients read, and https with a run's own CA.

The server is `make run`'s (`OfflineServer`) over the worker's stack; requests are urllib's.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from offline.server import CORS_EXPOSED, OfflineServer
from offline.stack import OfflineStack
from offline.tls import RunCertificate

ORIGIN = "http://localhost:5173"  # a Vite dev server
MINE = 'query { getBookingByStatus(status: {eq: "CONFIRMED"}) { items { id } } }'


def _request(
    url: str, method: str, body: bytes | None, headers: dict[str, str], context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _graphql(
    url: str, token: str | None, body: Any = None, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "Origin": ORIGIN}
    if token is not None:
        headers["Authorization"] = token
    raw = body if isinstance(body, bytes) else json.dumps(body or {"query": MINE}).encode()
    return _request(f"{url}/graphql", "POST", raw, headers, **kwargs)


def test_a_preflight_from_another_origin_is_answered_as_appsync_answers_it(served: OfflineServer) -> None:
    status, headers, body = _request(
        f"{served.url}/graphql",
        "OPTIONS",
        None,
        {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-amz-user-agent",
        },
    )
    assert (status, body) == (200, b"")
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-headers"] == "authorization,content-type,x-amz-user-agent"
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-max-age"] == "172800"
    assert headers["access-control-expose-headers"] == CORS_EXPOSED


@pytest.mark.parametrize("authorized", [True, False])
def test_every_answer_of_graphql_lets_a_page_of_another_origin_read_it(
    stack: OfflineStack, served: OfflineServer, authorized: bool
) -> None:
    status, headers, _ = _graphql(served.url, stack.tokens.mint("cors-sub") if authorized else None)
    assert status == (200 if authorized else 401)
    assert headers["access-control-allow-origin"] == "*"
    assert "x-amzn-ErrorType" in headers["access-control-expose-headers"]


def test_the_page_token_endpoint_grants_no_cross_origin_read(served: OfflineServer) -> None:
    """A page of another site must not read a token: no CORS on `/_offline/token`, preflight or not."""
    for method, body in [("OPTIONS", None), ("POST", b'{"sub": "x", "admin": true}')]:
        _, headers, _ = _request(
            f"{served.url}/_offline/token",
            method,
            body,
            {"Origin": "https://evil.example", "Content-Type": "application/json"},
        )
        assert not any(name.startswith("access-control-") for name in headers), (method, headers)


def test_errors_carry_x_amzn_errortype_and_every_answer_a_request_id(
    stack: OfflineStack, served: OfflineServer
) -> None:
    """What Amplify names an error by (`parseJsonError` reads the header: AppSync's body has no code)."""
    cases = [
        (None, None, 401, "UnauthorizedException"),
        ("forged", None, 401, "UnauthorizedException"),
        (stack.tokens.mint("e-sub"), b"{not json", 400, "MalformedHttpRequestException"),
    ]
    for token, body, status, error_type in cases:
        got, headers, raw = _graphql(served.url, token, body)
        assert (got, headers.get("x-amzn-errortype")) == (status, error_type), raw
        assert json.loads(raw)["errors"][0]["errorType"] == error_type
        assert headers["x-amzn-requestid"]
    got, headers, raw = _graphql(served.url, stack.tokens.mint("e-sub"), {"query": "{ nothing }"})
    assert got == 200  # validation errors: 200 with errors, as AppSync
    assert "x-amzn-errortype" not in headers
    assert json.loads(raw)["errors"]


@pytest.fixture
def tls_served(stack: OfflineStack) -> Iterator[tuple[OfflineServer, RunCertificate]]:
    with RunCertificate.make() as certificate:
        server = OfflineServer(stack, port=0, ssl_context=certificate.server_context())
        server.start()
        yield server, certificate
        server.shutdown()


def test_tls_serves_https_that_trusts_the_runs_ca_and_nothing_else(
    stack: OfflineStack, tls_served: tuple[OfflineServer, RunCertificate]
) -> None:
    server, certificate = tls_served
    assert server.url.startswith("https://127.0.0.1:")
    token = stack.tokens.mint("tls-sub")
    status, _, _ = _graphql(server.url, token, context=certificate.client_context())
    assert status == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _graphql(server.url, token, context=ssl.create_default_context())
    localhost = server.url.replace("127.0.0.1", "localhost")
    assert _graphql(localhost, token, context=certificate.client_context())[0] == 200


def test_the_runs_certificate_files_go_when_it_is_removed() -> None:
    certificate = RunCertificate.make()
    assert certificate.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert certificate.key_file.stat().st_mode & 0o077 == 0
    assert certificate.directory.stat().st_mode & 0o077 == 0
    certificate.remove()
    assert not certificate.directory.exists()


def test_a_client_that_never_starts_its_tls_handshake_holds_no_one_else_up(
    stack: OfflineStack, tls_served: tuple[OfflineServer, RunCertificate]
) -> None:
    """The handshake runs on the connection's own thread: a TCP client that sends nothing does not keep
    the accepting thread (and so every other client) waiting."""
    server, certificate = tls_served
    host, port = server.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5):  # connected, silent
        status, _, _ = _graphql(
            server.url, stack.tokens.mint("tls-sub"), context=certificate.client_context()
        )
    assert status == 200


def test_a_burst_of_connections_up_to_the_cap_is_queued_not_dropped(stack: OfflineStack) -> None:
    """300 clients connecting before the server accepts any: each handshake completes into the listen
    queue. With a backlog of 128 the 130th SYN was dropped and its client retried it only after 1 s."""
    server = OfflineServer(stack, port=0)  # listening, not yet accepting
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    opened: list[socket.socket] = []
    try:
        for number in range(300):
            client = socket.socket()
            client.settimeout(0.5)  # a dropped SYN is retried after 1 s: this connect times out
            try:
                client.connect((host, int(port)))
            except TimeoutError:
                client.close()
                pytest.fail(f"connection {number + 1} of 300 was dropped, not queued")
            opened.append(client)
    finally:
        for client in opened:
            client.close()
        server.close()  # it never served: nothing to shut down but its socket
