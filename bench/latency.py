"""Booking latency and throughput offline, beside moto's floor for a 5-task state machine.

What a customer of the offline service waits for, and how many bookings it completes per second
with one client and with eight. One `python -m offline serve --port 0` subprocess serves every
request over loopback HTTP (urllib, no proxy). Each booking is a processBooking with a fresh
`tok_visa_<hex>` card and idempotency key, for its own customer (`bench-<n>`), followed by a
getBooking every 20 ms until the booking is CONFIRMED (60 s at most). One booking first warms the
saga's functions (their cold starts; the seat check before it warms the Api function) and is
shown apart.

- latency: `--bookings` (default 50) bookings one after the other on SA1001-LGW-MAD, with warm
  sandboxes; median and p95, and their ratio to the floor below (goal: median at most 3 times the floor).
- live status: as many bookings again, each followed by subscription instead (decision 0011: on one
  WebSocket opened beforehand, `onBookingStatusChanged` started right after processBooking answers,
  `start_ack`, one getBooking, then the push); the time from processBooking's answer to CONFIRMED,
  median and p95, beside the same time by polling getBooking every 20 ms (the latency bookings above),
  and how many learned it from the push rather than from the one read.
- throughput: `--throughput` (default 40) bookings with 1 client thread, then as many with 8, on
  SA1002-MAD-LGW, after 24 uncounted bookings on 8 threads that start the sandboxes 8 clients keep
  busy; bookings per second for each and the ratio 8/1 (goal ≥ 1.6 on 2 cores). The
  offline Lambda runtime runs every invocation in a sandbox process of its function, several per
  function at once (up to 4; offline/lambdas/), so nothing but DynamoDB's per-request lock
  serialises two bookings' handlers; the server process itself (GraphQL, moto, the state machine
  interpreter, every Runtime API) is one Python interpreter, so its CPU per booking, printed for
  each phase with the sandboxes' CPU, the getBooking polls per booking and the sandboxes alive at
  the end, bounds the ratio.
- moto's 5-task floor, measured in this process before the server starts: moto 5.2.5's own state
  machine interpreter in-process (`mock_aws(config={"stepfunctions": {"execute_state_machine":
  True}})`), running a chain of 5 Task states `arn:aws:states:::lambda:invoke` shaped like the
  saga's forward steps (a JSONPath payload, `ResultSelector`, `ResultPath`; no Retry or Catch),
  each invoking a trivial function (bench/functions/floor.py, which returns at once) through the
  offline Lambda runtime in a warm fresh-started sandbox, as the server does. Timed from
  StartExecution until DescribeExecution (polled every 5 ms) reads SUCCEEDED; `--floor` (default
  20) executions after one warm-up, median. A chain of 5 Pass states is shown beside it: the
  interpreter alone.

Both flights have 180 seats (offline/flights.json); the script refuses counts that do not fit.
The interpreter is the one running the script (server, sandboxes and floor alike). A booking that
does not confirm is an error, whatever the form. `--quick` runs every phase on the fewest bookings
that exercise it: one booking timed, one followed live, 2 bookings for the concurrency warm-up and
for each throughput run (two clients at once are enough to run the threaded path), one execution of
each floor machine.
Run: `make bench` (or `.venv/bin/python bench/latency.py [--quick] [--bookings 50] [--throughput 40]
[--floor 20]`).
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

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from goals import Goals, add_quick_option  # noqa: E402
from server_process import ServerProcess  # noqa: E402

from offline.auth import find_server  # noqa: E402
from offline.client import post_graphql  # noqa: E402
from offline.realtime import RealtimeClient  # noqa: E402
from offline.template import ACCOUNT_ID, REGION  # noqa: E402

LATENCY_FLIGHT = "SA1001-LGW-MAD"
THROUGHPUT_FLIGHT = "SA1002-MAD-LGW"
BOOK = "mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }"
GET_BOOKING = "query($id: ID!) { getBooking(id: $id) { id status } }"
GET_FLIGHT = "query($id: ID!) { getFlight(id: $id) { id seatCapacity } }"
SUBSCRIBE = "subscription($id: ID!) { onBookingStatusChanged(id: $id) { id status } }"
FINAL = ("CONFIRMED", "CANCELLED")
POLL_SECONDS = 0.02
BOOKING_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
STARTUP_TIMEOUT_SECONDS = 120.0
CONCURRENT_CLIENTS = 8
CONCURRENCY_WARM_UP = 3 * CONCURRENT_CLIENTS
LATENCY_GOAL = 3.0
THROUGHPUT_GOAL = 1.6
GOAL_SOURCE = "bench/latency.py docstring"
FULL = {"bookings": 50, "throughput": 40, "floor": 20, "warm_up": CONCURRENCY_WARM_UP}
QUICK = {"bookings": 1, "throughput": 2, "floor": 1, "warm_up": 2}

FUNCTIONS = Path(__file__).resolve().parent / "functions"
FLOOR_FUNCTION = "bench-floor-task"
FLOOR_POLL_SECONDS = 0.005
FLOOR_STATES = 5
FLOOR_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


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
    """From before processBooking to the final status."""
    status: str
    error: str | None = None
    polls: int = 0
    after_answer: float | None = None
    """From processBooking's answer to the final status."""
    pushed: bool = False
    """The final status came as a push (not from the read after start_ack)."""

    @property
    def confirmed(self) -> bool:
        return self.status == "CONFIRMED"


