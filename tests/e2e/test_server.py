"""`make run`'s server, over HTTP, as a front-end developer and the on-call engineer use it."""

from __future__ import annotations

import json
import random
import re
import subprocess
import threading
import time
import urllib.error
import uuid
from pathlib import Path
from typing import Any

from offline.auth import TokenIssuer, find_server, server_key_file
from tests.e2e.conftest import ROOT, Server, start_server

BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
GET = "query($id: ID!) { getBooking(id: $id) { id status bookingReference customer } }"


class Throttled(Exception):
    """The Api function was at its reserved concurrency: Lambda ran nothing, the client may ask again."""


def book(server: Server, token: str, flight: str, card: str, key: str | None = None) -> str:
    request = {
        "paymentToken": card,
        "bookingOutboundFlightId": flight,
        "idempotencyKey": key or uuid.uuid4().hex[:16],
    }
    status, body = server.graphql(BOOK, {"i": request}, token=token)
    assert status == 200, body
    if [error.get("errorType") for error in body.get("errors", [])] == ["Lambda:TooManyRequestsException"]:
        raise Throttled(body["errors"][0]["message"])
    assert "errors" not in body, body
    return str(body["data"]["processBooking"]["id"])


def settled(server: Server, token: str, booking_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll getBooking until the saga has ended (CONFIRMED or CANCELLED)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = server.graphql(GET, {"id": booking_id}, token=token)
        booking = body["data"]["getBooking"]
        if booking and booking["status"] != "UNCONFIRMED":
            return dict(booking)
        time.sleep(0.05)
    raise TimeoutError(f"booking {booking_id} still UNCONFIRMED after {timeout}s")


def execution_arn(server: Server, booking_id: str) -> str:
    machines = server.aws("stepfunctions").list_state_machines()["stateMachines"]
    [machine] = [m["stateMachineArn"] for m in machines if m["name"].endswith("process-booking")]
    return machine.replace(":stateMachine:", ":execution:") + f":{booking_id}"


def wait_execution(server: Server, booking_id: str) -> dict[str, Any]:
    sfn = server.aws("stepfunctions")
    arn = execution_arn(server, booking_id)
    for _ in range(1200):
        description: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.05)
    raise TimeoutError(arn)


def seats(server: Server, flight: str) -> int:
    item = server.aws("dynamodb").get_item(
        TableName="booking-offline-FlightTable", Key={"id": {"S": flight}}, ConsistentRead=True
    )["Item"]
    return int(item["seatCapacity"]["N"])


def test_a_booking_over_http_is_confirmed_and_visible_through_the_aws_endpoint(
    server: Server, tokens: TokenIssuer
) -> None:
    token = tokens.mint("http-alice")
    card = f"tok_visa_{uuid.uuid4().hex[:8]}"
    before = seats(server, "SA1001-LGW-MAD")

    booking_id = book(server, token, "SA1001-LGW-MAD", card)
    booking = settled(server, token, booking_id)

    assert booking["status"] == "CONFIRMED"
    assert booking["customer"] == "http-alice"
    history = server.aws("stepfunctions").get_execution_history(
        executionArn=execution_arn(server, booking_id)
    )
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e
    ]
    assert entered[-1] == "Notify Booking Confirmed"
    row = server.aws("dynamodb").get_item(
        TableName="booking-offline-BookingTable", Key={"id": {"S": booking_id}}, ConsistentRead=True
    )["Item"]
    assert row["status"]["S"] == "CONFIRMED"
    assert row["bookingReference"]["S"] == booking["bookingReference"]
    assert seats(server, "SA1001-LGW-MAD") == before - 1
    [charge] = [c for c in server.ledger() if c["charge_id"] == card]
    assert (charge["status"], charge["captures"], charge["amount_captured"]) == ("captured", 1, 12_900)


