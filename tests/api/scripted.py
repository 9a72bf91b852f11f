"""A stand-in for `LambdaRuntime` whose function is a Python callable, for tests of the offline AppSync's
own mechanics (events it builds, answers it reads) without sandboxes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from offline.lambdas import InvokeResponse


class ScriptedLambdas:
    """`answer` is the function: its result is the invocation's answer (an `InvokeResponse` passes as
    it is, for service errors such as throttling); every payload it gets is kept."""

    def __init__(self, answer: Callable[[Any], Any]) -> None:
        self.answer = answer
        self.payloads: list[Any] = []

    def find(self, name: str) -> str:
        return name

    def invoke(self, name: str, payload: str) -> InvokeResponse:
        event = json.loads(payload)
        self.payloads.append(event)
        try:
            result = self.answer(event)
        except Exception as error:  # the Lambda runtime's report of an unhandled exception
            body = {"errorType": type(error).__name__, "errorMessage": str(error)}
            return InvokeResponse(200, json.dumps(body).encode(), function_error="Unhandled")
        if isinstance(result, InvokeResponse):
            return result
        return InvokeResponse(200, json.dumps(result).encode())
