"""One offline stack per test process, shared by every test that needs one (DESIGN §4).

Building a stack (moto, the Payment API, the deployment of template.yaml, the functions' first cold
starts) costs seconds; resetting it costs milliseconds. So each pytest worker builds one, on first
use, and each test gets it reset (`OfflineStack.reset`: data, queues, ledger, faults, replaced
handlers, records), with the functions' sandboxes still warm. A test that needs other template
parameters deploys another stage beside it (`other_stack`), as a second branch's stack lives in the
same AWS account.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from offline import changes, stepfunctions
from offline.server import OfflineServer
from offline.stack import ROOT, OfflineStack
from offline.template import REGION

DASHBOARD_METRICS = frozenset(
    {
        "SuccessfulCancellation",
        "FailedCancellation",
        "SuccessfulBooking",
        "SuccessfulNotification",
        "FailedNotification",
        "SuccessfulReservation",
        "FailedReservation",
        "SuccessfulPayment",
        "FailedPayment",
        "InvalidPaymentRequest",
    }
)
"""DESIGN §2: the metric names the ServerlessAirline dashboards read (namespace, dimension `service`)."""


FUNCTIONS = (
    "ReserveFlightFunction",
    "ReleaseFlightFunction",
    "ReserveBookingFunction",
    "CollectPaymentFunction",
    "RefundPaymentFunction",
    "ConfirmBookingFunction",
    "CancelBookingFunction",
    "NotifyBookingFunction",
    "ApiFunction",
)
"""The template's functions: the saga's eight task functions and the Api function. A new one must be
added here, and so gets every check of tests/template and tests/api."""


DOUBLES_PATH = str(Path(__file__).resolve().parent / "doubles")
"""Where the test doubles a function can run in its handler's place live (`replace_handler`)."""

RETRY_WAIT_SCALE = 0.05
"""The state machines' `Retry` waits in tests: 1 s (fast_retries, Step Functions' minimum) times this.
Attempts and their order are as deployed; only the waits between them are shorter."""


LONGEST_FIRST = (
    "tests/e2e/test_server.py",
    "tests/bench/test_quick_servers.py",
    "tests/bench/test_quick_in_process.py",
    "tests/e2e/test_smoke_command.py",
    "tests/e2e/test_edge_fuzz.py",
    "tests/e2e/test_query_page.py",
    "tests/api/test_realtime.py",
    "tests/e2e/test_cli.py",
    "tests/clients/test_js_clients.py",
    "tests/saga/test_lifecycle_matrix.py",
)
"""Modules of 20 s or more (`make test`'s durations), started first. pytest-xdist's `--dist loadfile`
hands each worker a whole module, in the collection order: one of these drawn last by the random
order ran alone on one core for up to a minute while the other core idled."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, in LONGEST_FIRST's order; every other module, and the tests inside
    each, stay in pytest-randomly's order (a stable sort on top of its shuffle, as its docs expect)."""
    rank = {path: place for place, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.path)).relative_to(ROOT).as_posix(), len(rank)))


def new_stack(**options: Any) -> OfflineStack:
    """A started stack with the suite's settings (fast retries, short retry waits, preloaded sandboxes)."""
    settings: dict[str, Any] = {
        "fast_retries": True,
        "sandboxes": "preloaded",
        "retry_wait_scale": RETRY_WAIT_SCALE,
        **options,
    }
    offline = OfflineStack(**settings)
    offline.start()
    stepfunctions.log_execution_ends()  # one line per execution's end, not moto's every caught failure
    return offline


@pytest.fixture(scope="session")
def shared_stack() -> Iterator[OfflineStack]:
    """This process's stack, built on first use and stopped at the end of the session."""
    offline = new_stack()
    try:
        yield offline
    finally:
        offline.stop()


@pytest.fixture
def stack(request: pytest.FixtureRequest, shared_stack: OfflineStack) -> Iterator[OfflineStack]:
    """The process's stack, reset for this test; a test marked `own_stack` (it deletes a table, the
    topic or a queue) gets a stage of its own instead, stopped after it. The functions' log lines reach
    the test's captured stdout. The test fails if a function or a state machine made a call its role's
    policies do not allow: in AWS it would have been AccessDenied, whatever moto let through (0012)."""
    shared_stack.reset()
    if request.node.get_closest_marker("own_stack") is None:
        yield shared_stack
        shared_stack.assert_iam_allowed()
        return
    offline = new_stack(stage=f"t{uuid.uuid4().hex[:8]}")
    try:
        yield offline
        offline.assert_iam_allowed()
    finally:
        offline.stop()


