"""The offline stack behind one HTTP port: GraphQL, the AWS endpoint and a query page.

    POST /graphql                        AppSync's endpoint (JWT in `Authorization`)
    GET  /graphql/realtime               AppSync's real-time endpoint: a WebSocket (subprotocol
                                         graphql-ws) for subscriptions, `offline.realtime`
    GET  /                               a small query page, served from this package
    GET  /favicon.ico                    the page's icon (SVG)
    POST /_offline/token                 a token for the page's sign-in: {"sub", "admin"}, loopback only
    POST /2015-03-31/functions/*/invocations   Lambda Invoke, answered by the local functions
    anything else                        moto (DynamoDB, Step Functions, SQS, SNS, SSM…), so
                                         `aws --endpoint-url` and boto3 with AWS_ENDPOINT_URL work

The stack runs in-process (`OfflineStack`); moto's WSGI application serves the same backends over
HTTP. DynamoDB requests arriving over HTTP take the same lock as in-process calls (`offline.aws`).
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler

from offline import realtime
from offline.auth import TokenIssuer, is_loopback
from offline.stack import OfflineStack

MAX_BODY_BYTES = 1_048_576
"""Larger GraphQL requests get HTTP 413, as AppSync refuses requests over its 1 MB limit."""
READ_TIMEOUT = 10.0
"""Seconds a connection may keep the server waiting for the next bytes of a request (its headers,
its body) or of the next request on a kept-alive connection; then the server hangs up."""
POLL_SECONDS = 0.05
"""How often the accepting loop looks for `shutdown()`: what a stop waits for it (socketserver's 0.5 s
default was half a second of every Ctrl-C)."""
MAX_CONNECTIONS = 512
"""Connections served at once (each holds a thread); the next one is answered 503 and closed. Above
what the e2e crowd test opens (200 clients plus the stack's own calls to this port)."""

StartResponse = Callable[..., Any]

SIGN_IN_PATH = "/_offline/token"
MAX_SUB_LENGTH = 128
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" '
    b'fill="#1d4f91"/><path d="M5 18l22-8-3 4-8 3 5 8-3 1-6-7-5 1z" fill="#fff"/></svg>'
)


