"""Where an AWS request goes offline.

Lambda `Invoke` goes to the local `LambdaRuntime`; every other request goes to moto. DynamoDB
requests take one lock on their way into moto, because moto evaluates a condition and applies the
write in separate steps: without the lock, concurrent conditional writes on one seat count
oversell (seen on moto 5.2.5), which real DynamoDB never does. The lock covers one request, as
DynamoDB's atomicity does; two handlers are never serialised beyond that.

Two doors lead here, and both take the same lock:
- in-process, `install()` puts `dispatch` in botocore's handler list in place of moto's stubber, so the
  boto3 clients of this process (the state machine interpreter's, the tests') are routed here;
- over HTTP, `AwsEndpoint` wraps moto's WSGI application: the functions' sandboxes reach AWS through
  it (`AWS_ENDPOINT_URL`), as do the AWS CLI and boto3 against `make run`.
"""

from __future__ import annotations

import collections
import io
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.awsrequest import AWSResponse
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from offline import changes, iam
from offline.lambdas import LambdaRuntime, UnknownFunction
from offline.lambdas.models import service_error, unknown_function

INVOKE_PATH = re.compile(r"/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
DYNAMODB_LOCK = threading.RLock()
"""Serialises DynamoDB calls into moto, in-process and in the server alike."""

_runtimes: list[LambdaRuntime] = []
dynamodb_calls: collections.deque[str] = collections.deque(maxlen=1000)
"""The latest DynamoDB operations sent to moto, in order (e.g. "Query", "BatchGetItem"): tests count
reads. Bounded, so a long-running server does not keep every call."""


def activate(runtime: LambdaRuntime | None) -> None:
    """Route Lambda invocations to this runtime's functions alone (None: no offline stack is running)."""
    _runtimes[:] = [runtime] if runtime is not None else []


def attach(runtime: LambdaRuntime) -> None:
    """Route invocations of this runtime's functions to it, beside the stacks already running: two
    stages deployed in one account, as two branches' stacks are in AWS (their functions' names differ)."""
    if runtime not in _runtimes:
        _runtimes.append(runtime)


def detach(runtime: LambdaRuntime) -> None:
    """Stop routing to this runtime; the other stacks' functions are still served."""
    if runtime in _runtimes:
        _runtimes.remove(runtime)


def others_attached(runtime: LambdaRuntime) -> bool:
    """Whether another stack's runtime is routed to beside this one (they share one moto)."""
    return any(other is not runtime for other in _runtimes)


def _runtime_of(name: str) -> LambdaRuntime | None:
    """The runtime that holds the function `name` (a name or an ARN); the newest one when none does,
    so that an unknown function is answered with Lambda's own ResourceNotFoundException."""
    for runtime in reversed(_runtimes):
        try:
            runtime.find(name)
        except UnknownFunction:
            continue
        return runtime
    return _runtimes[-1] if _runtimes else None


def install() -> None:
    """Put `dispatch` in place of moto's stubber in botocore's handlers; safe to call again.

    botocore calls every `before-send` handler and keeps the first answer, so a handler placed beside
    moto's would not stop moto from also running the request: replacing it is the only way each
    request reaches moto once, under the lock when it is a DynamoDB request.
    """
    for position, entry in enumerate(BUILTIN_HANDLERS):
        if entry[1] is botocore_stubber:
            BUILTIN_HANDLERS[position] = (entry[0], dispatch, *entry[2:])


def invoke_lambda(
    path: str, body: bytes | None, authorization: str | bytes | None = None
) -> tuple[int, dict[str, str], bytes] | None:
    """Answer a Lambda Invoke request path, or None when the path is not an invocation. The caller
    (`authorization`'s access key) must be allowed `lambda:InvokeFunction` on the function."""
    match = INVOKE_PATH.search(path.split("?", 1)[0])
    if match is None:
        return None
    name = unquote(match.group("name"))
    runtime = _runtime_of(name)
    if runtime is None:
        return None
    denial = iam.authorize(
        iam.access_key(authorization), [iam.Call("lambda:InvokeFunction", iam.function_arn(name))]
    )
    if denial is not None:
        denied = service_error(403, "AccessDeniedException", denial.message)
        return denied.status, denied.headers(), denied.body
    try:
        response = runtime.invoke(name, body)
    except UnknownFunction as error:
        response = unknown_function(error)
    return response.status, response.headers(), response.body


def dispatch(request: Any, **kwargs: Any) -> AWSResponse | None:
    """botocore `before-send` handler in moto's place: Lambda invokes go to the local functions, DynamoDB
    requests into moto one at a time, everything else into moto as it would have gone."""
    if not botocore_stubber.enabled:
        return None
    url: str = request.url
    if "://lambda." in url:
        answer = invoke_lambda(
            url.split("amazonaws.com", 1)[-1], request.body, request.headers.get("Authorization")
        )
        if answer is not None:
            status, headers, body = answer
            return AWSResponse(url, status, headers, MockRawResponse(body))
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else str(target)
    operation = _operation(target, request.body)
    try:
        if "://dynamodb." in url:
            with DYNAMODB_LOCK:
                dynamodb_calls.append(operation)
                return botocore_stubber(event_name="before-send", request=request)
        return botocore_stubber(event_name="before-send", request=request)
    finally:
        if operation in CHANGING:
            changes.notify()


CHANGING = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem", "SendMessage", "Publish"}
)
"""The operations whose end `offline.changes` is told of: the writes a test may wait for (never a read,
which a waiting condition itself makes)."""


