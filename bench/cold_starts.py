"""Cold start of each Lambda function offline: the `Init Duration` its sandbox reports, beside the
import ratio of `bench/cold_imports.py`.

A cold start in Lambda is the Init phase (the runtime starting and importing the handler module,
reported as `Init Duration` in the invocation's REPORT line) plus the first invocation, which pays
for whatever the module left for later. Goals: every task function at most 1.3 times the floor
`import boto3; boto3.client("dynamodb")`, the Api function at most 1.5 times.

How: an in-process `OfflineStack(sandboxes="fresh")` (moto, the Payment API, every function of
template.yaml), where every sandbox is a new `python -m awslambdaric <handler>` process, as
`make run` starts them. One more function is registered beside the template's: `floor.handler`
(bench/functions/floor.py), whose init is exactly the floor (`import boto3` and one DynamoDB
client). Each round forces a cold start of every function (`replace_handler` with its own handler
stops its warm sandbox), in saga order on a booking of its own — Reserve Flight, Reserve Booking,
Collect Payment, Confirm Booking, Notify Booking, Refund Payment, Cancel Booking, Release Flight
Seat — and the Api function with a `getFlight` query; every invocation must succeed. The first
round is discarded; the medians of the others are printed, with the first invocation's `Duration`.

Columns: `init ms` and `÷ floor` are the sandboxes' Init Duration (interpreter start, awslambdaric
and the handler module; offline, every function gets `POWERTOOLS_TRACE_DISABLED=true` from the
deployer, as there is no X-Ray daemon, so the X-Ray SDK stays out), `1st invoke ms` is the cold
invocation's Duration, `import ÷ floor` is `bench/cold_imports.py`'s ratio of the handler import
alone, with Lambda's `LAMBDA_TASK_ROOT` set so the Tracer loads the X-Ray SDK as it does in Lambda.
The goal is judged on each ratio. `--quick` forces one cold start per function, with no round
discarded, and imports each handler once.

The interpreter is the one that runs this script (sandboxes and imports alike). Lambda runs the
functions on Python 3.13 (template.yaml); with a 3.13 virtual environment holding the project's
dependencies (`python3.13 -m venv /tmp/py313 && /tmp/py313/bin/pip install -e '.[dev]'`):
`make bench BENCH_PYTHON=/tmp/py313/bin/python`.

Run: `make bench` (or `.venv/bin/python bench/cold_starts.py [--quick] [--rounds 5] [--import-runs 7]`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import cold_imports  # noqa: E402
from goals import Goals, add_quick_option  # noqa: E402

from offline.lambdas import Invocation, LocalFunction  # noqa: E402
from offline.stack import OfflineStack  # noqa: E402
from offline.template import ACCOUNT_ID, REGION  # noqa: E402

FUNCTIONS = Path(__file__).resolve().parent / "functions"
FLOOR = "ColdStartFloor"
FLIGHT = "BENCH-COLD-1"
GET_FLIGHT = "query($id: ID!) { getFlight(id: $id) { id seatCapacity } }"
TASK_GOAL = cold_imports.TASK_GOAL
API_GOAL = cold_imports.API_GOAL
ROUNDS = 5
QUICK_ROUNDS = 1


@dataclass(frozen=True)
class Booking:
    """What one round's saga carries from step to step."""

    booking_id: str
    customer: str
    token: str


Payload = Callable[[Booking], dict[str, Any]]