@dataclass(frozen=True)
class Phase:
    """Bookings run together, and what they cost the server and its sandboxes."""

    wall: float
    outcomes: list[Outcome]
    server_cpu: float
    sandbox_cpu: float
    sandboxes: int
    """Sandbox processes alive at the end."""

    @property
    def confirmed(self) -> int:
        return sum(outcome.confirmed for outcome in self.outcomes)

    @property
    def rate(self) -> float:
        return self.confirmed / self.wall if self.wall > 0 else 0.0

    def per_booking(self, seconds: float) -> float:
        """Milliseconds per confirmed booking."""
        return 1000 * seconds / self.confirmed if self.confirmed else math.nan

    @property
    def polls(self) -> float:
        return statistics.mean(outcome.polls for outcome in self.outcomes) if self.outcomes else 0.0


class Booker:
    """Books seats on one server; every booking is bounded by its own timeout and a shared deadline."""

    def __init__(self, url: str, server: psutil.Process) -> None:
        self.url = url
        self.server = server
        self.tokens = find_server(url).tokens()  # the key this run of the server wrote
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._next = 0

    def customer(self) -> str:
        with self._lock:
            self._next += 1
            return f"bench-{self._next}"

    def _new_booking(self, flight_id: str) -> tuple[str, dict[str, str]]:
        """A token of a new customer and processBooking's input for it: a fresh card, a fresh key."""
        booking = {
            "paymentToken": f"tok_visa_{uuid.uuid4().hex[:12]}",
            "bookingOutboundFlightId": flight_id,
            "idempotencyKey": f"bench-{uuid.uuid4().hex}",
        }
        return self.tokens.mint(self.customer()), booking

    def book(self, flight_id: str, deadline: float) -> Outcome:
        """processBooking, then getBooking every 20 ms until CONFIRMED, CANCELLED or the time is up."""
        if time.perf_counter() >= deadline or self.stopping.is_set():
            return Outcome(0.0, "NOT STARTED", "phase budget spent")
        token, booking = self._new_booking(flight_id)
        started = time.perf_counter()
        give_up = min(started + BOOKING_TIMEOUT_SECONDS, deadline)
        status = "NOT STARTED"
        polls = 0
        try:
            booking_id = graphql(self.url, token, BOOK, {"i": booking})["processBooking"]["id"]
            answered = time.perf_counter()
            while True:
                answer = graphql(self.url, token, GET_BOOKING, {"id": booking_id})["getBooking"]
                polls += 1
                status = str(answer["status"])
                if status in FINAL:
                    now = time.perf_counter()
                    return Outcome(now - started, status, polls=polls, after_answer=now - answered)
                if time.perf_counter() >= give_up or self.stopping.is_set():
                    return Outcome(time.perf_counter() - started, status, "timed out", polls)
                time.sleep(POLL_SECONDS)
        except (GraphQLError, KeyError, TypeError) as error:
            return Outcome(time.perf_counter() - started, status, f"{type(error).__name__}: {error}", polls)

    def book_live(self, flight_id: str, deadline: float, live: RealtimeClient) -> Outcome:
        """processBooking, then as decision 0011 says: subscribe, start_ack, getBooking once, the push."""
        if time.perf_counter() >= deadline or self.stopping.is_set():
            return Outcome(0.0, "NOT STARTED", "phase budget spent")
        token, booking = self._new_booking(flight_id)
        started = time.perf_counter()
        give_up = min(started + BOOKING_TIMEOUT_SECONDS, deadline)
        status = "NOT STARTED"
        try:
            booking_id = graphql(self.url, token, BOOK, {"i": booking})["processBooking"]["id"]
            answered = time.perf_counter()
            subscription = f"s-{booking_id}"
            ack = live.subscribe(subscription, SUBSCRIBE, {"id": booking_id}, token)
            if ack.get("type") != "start_ack":
                return Outcome(
                    time.perf_counter() - started, status, f"not subscribed: {json.dumps(ack)[:300]}"
                )
            status = str(graphql(self.url, token, GET_BOOKING, {"id": booking_id})["getBooking"]["status"])
            pushed = False
            while status not in FINAL:
                message = live.receive(max(0.0, give_up - time.perf_counter()))
                if message.get("type") != "data" or message.get("id") != subscription:
                    raise GraphQLError(f"expected a push, got {json.dumps(message)[:300]}")
                status = str(message["payload"]["data"]["onBookingStatusChanged"]["status"])
                pushed = True
            now = time.perf_counter()
            live.send({"type": "stop", "id": subscription})
            live.receive(REQUEST_TIMEOUT_SECONDS)  # complete
            return Outcome(now - started, status, polls=1, after_answer=now - answered, pushed=pushed)
        except TimeoutError:
            return Outcome(time.perf_counter() - started, status, "timed out", 1)
        except (GraphQLError, ConnectionError, KeyError, TypeError) as error:
            return Outcome(time.perf_counter() - started, status, f"{type(error).__name__}: {error}", 1)

    def run_live(self, flight_id: str, count: int, budget: float) -> list[Outcome]:
        """`count` bookings one after the other, each followed by subscription on one WebSocket."""
        deadline = time.perf_counter() + budget
        with RealtimeClient.connect(f"{self.url}/graphql", self.tokens.mint("bench-live")) as live:
            return [self.book_live(flight_id, deadline, live) for _ in range(count)]

    def run(self, flight_id: str, count: int, clients: int, budget: float) -> Phase:
        """`count` bookings on `clients` threads: the wall time, every outcome, and the CPU they took."""
        deadline = time.perf_counter() + budget
        server_before, sandboxes_before = self._cpu()
        started = time.perf_counter()
        if clients == 1:
            outcomes = [self.book(flight_id, deadline) for _ in range(count)]
        else:
            pool = ThreadPoolExecutor(max_workers=clients, thread_name_prefix="bench-client")
            try:
                outcomes = list(pool.map(lambda _: self.book(flight_id, deadline), range(count)))
            except BaseException:
                self.stopping.set()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        wall = time.perf_counter() - started
        server_after, sandboxes_after = self._cpu()
        return Phase(
            wall,
            outcomes,
            server_after - server_before,
            _spent(sandboxes_before, sandboxes_after),
            len(sandboxes_after),
        )

    def _cpu(self) -> tuple[float, dict[int, float]]:
        """CPU seconds of the server process, and of each of its sandboxes (its child processes)."""
        sandboxes = {}
        for child in self.server.children(recursive=True):
            try:
                times = child.cpu_times()
            except psutil.Error:  # stopped meanwhile
                continue
            sandboxes[child.pid] = times.user + times.system
        times = self.server.cpu_times()
        return times.user + times.system, sandboxes

    def seats(self, flight_id: str) -> int:
        token = self.tokens.mint("bench-seats")
        flight = graphql(self.url, token, GET_FLIGHT, {"id": flight_id})["getFlight"]
        return int(flight["seatCapacity"]) if flight else 0


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings; a process started meanwhile counts from zero (the CPU of
    a sandbox stopped meanwhile is lost: the figure is a lower bound)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