def _operation(target: str, body: Any) -> str:
    """The operation of a request: from its X-Amz-Target (JSON protocols), else its Query `Action`."""
    if target:
        return target.rsplit(".", 1)[-1]
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    match = re.search(r"(?:^|&)Action=([A-Za-z]+)", text[:200])
    return match.group(1) if match else ""


def _query_action(environ: dict[str, Any]) -> str:
    """A Query-protocol request's Action, from its query string (a form body is left unread: moto
    reads it)."""
    match = re.search(r"(?:^|&)Action=([A-Za-z]+)", str(environ.get("QUERY_STRING", "")))
    return match.group(1) if match else ""


@dataclass
class ServiceFault:
    """A test fault: the next `remaining` requests of one caller (a function's credentials) to one
    service are answered with the error a throttled or failing service answers."""

    access_key_id: str
    service: str
    code: str
    remaining: int
    mentioning: tuple[str, ...] = ()
    """Only requests whose body contains each of these texts (a booking id, say): faults of
    concurrent bookings stay apart."""


SERVICE_ERRORS: dict[tuple[str, str], tuple[int, str]] = {
    ("dynamodb", "ProvisionedThroughputExceededException"): (
        400,
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing "
        "your provisioning level with the UpdateTable API.",
    ),
    ("dynamodb", "ThrottlingException"): (400, "Rate of requests exceeds the allowed throughput."),
    ("dynamodb", "InternalServerError"): (500, "Internal server error"),
    ("sns", "Throttling"): (400, "Rate exceeded"),
    ("sns", "InternalError"): (500, "Request could not be completed"),
}
"""The errors a fault can answer, with DynamoDB's and SNS's own status and message for each ("Error
handling with DynamoDB", DynamoDB developer guide; "Common Errors", SNS API reference)."""
_DYNAMODB_ERROR_NAMESPACE = {
    "ThrottlingException": "com.amazon.coral.availability",
    "ProvisionedThroughputExceededException": "com.amazonaws.dynamodb.v20120810",
    "InternalServerError": "com.amazonaws.dynamodb.v20120810",
}


def _caller_key(environ: dict[str, Any]) -> str:
    """The access key id a SigV4 request is signed with ("" when it is not signed)."""
    match = re.search(r"Credential=([A-Z0-9]+)/", str(environ.get("HTTP_AUTHORIZATION", "")))
    return match.group(1) if match else ""


def _service(environ: dict[str, Any]) -> str:
    """The service a request is for, from its SigV4 credential scope."""
    match = re.search(
        r"Credential=[^/]+/[^/]+/[^/]+/([a-z0-9-]+)/", str(environ.get("HTTP_AUTHORIZATION", ""))
    )
    return match.group(1) if match else ""