SAGA: list[tuple[str, Payload]] = [
    ("ReserveFlightFunction", lambda b: {"bookingId": b.booking_id, "outboundFlightId": FLIGHT}),
    (
        "ReserveBookingFunction",
        lambda b: {
            "bookingId": b.booking_id,
            "customer": b.customer,
            "outboundFlightId": FLIGHT,
            "paymentToken": b.token,
            "createdAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        },
    ),
    (
        "CollectPaymentFunction",
        lambda b: {"bookingId": b.booking_id, "outboundFlightId": FLIGHT, "paymentToken": b.token},
    ),
    ("ConfirmBookingFunction", lambda b: {"bookingId": b.booking_id}),
    (
        "NotifyBookingFunction",
        lambda b: {
            "bookingId": b.booking_id,
            "customer": b.customer,
            "outboundFlightId": FLIGHT,
            "status": "confirmed",
            "bookingReference": "BENCH1",
            "amount": 12000,
            "currency": "EUR",
        },
    ),
    ("RefundPaymentFunction", lambda b: {"bookingId": b.booking_id, "paymentToken": b.token}),
    ("CancelBookingFunction", lambda b: {"bookingId": b.booking_id}),
    ("ReleaseFlightFunction", lambda b: {"bookingId": b.booking_id, "outboundFlightId": FLIGHT}),
]
"""Each task function with a payload as the state machine would send it, in saga order."""
API = "ApiFunction"


def _quiet(function: str, line: str) -> None:
    """The functions' logs are not the figures."""


class ColdStarts:
    """Forces and records one cold start of a function at a time, on one offline stack."""

    def __init__(self, stack: OfflineStack) -> None:
        self.stack = stack
        self.token = stack.tokens.mint("bench-cold-starts")
        stack.lambdas.log = _quiet
        stack.lambdas.register(
            LocalFunction(
                logical_id=FLOOR,
                name="bench-cold-start-floor",
                arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:bench-cold-start-floor",
                handler="floor.handler",
                environment={},
                timeout_seconds=30.0,
                memory_mb=256,
                code_path=str(FUNCTIONS),
            )
        )
        stack.put_flight(FLIGHT, seats=10_000, price=12_000)

    def cold(self, logical_id: str, payload: dict[str, Any] | None) -> Invocation:
        """Stop the function's warm sandboxes, invoke it once, and return the (cold) invocation."""
        function = self.stack.lambdas.find(logical_id)
        self.stack.lambdas.replace_handler(function.name, function.handler)
        seen = len(self.stack.lambdas.calls(function.name))
        if payload is None:  # the Api function, through the offline AppSync as a client calls it
            answer = self.stack.graphql(GET_FLIGHT, {"id": FLIGHT}, token=self.token)
            if answer.get("errors") or not (answer.get("data") or {}).get("getFlight"):
                raise SystemExit(f"{logical_id}: getFlight failed: {answer}")
        else:
            response = self.stack.lambdas.invoke(function.name, json.dumps(payload))
            if response.function_error or response.service_error:
                raise SystemExit(f"{logical_id} failed: {response.body.decode()[:300]}")
        calls = self.stack.lambdas.calls(function.name)[seen:]
        if len(calls) != 1 or calls[0].init_duration_ms is None:
            raise SystemExit(f"{logical_id}: expected one cold invocation, got {calls}")
        return calls[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, help=f"cold starts per function (default {ROUNDS}, --quick {QUICK_ROUNDS})"
    )
    parser.add_argument(
        "--import-runs",
        type=int,
        help=f"fresh imports per function, for the import ratio (default {cold_imports.RUNS}, "
        f"--quick {cold_imports.QUICK_RUNS})",
    )
    add_quick_option(parser)
    args = parser.parse_args()
    rounds = args.rounds if args.rounds is not None else QUICK_ROUNDS if args.quick else ROUNDS
    import_runs = (
        args.import_runs
        if args.import_runs is not None
        else cold_imports.QUICK_RUNS
        if args.quick
        else cold_imports.RUNS
    )
    if not 1 <= rounds <= 50 or not 1 <= import_runs <= 100:
        parser.error("--rounds is between 1 and 50, --import-runs between 1 and 100")
    discarded = 0 if args.quick else 1  # the disk cache and the stack warming up
    goals = Goals(quick=args.quick)

    order = [FLOOR, *(logical_id for logical_id, _ in SAGA), API]
    init: dict[str, list[float]] = {label: [] for label in order}
    first: dict[str, list[float]] = {label: [] for label in order}
    with OfflineStack(sandboxes="fresh") as stack:
        starts = ColdStarts(stack)
        for round_number in range(discarded + rounds):
            booking = Booking(f"bench-cold-{uuid.uuid4().hex[:12]}", "bench-cold", f"tok_visa_{round_number}")
            records = {FLOOR: starts.cold(FLOOR, {})}
            for logical_id, payload in SAGA:
                records[logical_id] = starts.cold(logical_id, payload(booking))
            records[API] = starts.cold(API, None)
            if round_number < discarded:
                continue
            for label, record in records.items():
                init[label].append(float(record.init_duration_ms or 0.0))
                first[label].append(record.duration_ms)
    imports = cold_imports.measure(import_runs, discarded=discarded)

    floor = statistics.median(init[FLOOR])
    import_floor = imports.median(cold_imports.BASELINE_LABEL)
    print(
        f"Cold starts offline: {rounds} per function in fresh sandboxes (python -m awslambdaric), "
        f"Python {sys.version.split()[0]}"
    )
    print(
        f"floor: Init Duration {floor:.0f} ms (floor.handler: import boto3, one DynamoDB client); "
        f"import alone {import_floor * 1000:.0f} ms"
    )
    width = max(len(label) for label in order)
    columns = f"{'init ms':>7}  {'÷ floor':>7}  {'1st invoke ms':>13}  {'import ÷ floor':>14}"
    print(f"\n{'function':<{width}}  {columns}")
    for label in order:
        median = statistics.median(init[label])
        name = "floor.handler" if label == FLOOR else label
        import_ratio = 1.0 if label == FLOOR else imports.ratio(label)
        print(
            f"{name:<{width}}  {median:>7.0f}  {median / floor:>7.2f}  "
            f"{statistics.median(first[label]):>13.1f}  {import_ratio:>14.2f}"
        )
    for label in order[1:]:
        goal = API_GOAL if label == API else TASK_GOAL
        goals.at_most(
            f"init {label} ÷ floor",
            statistics.median(init[label]) / floor,
            goal,
            source=cold_imports.GOAL_SOURCE,
        )
        goals.at_most(f"import {label} ÷ floor", imports.ratio(label), goal, source=cold_imports.GOAL_SOURCE)
    return goals.exit_status()


if __name__ == "__main__":
    sys.exit(main())