class OfflineServer:
    """A threaded WSGI server around one `OfflineStack`."""

    def __init__(
        self,
        stack: OfflineStack,
        host: str = "127.0.0.1",
        port: int = 4000,
        *,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context`: serve https and wss (`offline.tls`) instead of http and ws."""
        self.stack = stack
        handler = type("RequestHandler", (WSGIRequestHandler,), {"timeout": read_timeout})
        self._server: BaseWSGIServer = _BoundedServer(
            host, port, self, handler=handler, ssl_context=ssl_context
        )
        if ssl_context is not None:
            # The TLS handshake happens on the connection's own thread, at its first read and under the
            # read timeout, not in the accepting thread, where a client that never finishes it would stop
            # the server from accepting anyone else.
            self._server.socket.do_handshake_on_connect = False  # type: ignore[attr-defined]
        self._server.slots = threading.BoundedSemaphore(max_connections)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        scheme = "https" if self._server.ssl_context is not None else "http"
        return f"{scheme}://{host}:{port}"

    def start(self) -> None:
        """Serve in a background thread (tests, `demo`); `serve_forever` serves in the caller's."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_SECONDS,), name="offline-server", daemon=True
        )
        self._thread.start()

    def serve_forever(self) -> None:
        self._server.serve_forever(POLL_SECONDS)

    def shutdown(self) -> None:
        self.stack.api.realtime.close()
        self._server.shutdown()
        self.close()

    def close(self) -> None:
        """Close the listening socket: all a server that never served (`start`) has to stop."""
        self._server.server_close()

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/graphql":
            return self._graphql(environ, _with_cors(start_response), method)
        if path == realtime.PATH:
            return self.stack.api.realtime(environ, start_response)
        if path.rstrip("/").lower() == "/graphql":
            return _error(start_response, 404, "NotFoundException", "No such path: GraphQL is POST /graphql.")
        if path in ("/", "/index.html") and method == "GET":
            page = resources.files("offline").joinpath("static/index.html").read_bytes()
            return _respond(start_response, 200, page, "text/html; charset=utf-8")
        if path == "/favicon.ico" and method == "GET":
            return _respond(start_response, 200, FAVICON, "image/svg+xml")
        if path == SIGN_IN_PATH:
            status, answer = page_token(self.stack.api.tokens, environ, method)
            return _respond(start_response, status, json.dumps(answer).encode(), "application/json")
        return self._aws(environ, start_response)

    def _aws(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """moto, for a request it can route: AWS SDKs sign with SigV4, and moto reads the service
        from the signature's scope (a bearer token there made it fail with an IndexError)."""
        authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
        if authorization and not authorization.startswith("AWS4-HMAC-SHA256 "):
            message = "Authorization header requires a SigV4 signature (AWS4-HMAC-SHA256 Credential=…)."
            return _error(start_response, 400, "IncompleteSignatureException", message)
        return self.stack.endpoint_app(environ, start_response)

    def _graphql(
        self, environ: dict[str, Any], start_response: StartResponse, method: str
    ) -> Iterable[bytes]:
        if method == "OPTIONS":
            return _preflight(environ, start_response)
        if method != "POST":
            return _error(
                start_response, 405, "MalformedHttpRequestException", "Use POST for GraphQL requests."
            )
        content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return _error(
                start_response, 415, "UnsupportedMediaTypeException", "Content-Type must be application/json."
            )
        length = _content_length(environ)
        if length is None:
            return _error(
                start_response,
                400,
                "MalformedHttpRequestException",
                "Content-Length must be a number of bytes.",
            )
        if length > MAX_BODY_BYTES:
            return _error(
                start_response,
                413,
                "PayloadTooLargeException",
                f"Request body is over {MAX_BODY_BYTES} bytes.",
            )
        try:
            body = bytes(environ["wsgi.input"].read(length)) if length else b""
        except TimeoutError:
            return _error(
                start_response, 408, "RequestTimeoutException", "The request body did not arrive in time."
            )
        if len(body) < length:
            return _error(
                start_response, 400, "MalformedHttpRequestException", "The request body ended early."
            )
        status, answer = self.stack.api.execute(
            body,
            authorization=environ.get("HTTP_AUTHORIZATION"),
            headers=_headers(environ),
            source_ip=str(environ.get("REMOTE_ADDR", "127.0.0.1")),
        )
        return _respond(start_response, status, json.dumps(answer).encode(), "application/json")


def page_token(tokens: TokenIssuer, environ: dict[str, Any], method: str) -> tuple[int, dict[str, Any]]:
    """The query page's sign-in: a token for `{"sub": name, "admin": bool}`, minted with the key the
    API verifies with. Only a loopback client naming a loopback host gets one (a page of another site
    cannot read the answer: JSON needs a CORS preflight this server never grants)."""
    if method != "POST":
        return 405, _error_body("MalformedHttpRequestException", "Use POST to sign in.")
    if not (is_loopback(str(environ.get("REMOTE_ADDR", ""))) and is_loopback(_host(environ))):
        return 403, _error_body("ForbiddenException", "Tokens are minted for loopback clients only.")
    content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return 415, _error_body("UnsupportedMediaTypeException", "Content-Type must be application/json.")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length)) if 0 < length <= 4096 else None
    except (ValueError, RecursionError):
        request = None
    sub = request.get("sub") if isinstance(request, dict) else None
    admin = request.get("admin", False) if isinstance(request, dict) else None
    if (
        not isinstance(sub, str)
        or not 0 < len(sub) <= MAX_SUB_LENGTH
        or any(c.isspace() for c in sub)
        or not isinstance(admin, bool)
    ):
        message = f'Send {{"sub": 1-{MAX_SUB_LENGTH} characters without spaces, "admin": true|false}}.'
        return 400, _error_body("BadRequestException", message)
    groups = ["Admin"] if admin else []
    return 200, {"token": tokens.mint(sub, groups=groups), "sub": sub, "groups": groups}


def _host(environ: dict[str, Any]) -> str:
    try:
        return urlsplit("//" + str(environ.get("HTTP_HOST", ""))).hostname or ""
    except ValueError:
        return ""


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"errors": [{"errorType": error_type, "message": message}]}


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
}


def _content_length(environ: dict[str, Any]) -> int | None:
    """The body's length in bytes; None unless Content-Length is digits only (not -5, 1e3 or abc)."""
    text = str(environ.get("CONTENT_LENGTH") or "0").strip()
    return int(text) if text.isascii() and text.isdigit() else None


class _BoundedServer(ThreadedWSGIServer):
    """A thread per connection, as werkzeug's, at most `slots` of them at once; the handler's
    `timeout` bounds every read from the client."""

    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    request_queue_size = MAX_CONNECTIONS
    """The listen backlog (werkzeug's is 128): a burst of connections up to the cap waits to be
    accepted instead of having its SYNs dropped, which clients retry only after 1, 3 and 7 s (200
    clients opening at once lost 42 that way, ListenOverflows in /proc/net/netstat)."""

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            body = json.dumps(_error_body("ServiceUnavailableException", "Too many connections.")).encode()
            head = (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            try:
                request.settimeout(1.0)
                request.sendall(head.encode() + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


def _respond(start_response: StartResponse, status: int, body: bytes, content_type: str) -> list[bytes]:
    """The answer, with AppSync's headers: `x-amzn-RequestId` on every one, and on an error status
    `x-amzn-ErrorType`, the first error's type, which AWS's clients read to name the error (Amplify's
    `parseJsonError`)."""
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if status >= 400 and content_type == "application/json":
        error_type = _error_type(body)
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
    start_response(f"{status} {_REASONS.get(status, 'OK')}", headers)
    return [body]


def _error_type(body: bytes) -> str | None:
    try:
        errors = json.loads(body).get("errors")
        error_type = errors[0].get("errorType") if isinstance(errors, list) and errors else None
    except (ValueError, AttributeError):
        return None
    return str(error_type) if error_type else None


CORS_EXPOSED = (
    "x-amzn-RequestId,x-amzn-ErrorType,x-amz-user-agent,x-amzn-ErrorMessage,Date,x-amz-schema-version"
)
"""What AppSync lets a page of another origin read (its preflight answer, docs/decisions/0015)."""
CORS_MAX_AGE = "172800"


def _with_cors(start_response: StartResponse) -> StartResponse:
    """AppSync's CORS on every answer of `/graphql`: any origin may call it, as AppSync allows; the
    token in `Authorization` is what authorizes, never a cookie, so no credentials are allowed."""

    def start(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        extra = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", CORS_EXPOSED)]
        return start_response(status, [*headers, *extra], *rest)

    return start


def _preflight(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """The answer to a browser's `OPTIONS /graphql`: 200, empty, the method and the headers it asks
    for allowed (AppSync's endpoint allows any header: `Authorization` must be named, `*` does not
    cover it), cached for AppSync's two days."""
    requested = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")).strip()
    headers = [
        ("Content-Length", "0"),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Access-Control-Allow-Methods", "POST, OPTIONS"),
        ("Access-Control-Max-Age", CORS_MAX_AGE),
    ]
    if requested:
        headers.append(("Access-Control-Allow-Headers", requested))
    start_response("200 OK", headers)
    return [b""]


def _error(start_response: StartResponse, status: int, error_type: str, message: str) -> list[bytes]:
    body = json.dumps({"errors": [{"errorType": error_type, "message": message}]}).encode()
    return _respond(start_response, status, body, "application/json")
