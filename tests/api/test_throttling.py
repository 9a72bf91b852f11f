"""A throttled Api function is the field's error, never an answer.

The Api function has reserved concurrency (template parameter `ApiReservedConcurrency`): past it,
Lambda refuses the `Invoke` with HTTP 429 `TooManyRequestsException` and runs nothing. That refusal
has a body (`{"Type", "message", "Reason"}`) but no function error: read as the resolver's answer it
would be served as data. The client must instead see an error on the field, and ask again with the
same idempotency key.
"""

from __future__ import annotations

from offline.appsync import AppSyncApi
from offline.auth import TokenIssuer
from offline.lambdas.models import throttled
from offline.stack import SCHEMA, TEMPLATE
from tests.api.scripted import ScriptedLambdas

TOKENS = TokenIssuer("a-test-key-that-is-long-enough-for-hs256")


def test_a_throttled_invocation_is_a_lambda_throttling_error_on_its_field_and_no_data() -> None:
    lambdas = ScriptedLambdas(lambda event: throttled())
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
