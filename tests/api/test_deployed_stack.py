"""The offline stack as the AWS APIs show it: what `sam deploy` would have created, in samconfig's region.

Expected values come from template.yaml itself (its Globals merged here by hand, its intrinsic
functions resolved with the stack's parameters), not from the deployer's own translation.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from offline import template as cfn
from offline.stack import TEMPLATE, OfflineStack
from tests.conftest import FUNCTIONS

FUNCTION_MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}


def _client(service: str) -> Any:
    return boto3.client(service, region_name=cfn.REGION)


@pytest.fixture
def sam(stack: OfflineStack) -> tuple[dict[str, Any], cfn.Resolver]:
    """template.yaml and a resolver for it that knows the stack's parameters and physical ids."""
    assert stack.deployment is not None
    template = cfn.load(TEMPLATE)
    parameters = {"Stage": stack.stage, "PaymentApiUrl": stack.gateway.url}
    resolver = cfn.Resolver(template, parameters, f"booking-{stack.stage}")
    resolver.refs.update(stack.deployment.physical_ids)
    resolver.attributes.update(stack.deployment.attributes)
    for table in ("FlightTable", "BookingTable", "IdempotencyTable"):
        described = stack.dynamodb.describe_table(TableName=stack.resource(table))["Table"]
        resolver.attributes[table] = {"Arn": described["TableArn"]}
    for saga in ("ProcessBooking", "CancelBookingSaga"):
        machine = stack.sfn.describe_state_machine(stateMachineArn=stack.resource(saga))
        resolver.attributes[saga] = {"Arn": machine["stateMachineArn"], "Name": machine["name"]}
    return template, resolver


def _listed_functions() -> dict[str, dict[str, Any]]:
    functions: dict[str, dict[str, Any]] = {}
    for page in _client("lambda").get_paginator("list_functions").paginate():
        functions.update({function["FunctionName"]: function for function in page["Functions"]})
    return functions


def test_lambda_lists_the_nine_functions_with_their_role_settings_and_environment(
    stack: OfflineStack, sam: tuple[dict[str, Any], cfn.Resolver]
) -> None:
    template, resolver = sam
    shared = template["Globals"]["Function"]
    listed = _listed_functions()
    roles = {role["RoleName"]: role for role in _client("iam").list_roles()["Roles"]}

    assert sorted(listed) == sorted(stack.resource(function) for function in FUNCTIONS)
    for function in FUNCTIONS:
        own = template["Resources"][function]["Properties"]
        variables = resolver.resolve(
            {**shared["Environment"]["Variables"], **own.get("Environment", {}).get("Variables", {})}
        )
        expected = {name: str(value) for name, value in variables.items()}
        deployed = listed[resolver.resolve(own["FunctionName"])]

        assert deployed["Environment"]["Variables"] == expected, function
        assert deployed["Role"] == roles[f"booking-{stack.stage}-{function}Role"]["Arn"], function
        assert (deployed["Handler"], deployed["Runtime"], deployed["Architectures"]) == (
            own["Handler"],
            shared["Runtime"],
            shared["Architectures"],
        )
        assert (deployed["Timeout"], deployed["MemorySize"]) == (
            own.get("Timeout", shared["Timeout"]),
            own.get("MemorySize", shared["MemorySize"]),
        )
        assert deployed["TracingConfig"] == {"Mode": "Active"}
        # What runs offline: the same variables, plus the switch that turns X-Ray off.
        local = stack.lambdas.find(function)
        assert dict(local.environment) == {**expected, "POWERTOOLS_TRACE_DISABLED": "true"}
        assert (local.name, local.arn, local.handler) == (
            deployed["FunctionName"],
            deployed["FunctionArn"],
            deployed["Handler"],
        )


def test_each_function_role_carries_its_template_policy_and_only_logs_and_traces_managed_policies(
    stack: OfflineStack, sam: tuple[dict[str, Any], cfn.Resolver]
) -> None:
    template, resolver = sam
    iam = _client("iam")

    for function in FUNCTIONS:
        role = f"booking-{stack.stage}-{function}Role"
        [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        [expected] = resolver.resolve(template["Resources"][function]["Properties"]["Policies"])

        assert (document if isinstance(document, dict) else json.loads(document)) == expected, function
        assert {policy["PolicyName"] for policy in attached} == FUNCTION_MANAGED_POLICIES, function
        assert json.loads(json.dumps(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]))[
            "Statement"
        ][0]["Principal"] == {"Service": ["lambda.amazonaws.com"]}


