"""One execution environment of one function: a process running awslambdaric, as in Lambda.

A sandbox runs one invocation at a time. It is started on demand (a cold start: its `Init Duration`
is the time until its runtime first asks for an event), reused while warm, and killed when an
invocation outlives the function's timeout (Lambda resets the environment then, so the next
invocation starts cold). What the process writes to stdout and stderr is the function's log; the
service adds `START`, `END` and `REPORT` lines around each invocation, as CloudWatch Logs shows them
("Lambda function logs", Lambda developer guide).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from .models import InvokeResponse, LocalFunction, function_error
from .runtime_api import Answer, Event, RuntimeApi

StartMethod = Literal["fresh", "preloaded"]
LogSink = Callable[[str, str], None]
"""Receives (function name, log line) for every line a sandbox or the service logs."""

INIT_LIMIT_SECONDS = 10.0
"""Lambda's limit on the Init phase of an on-demand function."""


@dataclass(frozen=True)
class Outcome:
    """One invocation as the service saw it."""

    response: InvokeResponse
    duration_ms: float
    init_duration_ms: float | None
    max_memory_mb: int
    logs: tuple[str, ...]
    reusable: bool
    """False when the sandbox died, timed out or failed to start: it must not serve again."""


class Sandbox:
    """A process of `function` and the Runtime API it polls."""

    def __init__(
        self,
        function: LocalFunction,
        environment: Mapping[str, str],
        start: StartMethod,
        log: LogSink,
    ) -> None:
        self.function = function
        self._log = log
        self.api = RuntimeApi(kill=self._kill)
        self._killed = False
        self.started_at = time.monotonic()
        self.last_used = self.started_at
        self._warm = False
        self._lines: list[str] = []
        self._partial = b""
        self._log_lock = threading.Lock()
        code_path = function.code_path or os.getcwd()
        env = {**environment, "AWS_LAMBDA_RUNTIME_API": self.api.address}
        read_end, write_end = os.pipe()
        self._log_fd = read_end
        os.set_blocking(read_end, False)
        self._popen: subprocess.Popen[bytes] | None = None
        try:
            if start == "fresh":
                self._popen = subprocess.Popen(  # noqa: S603 - our own interpreter and the template's handler
                    [sys.executable, "-m", "awslambdaric", function.handler],
                    cwd=code_path,
                    env={**env, "PYTHONPATH": code_path},
                    stdin=subprocess.DEVNULL,
                    stdout=write_end,
                    stderr=write_end,
                    start_new_session=True,
                )
                self.pid = self._popen.pid
            else:
                self.pid = _zygote().fork(env, code_path, function.handler, write_end)
        finally:
            if write_end >= 0:
                os.close(write_end)
        self._reader = threading.Thread(target=self._pump_logs, name=f"logs-{function.name}", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------ state
    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def exit_reason(self) -> str:
        """Lambda's wording (`Runtime exited with error: signal: killed`, `… exit status 1`); a
        preloaded sandbox's status is its fork server's to collect."""
        status = self._popen.poll() if self._popen is not None else None
        if self._killed or status == -signal.SIGKILL:
            return "Runtime exited with error: signal: killed"
        if status is None:
            return "Runtime exited without providing a reason"
        if status < 0:
            return f"Runtime exited with error: signal: {signal.Signals(-status).name[3:].lower()}"
        return f"Runtime exited with error: exit status {status}"

    def _kill(self) -> None:
        """SIGKILL, as when a Lambda environment dies mid-invocation (a test fault, see `inject`)."""
        self._killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill the process (its whole session) and its Runtime API; what it logged so far is kept."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        if self._popen is not None:
            self._popen.wait(timeout=5)
        self.api.close()

    # ------------------------------------------------------------------ one invocation
    def invoke(self, request_id: str, payload: bytes, crash: str | None = None) -> Outcome:
        """Run one event to its end (result, error, timeout or crash) and log it as Lambda does."""
        init_duration = None if self._warm else self._wait_for_init()
        if not self._warm and (self.api.init_error is not None or not self.api.ready.is_set()):
            return self._failed_start(request_id)
        self._warm = True
        self._emit(f"START RequestId: {request_id} Version: $LATEST")
        started = time.monotonic()
        deadline = started + self.function.timeout_seconds
        future = self.api.submit(
            Event(
                request_id,
                payload,
                int((time.time() + self.function.timeout_seconds) * 1000),
                self.function.arn,
                crash,
            )
        )
        answer: Answer | None = None
        status = None
        while answer is None:
            try:
                answer = future.result(timeout=0.02)
            except TimeoutError:
                if time.monotonic() > deadline:
                    status = "timeout"
                    break
                if not self.alive():
                    status = "error"
                    break
        duration_ms = (time.monotonic() - started) * 1000
        memory = _peak_memory_mb(self.pid)
        if answer is not None:
            response = (
                InvokeResponse(200, answer.body)
                if answer.error_type is None
                else InvokeResponse(200, answer.body, function_error="Unhandled")
            )
        elif status == "timeout":
            self.stop()
            seconds = self.function.timeout_seconds
            self._emit(f"{_timestamp()} {request_id} Task timed out after {seconds:.2f} seconds")
            response = function_error(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds",
            )
        else:
            response = function_error(
                "Runtime.ExitError",
                f"RequestId: {request_id} Error: {self.exit_reason()}",
            )
        logs = self._finish(request_id, duration_ms, init_duration, memory, status)
        self.last_used = time.monotonic()
        return Outcome(response, duration_ms, init_duration, memory, logs, answer is not None)

    def _wait_for_init(self) -> float:
        limit = time.monotonic() + INIT_LIMIT_SECONDS + self.function.timeout_seconds
        while not self.api.ready.wait(0.02):
            if not self.alive() or time.monotonic() > limit:
                break
        ready_at = self.api.ready_at or time.monotonic()
        return (ready_at - self.started_at) * 1000

    def _failed_start(self, request_id: str) -> Outcome:
        """The runtime could not start the handler (Lambda's `Runtime.*` init errors)."""
        init_ms = (time.monotonic() - self.started_at) * 1000
        self.stop()
        if self.api.init_error is not None:
            response = InvokeResponse(200, self.api.init_error.body, function_error="Unhandled")
        else:
            response = function_error(
                "Runtime.ExitError",
                f"RequestId: {request_id} Error: {self.exit_reason()}",
            )
        self._emit(f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error")
        logs = self._finish(request_id, 0.0, init_ms, _peak_memory_mb(self.pid), "error")
        return Outcome(response, 0.0, init_ms, 0, logs, False)

    def _finish(
        self, request_id: str, duration_ms: float, init_ms: float | None, memory: int, status: str | None
    ) -> tuple[str, ...]:
        """Take every line the sandbox wrote before it answered, then close the invocation's log."""
        with self._log_lock:
            self._drain(final=True)
            report = (
                f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {self.function.memory_mb} MB\t"
                f"Max Memory Used: {memory} MB\t"
            )
            if init_ms is not None:
                report += f"Init Duration: {init_ms:.2f} ms\t"
            if status is not None:
                report += f"Status: {status}"
            self._emit_locked(f"END RequestId: {request_id}")
            self._emit_locked(report.rstrip("\t"))
            lines, self._lines = tuple(self._lines), []
        return lines

    # ------------------------------------------------------------------ logs
    def _pump_logs(self) -> None:
        while True:
            try:
                select.select([self._log_fd], [], [], 0.5)
            except (OSError, ValueError):
                return
            with self._log_lock:
                if self._drain(final=False):
                    os.close(self._log_fd)
                    return

    def _drain(self, *, final: bool) -> bool:
        """Read what the pipe holds now; True at end of file. Caller holds `_log_lock`."""
        eof = False
        while True:
            try:
                chunk = os.read(self._log_fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                eof = True
                break
            if not chunk:
                eof = True
                break
            self._partial += chunk
        *complete, self._partial = self._partial.split(b"\n")
        if (final or eof) and self._partial:
            complete.append(self._partial)
            self._partial = b""
        for line in complete:
            self._emit_locked(line.decode("utf-8", "replace").rstrip("\r"))
        return eof

    def _emit(self, line: str) -> None:
        with self._log_lock:
            self._emit_locked(line)

    def _emit_locked(self, line: str) -> None:
        self._lines.append(line)
        self._log(self.function.name, line)


class _Zygote:
    """The fork server of preloaded sandboxes (`offline.lambdas.entry`), one per process."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", f"{__package__}.entry", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        self._channel = ours
        self._lock = threading.Lock()

    def fork(self, environment: Mapping[str, str], code_path: str, handler: str, log_fd: int) -> int:
        request = {"environment": dict(environment), "code_path": code_path, "handler": handler}
        with self._lock:
            socket.send_fds(self._channel, [json.dumps(request).encode()], [log_fd])
            return int(self._channel.recv(64))

    def stop(self) -> None:
        self._channel.close()
        self.process.kill()
        self.process.wait(timeout=5)


_ZYGOTE: _Zygote | None = None
_ZYGOTE_LOCK = threading.Lock()


def _zygote() -> _Zygote:
    global _ZYGOTE
    with _ZYGOTE_LOCK:
        if _ZYGOTE is None or _ZYGOTE.process.poll() is not None:
            _ZYGOTE = _Zygote()
            atexit.register(_ZYGOTE.stop)
        return _ZYGOTE


def _peak_memory_mb(pid: int) -> int:
    """The sandbox's peak resident memory (Lambda's `Max Memory Used`), from /proc where there is one."""
    status = Path(f"/proc/{pid}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return math.ceil(int(line.split()[1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return math.ceil(psutil.Process(pid).memory_info().rss / 1_048_576)
    except Exception:  # the process is gone: nothing left to measure
        return 0


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
