"""`make smoke`: the end-to-end tests (tests/e2e) against this branch's deployed stack, or against `make run`.

    make smoke                                 # booking-<branch> in AWS, with the credentials you deploy with
    make smoke URL=http://127.0.0.1:4000       # `make run`'s offline stack plays the deployed one
    python -m tests.e2e.smoke --stack booking-my-branch [--endpoint-url URL] [-- PYTEST_ARGS…]

In order, and nothing is created before step 3:
1. refuses a stage named like production (`prod`, `production`, `prod-…`, `…-prod`; `main` unless
   SMOKE_ALLOW_MAIN=1), first by the stack's name, then by the Stage parameter it was deployed with;
2. reads the stack's outputs (`describe-stacks`): the GraphQL URL, user pool, web client, tables, DLQ;
3. prints what it will create, then creates it: three users in the user pool (two customers and an
   Admin; `AdminCreateUser` without an invitation, a random password) and two flights in the Flight table;
4. signs each user in (`ADMIN_USER_PASSWORD_AUTH`) for a real Cognito ID token;
5. runs pytest on tests/e2e with `E2E_*` variables naming all of that (tests/e2e/target.py reads them):
   the tests that need the offline stack are skipped, and counted;
6. deletes the users, the flights and every booking the run's customers made (rows, reference and charge
   claims), whatever happened in 5 — a failed test, an error, Ctrl-C;
7. prints what the run used (AppSync requests, state transitions, Lambda invocations) and its cost.

Exit status: pytest's, or 2 when it refused to start, 3 when something could not be deleted, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from offline.template import REGION

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REGION = REGION
"""samconfig.toml's region, where `make deploy` puts every stack (whatever AWS_REGION says)."""
OFFLINE_CREDENTIALS = {"aws_access_key_id": "offline", "aws_secret_access_key": "offline"}
ROLES = {"customer": (), "other": (), "admin": ("Admin",)}
"""The run's users: a customer who books, another customer who must not read those bookings, an Admin."""
PRODUCTION = re.compile(r"(^|-)prod(uction)?($|-)")
NEEDED_OUTPUTS = ("GraphQLApiUrl", "UserPoolId", "UserPoolClientId", "FlightTableName", "BookingTableName")


class Refused(Exception):
    """The run must not start; the message says why and what to do."""


def refusal(stage: str, environ: Mapping[str, str]) -> str | None:
    """Why a run against `stage` is refused, or None: a production-like stage never, `main` only with
    SMOKE_ALLOW_MAIN=1 (it is the shared stage, and its users see the test bookings' events)."""
    if PRODUCTION.search(stage):
        return f"stage {stage!r} is named like production: make smoke never runs against it"
    if stage == "main" and environ.get("SMOKE_ALLOW_MAIN") != "1":
        return "stage 'main' is shared: run with SMOKE_ALLOW_MAIN=1 if you mean it"
    return None


# ------------------------------------------------------------------------------ the stack
@dataclass
class Stack:
    """A deployed booking stack as its outputs describe it, and clients for it."""

    name: str
    region: str
    endpoint_url: str | None
    outputs: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:
            kwargs.update(endpoint_url=self.endpoint_url, **OFFLINE_CREDENTIALS)
        return boto3.client(service, **kwargs)

    @classmethod
    def describe(cls, name: str, region: str, endpoint_url: str | None) -> Stack:
        stack = cls(name, region, endpoint_url, {})
        try:
            [described] = stack.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        except botocore.exceptions.ClientError as error:
            raise Refused(
                f"stack {name} not found in {region} ({error}): deploy it with make deploy"
            ) from None
        if not str(described["StackStatus"]).endswith("_COMPLETE") or "ROLLBACK" in described["StackStatus"]:
            raise Refused(f"stack {name} is {described['StackStatus']}: wait for its deployment to finish")
        stack.outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        stack.parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
        return stack

    def require_outputs(self) -> Stack:
        missing = [key for key in NEEDED_OUTPUTS if not self.outputs.get(key)]
        if missing:
            raise Refused(
                f"stack {self.name} has no output {', '.join(missing)}: make smoke needs the user pool the "
                "template creates (a stack deployed with ExistingUserPoolId has no UserPoolClientId)"
            )
        return self