def add_flight(server: Server, flight: str, *, like: str, seats: int) -> None:
    """A copy of a seeded flight with its own id and number of seats, written through the AWS endpoint."""
    dynamodb = server.aws("dynamodb")
    item = dynamodb.get_item(TableName="booking-offline-FlightTable", Key={"id": {"S": like}})["Item"]
    item.update(id={"S": flight}, seatCapacity={"N": str(seats)}, maximumSeating={"N": str(seats)})
    item.pop("heldBy", None)
    dynamodb.put_item(TableName="booking-offline-FlightTable", Item=item)


def test_two_hundred_concurrent_bookings_on_150_seats_confirm_exactly_150(
    server: Server, tokens: TokenIssuer
) -> None:
    flight, capacity, customers = f"SA9150-{uuid.uuid4().hex[:6]}", 150, 200
    add_flight(server, flight, like="SA2001-LGW-CDG", seats=capacity)
    cards = {f"crowd-{n:03d}": f"tok_visa_crowd{n:03d}{uuid.uuid4().hex[:6]}" for n in range(customers)}
    ids: dict[str, str] = {}
    lowest = [capacity]
    done = threading.Event()
    barrier = threading.Barrier(customers)

    def watch() -> None:
        while not done.is_set():
            lowest[0] = min(lowest[0], seats(server, flight))
            time.sleep(0.02)

    def customer(sub: str) -> None:
        token, key = tokens.mint(sub), uuid.uuid4().hex[:16]
        barrier.wait()
        # A client that times out asks again with the same key (three tries); one throttled by the Api
        # function's reserved concurrency (100, fewer than these 200 clients) asks again after a jittered,
        # capped backoff for as long as a patient client would: either way, one booking.
        timeouts, attempt, deadline = 0, 0, time.monotonic() + 180
        while True:
            try:
                ids[sub] = book(server, token, flight, cards[sub], key)
                return
            except (TimeoutError, urllib.error.URLError):
                timeouts += 1
                if timeouts == 3:
                    raise
            except Throttled:
                attempt += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    clients = [threading.Thread(target=customer, args=(sub,)) for sub in cards]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    outcomes = {sub: wait_execution(server, booking_id)["status"] for sub, booking_id in ids.items()}
    done.set()
    watcher.join()

    statuses = [settled(server, tokens.mint(sub), booking_id)["status"] for sub, booking_id in ids.items()]
    assert sorted(statuses) == ["CANCELLED"] * 50 + ["CONFIRMED"] * 150
    assert sorted(outcomes.values()) == ["FAILED"] * 50 + ["SUCCEEDED"] * 150
    assert lowest[0] >= 0
    assert seats(server, flight) == 0
    ledger = {c["charge_id"]: c for c in server.ledger() if c["charge_id"] in cards.values()}
    captured = [c for c in ledger.values() if c["captures"] == 1 and c["status"] == "captured"]
    assert len(captured) == capacity
    # No authorisation outlives its booking: each FlightFull booking's Refund Payment released its
    # card's pre-authorisation (decision 0014).
    released = [c for c in ledger.values() if c["status"] == "released" and c["captures"] == 0]
    assert (len(ledger), len(released)) == (customers, customers - capacity)
    assert all(c["refunds"] == 0 for c in captured)


def test_a_declined_card_over_http_cancels_and_keeps_nothing(server: Server, tokens: TokenIssuer) -> None:
    token = tokens.mint("http-declined")
    before = seats(server, "SA1002-MAD-LGW")

    booking_id = book(server, token, "SA1002-MAD-LGW", "tok_chargeDeclined")
    booking = settled(server, token, booking_id)
    wait_execution(server, booking_id)  # the seat comes back after the booking reads CANCELLED

    assert booking["status"] == "CANCELLED"
    assert seats(server, "SA1002-MAD-LGW") == before
    [charge] = [c for c in server.ledger() if c["charge_id"] == "tok_chargeDeclined"]
    assert charge["captures"] == 0