# ---------------------------------------------------------------------- moto's floor
def _quiet(function: str, line: str) -> None:
    """The floor function's logs are not the figures."""


def _chain(state: dict[str, Any]) -> dict[str, Any]:
    """A state machine of FLOOR_STATES copies of `state`, one after the other."""
    names = [f"Step {number}" for number in range(1, FLOOR_STATES + 1)]
    states = {}
    for number, name in enumerate(names):
        step = dict(state)
        if "ResultPath" in step:
            step["ResultPath"] = f"$.step{number + 1}"
        if number + 1 < len(names):
            step["Next"] = names[number + 1]
        else:
            step["End"] = True
        states[name] = step
    return {"StartAt": names[0], "States": states}


def moto_floor(executions: int) -> dict[str, list[float]]:
    """Seconds from StartExecution to SUCCEEDED for the two floor state machines, in-process."""
    import boto3
    from moto import mock_aws

    from offline import aws
    from offline.lambdas import LambdaRuntime, LocalFunction

    function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FLOOR_FUNCTION}"
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload": {"bookingId.$": "$.bookingId"}},
        "ResultSelector": {"status.$": "$.Payload.status"},
        "ResultPath": "$.step",
    }
    machines = {
        f"{FLOOR_STATES} Lambda Task states": _chain(task),
        f"{FLOOR_STATES} Pass states": _chain({"Type": "Pass"}),
    }
    runtime = LambdaRuntime(start="fresh", region=REGION, log=_quiet)
    runtime.register(
        LocalFunction(
            logical_id="BenchFloorTask",
            name=FLOOR_FUNCTION,
            arn=function_arn,
            handler="floor.handler",
            environment={},
            timeout_seconds=30.0,
            memory_mb=256,
            code_path=str(FUNCTIONS),
        )
    )
    aws.install()
    mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
    mock.start()
    aws.activate(runtime)
    try:
        sfn = boto3.client("stepfunctions", region_name=REGION, **FLOOR_CREDENTIALS)
        results: dict[str, list[float]] = {}
        for number, (label, definition) in enumerate(machines.items()):
            arn = sfn.create_state_machine(
                name=f"bench-floor-{number}",
                definition=json.dumps(definition),
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/bench-floor",
            )["stateMachineArn"]
            _execute(sfn, arn)  # the sandbox's cold start, and moto's first run
            results[label] = [_execute(sfn, arn) for _ in range(executions)]
        return results
    finally:
        aws.activate(None)
        mock.stop()
        runtime.stop()


