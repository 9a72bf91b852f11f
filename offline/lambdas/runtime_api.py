"""The Lambda Runtime API that one sandbox's runtime client polls.

AWS's Python runtime is `awslambdaric`: it asks `GET /2018-06-01/runtime/invocation/next` for an
event, runs the handler, and posts the result to `…/invocation/{id}/response` or the error to
`…/invocation/{id}/error` (a failed start goes to `/runtime/init/error`). Serving that API on
loopback lets the very same client run every offline function, so results, errors and the
`LambdaContext` have exactly the shape they have in Lambda ("Using the Lambda runtime API for custom
runtimes", Lambda developer guide). One server per sandbox: the API names no sandbox, so its address
is what tells them apart.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


@dataclass(frozen=True)
class Event:
    """One invocation handed to the runtime client."""

    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    crash: str | None = None
    """A test fault: the sandbox is killed as the runtime takes the event ("before", the handler never
    runs) or as it posts its answer ("after", the handler ran and wrote; the answer is lost)."""


@dataclass(frozen=True)
class Answer:
    """What the runtime client posted back for one invocation."""

    body: bytes
    error_type: str | None
    """None for a result; the `Lambda-Runtime-Function-Error-Type` header for an error."""


class RuntimeApi:
    """The Runtime API of one sandbox, on an ephemeral loopback port."""

    def __init__(self, kill: Callable[[], None] | None = None) -> None:
        self._events: queue.Queue[Event] = queue.Queue(maxsize=1)
        self._answers: dict[str, Future[Answer]] = {}
        self._crashes: dict[str, str] = {}
        self._kill = kill
        self._lock = threading.Lock()
        self.ready = threading.Event()
        """Set when the runtime client first asks for an event: its init phase is over."""
        self.ready_at: float | None = None
        self.init_error: Answer | None = None
        self.closed = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="runtime-api", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        """What `AWS_LAMBDA_RUNTIME_API` holds: host and port, no scheme."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def submit(self, event: Event) -> Future[Answer]:
        """Hand one event to the sandbox; the future settles when the runtime posts its answer."""
        future: Future[Answer] = Future()
        with self._lock:
            self._answers[event.request_id] = future
            if event.crash:
                self._crashes[event.request_id] = event.crash
        self._events.put_nowait(event)
        return future

    def crashes(self, request_id: str, moment: str) -> bool:
        """Kill the sandbox now if a test fault says so for this invocation at this moment."""
        with self._lock:
            due = self._crashes.get(request_id) == moment
            if due:
                del self._crashes[request_id]
        if due and self._kill is not None:
            self._kill()
        return due

    def close(self) -> None:
        self.closed.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for future in self._answers.values():
                future.cancel()
            self._answers.clear()

    # ------------------------------------------------------------------ called by the HTTP handler
    def next_event(self) -> Event | None:
        if not self.ready.is_set():
            self.ready_at = time.monotonic()
            self.ready.set()
        while not self.closed.is_set():
            try:
                return self._events.get(timeout=0.5)
            except queue.Empty:
                continue
        return None

    def answer(self, request_id: str, answer: Answer) -> bool:
        with self._lock:
            future = self._answers.pop(request_id, None)
        if future is None or future.done():
            return False
        future.set_result(answer)
        return True

    def fail_init(self, answer: Answer) -> None:
        self.init_error = answer
        self.ready.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sandbox killed mid-request (a timeout, a stop) resets its connection: nothing to report."""


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._send(404, {"errorMessage": "unknown path", "errorType": "InvalidRequest"})
                return
            event = api.next_event()
            if event is None:
                self._send(410, {"errorMessage": "sandbox stopped", "errorType": "Sandbox.Stopped"})
                return
            if api.crashes(event.request_id, "before"):
                return  # killed as it took the event: it never runs the handler
            self._send(
                200,
                event.payload,
                {
                    "Lambda-Runtime-Aws-Request-Id": event.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(event.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": event.function_arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{event.request_id[:24]}",
                },
            )

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path[len(PREFIX) :].strip("/").split("/") if self.path.startswith(PREFIX) else []
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
            if parts == ["init", "error"]:
                api.fail_init(Answer(body, error_type or "Runtime.Unknown"))
                self._send(202, {"status": "OK"})
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                if api.crashes(parts[1], "after"):
                    return  # killed as it answered: what the handler did is done, its answer lost
                kind = None if parts[2] == "response" else (error_type or "Runtime.Unknown")
                if api.answer(parts[1], Answer(body, kind)):
                    self._send(202, {"status": "OK"})
                else:
                    self._send(400, {"errorMessage": "unknown request id", "errorType": "InvalidRequestID"})
            else:
                self._send(404, {"errorMessage": "unknown path", "errorType": "InvalidRequest"})

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """The runtime's polling is not worth a log line."""

    return Handler