@pytest.fixture
def other_stack(shared_stack: OfflineStack) -> Iterator[Callable[..., OfflineStack]]:
    """Deploy another stage of the template beside the shared stack, with other parameters:
    `other_stack(parameters={...})`. Each is stopped at the end of the test, and its calls checked
    against its roles' policies as the `stack` fixture's are, unless it is a mutant whose policies
    are meant to refuse (`iam_checked=False`)."""
    started: list[tuple[OfflineStack, bool]] = []

    def deploy(*, iam_checked: bool = True, **options: Any) -> OfflineStack:
        options.setdefault("stage", f"t{uuid.uuid4().hex[:8]}")
        offline = new_stack(**options)
        started.append((offline, iam_checked))
        return offline

    yield deploy
    for offline, _ in started:
        offline.stop()
    for offline, checked in started:
        if checked:
            offline.assert_iam_allowed()


@pytest.fixture
def pushes(stack: OfflineStack) -> list[dict[str, Any]]:
    """Every status change the functions pushed and AppSync took (`publishBookingStatus` inputs), in
    the order it took them."""
    seen: list[dict[str, Any]] = []
    answer = stack.endpoint_app.graphql
    assert answer is not None

    def watched(body: bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        status, result = answer(body, **kwargs)
        if (result.get("data") or {}).get("publishBookingStatus"):
            seen.append(json.loads(body)["variables"]["i"])
        return status, result

    stack.endpoint_app.graphql = watched
    return seen


@pytest.fixture
def served(stack: OfflineStack) -> Iterator[OfflineServer]:
    """`make run`'s server (on a free port) over the test's stack: HTTP and the real-time endpoint."""
    server = OfflineServer(stack, port=0)
    server.start()
    yield server
    server.shutdown()


@dataclass(frozen=True)
class Outcome:
    """How one booking ended, as every party sees it."""

    booking_id: str
    arn: str
    execution: dict[str, Any]
    booking: dict[str, Any] | None

    @property
    def status(self) -> str:
        return str(self.execution["status"])

    @property
    def error(self) -> str | None:
        return self.execution.get("error")


def book(
    stack: OfflineStack,
    *,
    flight_id: str = "F1",
    token: str = "tok_visa",  # noqa: S107 - a test card token
    customer: str = "alice",
) -> Outcome:
    """Start the saga for a new booking and wait for it to end."""
    booking_id = str(uuid.uuid4())
    arn = stack.start_booking(booking_id, customer=customer, flight_id=flight_id, token=token)
    execution = stack.wait(arn)
    return Outcome(booking_id, arn, execution, stack.booking(booking_id))


def authorisations_held(stack: OfflineStack, *tokens: str) -> list[str]:
    """The tokens whose pre-authorisation (made by the front end before processBooking) is still held:
    the Payment API never captured nor released them. DESIGN §2: none, once a booking has ended."""
    held = []
    for token in tokens:
        charge = stack.gateway.ledger(token)
        if charge is None or charge.status == "authorised":
            held.append(token)
    return held


def with_task_timeout(directory: Path, state: str, seconds: int) -> Path:
    """template.yaml in `directory`, beside a copy of the booking saga's definition whose `state` has
    `TimeoutSeconds: seconds`: a task timeout a test can reach in a second, for `other_stack`."""
    (directory / "statemachine").mkdir()
    for path in (ROOT / "statemachine").iterdir():
        text = path.read_text(encoding="utf-8")
        if path.name == "process_booking.asl.yaml":
            head, rest = text.split(f"  {state}:\n", 1)
            rest = re.sub(r"TimeoutSeconds: \d+", f"TimeoutSeconds: {seconds}", rest, count=1)
            text = f"{head}  {state}:\n{rest}"
        (directory / "statemachine" / path.name).write_text(text, encoding="utf-8")
    for name in ("src", "schema.graphql", "template.yaml"):
        (directory / name).symlink_to(ROOT / name)
    return directory / "template.yaml"


def unique_token(prefix: str = "tok_visa") -> str:
    """Each booking its own pre-authorised charge, as in production."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def listening(stack: OfflineStack, count: int = 1) -> None:
    """Return once the stack's real-time endpoint has registered `count` onBookingStatusChanged
    subscriptions (told at each registration): a client acting from then on cannot miss a push."""
    changes.wait_until(
        lambda: stack.api.realtime.subscriptions("onBookingStatusChanged") >= count,
        15,
        f"{count} onBookingStatusChanged subscription(s) registered",
    )


def readme_block(marker: str) -> str:
    """The README's code block after `<!-- front-end: <marker> -->`, as written."""
    readme = (ROOT / "README.md").read_text()
    [block] = re.findall(rf"<!-- front-end: {marker} -->\s*```\w+\n(.*?)```", readme, re.S)
    return str(block)


def booking_metric_sum(metric: str) -> float:
    """The sum over the last hour of one of the service's CloudWatch metrics (dimension service=booking),
    as an alarm on it reads it."""
    now = datetime.now(UTC)
    statistics = boto3.client("cloudwatch", region_name=REGION).get_metric_statistics(
        Namespace="ServerlessAirline",
        MetricName=metric,
        Dimensions=[{"Name": "service", "Value": "booking"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=60,
        Statistics=["Sum"],
    )
    return float(sum(point["Sum"] for point in statistics["Datapoints"]))