# ------------------------------------------------------------------------------ what a run creates
@dataclass(frozen=True)
class User:
    role: str
    email: str
    sub: str
    token: str
    groups: tuple[str, ...]


@dataclass
class Run:
    """One smoke run's users and flights in a stack, and what its tests did. `create()` makes them,
    `delete()` removes them with the bookings the run's customers made."""

    stack: Stack
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    users: dict[str, User] = field(default_factory=dict)
    flights: list[str] = field(default_factory=list)

    @property
    def emails(self) -> dict[str, str]:
        return {role: f"smoke-{self.run_id}-{role}@example.com" for role in ROLES}

    @property
    def flight_ids(self) -> list[str]:
        return [f"SMOKE-{self.run_id}-{n}" for n in (1, 2)]

    def plan(self) -> str:
        pool, flights = self.stack.outputs["UserPoolId"], self.stack.outputs["FlightTableName"]
        lines = [
            f"make smoke will create in {self.stack.name} ({self.stack.region}), and delete when it ends:"
        ]
        for role, email in self.emails.items():
            groups = f" (group {', '.join(ROLES[role])})" if ROLES[role] else ""
            lines.append(f"  user   {email}{groups} in user pool {pool}, no invitation sent")
        for flight in self.flight_ids:
            lines.append(f"  flight {flight} (LGW→MAD, 20 seats, 1.00 EUR) in {flights}")
        lines.append(f"  the bookings its customers make, in {self.stack.outputs['BookingTableName']}")
        lines.append(
            "It cannot delete: the executions' histories (Step Functions keeps them 90 days), the functions'"
            " logs, metrics and traces, and the events published on the booking topic."
        )
        return "\n".join(lines)

    def create(self) -> None:
        """Users and flights; each is recorded as soon as it exists, so `delete` finds a half-made run."""
        cognito = self.stack.client("cognito-idp")
        pool, client = self.stack.outputs["UserPoolId"], self.stack.outputs["UserPoolClientId"]
        for flight in self.flight_ids:
            self.flights.append(flight)
            self.stack.client("dynamodb").put_item(
                TableName=self.stack.outputs["FlightTableName"], Item=flight_item(flight)
            )
        for role, email in self.emails.items():
            password = _password()
            user = cognito.admin_create_user(
                UserPoolId=pool,
                Username=email,
                MessageAction="SUPPRESS",
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "email_verified", "Value": "true"},
                ],
            )["User"]
            sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
            self.users[role] = User(role, email, sub, "", ROLES[role])
            cognito.admin_set_user_password(
                UserPoolId=pool, Username=email, Password=password, Permanent=True
            )
            for group in ROLES[role]:
                cognito.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)
            token = sign_in(cognito, pool, client, email, password)
            self.users[role] = User(role, email, sub, token, ROLES[role])

    def delete(self) -> list[str]:
        """Remove the run's bookings, flights and users; what could not be removed, by name. The run's
        sagas still running are waited for first: one that writes after its booking was deleted would
        leave the row behind."""
        left: list[str] = []
        try:
            left.extend(
                f"saga still running after {SAGA_WAIT_SECONDS:.0f} s: {arn}" for arn in self._await_sagas()
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            left.append(f"the run's sagas: {error}")
        for user in self.users.values():
            try:
                self._delete_bookings(user.sub)
            except botocore.exceptions.BotoCoreError as error:
                left.append(f"bookings of {user.email}: {error}")
            except botocore.exceptions.ClientError as error:
                left.append(f"bookings of {user.email}: {error}")
        dynamodb = self.stack.client("dynamodb")
        for flight in self.flights:
            try:
                dynamodb.delete_item(
                    TableName=self.stack.outputs["FlightTableName"], Key={"id": {"S": flight}}
                )
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
                left.append(f"flight {flight}: {error}")
        cognito = self.stack.client("cognito-idp")
        for user in self.users.values():
            try:
                cognito.admin_delete_user(UserPoolId=self.stack.outputs["UserPoolId"], Username=user.email)
            except cognito.exceptions.UserNotFoundException:
                pass
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
                left.append(f"user {user.email}: {error}")
        return left

    def _await_sagas(self) -> list[str]:
        """Wait for the run's running executions of both sagas (a booking saga whose input names one of
        the run's customers, a cancellation named after one of their bookings); the ARNs of those
        still running after SAGA_WAIT_SECONDS."""
        sfn = self.stack.client("stepfunctions")
        customers = {user.sub for user in self.users.values()}
        ours: list[str] = []
        bookings: set[str] = set()
        for arn in _running(sfn, self.stack.outputs.get("ProcessBookingArn")):
            described = sfn.describe_execution(executionArn=arn)
            if json.loads(described.get("input") or "{}").get("customer") in customers:
                ours.append(arn)
                bookings.add(described["name"])
        bookings.update(self._booking_ids(customers))
        ours.extend(
            arn
            for arn in _running(sfn, self.stack.outputs.get("CancelBookingArn"))
            if arn.rsplit(":", 1)[-1] in bookings
        )
        deadline = time.monotonic() + SAGA_WAIT_SECONDS
        while ours and time.monotonic() < deadline:
            ours = [arn for arn in ours if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"]
            if ours:
                time.sleep(0.5)
        return ours

    def _booking_ids(self, customers: set[str]) -> set[str]:
        dynamodb, table = self.stack.client("dynamodb"), self.stack.outputs["BookingTableName"]
        ids: set[str] = set()
        for customer in customers:
            pages = dynamodb.get_paginator("query").paginate(
                TableName=table,
                IndexName="ByCustomerStatus",
                KeyConditionExpression="customer = :c",
                ExpressionAttributeValues={":c": {"S": customer}},
                ProjectionExpression="id",
            )
            ids.update(item["id"]["S"] for page in pages for item in page["Items"])
        return ids

    def _delete_bookings(self, customer: str) -> None:
        """Every booking of `customer` (the ByCustomerStatus index), with its reference and charge claims."""
        dynamodb, table = self.stack.client("dynamodb"), self.stack.outputs["BookingTableName"]
        pages = dynamodb.get_paginator("query").paginate(
            TableName=table,
            IndexName="ByCustomerStatus",
            KeyConditionExpression="customer = :c",
            ExpressionAttributeValues={":c": {"S": customer}},
        )
        for page in pages:
            for item in page["Items"]:
                keys = [item["id"]["S"]]
                if "bookingReference" in item:
                    keys.append("reference#" + item["bookingReference"]["S"])
                if "paymentToken" in item:
                    keys.append("charge#" + hashlib.sha256(item["paymentToken"]["S"].encode()).hexdigest())
                for key in keys:
                    dynamodb.delete_item(TableName=table, Key={"id": {"S": key}})

    def environment(self, usage_file: Path, users_file: Path) -> dict[str, str]:
        """What tests/e2e/target.py reads: the stack's endpoints and the run's users (by file, 0600)."""
        users_file.write_text(json.dumps({role: user.__dict__ for role, user in self.users.items()}))
        users_file.chmod(0o600)
        return {
            "E2E_STACK": self.stack.name,
            "E2E_GRAPHQL_URL": self.stack.outputs["GraphQLApiUrl"],
            "E2E_AWS_ENDPOINT": self.stack.endpoint_url or "",
            "E2E_REGION": self.stack.region,
            "E2E_OUTPUTS": json.dumps(self.stack.outputs),
            "E2E_USERS": str(users_file),
            "E2E_FLIGHTS": ",".join(self.flights),
            "E2E_RUN": self.run_id,
            "E2E_USAGE": str(usage_file),
        }


def flight_item(flight_id: str, *, seats: int = 20, price: int = 100) -> dict[str, Any]:
    """A bookable flight a month from now, as the Flight table stores the catalog's flights."""
    departure = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=30)
    arrival = departure + timedelta(minutes=150)
    values = {
        "id": flight_id,
        "flightNumber": f"SM{int(hashlib.sha256(flight_id.encode()).hexdigest(), 16) % 10000:04d}",
        "seatCapacity": seats,
        "maximumSeating": seats,
        "ticketPrice": price,
        "ticketCurrency": "EUR",
        "departureDate": departure.date().isoformat(),
        "departureDateTime": departure.isoformat().replace("+00:00", "Z"),
        "departureAirportCode": "LGW",
        "departureAirportName": "London Gatwick",
        "departureCity": "London",
        "departureLocale": "Europe/London",
        "arrivalDate": arrival.date().isoformat(),
        "arrivalDateTime": arrival.isoformat().replace("+00:00", "Z"),
        "arrivalAirportCode": "MAD",
        "arrivalAirportName": "Adolfo Suarez Madrid-Barajas",
        "arrivalCity": "Madrid",
        "arrivalLocale": "Europe/Madrid",
    }
    return {
        key: {"N": str(value)} if isinstance(value, int) else {"S": value} for key, value in values.items()
    }


def sign_in(cognito: Any, pool: str, client: str, email: str, password: str) -> str:
    """A real ID token: `ADMIN_USER_PASSWORD_AUTH` on the web client (the flow the template allows on
    stages other than production; see the README's deploy section)."""
    try:
        result = cognito.admin_initiate_auth(
            UserPoolId=pool,
            ClientId=client,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
    except cognito.exceptions.InvalidParameterException as error:
        raise Refused(
            f"the web client does not allow ADMIN_USER_PASSWORD_AUTH ({error}): deploy the template whose "
            "UserPoolClient allows it on non-production stages"
        ) from None
    if "AuthenticationResult" not in result:
        raise Refused(f"signing {email} in asked for {result.get('ChallengeName')}, not a token")
    return str(result["AuthenticationResult"]["IdToken"])


SAGA_WAIT_SECONDS = 120.0
"""How long the clean-up waits for the run's sagas to end: above a booking saga's retries (fast
retries offline; a deployed stack's Payment API retries take about a minute at worst)."""


def _running(sfn: Any, machine: str | None) -> list[str]:
    """The ARNs of a state machine's running executions (none when the stack has no such output)."""
    if not machine:
        return []
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING")
    return [execution["executionArn"] for page in pages for execution in page["executions"]]


def _password() -> str:
    """Random, and within the pool's policy (12+ characters, upper and lower case, a digit)."""
    return "Sm0ke-" + secrets.token_urlsafe(24) + "aZ9"


@contextmanager
def smoke_run(stack: Stack, out: Any = sys.stdout) -> Iterator[Run]:
    """Create the run's users and flights, and delete them (with its bookings) when the block ends,
    however it ends; what could not be deleted is printed and raises `Leftovers`."""
    run = Run(stack)
    print(run.plan(), file=out, flush=True)
    try:
        run.create()
        yield run
    finally:
        left = run.delete()
        if left:
            print("make smoke could not delete:\n  " + "\n  ".join(left), file=out, flush=True)
        else:
            deleted = f"{len(run.users)} users, {len(run.flights)} flights and their bookings"
            print(f"make smoke deleted its {deleted}.", file=out, flush=True)
    if left:
        raise Leftovers(left)


class Leftovers(Exception):
    """Something the run created is still there."""


# ------------------------------------------------------------------------------ what a run used
PRICES = {
    # eu-west-1, on-demand, as the README's deploy section cites them.
    "state transitions": 0.025 / 1000,  # Step Functions Standard, per transition
    "Lambda invocations": 0.20 / 1_000_000,  # per request (duration: see the README)
    "AppSync requests": 4.00 / 1_000_000,  # per query or mutation
}


def usage(stack: Stack, usage_file: Path) -> dict[str, int]:
    """What the tests recorded (AppSync requests, Api function invocations, bookings), and from each
    booking's execution history: its state transitions (states entered, retries included) and its
    task functions' invocations."""
    recorded = [json.loads(line) for line in usage_file.read_text().splitlines() if line.strip()]
    requests = sum(1 for r in recorded if r["kind"] == "graphql")
    api = sum(int(r.get("resolvers", 0)) for r in recorded if r["kind"] == "graphql")
    api += sum(1 for r in recorded if r["kind"] == "subscription")  # its resolver, when it starts
    bookings = sorted({r["id"] for r in recorded if r["kind"] == "booking"})
    sfn = stack.client("stepfunctions")
    machine = stack.outputs.get("ProcessBookingArn", "")
    entered = task_states = tasks = pushes = 0
    for booking_id in bookings:
        arn = machine.replace(":stateMachine:", ":execution:") + f":{booking_id}"
        for event in _history(sfn, arn):
            if event["type"].endswith("StateEntered"):
                entered += 1
                task_states += event["type"] == "TaskStateEntered"
                # Each Notify Booking step pushes the status change: one AppSync request (IAM), one
                # Api function invocation (decision 0011).
                pushes += event["stateEnteredEventDetails"]["name"].startswith("Notify Booking")
            elif event["type"] in {"TaskScheduled", "LambdaFunctionScheduled"}:
                tasks += 1
    return {
        "AppSync requests": requests + pushes,
        "bookings": len(bookings),
        # Step Functions bills each retry of a task as one more transition.
        "state transitions": entered + max(0, tasks - task_states),
        "Lambda invocations": api + tasks + pushes,
    }


def _history(sfn: Any, arn: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        try:
            page = sfn.get_execution_history(**kwargs)
        except sfn.exceptions.ExecutionDoesNotExist:
            return
        yield from page["events"]
        if not page.get("nextToken"):
            return
        kwargs["nextToken"] = page["nextToken"]


def cost_line(used: Mapping[str, int]) -> str:
    dollars = sum(used[name] * price for name, price in PRICES.items())
    parts = ", ".join(
        f"{used[name]} {name}" for name in ("AppSync requests", "state transitions", "Lambda invocations")
    )
    return f"make smoke used {parts} for {used['bookings']} bookings: about ${dollars:.4f} (README: prices)"


# ------------------------------------------------------------------------------ the command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the stack to test, booking-<stage>")
    parser.add_argument(
        "--region", default=DEFAULT_REGION, help=f"default: samconfig.toml's, {DEFAULT_REGION}"
    )
    parser.add_argument("--endpoint-url", help="an AWS endpoint instead of AWS's (make run's, for CI)")
    parser.add_argument("pytest_args", nargs="*", help="after --: what pytest runs (default: tests/e2e)")
    args = parser.parse_args(argv)
    try:
        return _smoke(args.stack, args.region, args.endpoint_url, args.pytest_args or ["tests/e2e"])
    except Refused as error:
        print(f"make smoke: {error}", file=sys.stderr)
        return 2
    except Leftovers:
        return 3
    except KeyboardInterrupt:
        print("make smoke: interrupted", file=sys.stderr)
        return 130


def _smoke(stack_name: str, region: str, endpoint_url: str | None, pytest_args: list[str]) -> int:
    stage = stack_name.removeprefix("booking-")
    reason = refusal(stage, os.environ)
    if reason:
        raise Refused(reason)
    stack = Stack.describe(stack_name, region, endpoint_url)
    deployed_stage = stack.parameters.get("Stage", stage)
    reason = refusal(deployed_stage, os.environ)
    if reason:
        raise Refused(f"{stack_name} was deployed with Stage={deployed_stage}: {reason}")
    stack.require_outputs()
    where = endpoint_url or f"AWS ({region})"
    print(f"make smoke: {stack_name} at {stack.outputs['GraphQLApiUrl']}, AWS APIs at {where}", flush=True)
    with tempfile.TemporaryDirectory(prefix="smoke-") as scratch:
        usage_file, users_file = Path(scratch) / "usage.jsonl", Path(scratch) / "users.json"
        usage_file.touch()
        with smoke_run(stack) as run:
            environment = {**os.environ, **run.environment(usage_file, users_file)}
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]
            print("$ " + " ".join(command[2:]), flush=True)
            code = subprocess.call(command, cwd=ROOT, env=environment)  # noqa: S603 - pytest, our suite
        print(cost_line(usage(stack, usage_file)), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