def test_a_payment_outage_over_http_cancels_gives_the_seat_back_and_pages(
    server: Server, tokens: TokenIssuer
) -> None:
    token = tokens.mint("http-outage")
    card = f"tok_visa_{uuid.uuid4().hex[:8]}"
    before = seats(server, "SA1002-MAD-LGW")
    sqs = server.aws("sqs")
    dlq = next(url for url in sqs.list_queues()["QueueUrls"] if url.endswith("BookingDLQ"))
    server.outage(True)
    try:
        booking_id = book(server, token, "SA1002-MAD-LGW", card)
        execution = wait_execution(server, booking_id)
    finally:
        server.outage(False)

    assert (execution["status"], execution["error"]) == ("FAILED", "PaymentUnavailable")
    assert settled(server, token, booking_id)["status"] == "CANCELLED"
    assert seats(server, "SA1002-MAD-LGW") == before
    messages = [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    ]
    [message] = [m for m in messages if m["bookingId"] == booking_id]
    assert message["notUndone"] == ["refundPayment"]
    assert card not in json.dumps(messages)


def test_the_readme_quick_start_runs_as_written(server: Server) -> None:
    readme = (ROOT / "README.md").read_text()
    [script] = re.findall(r"<!-- quick-start: tested -->\s*```bash\n(.*?)```", readme, re.S)

    result = subprocess.run(  # noqa: S603 - the README's own commands
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        cwd=ROOT,
        env={"URL": server.url, "PATH": _path_with_python(), "HOME": str(Path.home())},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert not re.search(r"^sleep ", script, re.M), "a fixed sleep races the saga: poll getBooking"
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    booked = answers[0]["data"]["processBooking"]
    assert booked["status"] == "UNCONFIRMED"
    final = answers[1]["data"]["getBooking"]
    assert (final["id"], final["status"]) == (booked["id"], "CONFIRMED")
    assert re.fullmatch(r"[A-Z2-9]{6}", final["bookingReference"])
    mine = answers[2]["data"]["getBookingByStatus"]["items"]
    assert booked["id"] in {item["id"] for item in mine}
    assert answers[3]["data"]["cancelBooking"] == {"id": booked["id"], "status": "CANCELLING"}
    cancelled = answers[4]["data"]["getBooking"]
    assert (cancelled["id"], cancelled["status"], cancelled["refund"]["status"]) == (
        booked["id"],
        "CANCELLED",
        "refunded",
    )
    assert len(answers) == 5


def test_the_readme_names_the_booking_reference_alphabet() -> None:
    from booking.bookings import REFERENCE_ALPHABET, REFERENCE_LENGTH

    readme = (ROOT / "README.md").read_text()
    [said] = re.findall(
        r"`bookingReference` of six letters and digits \(`(\w+)`: A-Z and 2-9 without O, I, 0 or 1\)", readme
    )
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ23456789") - set("OI01")
    assert set(REFERENCE_ALPHABET) == alphabet
    assert REFERENCE_LENGTH == 6 == len(said)
    assert set(said) <= alphabet


def _path_with_python() -> str:
    """The README says `.venv/bin/python`; when the tests run from another interpreter, put it first."""
    import os
    import sys

    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def test_the_server_survives_bad_requests_and_still_books(server: Server, tokens: TokenIssuer) -> None:
    token = tokens.mint("http-robust")
    bad = [
        (
            "malformed JSON",
            server.post("/graphql", b"{not json", token),
            400,
            "MalformedHttpRequestException",
        ),
        ("over 1 MB", server.post("/graphql", b"x" * 1_100_000, token), 413, "PayloadTooLargeException"),
        (
            "wrong content type",
            server.post("/graphql", b'{"query": "{ getFlight(id: \\"x\\") { id } }"}', token, "text/plain"),
            415,
            "UnsupportedMediaTypeException",
        ),
        (
            "unknown operation",
            server.post(
                "/graphql",
                json.dumps({"query": 'query A { getFlight(id: "x") { id } }', "operationName": "B"}).encode(),
                token,
            ),
            400,
            "BadRequestException",
        ),
        ("bad token", server.graphql(GET, {"id": "x"}, token="not-a-token"), 401, "UnauthorizedException"),
        ("no token", server.graphql(GET, {"id": "x"}, token=None), 401, "UnauthorizedException"),
    ]
    for name, (status, body), expected_status, error_type in bad:
        assert (name, status, body["errors"][0]["errorType"]) == (name, expected_status, error_type)
        assert body["errors"][0]["message"]

    booking = settled(
        server, token, book(server, token, "SA1001-LGW-MAD", f"tok_visa_{uuid.uuid4().hex[:8]}")
    )
    assert booking["status"] == "CONFIRMED"


def ctrl_c_with_bookings_in_flight(*arguments: str, bookings: int = 6) -> tuple[int, str, list[str]]:
    """Start a server, book during a Payment API outage (so every saga is still retrying), press Ctrl-C;
    the exit code, the output and the booking ids."""
    running = start_server(*arguments)
    key_file = server_key_file(int(running.url.rsplit(":", 1)[1]))
    try:
        assert key_file.exists()
        tokens = find_server(running.url).tokens()
        running.outage(True)
        ids = [
            book(running, tokens.mint(f"ctrl-c-{n}"), "SA1001-LGW-MAD", f"tok_visa_{uuid.uuid4().hex[:8]}")
            for n in range(bookings)
        ]
        running.process.send_signal(2)  # SIGINT, as Ctrl-C sends
        code = running.process.wait(timeout=90)
        output = running.log.read_text(errors="replace")
    finally:
        if running.process.poll() is None:
            running.process.kill()
        running.log.unlink(missing_ok=True)
    assert not key_file.exists(), "the run's token key outlived it"
    return code, output, ids


def test_ctrl_c_waits_for_the_running_bookings_and_says_they_all_ended() -> None:
    code, output, ids = ctrl_c_with_bookings_in_flight("--fast-retries")

    assert code == 0, output[-2000:]
    waiting = re.search(r"Stopping: no new requests; waiting up to 30s for (\d+) bookings? still", output)
    assert waiting, output[-2000:]
    assert 0 < int(waiting.group(1)) <= len(ids)
    assert f"All {waiting.group(1)} bookings ended." in output
    assert "Abandoned" not in output
    assert output.rstrip().endswith("Stopped.")


def test_ctrl_c_counts_and_names_the_bookings_it_abandons() -> None:
    code, output, ids = ctrl_c_with_bookings_in_flight("--shutdown-wait", "1")

    assert code == 0, output[-2000:]
    assert f"waiting up to 1s for {len(ids)} bookings still running" in output, output[-2000:]
    assert f"Abandoned {len(ids)} bookings still running: stopped without their compensations" in output
    assert all(f"  {booking_id}\n" in output for booking_id in ids)
    assert output.rstrip().endswith("Stopped.")


def test_a_customer_books_cancels_and_sees_cancelled_with_the_refund_and_the_seat_free(
    server: Server, tokens: TokenIssuer
) -> None:
    token = tokens.mint("http-carol")
    card = f"tok_visa_{uuid.uuid4().hex[:8]}"
    before = seats(server, "SA1001-LGW-MAD")
    booking_id = book(server, token, "SA1001-LGW-MAD", card)
    assert settled(server, token, booking_id)["status"] == "CONFIRMED"
    assert seats(server, "SA1001-LGW-MAD") == before - 1

    status, body = server.graphql(
        "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id status } }",
        {"i": {"id": booking_id, "idempotencyKey": "http-carol-cancel"}},
        token=token,
    )

    assert (status, body) == (200, {"data": {"cancelBooking": {"id": booking_id, "status": "CANCELLING"}}})
    query = "query($id: ID!) { getBooking(id: $id) { status refund { status amount currency } } }"
    for _ in range(600):
        _, seen = server.graphql(query, {"id": booking_id}, token=token)
        if seen["data"]["getBooking"]["status"] == "CANCELLED":
            break
        time.sleep(0.05)
    assert seen["data"]["getBooking"] == {
        "status": "CANCELLED",
        "refund": {"status": "refunded", "amount": 12_900, "currency": "EUR"},
    }
    assert seats(server, "SA1001-LGW-MAD") == before
    [charge] = [c for c in server.ledger() if c["charge_id"] == card]
    assert (charge["status"], charge["refunds"], charge["amount_refunded"]) == ("refunded", 1, 12_900)
