"""Lambda offline: the template's functions run as local Python workers.

A Lambda `Invoke` (from the state machine, a test or the AWS CLI) reaches `LambdaRuntime.invoke`,
which answers in Lambda's wire shape: a handled result is HTTP 200 with the JSON result; an
exception is HTTP 200 with `X-Amz-Function-Error: Unhandled` and `{"errorType", "errorMessage",
"stackTrace"}`, so the state machine's `Retry`/`Catch` see the exception's class name as the error
name, exactly as in AWS.

One process hosts every function, so two compromises keep it honest:

- Environment: each function's template environment is put into the process environment when it
  is registered, before anything runs (changing `os.environ` while moto's and botocore's threads
  read it is not thread-safe). Two functions that give one variable different values are refused,
  and `tests/template` checks that every handler reads only the variables its own function gets.
- Powertools keeps per-process state (the logger's correlation id, the metric set it flushes), and
  Lambda gives every invocation a process of its own; offline, invocations take turns through one
  lock. Steps of different executions still interleave at every call, which is what the
  concurrency tests need, while DynamoDB's atomicity is kept by `offline.aws`.

Faults for tests (`inject`): `timeout_after_run` runs the handler, lets its writes happen, then
reports `Sandbox.Timedout` as Lambda does when a function outlives its timeout: the retry after a
lost answer that every step must survive. `error` fails the invocation with a named error without
running the handler.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["timeout_after_run", "error"]


@dataclass(frozen=True)
class LocalFunction:
    """One `AWS::Serverless::Function` of the template, as the runtime needs it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    environment: Mapping[str, str]
    timeout_seconds: float = 3.0
    memory_mb: int = 128
    code_path: str | None = None
    """The function's CodeUri: on `sys.path`, as Lambda puts the code's root (/var/task) there."""
    reserved_concurrency: int | None = None
    """`ReservedConcurrentExecutions` from the template: more concurrent invocations are throttled."""

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Invocation:
    """What tests read back: which function ran, with what, and how it ended."""

    function: str
    payload: Any
    error_type: str | None


@dataclass(frozen=True)
class InvokeResponse:
    status: int
    body: bytes
    function_error: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if self.function_error:
            headers["X-Amz-Function-Error"] = self.function_error
        return headers


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    error_type: str = "Lambda.ServiceException"
    message: str = "injected fault"
    booking_id: str | None = None

    def applies_to(self, event: Any) -> bool:
        """A fault scoped to one booking matches only the invocations that carry its id."""
        return self.booking_id is None or (
            isinstance(event, dict) and event.get("bookingId") == self.booking_id
        )


class UnknownFunction(LookupError):
    """Lambda's ResourceNotFoundException: no function of that name in this stack."""


