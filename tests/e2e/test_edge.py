"""The server's edge over raw HTTP: malformed requests get AppSync's 4xx, slow or idle clients are hung
up on, and connections are bounded (issue 9, items 4-5)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from offline.auth import TokenIssuer
from offline.server import OfflineServer
from offline.stack import OfflineStack
from tests.e2e.conftest import Server

QUERY = json.dumps({"query": '{ getFlight(id: "SA1001-LGW-MAD") { id } }'}).encode()


def exchange(
    url: str, request: bytes, timeout: float = 20, *, done: bool = False
) -> tuple[int, dict[str, Any] | bytes]:
    """Send raw bytes (`done`: then say so, as a client that has nothing more to send), read the answer
    to the end: (status, JSON body or raw bytes); status 0 if the answer has no status line."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as connection:
        connection.sendall(request)
        if done:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            if length is not None and len(body) >= length:
                break
    if not answer.startswith(b"HTTP/"):
        return 0, answer  # nothing, or an HTTP/0.9 answer (a body alone) to bytes that were not HTTP/1
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def post(path: str, body: bytes, *headers: str, length: str | None = None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body) if length is None else length}",
        "Connection: close",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize("length", ["abc", "1e3", "-5", "+5", " ", "٣"])
def test_a_content_length_that_is_not_a_number_of_bytes_is_a_400(
    server: Server, tokens: TokenIssuer, length: str
) -> None:
    token = tokens.mint("edge-sub")
    status, body = exchange(server.url, post("/graphql", QUERY, f"Authorization: {token}", length=length))
    assert status == 400, body
    assert isinstance(body, dict)
    assert body["errors"][0]["errorType"] == "MalformedHttpRequestException"


def test_a_body_nested_past_the_json_parser_is_a_400(server: Server, tokens: TokenIssuer) -> None:
    token = tokens.mint("edge-sub")
    for body in (b"[" * 100_000, b"1" * 5_000, b'{"query": ' + b"[" * 50_000):
        status, answer = exchange(server.url, post("/graphql", body, f"Authorization: {token}"))
        assert status == 400, answer
        assert isinstance(answer, dict)
        assert answer["errors"][0]["errorType"] == "MalformedHttpRequestException"


@pytest.mark.parametrize("path", ["/graphql/", "/GRAPHQL", "/GraphQL/"])
def test_graphql_at_another_spelling_is_a_404_not_a_fall_through_to_moto(
    server: Server, tokens: TokenIssuer, path: str
) -> None:
    status, body = exchange(server.url, post(path, QUERY, f"Authorization: {tokens.mint('edge-sub')}"))
    assert status == 404, body
    assert isinstance(body, dict)
    assert body["errors"][0]["errorType"] == "NotFoundException"


def test_a_bearer_token_on_the_aws_endpoint_is_a_400(server: Server, tokens: TokenIssuer) -> None:
    status, body = exchange(server.url, post("/", b"{}", f"Authorization: {tokens.mint('edge-sub')}"))
    assert status == 400, body
    assert isinstance(body, dict)
    assert body["errors"][0]["errorType"] == "IncompleteSignatureException"


READ_TIMEOUT = 1.0
"""The bounded servers' deadline for each read from a client."""


@contextlib.contextmanager
def _bounded_server(stack: OfflineStack, read_timeout: float) -> Iterator[OfflineServer]:
    """An in-process server over the process's stack with a short read timeout and room for four
    connections."""
    served = OfflineServer(stack, port=0, read_timeout=read_timeout, max_connections=4)
    served.start()
    try:
        yield served
    finally:
        served.shutdown()


@pytest.fixture
def bounded(stack: OfflineStack) -> Iterator[OfflineServer]:
    with _bounded_server(stack, READ_TIMEOUT) as served:
        yield served


@pytest.fixture
def bounded_alone(stack: OfflineStack) -> Iterator[OfflineServer]:
    """A bounded server of the test's own, with a longer read timeout: no connection of an earlier
    test holds a slot, and a loaded machine accepts all four held connections before the first of
    them is hung up on."""
    with _bounded_server(stack, 3.0) as served:
        yield served


PAGE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def test_a_body_shorter_than_its_content_length_is_answered_408_after_the_read_timeout(
    bounded: OfflineServer,
) -> None:
    token = bounded.stack.api.tokens.mint("edge-sub")
    started = time.monotonic()
    status, body = exchange(
        bounded.url, post("/graphql", b'{"query"', f"Authorization: {token}", length="100")
    )
    assert status == 408, body
    assert isinstance(body, dict)
    assert body["errors"][0]["errorType"] == "RequestTimeoutException"
    assert READ_TIMEOUT - 0.1 < time.monotonic() - started < READ_TIMEOUT + 5


def test_connections_are_bounded_and_idle_ones_are_hung_up_on(bounded_alone: OfflineServer) -> None:
    bounded = bounded_alone
    port = urlsplit(bounded.url).port
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    for connection in held:
        connection.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the headers never end
    # Each held connection takes its slot once the server has accepted it: ask until the bound shows,
    # well before the held ones' read timeout frees their slots again (a loaded machine is slow).
    deadline = time.monotonic() + 2.5
    status, body = exchange(bounded.url, PAGE)
    while status != 503 and time.monotonic() < deadline:
        time.sleep(0.05)
        status, body = exchange(bounded.url, PAGE)
    assert status == 503, body
    assert isinstance(body, dict)
    assert body["errors"][0]["errorType"] == "ServiceUnavailableException"
    started = time.monotonic()
    for connection in held:  # the server hangs up on each once the read timeout has passed
        assert connection.recv(1024) == b""
        connection.close()
    assert time.monotonic() - started < 8
    time.sleep(0.1)
    assert exchange(bounded.url, PAGE)[0] == 200
