"""What the offline Lambda service knows of a function, of one invocation, and of Lambda's answers.

The wire shapes here are Lambda's own (Invoke API reference, "Response Syntax" and "Errors"):
a function error is HTTP 200 with `X-Amz-Function-Error: Unhandled` and the body the runtime
posted (`errorMessage`, `errorType`, `requestId`, `stackTrace`); a service error is an HTTP error
status with `x-amzn-ErrorType` naming it (`ResourceNotFoundException`, `TooManyRequestsException`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LocalFunction:
    """One function of the template, as the offline Lambda service runs it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    environment: Mapping[str, str]
    """The function's own variables from the template; Lambda's reserved ones are added per sandbox."""
    timeout_seconds: float = 3.0
    memory_mb: int = 128
    code_path: str | None = None
    """The function's CodeUri: the sandbox's working directory and first `sys.path` entry (/var/task)."""
    reserved_concurrency: int | None = None
    """`ReservedConcurrentExecutions` from the template: more concurrent invocations are throttled."""
    role: str | None = None
    """The execution role's ARN: the sandbox's credentials are a session of it."""

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Invocation:
    """What tests read back: which function ran, with what, and how it ended."""

    function: str
    payload: Any
    error_type: str | None
    request_id: str = ""
    duration_ms: float = 0.0
    init_duration_ms: float | None = None
    """Set on a cold start: the time the new sandbox took to be ready (Lambda's `Init Duration`)."""
    max_memory_mb: int = 0
    sandbox: int | None = None
    """The sandbox process's id: two invocations with the same id ran in the same sandbox."""
    logs: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class InvokeResponse:
    """Lambda's answer to `Invoke`, as the HTTP layer (or botocore, in-process) returns it."""

    status: int
    body: bytes
    function_error: str | None = None
    service_error: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.service_error:
            # Lambda names every request; moto's ASL interpreter reads the id of a service error's.
            headers["x-amzn-ErrorType"] = self.service_error
            headers["x-amzn-RequestId"] = str(uuid.uuid4())
            return headers
        headers["X-Amz-Executed-Version"] = "$LATEST"
        if self.function_error:
            headers["X-Amz-Function-Error"] = self.function_error
        return headers

    @property
    def error_type(self) -> str | None:
        """The error name Step Functions would match: the function's `errorType`, else the service's."""
        if self.service_error:
            return f"Lambda.{self.service_error}"
        if not self.function_error:
            return None
        try:
            answer = json.loads(self.body)
        except ValueError:
            return f"Lambda.{self.function_error}"
        return str(answer.get("errorType") or "") or f"Lambda.{self.function_error}"


class UnknownFunction(LookupError):
    """Lambda's ResourceNotFoundException: no function of that name in this stack."""


def function_error(
    error_type: str, message: str, request_id: str = "", stack_trace: list[str] | None = None
) -> InvokeResponse:
    """An error of the function (or of its sandbox), in the runtime's own shape."""
    body = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack_trace or [],
    }
    return InvokeResponse(200, json.dumps(body).encode(), function_error="Unhandled")


def service_error(status: int, error_type: str, message: str, **extra: str) -> InvokeResponse:
    """An error of the Lambda service itself: the function did not run."""
    body = json.dumps({"Type": "User", "message": message, **extra}).encode()
    return InvokeResponse(status, body, service_error=error_type)


def unknown_function(error: UnknownFunction) -> InvokeResponse:
    return service_error(404, "ResourceNotFoundException", str(error))


def throttled() -> InvokeResponse:
    """What Lambda answers when a function's reserved concurrency is all in use."""
    return service_error(
        429,
        "TooManyRequestsException",
        "Rate Exceeded.",
        Reason="ReservedFunctionConcurrentInvocationLimitExceeded",
    )