class LambdaContext:
    """The context object a Python handler receives from the Lambda runtime."""

    def __init__(self, function: LocalFunction) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"offline/{self.aws_request_id}"
        self._deadline = time.monotonic() + function.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LambdaRuntime:
    """The functions of one offline stack, invoked by name or ARN."""

    functions: dict[str, LocalFunction] = field(default_factory=dict)
    invocations: collections.deque[Invocation] = field(default_factory=lambda: collections.deque(maxlen=5000))
    """The latest invocations, for tests; bounded, as payloads (payment tokens among them) must not pile
    up in a long-running server."""
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    _loaded: dict[str, tuple[Any, frozenset[tuple[str, str]]]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def register(self, function: LocalFunction) -> None:
        """Add a function and its environment; refuse one that contradicts another's environment."""
        for other in self.functions.values():
            clashes = {
                name
                for name, value in function.environment.items()
                if other.environment.get(name, value) != value and other.name != function.name
            }
            if clashes:
                raise ValueError(
                    f"{function.logical_id} and {other.logical_id} give {sorted(clashes)} different values; "
                    "one offline process cannot host both"
                )
        self.functions[function.name] = function
        os.environ.update(function.environment)

    def find(self, name_or_arn: str) -> LocalFunction:
        """Accept what Lambda accepts: a name, a full ARN, or a logical id (a convenience offline)."""
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        if name in self.functions:
            return self.functions[name]
        for function in self.functions.values():
            if function.logical_id == name:
                return function
        raise UnknownFunction(f"Function not found: {name_or_arn}")

    def inject(
        self,
        function: str,
        kind: FaultKind,
        times: int = 1,
        error_type: str = "Lambda.ServiceException",
        message: str = "injected fault",
        booking_id: str | None = None,
    ) -> None:
        """Make the next `times` invocations of `function` (of one booking, if `booking_id` is given)
        fail the way `kind` says."""
        target = self.find(function)
        with self._lock:
            self._faults.setdefault(target.name, []).append(
                _Fault(kind, times, error_type, message, booking_id)
            )

    def clear_faults(self) -> None:
        """Forget every fault not yet used up."""
        with self._lock:
            self._faults.clear()

    def calls(self, function: str) -> list[Invocation]:
        name = self.find(function).name
        return [call for call in self.invocations if call.function == name]

    def invoke(self, name_or_arn: str, payload: bytes | str | None) -> InvokeResponse:
        """Run the function once, as Lambda would for a RequestResponse invocation."""
        function = self.find(name_or_arn)
        raw = payload.decode() if isinstance(payload, bytes) else (payload or "{}")
        try:
            event = json.loads(raw or "{}")
        except json.JSONDecodeError:
            return _error_response("Runtime.UnmarshalError", "Could not parse request body into json")
        with self._lock:
            fault = self._take_fault(function.name, event)
            if fault is not None and fault.kind == "error":
                self.invocations.append(Invocation(function.name, event, fault.error_type))
                return _error_response(fault.error_type, fault.message)
            response, error_type = self._run(function, event)
            if fault is not None and fault.kind == "timeout_after_run":
                error_type = "Sandbox.Timedout"
                response = _error_response(
                    error_type, f"Task timed out after {function.timeout_seconds:.2f} seconds"
                )
            self.invocations.append(Invocation(function.name, event, error_type))
            return response

    def _take_fault(self, name: str, event: Any) -> _Fault | None:
        pending = self._faults.get(name, [])
        fault = next((candidate for candidate in pending if candidate.applies_to(event)), None)
        if fault is None:
            return None
        fault.remaining -= 1
        if fault.remaining <= 0:
            pending.remove(fault)
        return fault

    def _run(self, function: LocalFunction, event: Any) -> tuple[InvokeResponse, str | None]:
        try:
            handler = self._handler(function)
        except Exception as error:  # what Lambda reports when the module fails at its cold start
            message = f"Unable to import module '{function.module}': {error}"
            return _error_response("Runtime.ImportModuleError", message), "Runtime.ImportModuleError"
        context = LambdaContext(function)
        started = time.monotonic()
        try:
            result = handler(event, context)
        except Exception as error:  # the Lambda runtime reports every exception the same way
            return _error_response(type(error).__name__, str(error), error), type(error).__name__
        if time.monotonic() - started > function.timeout_seconds:
            message = f"Task timed out after {function.timeout_seconds:.2f} seconds"
            return _error_response("Sandbox.Timedout", message), "Sandbox.Timedout"
        return InvokeResponse(200, json.dumps(result, default=str).encode()), None

    def _handler(self, function: LocalFunction) -> Callable[[Any, Any], Any]:
        """Import the handler module once per stack (and again if its environment changes): a cold start."""
        snapshot = frozenset(function.environment.items())
        loaded = self._loaded.get(function.module)
        if loaded is None or loaded[1] != snapshot:
            if function.code_path and function.code_path not in sys.path:
                sys.path.insert(0, function.code_path)
            module = sys.modules.get(function.module)
            module = (
                importlib.reload(module) if module is not None else importlib.import_module(function.module)
            )
            self._loaded[function.module] = (module, snapshot)
            _new_sandbox()
        return getattr(self._loaded[function.module][0], function.attribute)


def _new_sandbox() -> None:
    """A (re)loaded handler is a cold start: Powertools keeps that flag per process, so raise it again."""
    from aws_lambda_powertools.logging import logger as powertools_logger
    from aws_lambda_powertools.metrics.provider import cold_start

    cold_start.reset_cold_start_flag()
    powertools_logger.is_cold_start = True


def _error_response(error_type: str, message: str, error: BaseException | None = None) -> InvokeResponse:
    body: dict[str, Any] = {"errorType": error_type, "errorMessage": message}
    if error is not None:
        body["stackTrace"] = traceback.format_tb(error.__traceback__)
    return InvokeResponse(200, json.dumps(body).encode(), function_error="Unhandled")


def lambda_error_body(error: UnknownFunction) -> tuple[int, dict[str, str], bytes]:
    """Lambda's own (service-side) error for an unknown function."""
    body = json.dumps({"Type": "User", "Message": str(error)}).encode()
    return 404, {"x-amzn-ErrorType": "ResourceNotFoundException", "Content-Type": "application/json"}, body