def test_cloudwatch_lists_the_alarms_on_the_dlq_the_unreported_bookings_and_the_saga(
    stack: OfflineStack,
) -> None:
    alarms = {alarm["AlarmName"]: alarm for alarm in _client("cloudwatch").describe_alarms()["MetricAlarms"]}
    dlq_name = stack.resource("BookingDLQ").rsplit("/", 1)[1]

    assert sorted(alarms) == [
        f"booking-{stack.stage}-BookingDLQAlarm",
        f"booking-{stack.stage}-BookingNotReportedAlarm",
        f"booking-{stack.stage}-CancelBookingTimeoutAlarm",
        f"booking-{stack.stage}-ProcessBookingTimeoutAlarm",
    ]
    unreported = alarms[f"booking-{stack.stage}-BookingNotReportedAlarm"]
    assert (unreported["Namespace"], unreported["MetricName"], unreported["Dimensions"]) == (
        "ServerlessAirline",
        "BookingNotReported",
        [{"Name": "service", "Value": "booking"}],
    )
    dlq = alarms[f"booking-{stack.stage}-BookingDLQAlarm"]
    assert (dlq["Namespace"], dlq["MetricName"], dlq["Dimensions"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        [{"Name": "QueueName", "Value": dlq_name}],
    )
    assert (dlq["ComparisonOperator"], dlq["Threshold"], dlq["AlarmActions"]) == (
        "GreaterThanThreshold",
        0.0,
        [],
    )
    for saga in ("ProcessBooking", "CancelBooking"):
        timeout = alarms[f"booking-{stack.stage}-{saga}TimeoutAlarm"]
        machine = stack.resource("ProcessBooking" if saga == "ProcessBooking" else "CancelBookingSaga")
        assert timeout["Dimensions"] == [{"Name": "StateMachineArn", "Value": machine}]


def test_logs_lists_every_log_group_of_the_template_with_its_retention(
    sam: tuple[dict[str, Any], cfn.Resolver],
) -> None:
    template, resolver = sam
    expected = {
        resolver.resolve(resource["Properties"]["LogGroupName"]): 30
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Logs::LogGroup"
    }

    groups = _client("logs").describe_log_groups()["logGroups"]

    assert {group["logGroupName"]: group.get("retentionInDays") for group in groups} == expected
    assert len(expected) == len(FUNCTIONS) + 2  # and one per state machine


def test_tables_queue_topic_parameters_secret_and_state_machine_are_listed(stack: OfflineStack) -> None:
    stage = f"booking-{stack.stage}"
    tables = _client("dynamodb").list_tables()["TableNames"]
    queues = _client("sqs").list_queues()["QueueUrls"]
    topics = [topic["TopicArn"] for topic in _client("sns").list_topics()["Topics"]]
    parameters = _client("ssm").get_parameters_by_path(Path=f"/{stack.stage}/service/booking", Recursive=True)
    secrets = [secret["ARN"] for secret in _client("secretsmanager").list_secrets()["SecretList"]]
    machine = _client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.resource("ProcessBooking")
    )
    role = _client("iam").get_role(RoleName=f"{stage}-ProcessBookingRole")["Role"]

    assert {f"{stage}-FlightTable", f"{stage}-BookingTable", f"{stage}-IdempotencyTable"} <= set(tables)
    assert stack.resource("BookingDLQ") in queues
    assert stack.resource("BookingTopic") in topics
    assert {p["Name"]: p["Value"] for p in parameters["Parameters"]} == {
        f"/{stack.stage}/service/booking/statemachine/processBooking": stack.resource("ProcessBooking"),
        f"/{stack.stage}/service/booking/messaging/bookingTopic": stack.resource("BookingTopic"),
    }
    assert stack.resource("PageTokenSecret") in secrets
    assert machine["name"] == f"{stage}-process-booking"
    assert machine["roleArn"] == role["Arn"]
    assert machine["loggingConfiguration"]["includeExecutionData"] is False
    assert machine["tracingConfiguration"] == {"enabled": True}
    assert stack.deployment is not None
    assert json.loads(machine["definition"]) == stack.deployment.state_machine_definitions["ProcessBooking"]


def test_only_appsync_and_resources_whose_condition_is_false_are_skipped(stack: OfflineStack) -> None:
    assert stack.deployment is not None
    skipped = stack.deployment.skipped

    unexplained = {
        logical_id: reason
        for logical_id, reason in skipped.items()
        if not reason.startswith("AWS::AppSync::") and "(condition " not in reason
    }

    assert unexplained == {}
    assert {"ApiLoggingRole", "ApiCache", "BookingApi"} <= set(skipped)
    assert not {"UserPool", "UserPoolAdminGroup", "UserPoolClient"} & set(skipped)
    assert "no data sources or resolvers" in skipped["BookingApi"]


def test_another_region_holds_none_of_it(stack: OfflineStack) -> None:
    elsewhere = "us-east-1" if cfn.REGION != "us-east-1" else "eu-west-1"

    assert boto3.client("lambda", region_name=elsewhere).list_functions()["Functions"] == []
    assert boto3.client("dynamodb", region_name=elsewhere).list_tables()["TableNames"] == []
