"""Booking latency offline: from the processBooking request until getBooking reads CONFIRMED.

What a customer of the offline service waits for, and how many bookings it completes per second
with one client and with eight. One `python -m offline serve --port 0` subprocess serves every
request over loopback HTTP (urllib, no proxy). Each booking is a processBooking with a fresh
`tok_visa_<hex>` card and idempotency key, for its own customer (`bench-<n>`), followed by a
getBooking every 20 ms until the booking is CONFIRMED (60 s at most). One booking first warms the
saga's functions (their cold imports; the seat check before it warms the Api function) and is
shown apart.

- latency: `--bookings` (default 50) bookings one after the other on SA1001-LGW-MAD; median, p95.
- throughput: `--throughput` (default 40) bookings with 1 client thread, then as many with 8, on
  SA1002-MAD-LGW; bookings per second for each and the ratio 8/1. The offline Lambda runtime runs
  one invocation at a time (offline/lambdas.py), the polling getBooking calls included, so the
  ratio stays well below 8 whatever the saga does.

Both flights have 180 seats (offline/flights.json); the script refuses counts that do not fit.
Run: `make bench` (or `.venv/bin/python bench/latency.py [--bookings 50] [--throughput 40]`).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from server_process import ServerProcess  # noqa: E402

from offline.auth import TokenIssuer  # noqa: E402
from offline.client import post_graphql  # noqa: E402

LATENCY_FLIGHT = "SA1001-LGW-MAD"
THROUGHPUT_FLIGHT = "SA1002-MAD-LGW"
BOOK = "mutation($i: ProcessBookingInput!) { processBooking(input: $i) { id status } }"
GET_BOOKING = "query($id: ID!) { getBooking(id: $id) { id status } }"
GET_FLIGHT = "query($id: ID!) { getFlight(id: $id) { id seatCapacity } }"
POLL_SECONDS = 0.02
BOOKING_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
STARTUP_TIMEOUT_SECONDS = 120.0
CONCURRENT_CLIENTS = 8


class GraphQLError(Exception):
    """The server answered, but not with data (HTTP error or GraphQL `errors`)."""


def graphql(url: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """One GraphQL request's `data`; GraphQLError for anything else (HTTP error, `errors`, no answer)."""
    try:
        status, body = post_graphql(url, query, variables, token=token, timeout=REQUEST_TIMEOUT_SECONDS)
    except OSError as error:
        raise GraphQLError(f"{type(error).__name__}: {error}") from None
    if status != 200 or body.get("errors") or not isinstance(body.get("data"), dict):
        raise GraphQLError(f"HTTP {status}: {json.dumps(body)[:300]}")
    return dict(body["data"])


@dataclass(frozen=True)
class Outcome:
    seconds: float
    status: str
    error: str | None = None

    @property
    def confirmed(self) -> bool:
        return self.status == "CONFIRMED"


