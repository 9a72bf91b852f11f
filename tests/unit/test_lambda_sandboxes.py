"""The offline Lambda service seen from outside: sandboxes, cold starts, logs, timeouts, throttling.

Each test runs `LambdaRuntime` directly with a probe function (tests/doubles/probe.py) in preloaded
sandboxes; the saga tests exercise the same service with the real handlers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offline.lambdas import LambdaRuntime, LocalFunction

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


class Logs:
    """Every line the service logged, by function."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, function: str, line: str) -> None:
        with self._lock:
            self.lines.append((function, line))

    def of(self, function: str) -> list[str]:
        with self._lock:
            return [line for name, line in self.lines if name == function]


@pytest.fixture
def logs() -> Logs:
    return Logs()


@pytest.fixture
def runtime(logs: Logs) -> Iterator[LambdaRuntime]:
    lambdas = LambdaRuntime(start="preloaded", region="eu-west-1", log=logs, max_sandboxes=3)
    for name, reserved in (("probe", None), ("probe-reserved", 1)):
        lambdas.register(
            LocalFunction(
                logical_id=f"{name.title().replace('-', '')}Function",
                name=name,
                arn=f"arn:aws:lambda:eu-west-1:123456789012:function:{name}",
                handler="probe.handler",
                environment={"GREETING": f"hello from {name}"},
                timeout_seconds=1.0,
                memory_mb=256,
                code_path=str(DOUBLES),
                reserved_concurrency=reserved,
            )
        )
    yield lambdas
    lambdas.stop()


def invoke(runtime: LambdaRuntime, function: str = "probe", **event: Any) -> tuple[Any, dict[str, Any]]:
    response = runtime.invoke(function, json.dumps(event))
    return response, json.loads(response.body)


def test_a_sandbox_has_its_functions_environment_and_nothing_of_the_parents(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKED_FROM_THE_TEST_PROCESS", "1")

    _, answer = invoke(runtime)

    environment = answer["environment"]
    assert environment["GREETING"] == "hello from probe"
    assert "LEAKED_FROM_THE_TEST_PROCESS" not in environment
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "probe"
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environment["AWS_REGION"] == "eu-west-1"
    assert environment["LAMBDA_TASK_ROOT"] == str(DOUBLES)
    assert environment["_HANDLER"] == "probe.handler"


def test_the_first_invocation_is_a_cold_start_and_the_next_reuses_the_warm_sandbox(
    runtime: LambdaRuntime, logs: Logs
) -> None:
    _, first = invoke(runtime, say="one")
    _, second = invoke(runtime, say="two")

    assert first["pid"] == second["pid"]
    cold, warm = runtime.calls("probe")
    assert cold.init_duration_ms is not None
    assert cold.init_duration_ms > 0
    assert warm.init_duration_ms is None
    lines = logs.of("probe")
    reports = [line for line in lines if line.startswith("REPORT")]
    assert len(reports) == 2
    assert "Init Duration: " in reports[0]
    assert "Init Duration" not in reports[1]
    for report in reports:
        assert "Duration: " in report
        assert "Billed Duration: " in report
        assert "Memory Size: 256 MB" in report
        assert "Max Memory Used: " in report
    start = lines.index(f"START RequestId: {first['request_id']} Version: $LATEST")
    end = lines.index(f"END RequestId: {first['request_id']}")
    assert start < lines.index("probe one") < end  # the function's own output sits inside its invocation


def test_concurrent_invocations_run_in_parallel_sandboxes(runtime: LambdaRuntime) -> None:
    answers: list[dict[str, Any]] = []

    def call() -> None:
        answers.append(invoke(runtime, sleep=0.5)[1])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({answer["pid"] for answer in answers}) == 3
    latest_start = max(answer["ran"][0] for answer in answers)
    earliest_end = min(answer["ran"][1] for answer in answers)
    assert latest_start < earliest_end  # all three handlers were running at one moment: no turns taken
    assert runtime.sandboxes("probe") == 3


def test_a_handler_error_has_the_runtimes_shape(runtime: LambdaRuntime) -> None:
    response, answer = invoke(runtime, fail="no seat")

    assert response.status == 200
    assert response.headers()["X-Amz-Function-Error"] == "Unhandled"
    assert answer["errorType"] == "ProbeFailure"
    assert answer["errorMessage"] == "no seat"
    assert answer["requestId"] == runtime.calls("probe")[-1].request_id
    assert isinstance(answer["stackTrace"], list)


def test_an_invocation_that_outlives_the_timeout_is_killed_and_the_next_one_starts_cold(
    runtime: LambdaRuntime, logs: Logs
) -> None:
    _, warm = invoke(runtime)

    response, answer = invoke(runtime, sleep=5)
    _, after = invoke(runtime)

    assert answer["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in answer["errorMessage"]
    assert response.headers()["X-Amz-Function-Error"] == "Unhandled"
    assert after["pid"] != warm["pid"]
    assert runtime.calls("probe")[-1].init_duration_ms is not None
    assert any(line.endswith("Status: timeout") for line in logs.of("probe"))


def test_a_sandbox_that_exits_fails_its_invocation_and_is_replaced(runtime: LambdaRuntime) -> None:
    _, warm = invoke(runtime)

    _, answer = invoke(runtime, exit=True)
    _, after = invoke(runtime)

    assert answer["errorType"] == "Runtime.ExitError"
    assert after["pid"] != warm["pid"]


def test_reserved_concurrency_throttles_as_lambda_does(runtime: LambdaRuntime) -> None:
    first = threading.Thread(target=invoke, args=(runtime, "probe-reserved"), kwargs={"sleep": 0.6})
    first.start()
    time.sleep(0.3)

    response, answer = invoke(runtime, "probe-reserved")
    first.join()

    assert response.status == 429
    assert response.headers()["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert answer["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert response.error_type == "Lambda.TooManyRequestsException"


def test_idle_sandboxes_are_stopped(logs: Logs) -> None:
    lambdas = LambdaRuntime(region="eu-west-1", start="preloaded", log=logs, idle_seconds=0.3)
    lambdas.register(
        LocalFunction("ProbeFunction", "probe", "arn:probe", "probe.handler", {}, code_path=str(DOUBLES))
    )
    try:
        invoke(lambdas)
        assert lambdas.sandboxes("probe") == 1
        deadline = time.monotonic() + 5
        while lambdas.sandboxes("probe") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lambdas.sandboxes("probe") == 0
    finally:
        lambdas.stop()


def test_an_injected_timeout_lets_the_handler_run_then_loses_its_answer(runtime: LambdaRuntime) -> None:
    runtime.inject("probe", "timeout_after_run")

    _, answer = invoke(runtime, say="written")
    _, after = invoke(runtime)

    assert answer["errorType"] == "Sandbox.Timedout"
    first, second = runtime.calls("probe")
    assert "probe written" in first.logs  # the handler did run
    assert first.error_type == "Sandbox.Timedout"
    assert second.error_type is None
    assert second.init_duration_ms is not None  # Lambda resets the environment after a timeout
    assert after["pid"] != first.sandbox
