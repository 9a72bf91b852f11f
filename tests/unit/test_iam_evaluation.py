"""offline.iam decides as IAM's documentation says: each case below is a sentence of it
(reference_policies_evaluation-logic, ..._condition_operators, ..._multi-value-conditions)."""

from __future__ import annotations

from typing import Any

import pytest

from offline.iam import Call, RolePolicy, calls, dynamodb_attributes

ROLE = "arn:aws:iam::123456789012:role/r"
SESSION = "arn:aws:sts::123456789012:assumed-role/r/s"
TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/Bookings"


def _decide(statements: list[dict[str, Any]], call: Call) -> str | None:
    denial = RolePolicy(ROLE, [{"Version": "2012-10-17", "Statement": statements}]).decide(call, SESSION)
    return None if denial is None else denial.message


def _allow(action: Any = "dynamodb:UpdateItem", resource: Any = TABLE, **condition: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _attributes(*names: str) -> dict[str, tuple[str, ...]]:
    return {"dynamodb:attributes": names}


def test_nothing_allows_what_no_statement_names_and_aws_says_so_in_its_words() -> None:
    message = _decide([_allow("dynamodb:GetItem")], Call("dynamodb:PutItem", TABLE))

    assert message == (
        f"User: {SESSION} is not authorized to perform: dynamodb:PutItem on resource: {TABLE} "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )


def test_an_explicit_deny_wins_over_an_allow() -> None:
    deny = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}

    message = _decide([_allow(), deny], Call("dynamodb:UpdateItem", TABLE))

    assert message is not None
    assert message.endswith("with an explicit deny in an identity-based policy")


@pytest.mark.parametrize(
    ("action", "resource", "allowed"),
    [
        ("dynamodb:Get*", TABLE, True),  # action wildcards (policyuniverse's expansion)
        ("DynamoDB:getitem", TABLE, True),  # actions compare without case
        ("dynamodb:GetItem", TABLE + "/index/*", False),  # a table's grant is not its index's, nor back
        ("dynamodb:GetItem", "arn:aws:dynamodb:*:*:table/Booking?", True),  # ? is one character
        ("dynamodb:GetItem", TABLE.lower(), False),  # ARNs compare with case
        ("dynamodb:GetItem", "*", True),
    ],
)
def test_actions_and_resources_match_with_iam_wildcards(action: str, resource: str, allowed: bool) -> None:
    assert (_decide([_allow(action, resource)], Call("dynamodb:GetItem", TABLE)) is None) == allowed


def test_not_action_and_not_resource_allow_everything_else() -> None:
    statement = {"Effect": "Allow", "NotAction": "dynamodb:DeleteItem", "NotResource": TABLE + "/index/*"}

    assert _decide([statement], Call("dynamodb:GetItem", TABLE)) is None
    assert _decide([statement], Call("dynamodb:DeleteItem", TABLE)) is not None
    assert _decide([statement], Call("dynamodb:GetItem", TABLE + "/index/ByCustomer")) is not None


@pytest.mark.parametrize(
    ("qualifier", "requested", "allowed"),
    [
        ("ForAllValues", ("id", "checkedIn"), True),
        ("ForAllValues", ("id", "status"), False),  # every requested value must be listed
        ("ForAllValues", (), True),  # "returns true if there are no keys in the request"
        ("ForAnyValue", ("status", "id"), True),  # one listed value is enough
        ("ForAnyValue", (), False),  # "for no matching key or a null dataset, false"
    ],
)
def test_set_qualifiers_test_every_or_any_requested_value(
    qualifier: str, requested: tuple[str, ...], allowed: bool
) -> None:
    condition = {f"{qualifier}:StringEquals": {"dynamodb:Attributes": ["id", "checkedIn"]}}

    message = _decide([_allow(**condition)], Call("dynamodb:UpdateItem", TABLE, _attributes(*requested)))

    assert (message is None) == allowed