class Booker:
    """Books seats on one server; every booking is bounded by its own timeout and a shared deadline."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tokens = TokenIssuer()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._next = 0

    def customer(self) -> str:
        with self._lock:
            self._next += 1
            return f"bench-{self._next}"

    def book(self, flight_id: str, deadline: float) -> Outcome:
        """processBooking, then getBooking every 20 ms until CONFIRMED, CANCELLED or the time is up."""
        if time.perf_counter() >= deadline or self.stopping.is_set():
            return Outcome(0.0, "NOT STARTED", "phase budget spent")
        token = self.tokens.mint(self.customer())
        booking = {
            "paymentToken": f"tok_visa_{uuid.uuid4().hex[:12]}",
            "bookingOutboundFlightId": flight_id,
            "idempotencyKey": f"bench-{uuid.uuid4().hex}",
        }
        started = time.perf_counter()
        give_up = min(started + BOOKING_TIMEOUT_SECONDS, deadline)
        status = "NOT STARTED"
        try:
            booking_id = graphql(self.url, token, BOOK, {"i": booking})["processBooking"]["id"]
            while True:
                answer = graphql(self.url, token, GET_BOOKING, {"id": booking_id})["getBooking"]
                status = str(answer["status"])
                if status in ("CONFIRMED", "CANCELLED"):
                    return Outcome(time.perf_counter() - started, status)
                if time.perf_counter() >= give_up or self.stopping.is_set():
                    return Outcome(time.perf_counter() - started, status, "timed out")
                time.sleep(POLL_SECONDS)
        except (GraphQLError, KeyError, TypeError) as error:
            return Outcome(time.perf_counter() - started, status, f"{type(error).__name__}: {error}")

    def run(self, flight_id: str, count: int, clients: int, budget: float) -> tuple[float, list[Outcome]]:
        """`count` bookings on `clients` threads; the wall time and every outcome."""
        deadline = time.perf_counter() + budget
        started = time.perf_counter()
        if clients == 1:
            outcomes = [self.book(flight_id, deadline) for _ in range(count)]
            return time.perf_counter() - started, outcomes
        pool = ThreadPoolExecutor(max_workers=clients, thread_name_prefix="bench-client")
        try:
            outcomes = list(pool.map(lambda _: self.book(flight_id, deadline), range(count)))
        except BaseException:
            self.stopping.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return time.perf_counter() - started, outcomes

    def seats(self, flight_id: str) -> int:
        token = self.tokens.mint("bench-seats")
        flight = graphql(self.url, token, GET_FLIGHT, {"id": flight_id})["getFlight"]
        return int(flight["seatCapacity"]) if flight else 0


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _failures(outcomes: list[Outcome]) -> str:
    failed = [outcome for outcome in outcomes if not outcome.confirmed]
    if not failed:
        return "0"
    first = failed[0]
    return f"{len(failed)} (first: {first.status}{', ' + first.error if first.error else ''})"


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=50, help="sequential bookings timed (default 50)")
    parser.add_argument(
        "--throughput", type=int, default=40, help="bookings per throughput run, 1 and 8 clients (default 40)"
    )
    parser.add_argument("--budget", type=float, default=240.0, help="seconds allowed per phase (default 240)")
    args = parser.parse_args()
    if not 1 <= args.bookings <= 170 or not 1 <= args.throughput <= 90:
        parser.error("--bookings is between 1 and 170, --throughput between 1 and 90 (180 seats a flight)")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    with ServerProcess() as server:
        url = server.wait_url(time.perf_counter() + STARTUP_TIMEOUT_SECONDS)
        booker = Booker(url)
        needed = {LATENCY_FLIGHT: 1 + args.bookings, THROUGHPUT_FLIGHT: 2 * args.throughput}
        for flight_id, seats in needed.items():
            if booker.seats(flight_id) < seats:
                raise SystemExit(f"{flight_id} has fewer than the {seats} free seats this run needs")

        warm = booker.book(LATENCY_FLIGHT, time.perf_counter() + BOOKING_TIMEOUT_SECONDS)
        _, latency = booker.run(LATENCY_FLIGHT, args.bookings, 1, args.budget)
        single = booker.run(THROUGHPUT_FLIGHT, args.throughput, 1, args.budget)
        several = booker.run(THROUGHPUT_FLIGHT, args.throughput, CONCURRENT_CLIENTS, args.budget)

    ready = f"{server.ready_seconds:.1f} s" if server.ready_seconds is not None else "not printed"
    print(f"Offline booking, processBooking → getBooking CONFIRMED (server {url}, ready in {ready})")
    print(f"first booking (saga functions cold, not counted below): {warm.seconds:.3f} s, {warm.status}")
    confirmed = [outcome.seconds for outcome in latency if outcome.confirmed]
    print(f"\n{'latency, sequential':<22} {'bookings':>8} {'median s':>9} {'p95 s':>7}  failed")
    if confirmed:
        print(
            f"{LATENCY_FLIGHT:<22} {len(latency):>8} {statistics.median(confirmed):>9.3f} "
            f"{p95(confirmed):>7.3f}  {_failures(latency)}"
        )
    else:
        print(f"{LATENCY_FLIGHT:<22} {len(latency):>8} {'—':>9} {'—':>7}  {_failures(latency)}")

    print(f"\n{'throughput':<22} {'bookings':>8} {'wall s':>9} {'per s':>7}  failed")
    rates = []
    for clients, (wall, outcomes) in ((1, single), (CONCURRENT_CLIENTS, several)):
        done = sum(outcome.confirmed for outcome in outcomes)
        rates.append(done / wall if wall > 0 else 0.0)
        label = f"{clients} client thread{'s' if clients > 1 else ''}"
        print(f"{label:<22} {len(outcomes):>8} {wall:>9.2f} {rates[-1]:>7.2f}  {_failures(outcomes)}")
    ratio = f"{rates[1] / rates[0]:.2f}" if rates[0] > 0 else "—"
    print(f"{'ratio 8/1':<22} {'':>8} {'':>9} {ratio:>7}")
    print(
        "\nThe offline Lambda runtime runs one invocation at a time (offline/lambdas.py: every saga step "
        "and every\ngetBooking poll takes turns through one lock), which bounds the 8/1 ratio."
    )


if __name__ == "__main__":
    main()
