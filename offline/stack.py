"""The offline stack as one object: moto, the Payment API, the functions and the state machine.

    with OfflineStack(fast_retries=True) as stack:
        stack.put_flight("F1", seats=5, price=12000)
        arn = stack.start_booking(booking_id, customer="alice", flight_id="F1", token="tok_visa")
        stack.wait(arn)

The offline server keeps one alive; a test suite keeps one per process and calls `reset()` between
tests (its data, queues, ledger and faults go; the deployment and the warm sandboxes stay), and
deploys another stage beside it when a test needs other template parameters, as two branches' stacks
live in one AWS account. Events on the booking topic are captured by an SQS queue subscribed to it, as
a real subscriber would.
"""

from __future__ import annotations

import json
import os
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from moto import mock_aws

from offline import aws, changes, cognito_srp, cognito_tokens, iam, speedups, stepfunctions
from offline.appsync import AppSyncApi
from offline.auth import IamCaller, TokenIssuer, UserPool
from offline.deployer import Deployment, deploy, undeploy
from offline.lambdas import LambdaRuntime, LocalFunction
from offline.lambdas.runtime import print_log
from offline.lambdas.sandbox import StartMethod
from offline.metrics import EmbeddedMetrics
from offline.payment_gateway import PaymentGateway
from offline.template import ACCOUNT_ID, REGION

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SCHEMA = ROOT / "schema.graphql"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}