def test_a_missing_key_fails_a_positive_operator_passes_a_negated_one_and_ifexists() -> None:
    namespace = "cloudwatch:namespace"
    absent = Call("cloudwatch:PutMetricData", "*")

    assert _decide([_allow("cloudwatch:*", "*", StringEquals={namespace: "A"})], absent) is not None
    assert _decide([_allow("cloudwatch:*", "*", StringNotEquals={namespace: "A"})], absent) is None
    assert _decide([_allow("cloudwatch:*", "*", StringEqualsIfExists={namespace: "A"})], absent) is None
    assert _decide([_allow("cloudwatch:*", "*", Null={namespace: "true"})], absent) is None


@pytest.mark.parametrize(
    ("operator", "value", "allowed"),
    [
        ("StringEquals", "ServerlessAirline", True),
        ("StringEquals", "serverlessairline", False),  # case-sensitive
        ("StringEqualsIgnoreCase", "serverlessairline", True),
        ("StringLike", "Serverless*", True),
        ("StringNotLike", "Serverless*", False),
    ],
)
def test_string_operators(operator: str, value: str, allowed: bool) -> None:
    call = Call("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": ("ServerlessAirline",)})

    assert (
        _decide(
            [_allow("cloudwatch:PutMetricData", "*", **{operator: {"cloudwatch:namespace": value}})], call
        )
        is None
    ) == allowed


def test_an_operator_the_offline_iam_cannot_evaluate_is_refused_when_the_policy_is_read() -> None:
    with pytest.raises(ValueError, match="DateGreaterThan"):
        RolePolicy(ROLE, [{"Statement": [_allow(DateGreaterThan={"aws:CurrentTime": "2020-01-01"})]}])


def test_a_denial_names_the_failed_condition_and_the_refused_values() -> None:
    policy = RolePolicy(
        ROLE, [{"Statement": [_allow(**{"ForAllValues:StringEquals": {"dynamodb:Attributes": ["id"]}})]}]
    )

    denial = policy.decide(Call("dynamodb:UpdateItem", TABLE, _attributes("id", "status")), SESSION)

    assert denial is not None
    assert denial.condition is not None
    assert "dynamodb:Attributes ['id']" in denial.condition
    assert denial.condition.endswith("the request has ['status']")


def test_dynamodb_attributes_are_the_top_level_names_a_request_writes_reads_or_evaluates() -> None:
    request = {
        "Key": {"id": {"S": "b"}},
        "UpdateExpression": "SET #s = :s, refund.amount = :a, updatedAt = if_not_exists(createdAt, :now)",
        "ConditionExpression": "attribute_exists(id) AND size(notes) < :n AND #s IN (:a, :b) "
        "AND begins_with(ref, :p)",
        "ExpressionAttributeNames": {"#s": "status"},
    }

    assert dynamodb_attributes(request) == {
        "id",
        "status",
        "refund",
        "updatedAt",
        "createdAt",
        "notes",
        "ref",
    }


def test_a_transaction_asks_for_each_items_own_action_on_its_table() -> None:
    params = {
        "TransactItems": [
            {"Put": {"TableName": "Bookings", "Item": {"id": {"S": "b"}}}},
            {
                "ConditionCheck": {
                    "TableName": "Flights",
                    "Key": {"id": {"S": "f"}},
                    "ConditionExpression": "seats > :z",
                }
            },
        ]
    }

    put, check = calls("dynamodb", "TransactWriteItems", params, "eu-west-1", "123456789012")

    assert (put.action, put.resource) == ("dynamodb:PutItem", TABLE)
    assert put.context["dynamodb:enclosingoperation"] == ("TransactWriteItems",)
    assert put.context["dynamodb:returnvalues"] == ("NONE",)
    assert (check.action, check.resource) == (
        "dynamodb:ConditionCheckItem",
        TABLE.replace("Bookings", "Flights"),
    )
    assert check.context["dynamodb:attributes"] == ("id", "seats")


def test_a_query_on_an_index_asks_for_the_index() -> None:
    params = {"TableName": "Bookings", "IndexName": "ByCustomer", "KeyConditionExpression": "customer = :c"}

    [query] = calls("dynamodb", "Query", params, "eu-west-1", "123456789012")

    assert query.resource == TABLE + "/index/ByCustomer"
    assert query.context["dynamodb:select"] == ("ALL_PROJECTED_ATTRIBUTES",)