def _execute(sfn: Any, state_machine_arn: str) -> float:
    started = time.perf_counter()
    execution = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=uuid.uuid4().hex,
        input=json.dumps({"bookingId": uuid.uuid4().hex}),
    )["executionArn"]
    while True:
        status = sfn.describe_execution(executionArn=execution)["status"]
        if status != "RUNNING":
            break
        if time.perf_counter() - started > BOOKING_TIMEOUT_SECONDS:
            raise SystemExit(
                f"the floor execution {execution} still runs after {BOOKING_TIMEOUT_SECONDS:.0f} s"
            )
        time.sleep(FLOOR_POLL_SECONDS)
    if status != "SUCCEEDED":
        raise SystemExit(f"the floor execution {execution} ended {status}")
    return time.perf_counter() - started


# ---------------------------------------------------------------------- report
def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def describe_failures(outcomes: list[Outcome]) -> str:
    failed = [outcome for outcome in outcomes if not outcome.confirmed]
    if not failed:
        return "0"
    first = failed[0]
    return f"{len(failed)} (first: {first.status}{', ' + first.error if first.error else ''})"


def _print_live_status(polled: list[Outcome], live: list[Outcome]) -> None:
    """Time from processBooking's answer to CONFIRMED: by polling getBooking, and by the push."""
    print(
        f"\n{'processBooking answered → CONFIRMED':<40} {'bookings':>8} {'median s':>9} {'p95 s':>7}  failed"
    )
    rows = (
        (f"polling getBooking every {POLL_SECONDS * 1000:.0f} ms", polled),
        ("onBookingStatusChanged push", live),
    )
    for label, outcomes in rows:
        seconds = [o.after_answer for o in outcomes if o.confirmed and o.after_answer is not None]
        if seconds:
            figures = f"{statistics.median(seconds):>9.3f} {p95(seconds):>7.3f}"
        else:
            figures = f"{'—':>9} {'—':>7}"
        print(f"{label:<40} {len(outcomes):>8} {figures}  {describe_failures(outcomes)}")
    confirmed = [o for o in live if o.confirmed]
    pushed = sum(o.pushed for o in confirmed)
    polls = statistics.mean(o.polls for o in polled) if polled else 0.0
    print(
        f"live: {pushed} of {len(confirmed)} learned CONFIRMED from the push, {len(confirmed) - pushed} from "
        f"the one getBooking after start_ack; polling read getBooking {polls:.1f} times a booking"
    )


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bookings", type=int, help=f"sequential bookings timed (default {FULL['bookings']}, --quick 1)"
    )
    parser.add_argument(
        "--throughput",
        type=int,
        help=f"bookings per throughput run, 1 and 8 clients (default {FULL['throughput']}, --quick 2)",
    )
    parser.add_argument(
        "--floor", type=int, help=f"executions of each floor machine (default {FULL['floor']}, --quick 1)"
    )
    parser.add_argument("--budget", type=float, default=240.0, help="seconds allowed per phase (default 240)")
    add_quick_option(parser)
    args = parser.parse_args()
    counts = dict(QUICK if args.quick else FULL)
    counts.update(
        {
            name: getattr(args, name)
            for name in ("bookings", "throughput", "floor")
            if getattr(args, name) is not None
        }
    )
    if (
        not 1 <= counts["bookings"] <= 89
        or not 1 <= counts["throughput"] <= 78
        or not 1 <= counts["floor"] <= 500
    ):
        parser.error(
            "--bookings is between 1 and 89 (twice: polled, then followed live), --throughput between 1 "
            "and 78 (180 seats a flight), --floor between 1 and 500"
        )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    goals = Goals(quick=args.quick)

    floors = moto_floor(counts["floor"])
    with ServerProcess() as server:
        url = server.wait_url(time.perf_counter() + STARTUP_TIMEOUT_SECONDS)
        booker = Booker(url, psutil.Process(server.process.pid))
        needed = {
            LATENCY_FLIGHT: 1 + 2 * counts["bookings"],
            THROUGHPUT_FLIGHT: counts["warm_up"] + 2 * counts["throughput"],
        }
        for flight_id, seats in needed.items():
            if booker.seats(flight_id) < seats:
                raise SystemExit(f"{flight_id} has fewer than the {seats} free seats this run needs")

        warm = booker.book(LATENCY_FLIGHT, time.perf_counter() + BOOKING_TIMEOUT_SECONDS)
        latency = booker.run(LATENCY_FLIGHT, counts["bookings"], 1, args.budget)
        live = booker.run_live(LATENCY_FLIGHT, counts["bookings"], args.budget)
        warm_up = booker.run(THROUGHPUT_FLIGHT, counts["warm_up"], CONCURRENT_CLIENTS, args.budget)
        single = booker.run(THROUGHPUT_FLIGHT, counts["throughput"], 1, args.budget)
        several = booker.run(THROUGHPUT_FLIGHT, counts["throughput"], CONCURRENT_CLIENTS, args.budget)

    ready = f"{server.ready_seconds:.1f} s" if server.ready_seconds is not None else "not printed"
    print(
        f"Offline booking, processBooking → getBooking CONFIRMED (server {url}, ready in {ready}); "
        f"Python {sys.version.split()[0]}"
    )
    print(f"first booking (saga functions cold, not counted below): {warm.seconds:.3f} s, {warm.status}")

    floor_label = next(iter(floors))
    floor = statistics.median(floors[floor_label])
    print(f"\n{'moto floor, in-process':<26} {'runs':>5} {'median s':>9} {'p95 s':>7}")
    for label, seconds in floors.items():
        print(f"{label:<26} {len(seconds):>5} {statistics.median(seconds):>9.3f} {p95(seconds):>7.3f}")

    confirmed = [outcome.seconds for outcome in latency.outcomes if outcome.confirmed]
    print(f"\n{'latency, sequential':<26} {'bookings':>8} {'median s':>9} {'p95 s':>7}  ÷ floor  failed")
    none = "—"
    median = statistics.median(confirmed) if confirmed else math.nan
    figures = (
        f"{median:>9.3f} {p95(confirmed):>7.3f}  {median / floor:>7.2f}"
        if confirmed
        else f"{none:>9} {none:>7}  {none:>7}"
    )
    print(f"{LATENCY_FLIGHT:<26} {len(latency.outcomes):>8} {figures}  {describe_failures(latency.outcomes)}")

    _print_live_status(latency.outcomes, live)

    print(
        f"\n{'throughput':<26} {'bookings':>8} {'wall s':>9} {'per s':>7}  "
        f"{'server CPU ms':>13} {'sandbox CPU ms':>14} {'polls':>6} {'sandboxes':>9}  failed"
    )
    print(f"{'':<26} {'':>8} {'':>9} {'':>7}  {'(per booking)':>13} {'(per booking)':>14}")
    phases = (
        (f"warm-up, {CONCURRENT_CLIENTS} threads", warm_up),
        ("1 client thread", single),
        (f"{CONCURRENT_CLIENTS} client threads", several),
    )
    for label, phase in phases:
        print(
            f"{label:<26} {len(phase.outcomes):>8} {phase.wall:>9.2f} {phase.rate:>7.2f}  "
            f"{phase.per_booking(phase.server_cpu):>13.0f} {phase.per_booking(phase.sandbox_cpu):>14.0f} "
            f"{phase.polls:>6.1f} {phase.sandboxes:>9}  {describe_failures(phase.outcomes)}"
        )
    busy = single.server_cpu / single.wall if single.wall > 0 else 0.0
    print(
        f"The server process was busy {busy:.0%} of one core with one client: it is one interpreter, so no\n"
        f"more than about {1 / busy if busy else math.inf:.1f} times that rate, whatever the clients and "
        "sandboxes do."
    )

    failed = {
        "the first booking": [warm],
        "latency": latency.outcomes,
        "live status": live,
        "warm-up": warm_up.outcomes,
        "1 client": single.outcomes,
        f"{CONCURRENT_CLIENTS} clients": several.outcomes,
    }
    failures = {
        label: describe_failures(outcomes)
        for label, outcomes in failed.items()
        if describe_failures(outcomes) != "0"
    }
    if failures:
        raise SystemExit(
            "bookings did not confirm: " + "; ".join(f"{label}: {text}" for label, text in failures.items())
        )

    goals.at_most("booking latency median ÷ moto floor", median / floor, LATENCY_GOAL, source=GOAL_SOURCE)
    goals.at_least(
        f"throughput {CONCURRENT_CLIENTS} clients ÷ 1 client",
        several.rate / single.rate,
        THROUGHPUT_GOAL,
        source=GOAL_SOURCE,
    )
    pushed = [o.after_answer for o in live if o.after_answer is not None]
    goals.without_goal(
        "push after processBooking answered, median",
        statistics.median(pushed),
        "s",
        digits=3,
        why="none in README's bench table or this docstring",
    )
    return goals.exit_status()


if __name__ == "__main__":
    sys.exit(main())
