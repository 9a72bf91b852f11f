"""The README's AWS CLI lines against `make run`'s server: each line's operation, as written, with boto3.

The lines are read from the README block marked `<!-- aws-cli: tested -->`; every `aws` line is
turned into the boto3 call the AWS CLI makes (service, operation, parameters, region and the
exported credentials), sent to the running server instead of the README's 127.0.0.1:4000.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore import xform_name
from botocore.session import Session

from offline.template import REGION
from tests.e2e.conftest import ROOT, Server

README_ENDPOINT = "http://127.0.0.1:4000"
FUNCTIONS = 9
STAGE = "offline"


@dataclass
class CliLine:
    """One `aws` command of the README, as the AWS CLI would call the API."""

    text: str
    endpoint: str
    region: str
    service: str
    operation: str
    parameters: dict[str, Any] = field(default_factory=dict)


def readme_lines() -> tuple[dict[str, str], list[CliLine]]:
    """(exported variables, aws commands) of the README's tested AWS CLI block."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"<!-- aws-cli: tested -->\s*```bash\n(.*?)```", readme, re.S)
    exported: dict[str, str] = {}
    lines = []
    for text in block.splitlines():
        words = shlex.split(text, comments=True)
        if not words:
            continue
        if words[0] == "export":
            exported.update(word.split("=", 1) for word in words[1:])
            continue
        assert words[0] == "aws", f"only `export` and `aws` lines belong in the block: {text}"
        lines.append(_parse(text, words[1:]))
    return exported, lines


def _parse(text: str, words: list[str]) -> CliLine:
    options: dict[str, str] = {}
    while words[0].startswith("--"):
        options[words[0]] = words[1]
        words = words[2:]
    service, command, *arguments = words
    model = Session().get_service_model(service)
    [operation] = [name for name in model.operation_names if xform_name(name, "-") == command]
    members = model.operation_model(operation).input_shape.members
    by_flag = {f"--{xform_name(name, '-')}": name for name in members}
    parameters: dict[str, Any] = {}
    while arguments:
        flag = arguments.pop(0)
        if flag.startswith("--no-") and by_flag.get(f"--{flag[5:]}"):
            parameters[by_flag[f"--{flag[5:]}"]] = False
            continue
        name = by_flag[flag]
        if members[name].type_name == "boolean":
            parameters[name] = True
        else:
            value = arguments.pop(0)
            parameters[name] = int(value) if members[name].type_name == "integer" else value
    return CliLine(text, options["--endpoint-url"], options["--region"], service, operation, parameters)


def test_every_readme_aws_line_names_the_samconfig_region_the_make_run_endpoint_and_credentials() -> None:
    exported, lines = readme_lines()

    assert lines
    assert [line.text for line in lines if line.region != REGION] == []
    assert [line.text for line in lines if line.endpoint != README_ENDPOINT] == []
    assert set(exported) >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


@pytest.fixture(scope="module")
def answers(server: Server) -> dict[str, dict[str, Any]]:
    """Every README line's answer from the running server, by `service operation`."""
    exported, lines = readme_lines()
    results = {}
    for line in lines:
        client = boto3.client(
            line.service,
            endpoint_url=server.url,
            region_name=line.region,
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
        )
        results[f"{line.service} {line.operation}"] = getattr(client, xform_name(line.operation))(
            **line.parameters
        )
    return results


def test_lambda_lists_the_functions_each_with_its_role_and_environment(
    answers: dict[str, dict[str, Any]],
) -> None:
    functions = answers["lambda ListFunctions"]["Functions"]
    roles = {role["Arn"] for role in answers["iam ListRoles"]["Roles"]}

    assert len(functions) == FUNCTIONS
    assert all(function["FunctionName"].startswith(f"booking-{STAGE}-") for function in functions)
    assert {function["Role"] for function in functions} <= roles
    assert len({function["Role"] for function in functions}) == FUNCTIONS, "a role per function"
    for function in functions:
        variables = function["Environment"]["Variables"]
        assert (variables["STAGE"], variables["POWERTOOLS_SERVICE_NAME"]) == (STAGE, "booking")
        assert function["FunctionArn"].startswith(f"arn:aws:lambda:{REGION}:")


def test_cloudwatch_logs_and_step_functions_list_the_alarms_log_groups_and_saga(
    answers: dict[str, dict[str, Any]],
) -> None:
    alarms = [alarm["AlarmName"] for alarm in answers["cloudwatch DescribeAlarms"]["MetricAlarms"]]
    groups = [group["logGroupName"] for group in answers["logs DescribeLogGroups"]["logGroups"]]
    machines = answers["stepfunctions ListStateMachines"]["stateMachines"]

    assert sorted(alarms) == [
        f"booking-{STAGE}-BookingDLQAlarm",
        f"booking-{STAGE}-BookingNotReportedAlarm",
        f"booking-{STAGE}-CancelBookingTimeoutAlarm",
        f"booking-{STAGE}-ProcessBookingTimeoutAlarm",
    ]
    assert len([group for group in groups if group.startswith(f"/aws/lambda/booking-{STAGE}-")]) == FUNCTIONS
    assert f"/aws/vendedlogs/states/booking-{STAGE}-process-booking" in groups
    assert sorted(machine["name"] for machine in machines) == [
        f"booking-{STAGE}-cancel-booking",
        f"booking-{STAGE}-process-booking",
    ]
    assert machines[0]["stateMachineArn"].startswith(f"arn:aws:states:{REGION}:")


def test_the_table_queue_topic_and_parameters_are_there(answers: dict[str, dict[str, Any]]) -> None:
    flights = answers["dynamodb Scan"]["Items"]
    queues = answers["sqs ListQueues"]["QueueUrls"]
    topics = [topic["TopicArn"] for topic in answers["sns ListTopics"]["Topics"]]
    parameters = {p["Name"] for p in answers["ssm GetParametersByPath"]["Parameters"]}

    assert {item["id"]["S"] for item in flights} >= {"SA1001-LGW-MAD"}, "the seeded flights"
    assert any(url.endswith(f"/booking-{STAGE}-BookingDLQ") for url in queues)
    assert f"arn:aws:sns:{REGION}:123456789012:booking-{STAGE}-BookingTopic" in topics
    assert parameters == {
        f"/{STAGE}/service/booking/statemachine/processBooking",
        f"/{STAGE}/service/booking/messaging/bookingTopic",
    }