def _fault_answer(fault: ServiceFault, start_response: StartResponse) -> list[bytes]:
    status, message = SERVICE_ERRORS[(fault.service, fault.code)]
    request_id = str(uuid.uuid4())
    if fault.service == "dynamodb":
        kind = f"{_DYNAMODB_ERROR_NAMESPACE[fault.code]}#{fault.code}"
        body = json.dumps({"__type": kind, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]
    else:
        side = "Receiver" if status >= 500 else "Sender"
        body = (
            '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error>'
            f"<Type>{side}</Type><Code>{fault.code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    start_response(f"{status} {'Bad Request' if status == 400 else 'Internal Server Error'}", headers)
    return [body]


StartResponse = Callable[..., Any]
GraphQL = Callable[..., tuple[int, dict[str, Any]]]
MAX_INVOKE_PAYLOAD = 6 * 1_048_576
"""Lambda's limit on a synchronous invocation's request payload."""
_REASONS = {200: "OK", 404: "Not Found", 413: "Payload Too Large", 429: "Too Many Requests"}


class AwsEndpoint:
    """The offline AWS endpoint as a WSGI application: moto's, with Lambda `Invoke` answered by the
    local functions and each DynamoDB request atomic."""

    def __init__(self) -> None:
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._faults: list[ServiceFault] = []
        self._faults_lock = threading.Lock()
        self.graphql: GraphQL | None = None
        """The stack's AppSync (`AppSyncApi.execute`): the functions that push a status change call
        the template's GraphQL URL, which offline is this endpoint's `/graphql`."""

    def fail(
        self, access_key_id: str, service: str, code: str, times: int, mentioning: tuple[str, ...] = ()
    ) -> None:
        """Answer the next `times` requests of this caller to `service` (whose body mentions
        `mentioning`, if given) with the error `code` (a key of SERVICE_ERRORS): a store throttling one
        function, say. A test facility."""
        if (service, code) not in SERVICE_ERRORS:
            raise ValueError(f"no such fault: {service} {code}; one of {sorted(SERVICE_ERRORS)}")
        with self._faults_lock:
            self._faults.append(ServiceFault(access_key_id, service, code, times, mentioning))

    def clear_faults(self) -> None:
        with self._faults_lock:
            self._faults.clear()

    def _fault_for(self, environ: dict[str, Any]) -> ServiceFault | None:
        if not self._faults:
            return None
        key, service = _caller_key(environ), _service(environ)
        if not any(fault.access_key_id == key and fault.service == service for fault in self._faults):
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = bytes(environ["wsgi.input"].read(min(length, MAX_INVOKE_PAYLOAD))) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it next, whole
        text = body.decode(errors="replace")
        with self._faults_lock:
            for fault in self._faults:
                if (
                    fault.access_key_id == key
                    and fault.service == service
                    and all(part in text for part in fault.mentioning)
                ):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        fault = self._fault_for(environ)
        if fault is not None:
            return _fault_answer(fault, start_response)
        path = environ.get("PATH_INFO", "")
        if path == "/graphql" and environ.get("REQUEST_METHOD") == "POST" and self.graphql is not None:
            return self._graphql(self.graphql, environ, start_response)
        if INVOKE_PATH.search(path) and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = bytes(environ["wsgi.input"].read(min(length, MAX_INVOKE_PAYLOAD))) if length > 0 else b""
            answer = invoke_lambda(path, body, environ.get("HTTP_AUTHORIZATION"))
            if answer is not None:
                status, headers, payload = answer
                start_response(f"{status} {_REASONS.get(status, 'Error')}", list(headers.items()))
                return [payload]
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith("DynamoDB_"):
            with DYNAMODB_LOCK:
                dynamodb_calls.append(target.rsplit(".", 1)[-1])
                written = list(self._moto(environ, start_response))
            if target.rsplit(".", 1)[-1] in CHANGING:
                changes.notify()
            return written
        if target.rsplit(".", 1)[-1] in CHANGING or _query_action(environ) in CHANGING:
            sent = list(self._moto(environ, start_response))
            changes.notify()
            return sent
        return self._moto(environ, start_response)

    @staticmethod
    def _graphql(graphql: GraphQL, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = bytes(environ["wsgi.input"].read(min(length, MAX_INVOKE_PAYLOAD))) if length > 0 else b""
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        status, answer = graphql(
            body, authorization=None, headers=headers, source_ip=str(environ.get("REMOTE_ADDR", "127.0.0.1"))
        )
        payload = json.dumps(answer).encode()
        start_response(f"{status} {_REASONS.get(status, 'Error')}", [("Content-Type", "application/json")])
        return [payload]


ENDPOINT_BACKLOG = 512


class _QuietRequests(WSGIRequestHandler):
    """The sandboxes' calls are the functions' business: no access log line for each."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class EndpointServer:
    """`AwsEndpoint` on a loopback port, served from a background thread."""

    def __init__(self, app: AwsEndpoint, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietRequests
        )
        # Every sandbox and state machine task calls here: a burst above werkzeug's backlog of 128 would
        # have SYNs dropped and retried only after 1, 3 and 7 s. Linux takes a second listen() as the
        # new backlog.
        self._server.socket.listen(ENDPOINT_BACKLOG)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="aws-endpoint", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
