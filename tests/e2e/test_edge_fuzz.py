"""A thousand generated requests against the running server (issue 9, item 8): bodies, headers,
documents and variables. Every answer comes in time, none is a 5xx or names a Python exception,
nothing is written, and a normal booking still succeeds afterwards.

Generated text never holds an upper-case letter, so an exception's name in an answer (they are all
capitalised) can only come from the server. Flight and booking ids are never real ones: no request
here can book, and the booking table and the executions must stay empty.
"""

from __future__ import annotations

import builtins
import json
import re
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline.auth import find_server
from tests.e2e.conftest import Server, serving
from tests.e2e.test_edge import exchange
from tests.e2e.test_server import book, execution_arn, settled

EXAMPLES = 1_000
ANSWER_WITHIN = 5.0
"""Seconds: every request here is complete, so none waits for the server's read timeout (10 s)."""

PYTHON_NAMES = sorted(
    {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    | {"JSONDecodeError", "ClientError", "GraphQLError", "GraphQLSyntaxError", "Traceback"}
)
LEAK = re.compile(r"\b(" + "|".join(PYTHON_NAMES) + r")\b|File \"|line \d+, in ")

lower = st.text(st.characters(exclude_categories=("Lu", "Lt", "Cs")), max_size=16)
name = st.text("abcdefghz_", min_size=1, max_size=6)
fake_id = st.text("az09-", max_size=8).map(lambda text: f"fz-{text}")


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Server]:
    """A server of its own: what the fuzz leaves behind is all that is in it."""
    with serving("--fast-retries") as running:
        yield running


def _json_values() -> st.SearchStrategy[object]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), lower, fake_id)
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(name, inner, max_size=4)),
        max_leaves=12,
    )


def _literal() -> st.SearchStrategy[str]:
    return st.one_of(
        fake_id.map(json.dumps),
        lower.map(json.dumps),
        st.integers(-(2**40), 2**40).map(str),
        st.sampled_from(["true", "false", "null", "[]", "{}", '{eq: "confirmed"}', "asc", "$v", "$w"]),
        st.builds(lambda key, value: f"{{{key}: {value}}}", name, fake_id.map(json.dumps)),
    )


ROOTS = [
    ("getFlight", "id"),
    ("getBooking", "id"),
    ("getBookingByStatus", "customer"),
    ("listBookings", "limit"),
    ("getFlightBySchedule", "departureAirportCode"),
    ("processBooking", "input"),
    ("updateBooking", "input"),
    ("nope", "x"),
]
SUBFIELDS = [
    "id",
    "status",
    "items",
    "nextToken",
    "outboundFlight",
    "customer",
    "ticketPrice",
    "__typename",
    "x",
]


@st.composite
def selection(draw: st.DrawFn, depth: int = 0) -> str:
    fields = []
    for _ in range(draw(st.integers(1, 4))):
        field = draw(st.sampled_from(SUBFIELDS))
        alias = draw(st.one_of(st.just(""), name.map(lambda text: text + ": ")))
        inner = draw(selection(depth + 1)) if depth < 3 and draw(st.booleans()) else ""
        fields.append(f"{alias}{field}{inner}")
    return "{ " + " ".join(fields) + " }"


@st.composite
def document(draw: st.DrawFn) -> str:
    operation = draw(
        st.sampled_from(["", "query", "mutation", "subscription", "query q($v: String, $w: Int)"])
    )
    roots = []
    for index in range(draw(st.integers(1, 3))):
        field, argument = draw(st.sampled_from(ROOTS))
        arguments = ", ".join(
            f"{key}: {draw(_literal())}"
            for key in draw(
                st.lists(
                    st.sampled_from([argument, "limit", "nextToken", "status", "input", "zz"]),
                    max_size=3,
                    unique=True,
                )
            )
        )
        roots.append(f"a{index}: {field}{f'({arguments})' if arguments else ''} {draw(selection())}")
    text = f"{operation} {{ {' '.join(roots)} }}"
    if draw(st.booleans()):
        text += ' fragment f on Query { getFlight(id: "fz") { id } }'
    if draw(st.integers(0, 9)) == 0:  # cut short, or noise inside
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(lower)
    return text


