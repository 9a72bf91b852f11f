"""What the end-to-end tests run against: one client and one set of fixtures, offline or deployed.

`make smoke` (tests/e2e/smoke.py) sets `E2E_*` variables naming a deployed stack: the GraphQL URL, the
AWS endpoint (empty: AWS itself) and region, the stack's outputs, the users it signed in (a file of real
Cognito ID tokens) and the flights it created. Without them — `make test`, or pytest on its own — the
`target` fixture starts `python -m offline serve` and sets up the same users and flights there with the
same code (`smoke.Run`): offline is the default, and the online path's code runs in CI.

Tests that need what only the offline stack has (fault injection, the Payment API's ledger, the offline
server itself) do not take `target`; conftest.py skips them online with the reason, and counts them.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, parse

from offline.auth import is_loopback
from tests.e2e import smoke

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
BATCH_SIZE = 25
"""`MaxBatchSize` of the batched `Booking.outboundFlight` resolver (template.yaml)."""


@dataclass
class Target:
    """A booking stack over HTTP: its GraphQL API, its AWS APIs, the run's users and flights."""

    stack: smoke.Stack
    users: dict[str, smoke.User]
    flights: list[str]
    online: bool
    usage_file: Path | None = None
    bookings: list[str] = field(default_factory=list)

    @property
    def graphql_url(self) -> str:
        return self.stack.outputs["GraphQLApiUrl"]

    def token(self, role: str) -> str:
        return self.users[role].token

    def aws(self, service: str) -> Any:
        return self.stack.client(service)

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: str
    ) -> tuple[int, dict[str, Any]]:
        """POST the document as `as_` (a role of the run's users); each request is recorded for the
        run's cost, with the Api function invocations AppSync makes for it."""
        status, body = _post(self.graphql_url, query, variables, self.token(as_))
        self._record({"kind": "graphql", "resolvers": resolver_invocations(query, status, body)})
        return status, body

    def subscribed(self) -> None:
        """Note a subscription started: AppSync invokes its resolver (the Api function) once."""
        self._record({"kind": "subscription"})

    def booked(self, booking_id: str) -> str:
        """Note a booking the run made (its execution's transitions count toward the run's cost)."""
        self.bookings.append(booking_id)
        self._record({"kind": "booking", "id": booking_id})
        return booking_id

    def _record(self, entry: dict[str, Any]) -> None:
        if self.usage_file is not None:
            with self.usage_file.open("a") as out:
                out.write(json.dumps(entry) + "\n")

    def execution_arn(self, booking_id: str) -> str:
        machine = self.stack.outputs["ProcessBookingArn"]
        return machine.replace(":stateMachine:", ":execution:") + f":{booking_id}"

    def wait_for_executions(self, timeout: float = 300) -> dict[str, str]:
        """Wait until every execution of the run's bookings has ended; their statuses by booking id."""
        sfn = self.aws("stepfunctions")
        deadline = time.monotonic() + timeout
        statuses: dict[str, str] = {}
        for booking_id in self.bookings:
            while True:
                status = str(sfn.describe_execution(executionArn=self.execution_arn(booking_id))["status"])
                if status != "RUNNING" or time.monotonic() > deadline:
                    statuses[booking_id] = status
                    break
                time.sleep(0.2)
        return statuses


def _post(url: str, query: str, variables: dict[str, Any] | None, token: str) -> tuple[int, dict[str, Any]]:
    """A GraphQL POST: to AppSync through the environment's proxy if it names one, to a loopback server
    (make run) directly."""
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": token},
        method="POST",
    )
    loopback = is_loopback(urllib.parse.urlsplit(url).hostname or "")
    opener = _DIRECT if loopback else urllib.request.build_opener()
    try:
        with opener.open(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"{}")


def resolver_invocations(query: str, status: int, body: dict[str, Any]) -> int:
    """The Api function invocations AppSync makes for one request: one per root field of an executed
    document (every root field has a direct Lambda resolver), plus one per 25 `outboundFlight`s resolved
    (the batched resolver). A refused request (4xx, or `data: null`) invokes nothing."""
    if status != 200 or body.get("data") is None:
        return 0
    document = parse(query)
    roots = sum(
        len(definition.selection_set.selections)
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    )
    flights = _count_key(body["data"], "outboundFlight")
    return roots + math.ceil(flights / BATCH_SIZE)


def flights_by_booking(status: int, body: dict[str, Any]) -> dict[str, str]:
    """The flight id of every booking of a `getBookingByStatus` answer, once it is sure AppSync read the
    batched `Booking.outboundFlight` resolver's answer (`{"data": flight}` per booking, decision 0013):
    no error names `outboundFlight`, and no booking of the page lacks its flight or the flight its id."""
    misread = [error for error in body.get("errors") or [] if "outboundFlight" in (error.get("path") or [])]
    assert misread == [], (
        f"AppSync did not resolve outboundFlight from the batch answer (decision 0013): {misread}"
    )
    assert (status, body.get("errors")) == (200, None), body
    items = body["data"]["getBookingByStatus"]["items"]
    without = [item["id"] for item in items if not (item.get("outboundFlight") or {}).get("id")]
    assert without == [], f"bookings whose outboundFlight AppSync left null or without an id: {without}"
    return {str(item["id"]): str(item["outboundFlight"]["id"]) for item in items}


def _count_key(value: Any, key: str) -> int:
    if isinstance(value, dict):
        return (key in value) + sum(_count_key(item, key) for item in value.values())
    if isinstance(value, list):
        return sum(_count_key(item, key) for item in value)
    return 0


def from_environment() -> Target | None:
    """The deployed stack `make smoke` names in `E2E_*` variables; None when they are not set."""
    url = os.environ.get("E2E_GRAPHQL_URL")
    if not url:
        return None
    outputs = json.loads(os.environ["E2E_OUTPUTS"])
    stack = smoke.Stack(
        name=os.environ.get("E2E_STACK", ""),
        region=os.environ["E2E_REGION"],
        endpoint_url=os.environ.get("E2E_AWS_ENDPOINT") or None,
        outputs={**outputs, "GraphQLApiUrl": url},
    )
    users = {
        role: smoke.User(**{**data, "groups": tuple(data["groups"])})
        for role, data in json.loads(Path(os.environ["E2E_USERS"]).read_text()).items()
    }
    usage = os.environ.get("E2E_USAGE")
    return Target(
        stack,
        users,
        os.environ["E2E_FLIGHTS"].split(","),
        online=True,
        usage_file=Path(usage) if usage else None,
    )


def offline(url: str) -> Iterator[Target]:
    """The same users and flights on a running offline server (its endpoint plays AWS), made and
    deleted by the same code as `make smoke`'s."""
    stack = smoke.Stack.describe("booking-offline", smoke.DEFAULT_REGION, url).require_outputs()
    with open(os.devnull, "w") as quiet, smoke.smoke_run(stack, out=quiet) as run:
        yield Target(stack, dict(run.users), list(run.flights), online=False)
