"""The offline Lambda service: the template's functions, their sandboxes, and `Invoke`.

Every invocation runs in a sandbox process of its function (`offline.lambdas.sandbox`), one at a
time per sandbox, with several sandboxes of a function running in parallel, as in Lambda. Nothing
here serialises two handlers: they meet only where they meet in AWS, in DynamoDB (whose per-request
atomicity `offline.aws` keeps) and the other services behind the offline endpoint, which each
handler reaches over HTTP through `AWS_ENDPOINT_URL`.

Concurrency: a function with `ReservedConcurrentExecutions` is throttled beyond it
(`TooManyRequestsException`, HTTP 429), as Lambda does. Without it, AWS would scale far beyond
what a laptop holds, so the offline service runs at most `max_sandboxes` at once per function and
makes further invocations wait for a free one instead of failing them.

Test facilities, never switches in `src/`: `inject` fails invocations by name (`error`, without
running the handler), lets the handler run and then reports `Sandbox.Timedout`
(`timeout_after_run`: the lost answer every step must survive), or SIGKILLs the sandbox's process as
it takes the event (`killed`) or as it answers (`killed_after_run`), which Lambda reports as
`Runtime.ExitError` ("signal: killed"); `replace_handler` runs another
handler in a function's place (a deliberately broken one, to prove that a test catches it).
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from .models import (
    Invocation,
    InvokeResponse,
    LocalFunction,
    UnknownFunction,
    function_error,
    throttled,
)
from .sandbox import LogSink, Outcome, Sandbox, StartMethod

FaultKind = Literal["timeout_after_run", "error", "killed", "killed_after_run"]

_queued: dict[int, float] = {}
_queued_lock = threading.Lock()


def _note_queued(seconds: float) -> None:
    with _queued_lock:
        ident = threading.get_ident()
        _queued[ident] = _queued.get(ident, 0.0) + seconds


def queued_seconds(thread_id: int) -> float:
    """How long the invocations made from thread `thread_id` waited for a free sandbox since the last
    call (which resets it). Lambda starts an execution environment at once, well below its account's
    concurrency; offline, past `max_sandboxes`, an invocation waits for one. A caller that times the
    invocation (a Step Functions task's TimeoutSeconds: `offline.stepfunctions`) leaves this wait out."""
    with _queued_lock:
        return _queued.pop(thread_id, 0.0)


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    error_type: str = "Lambda.ServiceException"
    message: str = "injected fault"
    booking_id: str | None = None
    where: dict[str, Any] = field(default_factory=dict)

    def applies_to(self, event: Any) -> bool:
        """A fault scoped to one booking matches only the invocations that carry its id (and, with
        `where`, those fields: Cancel Booking's `action`, Notify Booking's `status`)."""
        wanted = {**self.where, **({"bookingId": self.booking_id} if self.booking_id else {})}
        return not wanted or (
            isinstance(event, dict) and all(event.get(key) == value for key, value in wanted.items())
        )


def print_log(function: str, line: str) -> None:
    """The default log sink: the terminal (or the test's captured stdout) at the time of writing."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class _Pool:
    idle: list[Sandbox] = field(default_factory=list)
    alive: int = 0
    in_flight: int = 0


@dataclass
class LambdaRuntime:
    """The functions of one offline stack, invoked by name or ARN."""

    region: str
    """The region the sandboxes' clients use (`AWS_REGION`): the stack's, from samconfig.toml."""
    start: StartMethod = "fresh"
    """`fresh`: each sandbox is a new `python -m awslambdaric` (true cold starts); `preloaded`: forked
    from a server that has imported the shared libraries (fast; the test suite's choice)."""
    aws_endpoint: str | None = None
    """The offline AWS endpoint the sandboxes reach AWS through (`AWS_ENDPOINT_URL`)."""
    credentials: Callable[[LocalFunction], tuple[str, str, str]] | None = None
    """A function's (access key, secret key, session token), as Lambda hands a session of the
    execution role to each sandbox; None: the same offline keys for every function."""
    max_sandboxes: int = 4
    sandbox_limits: dict[str, int] = field(default_factory=dict)
    """Another limit than `max_sandboxes` for some functions (by logical id): a benchmark that holds
    one function's invocations for seconds gives it the sandboxes Lambda would, and no more to the rest."""
    idle_seconds: float = 300.0
    """A sandbox unused this long is stopped, as Lambda reclaims idle environments."""
    log: LogSink = print_log
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    invocations: collections.deque[Invocation] = field(default_factory=lambda: collections.deque(maxlen=5000))
    """The latest invocations, for tests; bounded, as payloads (payment tokens among them) must not pile
    up in a long-running server."""
    _registered: dict[str, LocalFunction] = field(default_factory=dict)
    """Each function as deployed, before any `replace_handler`."""
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    _pools: dict[str, _Pool] = field(default_factory=lambda: collections.defaultdict(_Pool))
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reaper: threading.Thread | None = None
    _stopped: bool = False

    # ------------------------------------------------------------------ functions
    def register(self, function: LocalFunction) -> None:
        self.functions[function.name] = function
        self._registered[function.name] = function

    def find(self, name_or_arn: str) -> LocalFunction:
        """Accept what Lambda accepts: a name, a full ARN, or a logical id (a convenience offline)."""
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        if name in self.functions:
            return self.functions[name]
        for function in self.functions.values():
            if function.logical_id == name:
                return function
        raise UnknownFunction(f"Function not found: {name_or_arn}")

    def replace_handler(self, function: str, handler: str, code_path: str | None = None) -> None:
        """Run `handler` (found under `code_path`) in the function's place from the next cold start on;
        warm sandboxes of the old handler are stopped."""
        target = self.find(function)
        self.functions[target.name] = replace(
            target, handler=handler, code_path=code_path or target.code_path
        )
        self._retire_idle(target.name)

    def restore_handlers(self) -> None:
        """Every function runs its deployed handler again from its next cold start; sandboxes of a
        replaced handler are stopped."""
        for name, deployed in self._registered.items():
            if self.functions.get(name) is not deployed:
                self.functions[name] = deployed
                self._retire_idle(name)

    def retire_sandboxes(self, function: str | None = None) -> None:
        """Stop the idle sandboxes (of one function, or of all): the next invocation is a cold start,
        as after Lambda reclaims an environment."""
        for name in [self.find(function).name] if function else list(self._pools):
            self._retire_idle(name)

    # ------------------------------------------------------------------ faults and records
    def inject(
        self,
        function: str,
        kind: FaultKind,
        times: int = 1,
        error_type: str = "Lambda.ServiceException",
        message: str = "injected fault",
        booking_id: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> None:
        """Make the next `times` invocations of `function` (of one booking, if `booking_id` is given,
        whose payload has the fields `where` names) fail the way `kind` says."""
        target = self.find(function)
        with self._changed:
            self._faults.setdefault(target.name, []).append(
                _Fault(kind, times, error_type, message, booking_id, dict(where or {}))
            )

    def clear_faults(self) -> None:
        """Forget every fault not yet used up."""
        with self._changed:
            self._faults.clear()

    def calls(self, function: str) -> list[Invocation]:
        name = self.find(function).name
        return [call for call in list(self.invocations) if call.function == name]

    def sandboxes(self, function: str | None = None) -> int:
        """How many sandboxes are alive (of one function, or of all)."""
        with self._changed:
            names = [self.find(function).name] if function else list(self._pools)
            return sum(self._pools[name].alive for name in names)

    # ------------------------------------------------------------------ Invoke
    def invoke(self, name_or_arn: str, payload: bytes | str | None) -> InvokeResponse:
        """Run the function once, as Lambda would for a RequestResponse invocation."""
        function = self.find(name_or_arn)
        raw = payload.encode() if isinstance(payload, str) else (payload or b"{}")
        try:
            event = json.loads(raw or b"{}")
        except ValueError:
            return function_error("Runtime.UnmarshalError", "Could not parse request body into json")
        request_id = str(uuid.uuid4())
        with self._changed:
            fault = self._take_fault(function.name, event)
        if fault is not None and fault.kind == "error":
            self.invocations.append(Invocation(function.name, event, fault.error_type, request_id))
            return function_error(fault.error_type, fault.message, request_id)
        sandbox = self._acquire(function)
        if sandbox is None:
            self.invocations.append(
                Invocation(function.name, event, "Lambda.TooManyRequestsException", request_id)
            )
            return throttled()
        outcome: Outcome | None = None
        crash = {"killed": "before", "killed_after_run": "after"}.get(fault.kind) if fault else None
        try:
            outcome = sandbox.invoke(request_id, raw, crash)
        finally:
            reusable = outcome is not None and outcome.reusable and fault is None
            self._release(sandbox, reusable)
        response = outcome.response
        if fault is not None and fault.kind == "timeout_after_run":  # the handler ran; its answer is lost
            response = function_error(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after {function.timeout_seconds:.2f} seconds",
            )
        self.invocations.append(
            Invocation(
                function.name,
                event,
                response.error_type,
                request_id,
                outcome.duration_ms,
                outcome.init_duration_ms,
                outcome.max_memory_mb,
                sandbox.pid,
                outcome.logs,
            )
        )
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

    # ------------------------------------------------------------------ the sandbox pools
    def _acquire(self, function: LocalFunction) -> Sandbox | None:
        """A warm sandbox of the function's current handler, a new one, or None when throttled."""
        with self._changed:
            pool = self._pools[function.name]
            reserved = function.reserved_concurrency
            if reserved is not None and pool.in_flight >= reserved:
                return None
            pool.in_flight += 1
            while True:
                current = self.functions[function.name]
                while pool.idle:
                    sandbox = pool.idle.pop()
                    if sandbox.function is current and sandbox.alive():
                        return sandbox
                    self._discard(pool, sandbox)
                if pool.alive < self.sandbox_limits.get(current.logical_id, self.max_sandboxes):
                    pool.alive += 1
                    break
                waiting_since = time.monotonic()
                self._changed.wait()
                _note_queued(time.monotonic() - waiting_since)
        try:
            sandbox = Sandbox(current, self._environment(current), self.start, self.log)
        except BaseException:
            with self._changed:
                pool.alive -= 1
                pool.in_flight -= 1
                self._changed.notify_all()
            raise
        self._start_reaper()
        return sandbox

    def _release(self, sandbox: Sandbox, reusable: bool) -> None:
        with self._changed:
            pool = self._pools[sandbox.function.name]
            pool.in_flight -= 1
            if (
                reusable
                and not self._stopped
                and sandbox.function is self.functions.get(sandbox.function.name)
            ):
                pool.idle.append(sandbox)
            else:
                self._discard(pool, sandbox)
            self._changed.notify_all()

    def _discard(self, pool: _Pool, sandbox: Sandbox) -> None:
        """Caller holds `_changed`. Stopping a process takes a moment: do it off the lock's path."""
        pool.alive -= 1
        threading.Thread(target=sandbox.stop, name="sandbox-stop", daemon=True).start()

    def _retire_idle(self, name: str, older_than: float | None = None) -> None:
        with self._changed:
            pool = self._pools[name]
            now = time.monotonic()
            keep = []
            for sandbox in pool.idle:
                if older_than is None or now - sandbox.last_used > older_than:
                    self._discard(pool, sandbox)
                else:
                    keep.append(sandbox)
            pool.idle = keep
            self._changed.notify_all()

    def _start_reaper(self) -> None:
        with self._changed:
            if self._reaper is not None:
                return
            self._reaper = threading.Thread(target=self._reap, name="sandbox-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        interval = max(0.05, min(30.0, self.idle_seconds / 4))
        while True:
            with self._changed:
                self._changed.wait(interval)
                if self._stopped:
                    return
            for name in list(self._pools):
                self._retire_idle(name, older_than=self.idle_seconds)

    def stop(self) -> None:
        """Stop every sandbox (a server shutting down, or a test's stack at its end)."""
        with self._changed:
            self._stopped = True
            idle = [sandbox for pool in self._pools.values() for sandbox in pool.idle]
            for pool in self._pools.values():
                pool.alive -= len(pool.idle)
                pool.idle = []
            self._changed.notify_all()
        stopping = [threading.Thread(target=sandbox.stop, daemon=True) for sandbox in idle]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join(timeout=10)

    # ------------------------------------------------------------------ what a sandbox gets
    def _environment(self, function: LocalFunction) -> dict[str, str]:
        """Lambda's reserved variables ("Defined runtime environment variables", Lambda developer
        guide), then the function's own; nothing of this process's environment but PATH."""
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        key, secret, token = self.credentials(function) if self.credentials else ("offline",) * 3
        reserved = {
            "_HANDLER": function.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": token,
            "LAMBDA_TASK_ROOT": function.code_path or os.getcwd(),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": os.environ.get("PATH", os.defpath),
        }
        if self.aws_endpoint:
            reserved["AWS_ENDPOINT_URL"] = self.aws_endpoint
        return {**reserved, **function.environment}
