"""A cancelled TransactWriteItems changes nothing, with offline.speedups' per-item rollback in moto.

Run on the suite's stack (which installs the rollback), in tables of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from offline.stack import OfflineStack


@pytest.fixture
def tables(stack: OfflineStack) -> Iterator[tuple[Any, str, str]]:
    """(client, a table keyed by `id`, a table keyed by `pk` and `sk`), deleted after the test."""
    client = stack.dynamodb
    plain, ranged = f"plain-{uuid.uuid4().hex[:8]}", f"ranged-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=plain,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.create_table(
        TableName=ranged,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield client, plain, ranged
    for table in (plain, ranged):
        client.delete_table(TableName=table)


def _everything(client: Any, *names: str) -> list[list[dict[str, Any]]]:
    return [sorted(client.scan(TableName=table)["Items"], key=repr) for table in names]


def test_a_cancelled_transaction_puts_back_every_item_it_changed_and_removes_every_item_it_made(
    tables: tuple[Any, str, str],
) -> None:
    dynamodb, plain, ranged = tables
    dynamodb.put_item(TableName=plain, Item={"id": {"S": "a"}, "v": {"N": "1"}})
    dynamodb.put_item(TableName=ranged, Item={"pk": {"S": "p"}, "sk": {"S": "1"}, "v": {"N": "1"}})
    dynamodb.put_item(TableName=plain, Item={"id": {"S": "untouched"}, "v": {"N": "7"}})
    before = _everything(dynamodb, plain, ranged)

    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": plain,
                        "Key": {"id": {"S": "a"}},
                        "UpdateExpression": "SET v = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": plain, "Item": {"id": {"S": "new"}}}},
                {"Delete": {"TableName": ranged, "Key": {"pk": {"S": "p"}, "sk": {"S": "1"}}}},
                {"Put": {"TableName": ranged, "Item": {"pk": {"S": "p"}, "sk": {"S": "2"}}}},
                {
                    "ConditionCheck": {
                        "TableName": plain,
                        "Key": {"id": {"S": "missing"}},
                        "ConditionExpression": "attribute_exists(id)",
                    }
                },
            ]
        )

    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _everything(dynamodb, plain, ranged) == before


def test_a_transaction_that_holds_is_applied_whole(tables: tuple[Any, str, str]) -> None:
    dynamodb, plain, ranged = tables
    dynamodb.put_item(TableName=plain, Item={"id": {"S": "a"}, "v": {"N": "1"}})

    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": plain,
                    "Key": {"id": {"S": "a"}},
                    "UpdateExpression": "SET v = :two",
                    "ConditionExpression": "v = :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}},
                }
            },
            {"Put": {"TableName": ranged, "Item": {"pk": {"S": "p"}, "sk": {"S": "2"}}}},
        ]
    )

    assert _everything(dynamodb, plain, ranged) == [
        [{"id": {"S": "a"}, "v": {"N": "2"}}],
        [{"pk": {"S": "p"}, "sk": {"S": "2"}}],
    ]