def departure_in(days: int, at: str = "08:00") -> str:
    """A departure `days` from today (UTC) at `at`, as the Flight table stores it: tests and seed data
    count dates from now, never name one, so nothing they book has departed by the time they run."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    return f"{day.isoformat()}T{at}:00Z"


class OfflineStack:
    """Everything the booking saga touches, on this machine."""

    def __init__(
        self,
        *,
        stage: str = "offline",
        fast_retries: bool = False,
        template: Path = TEMPLATE,
        parameters: dict[str, str] | None = None,
        sandboxes: StartMethod = "fresh",
        retry_wait_scale: float = 1.0,
    ) -> None:
        """`sandboxes="preloaded"` forks function sandboxes from a process that has already imported
        the shared libraries: cold starts ten times cheaper, for test suites (see offline.lambdas).
        `retry_wait_scale` below 1 shortens the state machines' `Retry` waits by that factor, in this
        whole process (`offline.stepfunctions.scale_retry_waits`): for test suites; attempts unchanged."""
        self.stage = stage
        self.fast_retries = fast_retries
        self.template = template
        self.extra_parameters = parameters or {}
        self.retry_wait_scale = retry_wait_scale
        self.gateway = PaymentGateway()
        self._sessions: dict[str, IamCaller] = {}
        self._credentials_lock = threading.Lock()
        # The functions' EMF log lines reach moto's CloudWatch, as CloudWatch Logs extracts them in AWS.
        self.lambdas = LambdaRuntime(
            start=sandboxes, region=REGION, log=EmbeddedMetrics(print_log, region=REGION)
        )
        self._mock = mock_aws(config=MOTO_CONFIG)
        self.deployment: Deployment | None = None
        self.roles = iam.OfflineIam()
        """The deployment's roles: what the functions' and state machines' calls are checked against."""

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> OfflineStack:
        self.start()
        return self

    def __exit__(self, *_: object | TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        for name, value in {"AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline"}.items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
        payment_url = self.gateway.start()
        aws.install()
        iam.install()
        stepfunctions.cache_definition_parses()
        speedups.install()
        cognito_srp.install()
        cognito_tokens.install()
        stepfunctions.notify_changes()
        stepfunctions.keep_stops()
        stepfunctions.time_tasks_without_queueing()
        if self.retry_wait_scale != 1.0:
            stepfunctions.scale_retry_waits(self.retry_wait_scale)
        self._mock.start()
        aws.attach(self.lambdas)
        # The endpoint the functions' sandboxes reach AWS through, over HTTP, as code in Lambda does.
        self.endpoint_app = aws.AwsEndpoint()
        self.endpoint = aws.EndpointServer(self.endpoint_app)
        self.lambdas.aws_endpoint = self.endpoint.url
        self.lambdas.credentials = self._function_credentials
        self.deployment = deploy(
            self.template,
            self.lambdas,
            stack_name=f"booking-{self.stage}",
            parameters={"Stage": self.stage, "PaymentApiUrl": payment_url, **self.extra_parameters},
            fast_retries=self.fast_retries,
        )
        # Every call a function or a state machine makes from now on is its role's to allow (0012).
        self.roles.load(boto3.client("iam", region_name=REGION))
        iam.attach(self.roles)
        # The GraphQL API (offline.appsync) over the functions just registered. It accepts the ID tokens
        # of the template's user pool (in moto's Cognito, keys from its JWKS URL) and the HS256 tokens
        # signed with this run's key (docs/decisions/0009).
        self.tokens = TokenIssuer(user_pool=self.user_pool())
        self.api = AppSyncApi(
            SCHEMA,
            self.template,
            self.lambdas,
            self.tokens,
            parameters={"Stage": self.stage, **self.extra_parameters},
        )
        self.api.arn = next(
            (found["Arn"] for found in self.deployment.attributes.values() if "GraphQLUrl" in found), None
        )
        self.endpoint_app.graphql = self.api.execute
        self._events_queue = self.sqs.create_queue(QueueName=f"booking-{self.stage}-events-tap")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self._events_queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(
            TopicArn=self.resource("BookingTopic"),
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )

    def _function_credentials(self, function: LocalFunction) -> tuple[str, str, str]:
        """A session of the function's execution role, as Lambda gives each sandbox: the offline
        AppSync knows it, so a function's SigV4 call (the status push) is that role's."""
        with self._credentials_lock:
            caller = self._sessions.get(function.name)
            if caller is None:
                role = function.role or f"arn:aws:iam::{ACCOUNT_ID}:role/{function.name}"
                caller = self._sessions[function.name] = IamCaller.role_session(role, session=function.name)
                self.api.iam.add(caller)
                self.roles.register(caller, role)
        return caller.access_key_id, caller.secret_access_key, "offline"

    def fail_service(
        self, function: str, service: str, code: str, times: int, mentioning: tuple[str, ...] = ()
    ) -> None:
        """The next `times` calls `function` makes to `service` ("dynamodb", "sns") whose request
        mentions each text of `mentioning` (a booking id, say) are answered with the service's error
        `code` (throttling, an internal error: offline.aws.SERVICE_ERRORS), as a throttled store
        answers. A test facility: it never changes what the function itself does. The SDK makes up to
        4 attempts per call (standard retry mode, `max_attempts` counts 3 retries), so 4 failures in
        a row fail one invocation."""
        key, _, _ = self._function_credentials(self.lambdas.find(function))
        self.endpoint_app.fail(key, service, code, times, mentioning)

    def stop(self, drain_seconds: float = 30.0) -> None:
        """Let running executions end first: a saga thread left running would carry on in the next
        stack's moto (same names, fresh state) and write there."""
        if self.deployment is not None:
            self.drain(drain_seconds)
        if hasattr(self, "api"):
            self.api.realtime.close()  # subscribers' sockets, before the functions that push
        self.lambdas.stop()
        self.endpoint.shutdown()
        if self.deployment is not None and aws.others_attached(self.lambdas):
            # moto lives on for the other stacks: take this stage's resources away, as `sam delete` does.
            self.sqs.delete_queue(QueueUrl=self._events_queue)
            undeploy(self.deployment)
        aws.detach(self.lambdas)
        iam.detach(self.roles)
        self._mock.stop()
        self.gateway.stop()

    def grant(self, function: str, action: str, resource: str) -> None:
        """One more permission for a function's role, in IAM and so in the checks: for a test double that
        does what the real handler never needs (a blind read-then-write), as its template would have to."""
        role = self.lambdas.find(function).role
        assert role is not None, f"{function} has no execution role"
        client = boto3.client("iam", region_name=REGION)
        statement = {"Effect": "Allow", "Action": action, "Resource": resource}
        client.put_role_policy(
            RoleName=role.rsplit("/", 1)[-1],
            PolicyName=f"test-double-{action.replace(':', '-')}",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
        self.roles.load(client)

    def iam_denials(self) -> list[iam.Denial]:
        """Every call a function or a state machine made that its role's policies did not allow."""
        return list(self.roles.denials)

    def assert_iam_allowed(self) -> None:
        """Fail, naming each (role, action, resource, failed condition), if any call was denied: in AWS
        it would have failed with AccessDenied whatever moto let through."""
        denials = self.iam_denials()
        assert not denials, "calls the template's IAM policies do not allow:\n" + "\n".join(map(str, denials))

    # ------------------------------------------------------------------ clients and names
    @property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION)

    @property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions", region_name=REGION)

    @property
    def sqs(self) -> Any:
        return boto3.client("sqs", region_name=REGION)

    @property
    def sns(self) -> Any:
        return boto3.client("sns", region_name=REGION)

    def resource(self, logical_id: str) -> str:
        """The physical id (table name, topic ARN, queue URL, state machine ARN…) of a template resource."""
        assert self.deployment is not None, "the stack is not started"
        return self.deployment[logical_id]

    def user_pool(self) -> UserPool | None:
        """The template's user pool as the offline AppSync trusts it; None when the stack uses an
        `ExistingUserPoolId` (no pool is created, offline or in AWS)."""
        assert self.deployment is not None, "the stack is not started"
        pool_id = self.deployment.physical_ids.get("UserPool")
        if pool_id is None:
            return None
        return UserPool(pool_id, f"{self.endpoint.url}/{pool_id}/.well-known/jwks.json", region=REGION)

    def publish_stack(self, graphql_url: str) -> dict[str, str]:
        """Record the deployment in moto's CloudFormation as `booking-<stage>` with the template's
        outputs, so `aws cloudformation describe-stacks` answers for it as for a deployed stack (what
        `make smoke` reads). `graphql_url` is where this process serves the API: AppSync's
        `GraphQLUrl`, which the deployment cannot know. The record holds outputs, not resources."""
        assert self.deployment is not None, "the stack is not started"
        outputs = {**self.deployment.outputs, "GraphQLApiUrl": graphql_url}
        body = {
            "Description": "booking-service offline: the template's outputs (resources created by API)",
            "Parameters": {"Stage": {"Type": "String"}},
            "Resources": {},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=self.deployment.stack_name,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": self.stage}],
            Tags=[{"Key": "stage", "Value": self.stage}],
        )
        return outputs

    # ------------------------------------------------------------------ data
    def put_flight(
        self,
        flight_id: str,
        *,
        seats: int,
        maximum: int | None = None,
        price: int = 10_000,
        currency: str = "EUR",
        departure: str | None = None,
    ) -> None:
        """A flight as the catalog would store it; `price` in minor units (cents). It departs
        `departure` (ISO-8601), by default a month from today, so it stays bookable whenever tests run."""
        departure = departure or departure_in(days=30)
        self.dynamodb.put_item(
            TableName=self.resource("FlightTable"),
            Item={
                "id": {"S": flight_id},
                "seatCapacity": {"N": str(seats)},
                "maximumSeating": {"N": str(maximum if maximum is not None else seats)},
                "ticketPrice": {"N": str(price)},
                "ticketCurrency": {"S": currency},
                "departureDateTime": {"S": departure},
                "departureDate": {"S": departure[:10]},
                "departureAirportCode": {"S": "LGW"},
                "arrivalAirportCode": {"S": "MAD"},
                "flightNumber": {"S": f"SA{zlib.crc32(flight_id.encode()) % 10000:04d}"},
            },
        )

    def seed_flights(self, path: Path = ROOT / "offline" / "flights.json") -> list[str]:
        """Put the flights of a data file, their departures counted from today so they stay bookable."""
        today = datetime.now(UTC).date()
        ids = []
        for spec in json.loads(path.read_text())["flights"]:
            departure = datetime.combine(
                today + timedelta(days=int(spec["departureInDays"])),
                datetime.strptime(spec["departureTime"], "%H:%M").time(),
                tzinfo=UTC,
            )
            arrival = departure + timedelta(minutes=int(spec["durationMinutes"]))
            item = {
                key: value
                for key, value in spec.items()
                if key not in {"departureInDays", "departureTime", "durationMinutes"}
            }
            item.update(
                seatCapacity=spec["maximumSeating"],
                departureDate=departure.date().isoformat(),
                departureDateTime=departure.isoformat().replace("+00:00", "Z"),
                arrivalDate=arrival.date().isoformat(),
                arrivalDateTime=arrival.isoformat().replace("+00:00", "Z"),
            )
            self.dynamodb.put_item(TableName=self.resource("FlightTable"), Item=_item(item))
            ids.append(str(spec["id"]))
        return ids

    def flight(self, flight_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.resource("FlightTable"), Key={"id": {"S": flight_id}}, ConsistentRead=True
        ).get("Item")
        return _plain_item(item) if item else None

    def seats_left(self, flight_id: str) -> int:
        flight = self.flight(flight_id)
        assert flight is not None, f"flight {flight_id} does not exist"
        return int(flight["seatCapacity"])

    def booking(self, booking_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.resource("BookingTable"), Key={"id": {"S": booking_id}}, ConsistentRead=True
        ).get("Item")
        return _plain_item(item) if item else None

    # ------------------------------------------------------------------ the saga
    def saga_input(self, booking_id: str, *, customer: str, flight_id: str, token: str) -> dict[str, Any]:
        """The execution input the processBooking resolver writes (DESIGN §2)."""
        return {
            "bookingId": booking_id,
            "customer": customer,
            "outboundFlightId": flight_id,
            "paymentToken": token,
            "createdAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }

    def start_booking(self, booking_id: str, *, customer: str, flight_id: str, token: str) -> str:
        """Start the saga with the booking id as the execution name, as the API does."""
        return str(
            self.sfn.start_execution(
                stateMachineArn=self.resource("ProcessBooking"),
                name=booking_id,
                input=json.dumps(
                    self.saga_input(booking_id, customer=customer, flight_id=flight_id, token=token)
                ),
            )["executionArn"]
        )

    def execution_arn(self, saga: str, name: str) -> str:
        """The ARN of the execution `name` (a booking id: both sagas name theirs so) of the state
        machine `saga` (its logical id: ProcessBooking, CancelBookingSaga)."""
        return self.resource(saga).replace(":stateMachine:", ":execution:") + f":{name}"

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for the execution's end (told by moto's interpreter as it records it, no polling);
        return `describe_execution`."""
        sfn = self.sfn

        def ended() -> bool:
            return bool(sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING")

        try:
            changes.wait_until(ended, timeout, f"the end of {execution_arn}")
        except TimeoutError as error:
            states = self.states_entered(execution_arn)
            raise TimeoutError(f"{error}; it is in {states[-1] if states else 'no state'!r}") from None
        description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        return description

    def wait_for_state(self, execution_arn: str, state: str, timeout: float = 30.0) -> None:
        """Wait until the execution has entered `state` (a held step, say), told by its history."""
        changes.wait_until(
            lambda: state in self.states_entered(execution_arn), timeout, f"{state!r} in {execution_arn}"
        )

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Wait until `condition()` holds, asked again at each change in the stack (offline.changes)."""
        changes.wait_until(condition, timeout, what)

    def running_executions(self) -> list[str]:
        """The ARNs of every execution of the stack's state machines still running."""
        assert self.deployment is not None
        running: list[str] = []
        for logical_id in self.deployment.state_machine_definitions:
            kwargs: dict[str, Any] = {"stateMachineArn": self.resource(logical_id), "statusFilter": "RUNNING"}
            while True:
                page = self.sfn.list_executions(**kwargs)
                running.extend(execution["executionArn"] for execution in page["executions"])
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        return running

    def drain(self, timeout: float, give_up: threading.Event | None = None) -> list[str]:
        """Wait for every running execution of the stack's state machines to end; stop those still
        running after `timeout` seconds (or once `give_up` is set) and return their ARNs: they end
        without their compensations."""
        deadline = time.monotonic() + timeout
        while True:
            running = self.running_executions()
            if not running:
                return []
            if time.monotonic() >= deadline or (give_up is not None and give_up.is_set()):
                for arn in running:
                    self.sfn.stop_execution(executionArn=arn, error="OfflineStackStopped")
                return running
            time.sleep(0.1)

    def reset(self, drain_seconds: float = 30.0) -> None:
        """Make the stack as a test expects to find it: no booking, flight or idempotency record, empty
        queues, metrics and ledger, no fault, every function running its own handler, the functions'
        GraphQL endpoint answered by the API itself, no record of earlier invocations. The deployment,
        the users' pool and its groups, and warm sandboxes stay: what a fresh stack would cost again
        is what a suite shares. Executions still running are waited for (then stopped), so none
        writes into the next test's data."""
        assert self.deployment is not None, "the stack is not started"
        self.drain(drain_seconds)
        self.lambdas.clear_faults()
        self.endpoint_app.clear_faults()
        self.roles.denials.clear()
        self.lambdas.restore_handlers()
        self.lambdas.invocations.clear()
        self.gateway.reset()
        self.api.realtime.close()
        self.endpoint_app.graphql = self.api.execute
        aws.dynamodb_calls.clear()
        _clear_account_data(self.deployment)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def states_entered(self, execution_arn: str) -> list[str]:
        """The names of the states the execution went through, in order (each is one transition)."""
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(execution_arn)
            if "stateEnteredEventDetails" in event
        ]

    # ------------------------------------------------------------------ the GraphQL API
    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None
    ) -> dict[str, Any]:
        """What a client posting `query` with `Authorization: <token>` reads back: the response body,
        whatever its HTTP status (`self.api.execute` gives both)."""
        _, body = self.api.execute({"query": query, "variables": variables or {}}, authorization=token)
        return body

    # ------------------------------------------------------------------ what subscribers and humans see
    def dlq_messages(self) -> list[dict[str, Any]]:
        """Every message in the Booking DLQ (read and deleted)."""
        return self._drain(self.resource("BookingDLQ"))

    def events(self) -> list[dict[str, Any]]:
        """Every event published on the booking topic since the last call."""
        return self._drain(self._events_queue)

    def _drain(self, queue_url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _clear_account_data(deployment: Deployment) -> None:
    """Empty what the stack's resources hold in moto, in place, keeping the resources themselves:
    table items (under the DynamoDB lock, as a request would be), queue messages, ended executions of
    its state machines, CloudWatch's metric data and its users' pool's users."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.dynamodb.models import dynamodb_backends
    from moto.sqs.models import sqs_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    resources: dict[str, str] = deployment.physical_ids
    tables = dynamodb_backends[ACCOUNT_ID][REGION].tables
    with aws.DYNAMODB_LOCK:
        for table in tables.values():
            if table.name in resources.values():
                table.items.clear()
    queues = sqs_backends[ACCOUNT_ID][REGION].queues
    for queue in queues.values():
        if queue.url in resources.values() or queue.name.startswith(f"{deployment.stack_name}-"):
            with queue._messages_lock:
                queue._messages = []
                queue._pending_messages = set()
    machines = {resources[logical_id] for logical_id in deployment.state_machine_definitions}
    for machine in stepfunctions_parser_backends[ACCOUNT_ID][REGION].state_machines:
        if machine.arn in machines:
            machine.executions = [e for e in machine.executions if e.status == "RUNNING"]
    cloudwatch_backends[ACCOUNT_ID][REGION].metric_data.clear()
    pool = cognitoidp_backends[ACCOUNT_ID][REGION].user_pools.get(resources.get("UserPool", ""))
    if pool is not None:
        pool.users.clear()


def _plain_item(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}


def _item(values: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    return {key: serializer.serialize(value) for key, value in values.items()}
