"""A throttled Api function is the field's error, never an answer.

The Api function has reserved concurrency (template parameter `ApiReservedConcurrency`): past it,
Lambda refuses the `Invoke` with HTTP 429 `TooManyRequestsException` and runs nothing. That refusal
has a body (`{"Type", "message", "Reason"}`) but no function error: read as the resolver's answer it
would be served as data. The client must instead see an error on the field, and ask again with the
same idempotency key.
"""

from __future__ import annotations

import json
from typing import Any

from offline.appsync import AppSyncApi
from offline.auth import TokenIssuer
from offline.lambdas import InvokeResponse, LocalFunction
from offline.lambdas.models import throttled
from offline.stack import SCHEMA, TEMPLATE

TOKENS = TokenIssuer("a-test-key-that-is-long-enough-for-hs256")


class ThrottledLambdas:
    """Stands in for `LambdaRuntime` with every invocation beyond the function's reserved concurrency."""

    def __init__(self) -> None:
        self.payloads: list[Any] = []

    def find(self, name: str) -> str:
        return name

    def invoke(self, name: str, payload: str) -> InvokeResponse:
        self.payloads.append(json.loads(payload))
        return throttled(LocalFunction(logical_id=name, name=name, arn=name, handler="", environment={}))


def test_a_throttled_invocation_is_a_lambda_throttling_error_on_its_field_and_no_data() -> None:
    lambdas = ThrottledLambdas()
    api = AppSyncApi(SCHEMA, TEMPLATE, lambdas, TOKENS)  # type: ignore[arg-type]

    status, body = api.execute(
        {"query": '{ a: getFlight(id: "F1") { id ticketPrice } }'}, authorization=TOKENS.mint("ann")
    )

    assert status == 200
    assert len(lambdas.payloads) == 1  # it was asked, and refused
    assert body["data"] == {"a": None}
    [error] = body["errors"]
    assert (error["errorType"], error["message"], error["path"]) == (
        "Lambda:TooManyRequestsException",
        "Rate Exceeded.",
        ["a"],
    )