@st.composite
def request(draw: st.DrawFn, token: str) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["graphql"] * 6 + ["json", "bytes", "headers", "raw"]))
    if kind == "raw":
        return kind, draw(st.binary(max_size=300))
    if kind == "graphql":
        payload: object = {"query": draw(document())}
        if draw(st.booleans()):
            payload = {
                **payload,
                "variables": draw(
                    st.one_of(
                        st.dictionaries(st.sampled_from(["v", "w", "i", "x"]), _json_values(), max_size=3),
                        _json_values(),
                    )
                ),
            }  # type: ignore[dict-item]
        if draw(st.integers(0, 4)) == 0:
            payload = {**payload, "operationName": draw(st.one_of(name, st.integers()))}  # type: ignore[dict-item]
        body = json.dumps(payload).encode()
    elif kind == "json":
        body = json.dumps(draw(_json_values())).encode()
    else:
        body = draw(st.binary(max_size=400))
    path = draw(st.sampled_from(["/graphql"] * 8 + ["/graphql/", "/GRAPHQL", "/graphql?x=1"]))
    method = draw(st.sampled_from(["POST"] * 9 + ["GET", "PUT"]))
    content_type = draw(
        st.sampled_from(["application/json"] * 6 + ["application/json; charset=utf-8", "text/plain", ""])
    )
    authorization = draw(
        st.sampled_from([token] * 6 + ["", "bearer", "AWS4-HMAC-SHA256 Credential=x/y", token[:-3]])
        if kind != "headers"
        else st.one_of(lower, st.just(token))
    )
    length = str(len(body))
    if draw(st.integers(0, 4)) == 0:
        length = draw(
            st.one_of(
                st.sampled_from(["abc", "1e3", "-5", "", " 3", "0x10"]), st.integers(0, len(body)).map(str)
            )
        )
    headers = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        f"Content-Length: {length}",
    ]
    if content_type:
        headers.append(f"Content-Type: {content_type}")
    if authorization:
        headers.append(f"Authorization: {authorization}")
    if kind == "headers":
        headers += [
            f"x-{key}: {value}"
            for key, value in draw(
                st.dictionaries(name, lower.filter(lambda v: "\r" not in v and "\n" not in v), max_size=4)
            ).items()
        ]
    return kind, ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def _written(server: Server) -> tuple[int, int]:
    items = server.aws("dynamodb").scan(TableName="booking-offline-BookingTable", Select="COUNT")["Count"]
    arn = execution_arn(server, "x").rsplit(":", 1)[0].replace(":execution:", ":stateMachine:")
    executions = server.aws("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
    return int(items), len(executions)


def test_a_thousand_generated_requests_are_answered_in_time_without_a_5xx_or_a_trace(fuzzed: Server) -> None:
    tokens = find_server(fuzzed.url).tokens()
    token = tokens.mint("fuzz-sub")
    admin = tokens.mint("fuzz-admin", groups=["Admin"])
    assert _written(fuzzed) == (0, 0)
    seen: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.sampled_from([token, admin]).flatmap(request))
    def answer(generated: tuple[str, bytes]) -> None:
        kind, raw = generated
        started = time.monotonic()
        status, body = exchange(fuzzed.url, raw, timeout=ANSWER_WITHIN + 5, done=True)
        took = time.monotonic() - started
        seen.append(status)
        text = body if isinstance(body, bytes) else json.dumps(body).encode()
        assert took < ANSWER_WITHIN, (took, raw[:300])
        assert status < 500, (status, text[:500], raw[:300])
        assert status or kind == "raw", raw[:300]  # only bytes that are not HTTP may go unanswered
        leak = LEAK.search(text.decode(errors="replace"))
        assert leak is None, (leak, text[:500], raw[:300])

    answer()
    assert len(seen) >= EXAMPLES
    assert {200, 400}.issubset(seen)
    assert _written(fuzzed) == (0, 0)

    flight = "SA1001-LGW-MAD"
    booking_id = book(fuzzed, token, flight, f"tok_visa_{uuid.uuid4().hex[:12]}")
    assert settled(fuzzed, token, booking_id)["status"] == "CONFIRMED"
