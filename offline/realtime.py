"""AppSync's real-time endpoint offline: GraphQL subscriptions over a WebSocket, as AppSync speaks them.

    ws://127.0.0.1:4000/graphql/realtime?header=<base64 JSON of the auth headers>&payload=e30=
    subprotocol graphql-ws

In AWS the endpoint is `wss://<id>.appsync-realtime-api.<region>.amazonaws.com/graphql`, or
`wss://<custom domain>/graphql/realtime` when the API has a custom domain. Offline it shares the port
of `POST /graphql`, so it takes the custom domain's path (docs/decisions/0011, "Offline real-time
endpoint"). The protocol is the one AWS documents in "Building a real-time WebSocket client"
(AppSync developer guide):

- **Handshake.** The headers that authorize the connection (`{"Authorization": "<user pool ID or
  access token>", "host": …}`, or a SigV4 signature of `POST /graphql/connect` with the body `{}`) come
  as JSON in base64 in one of two forms: today's clients (Amplify JS v6, AWS's Apollo link) offer a
  second subprotocol beside `graphql-ws`, `header-<base64url JSON, unpadded>`, and no query string;
  older ones (gql) send `?header=<base64 JSON>&payload=e30=`. The subprotocol wins when both come; the
  server answers with `graphql-ws` either way. The headers are checked as
  `POST /graphql` checks its `Authorization` (`AppSyncApi.authenticate`); a connection they do not
  authorize gets `connection_error` (`UnauthorizedException`, `errorCode` 401) and is closed.
- `connection_init` → `connection_ack` with `connectionTimeoutMs`; then a `ka` at once and every
  `keep_alive` seconds (a client that hears none for `connectionTimeoutMs` should reconnect).
- `start` `{id, payload: {data: "<JSON of {query, variables, operationName}>", extensions:
  {authorization: {…headers…}}}}`: its own authorization (a SigV4 signature of `POST /graphql` with
  `data` as the body), then the document: one subscription field, validated against the schema, its
  auth directives checked, and its resolver run (the Lambda data source, as for any field). Any
  error → `error` `{id, payload: {errors: […]}}` and nothing is registered; else `start_ack`.
- `data` `{id, payload: {data: {<field>: …}}}` for each mutation named in the field's
  `@aws_subscribe(mutations: […])` whose result matches the subscription's arguments (every argument
  given equals the result's field of the same name), shaped by the subscriber's selection set from
  what the mutation selected (a field the mutation did not select is null).
- `stop` `{id}` → `complete` `{id}`. A message that is not one of these (not JSON, no type, an
  unknown type, a start without `data`) → `error` `UnsupportedOperation`, "unknown not supported
  through the realtime channel"; a query or a mutation sent to `start` → "query (mutation) not
  supported through the realtime channel". The connection stays open after an `error`.

Deliveries never block the mutation that makes them: each connection has an outbox (a bounded
queue) and a sender thread that writes it, with the keep-alives. A client that stops reading fills
its own outbox and is disconnected; nobody else waits for it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import simple_websocket
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    get_argument_values,
    get_named_type,
    get_variable_values,
    parse,
)
from graphql.language import DocumentNode, FragmentDefinitionNode, OperationDefinitionNode
from wsproto.utilities import LocalProtocolError

from offline import changes
from offline.auth import IamCaller, Identity, InvalidToken

if TYPE_CHECKING:
    from offline.appsync import AppSyncApi

PATH = "/graphql/realtime"
"""Where the endpoint listens: the path AppSync gives it on a custom domain."""
SUBPROTOCOL = "graphql-ws"
HEADER_PROTOCOL_PREFIX = "header-"
"""The second subprotocol today's clients offer: `header-` and the handshake's headers, base64url JSON."""
CONNECT_PATH = "/graphql/connect"
"""What a SigV4 signature in the handshake's `header` signs (POST, body `{}`), as AWS documents."""
CONNECTION_TIMEOUT_MS = 300_000
"""What AppSync's `connection_ack` says: a client that hears no `ka` for this long should reconnect."""
KEEP_ALIVE_SECONDS = 60.0
MAX_SUBSCRIPTIONS = 100
"""AppSync's quota of subscriptions on one connection."""
MAX_MESSAGE_BYTES = 1_048_576
"""A larger client message closes the connection (1009), as a larger HTTP request gets 413."""
OUTBOX_LIMIT = 1_000
"""Messages waiting for one slow client; one more and that client is disconnected."""
UNKNOWN = "unknown"

StartResponse = Callable[..., Any]


# ---------------------------------------------------------------------- which mutations feed which fields
def subscription_triggers(schema: GraphQLSchema) -> dict[str, tuple[str, ...]]:
    """Mutation field name → the Subscription fields whose `@aws_subscribe(mutations: […])` name it."""
    triggers: dict[str, list[str]] = {}
    subscription = schema.subscription_type
    for name, field_def in (subscription.fields if subscription else {}).items():
        for directive in field_def.ast_node.directives or () if field_def.ast_node else ():
            if directive.name.value != "aws_subscribe":
                continue
            for argument in directive.arguments or ():
                if argument.name.value == "mutations" and isinstance(argument.value, ListValueNode):
                    for value in argument.value.values:
                        if isinstance(value, StringValueNode):
                            triggers.setdefault(value.value, []).append(name)
    return {mutation: tuple(fields) for mutation, fields in triggers.items()}


# ---------------------------------------------------------------------- selection sets
def _fields(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    """The fields of a selection set, fragments spread in place (type conditions are not checked:
    the types here are objects, never unions or interfaces)."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            yield from _fields(fragments[selection.name.value].selection_set, fragments)


def _by_name(
    selection_set: SelectionSetNode | None, value: Any, fragments: Mapping[str, FragmentDefinitionNode]
) -> Any:
    """A response value (keyed by the selection's aliases) keyed by field names instead: what the
    mutation selected, as subscribers' selection sets and arguments name it."""
    if isinstance(value, list):
        return [_by_name(selection_set, item, fragments) for item in value]
    if not isinstance(value, Mapping) or selection_set is None:
        return value
    named: dict[str, Any] = {}
    for node in _fields(selection_set, fragments):
        key = (node.alias or node.name).value
        if key in value:
            named[node.name.value] = _by_name(node.selection_set, value[key], fragments)
    return named


def _shape(
    selection_set: SelectionSetNode | None,
    value: Any,
    type_name: str,
    schema: GraphQLSchema,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> Any:
    """The subscriber's view of a published value: its selection set, its aliases, null for what the
    mutation did not select."""
    if isinstance(value, list):
        return [_shape(selection_set, item, type_name, schema, fragments) for item in value]
    if not isinstance(value, Mapping) or selection_set is None:
        return value
    parent = schema.get_type(type_name)
    shaped: dict[str, Any] = {}
    for node in _fields(selection_set, fragments):
        name, key = node.name.value, (node.alias or node.name).value
        if name == "__typename":
            shaped[key] = type_name
            continue
        field_def = parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
        child = get_named_type(field_def.type).name if field_def else ""
        shaped[key] = _shape(node.selection_set, value.get(name), child, schema, fragments)
    return shaped


# ---------------------------------------------------------------------- one subscription
@dataclass(eq=False)
class _Subscription:
    id: str
    connection: _Connection
    field_name: str
    key: str
    """The response key: the field's alias, or its name."""
    arguments: dict[str, Any]
    selection_set: SelectionSetNode | None
    type_name: str
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)

    def matches(self, published: Mapping[str, Any]) -> bool:
        """AppSync's argument filtering: every argument given equals the result's field of that name
        (a field the mutation did not select matches nothing)."""
        return all(
            name in published and published[name] == value
            for name, value in self.arguments.items()
            if value is not None
        )


class _Close:
    """The sender's last message: close the socket once what is queued before it is sent."""


_CLOSE = _Close()


class _StartRefused(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0].get("message") if errors else "refused")
        self.errors = errors


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "message": message}


def _unsupported(operation: str) -> _StartRefused:
    return _StartRefused(
        [_error("UnsupportedOperation", f"{operation} not supported through the realtime channel")]
    )


# ---------------------------------------------------------------------- one connection
class _Connection:
    """One client's WebSocket: the handler thread reads it, the sender thread writes it."""

    def __init__(self, endpoint: RealtimeEndpoint, ws: Any, source_ip: str) -> None:
        self.endpoint = endpoint
        self.ws = ws
        self.source_ip = source_ip
        self.outbox: queue.Queue[dict[str, Any] | _Close] = queue.Queue(maxsize=OUTBOX_LIMIT)
        self.subscriptions: dict[str, _Subscription] = {}
        self.closed = threading.Event()

    # -------------------------------------------------------------- lifecycle
    def run(self, query_string: str, header_protocol: str | None = None) -> None:
        sender = threading.Thread(target=self._send_loop, name="realtime-sender", daemon=True)
        sender.start()
        try:
            refusal = self._connect(query_string, header_protocol)
            if refusal is not None:
                self.push({"type": "connection_error", "payload": {"errors": [refusal]}})
                self.push(_CLOSE)
            self._receive_loop()
        finally:
            self.closed.set()
            self.endpoint._forget(self)
            with contextlib.suppress(queue.Full):
                self.outbox.put_nowait(_CLOSE)
            sender.join(timeout=2.0)
            self._hang_up()

    def _connect(self, query_string: str, header_protocol: str | None) -> dict[str, Any] | None:
        """The handshake's headers (the `header-…` subprotocol, else the `header` parameter): None
        when they authorize the connection, else the error to send."""
        params = _query(query_string)
        if header_protocol is not None:
            params = {"header": header_protocol.removeprefix(HEADER_PROTOCOL_PREFIX), "payload": "e30="}
        if "header" not in params or "payload" not in params:
            return {
                **_error(
                    "BadRequestException",
                    'Both, the "header", and the "payload" query string parameters are required.',
                ),
                "errorCode": 400,
            }
        try:
            headers = _decode_json(params["header"])
            if not isinstance(headers, dict):
                raise ValueError
        except ValueError:
            where = "header- subprotocol" if header_protocol is not None else "header query string parameter"
            return {
                **_error("BadRequestException", f"The {where} must be base64 JSON."),
                "errorCode": 400,
            }
        lowered = {str(name).lower(): str(value) for name, value in headers.items()}
        try:
            self.endpoint.api.authenticate(lowered.get("authorization"), lowered, b"{}", CONNECT_PATH)
        except InvalidToken as error:
            return {**_error("UnauthorizedException", error.message), "errorCode": 401}
        return None

    def _receive_loop(self) -> None:
        while not self.closed.is_set():
            try:
                frame = self.ws.receive(timeout=0.5)
            except simple_websocket.ConnectionClosed:
                return
            if frame is None:
                if not self.ws.connected:
                    return
                continue
            self._handle(frame)

    def _send_loop(self) -> None:
        keep_alive = self.endpoint.keep_alive
        next_ka: float | None = None
        while True:
            timeout = None if next_ka is None else max(0.0, next_ka - time.monotonic())
            try:
                message = self.outbox.get(timeout=timeout)
            except queue.Empty:
                message = {"type": "ka"}
            if isinstance(message, _Close):
                self.closed.set()
                self._close_socket()
                return
            try:
                self.ws.send(json.dumps(message))
            except (simple_websocket.ConnectionClosed, OSError, LocalProtocolError):  # closed meanwhile
                self.closed.set()
                return
            if message.get("type") in ("ka", "connection_ack"):
                next_ka = time.monotonic() + keep_alive
                if message["type"] == "connection_ack":
                    next_ka = time.monotonic()  # AppSync sends a ka right after the ack

    def push(self, message: dict[str, Any] | _Close) -> bool:
        """Queue a message for the sender; a client whose outbox is full is disconnected."""
        if self.closed.is_set() and not isinstance(message, _Close):
            return False
        try:
            self.outbox.put_nowait(message)
        except queue.Full:
            self.closed.set()
            self._hang_up()
            return False
        return True

    def _close_socket(self) -> None:
        with contextlib.suppress(simple_websocket.ConnectionClosed, OSError):
            self.ws.close()

    def _hang_up(self) -> None:
        """End the TCP connection without writing to it (a close frame to a client that stopped reading
        would wait forever): unblocks the sender, ends the reader, and ends the HTTP server's wait for
        another request on this socket."""
        with contextlib.suppress(OSError):
            self.ws.sock.shutdown(socket.SHUT_RDWR)

    # -------------------------------------------------------------- messages
    def _handle(self, frame: str | bytes) -> None:
        try:
            message = json.loads(frame) if isinstance(frame, str) else None
        except (ValueError, RecursionError):
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        message_id = message.get("id") if isinstance(message, dict) else None
        if kind == "connection_init":
            self.push({"type": "connection_ack", "payload": {"connectionTimeoutMs": CONNECTION_TIMEOUT_MS}})
            return
        if kind in ("start", "stop") and isinstance(message_id, str) and message_id:
            assert isinstance(message, dict)
            try:
                if kind == "start":
                    self._start(message_id, message.get("payload"))
                else:
                    self._stop(message_id)
                    self.push({"type": "complete", "id": message_id})
            except _StartRefused as refusal:
                self.push({"type": "error", "id": message_id, "payload": {"errors": refusal.errors}})
            return
        error_id = message_id if isinstance(message_id, str) else ""
        self.push({"type": "error", "id": error_id, "payload": {"errors": _unsupported(UNKNOWN).errors}})

    def _start(self, message_id: str, payload: Any) -> None:
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
            raise _unsupported(UNKNOWN)
        data_text: str = payload["data"]
        try:
            request = json.loads(data_text)
        except (ValueError, RecursionError):
            raise _unsupported(UNKNOWN) from None
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            raise _unsupported(UNKNOWN)
        variables = request.get("variables") or {}
        operation_name = request.get("operationName")
        if not isinstance(variables, dict) or not (operation_name is None or isinstance(operation_name, str)):
            raise _StartRefused([_error("BadRequestException", "variables must be an object.")])
        extensions = payload.get("extensions")
        authorization = extensions.get("authorization") if isinstance(extensions, dict) else None
        headers = (
            {str(name).lower(): str(value) for name, value in authorization.items()}
            if isinstance(authorization, dict)
            else {}
        )
        api = self.endpoint.api
        try:
            identity = api.authenticate(headers.get("authorization"), headers, data_text.encode(), "/graphql")
        except InvalidToken as error:
            raise _StartRefused([_error("UnauthorizedException", error.message)]) from None
        if message_id in self.subscriptions:
            raise _StartRefused(
                [_error("DuplicatedOperationError", f"Duplicated operation with id {message_id}")]
            )
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise _StartRefused(
                [
                    _error(
                        "MaxSubscriptionsReachedError",
                        f"Max number of {MAX_SUBSCRIPTIONS} subscriptions reached",
                    )
                ]
            )
        subscription = self.endpoint._prepare(
            self, message_id, request["query"], variables, operation_name, identity, headers
        )
        self.subscriptions[message_id] = subscription
        self.endpoint._register(subscription)

    def _stop(self, message_id: str) -> None:
        subscription = self.subscriptions.pop(message_id, None)
        if subscription is not None:
            self.endpoint._unregister(subscription)


def _query(query_string: str) -> dict[str, str]:
    """The query string's parameters, percent-decoded but with `+` kept: AWS's examples put the
    base64 `header` in the URL as it is, and base64 has `+` where a form encoding has spaces."""
    params: dict[str, str] = {}
    for part in query_string.split("&"):
        name, _, value = part.partition("=")
        params.setdefault(unquote(name), unquote(value))
    return params


def _decode_json(text: str) -> Any:
    """Base64 (standard or URL-safe, padding optional) of a JSON document."""
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        return json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(str(error)) from None


# ---------------------------------------------------------------------- the endpoint
class RealtimeEndpoint:
    """The API's real-time endpoint: a WSGI application for the HTTP server (`PATH`), and the registry
    of subscriptions that `AppSyncApi.execute` publishes each triggering mutation's result to.

        server: if path == realtime.PATH: return api.realtime(environ, start_response)
        tests:  api.realtime.subscriptions("onBookingStatusChanged")  # how many are registered
    """

    def __init__(self, api: AppSyncApi, *, keep_alive: float = KEEP_ALIVE_SECONDS) -> None:
        self.api = api
        self.keep_alive = keep_alive
        self.triggers = subscription_triggers(api.schema)
        self._lock = threading.Lock()
        self._registry: dict[str, set[_Subscription]] = {}
        self._connections: set[_Connection] = set()

    # -------------------------------------------------------------- WSGI
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Upgrade to a WebSocket and serve it on this (werkzeug) handler thread until it closes."""
        if str(environ.get("HTTP_UPGRADE", "")).lower() != "websocket":
            return _http_error(
                start_response,
                400,
                f"This is AppSync's real-time endpoint: open a WebSocket with the subprotocol {SUBPROTOCOL}.",
            )
        offered = [p.strip() for p in str(environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "")).split(",")]
        if SUBPROTOCOL not in offered:
            return _http_error(start_response, 400, f"The WebSocket subprotocol must be {SUBPROTOCOL}.")
        header_protocol = next((p for p in offered if p.startswith(HEADER_PROTOCOL_PREFIX)), None)
        sock = environ.get("werkzeug.socket")
        if sock is None:
            return _http_error(start_response, 500, "The real-time endpoint needs werkzeug's server.")
        sock.settimeout(None)  # the server's read timeout is for HTTP requests, not an idle subscriber
        ws = simple_websocket.Server.accept(
            environ, subprotocols=[SUBPROTOCOL], max_message_size=MAX_MESSAGE_BYTES
        )
        connection = _Connection(self, ws, str(environ.get("REMOTE_ADDR", "127.0.0.1")))
        with self._lock:
            self._connections.add(connection)
        connection.run(str(environ.get("QUERY_STRING", "")), header_protocol)
        # The response was the upgrade: werkzeug reads this as a client gone, and writes nothing more.
        raise ConnectionError("WebSocket closed")

    def close(self) -> None:
        """Close every connection (the server is stopping)."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.push(_CLOSE)

    # -------------------------------------------------------------- registry
    def subscriptions(self, field_name: str | None = None) -> int:
        """How many subscriptions are registered (of one Subscription field, or all)."""
        with self._lock:
            if field_name is not None:
                return len(self._registry.get(field_name, ()))
            return sum(len(subscriptions) for subscriptions in self._registry.values())

    def _register(self, subscription: _Subscription) -> None:
        """Registered, then `start_ack` queued, under the registry's lock: a client that acts on
        `start_ack` is already subscribed, and a mutation that finds the subscription in the registry
        (after the lock) queues its data behind the `start_ack`."""
        with self._lock:
            if not subscription.connection.closed.is_set():
                self._registry.setdefault(subscription.field_name, set()).add(subscription)
                subscription.connection.push({"type": "start_ack", "id": subscription.id})
        changes.notify()  # a test waiting for a client to be listening (`subscriptions`) is told

    def _unregister(self, subscription: _Subscription) -> None:
        with self._lock:
            self._registry.get(subscription.field_name, set()).discard(subscription)

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)
            for subscription in connection.subscriptions.values():
                self._registry.get(subscription.field_name, set()).discard(subscription)

    # -------------------------------------------------------------- start
    def _prepare(
        self,
        connection: _Connection,
        message_id: str,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None,
        identity: Identity | IamCaller,
        headers: dict[str, str],
    ) -> _Subscription:
        """Parse, validate and run the subscription field's resolver; the subscription to register."""
        api, schema = self.api, self.api.schema
        try:
            document = parse(query)
        except GraphQLError:
            raise _StartRefused(
                [_error("MalformedHttpRequestException", "Unable to parse GraphQL query.")]
            ) from None
        operation = _operation(document, operation_name)
        if operation.operation != OperationType.SUBSCRIPTION:
            raise _unsupported(operation.operation.value)
        errors = api.validation_errors(document)
        if errors:
            raise _StartRefused(errors)
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        [node] = list(_fields(operation.selection_set, fragments))  # validation: exactly one root field
        subscription_type = schema.subscription_type
        assert subscription_type is not None
        field_def = subscription_type.fields[node.name.value]
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            raise _StartRefused(api.request_errors(coerced))
        body = api.run(document, variables, operation_name, identity, headers, connection.source_ip)
        if body.get("errors"):
            raise _StartRefused(body["errors"])
        return _Subscription(
            id=message_id,
            connection=connection,
            field_name=node.name.value,
            key=(node.alias or node.name).value,
            arguments=get_argument_values(field_def, node, coerced),
            selection_set=node.selection_set,
            type_name=get_named_type(field_def.type).name,
            fragments=fragments,
        )

    # -------------------------------------------------------------- publish
    def mutation_answered(
        self, document: DocumentNode, operation: OperationDefinitionNode, data: Mapping[str, Any] | None
    ) -> int:
        """After a mutation request: publish each root field's result whose field some subscription
        `@aws_subscribe`s to. Returns how many deliveries were queued."""
        if not data or operation.operation != OperationType.MUTATION:
            return 0
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        queued = 0
        for node in _fields(operation.selection_set, fragments):
            value = data.get((node.alias or node.name).value)
            if node.name.value in self.triggers and isinstance(value, Mapping):
                queued += self.publish(node.name.value, _by_name(node.selection_set, value, fragments))
        return queued

    def publish(self, mutation_field: str, published: Mapping[str, Any]) -> int:
        """Queue `published` (the mutation's result, keyed by field names) for every matching
        subscription of the fields that mutation triggers; never waits for a client."""
        queued = 0
        for field_name in self.triggers.get(mutation_field, ()):
            with self._lock:
                subscriptions = list(self._registry.get(field_name, ()))
            for subscription in subscriptions:
                if not subscription.matches(published):
                    continue
                shaped = _shape(
                    subscription.selection_set,
                    published,
                    subscription.type_name,
                    self.api.schema,
                    subscription.fragments,
                )
                message = {
                    "type": "data",
                    "id": subscription.id,
                    "payload": {"data": {subscription.key: shaped}},
                }
                queued += subscription.connection.push(message)
        return queued


def _operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None and len(operations) > 1:
        raise _StartRefused(
            [
                _error(
                    "BadRequestException",
                    "Must provide operation name if query contains multiple operations.",
                )
            ]
        )
    for operation in operations:
        if operation_name is None or (operation.name and operation.name.value == operation_name):
            return operation
    if operation_name is None:
        raise _unsupported(UNKNOWN)
    raise _StartRefused([_error("BadRequestException", f"Unknown operation named '{operation_name}'.")])


def _http_error(start_response: StartResponse, status: int, message: str) -> list[bytes]:
    body = json.dumps({"errors": [_error("BadRequestException", message)]}).encode()
    reason = {400: "Bad Request", 500: "Internal Server Error"}[status]
    start_response(
        f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


# ---------------------------------------------------------------------- a client
def realtime_url(graphql_url: str) -> str:
    """The real-time endpoint of a GraphQL URL, as AWS documents it: on AppSync's own domain
    `wss://<id>.appsync-realtime-api.<region>.amazonaws.com/graphql`; on a custom domain, and offline
    (`http://127.0.0.1:4000/graphql`), the GraphQL URL's path and `/realtime`."""
    parts = urlsplit(graphql_url)
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    if ".appsync-api." in parts.netloc:
        host = parts.netloc.replace(".appsync-api.", ".appsync-realtime-api.", 1)
        return urlunsplit((scheme, host, parts.path or "/graphql", "", ""))
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/realtime", "", ""))


def connection_url(graphql_url: str, headers: Mapping[str, str]) -> str:
    """The URL a client opens for the API at `graphql_url`, with the headers that authorize the
    connection in `header` (base64 JSON) and `payload=e30=`, as AWS documents the handshake."""
    header = base64.b64encode(json.dumps(dict(headers)).encode()).decode()
    return f"{realtime_url(graphql_url)}?header={quote(header, safe='')}&payload=e30="


class WebSocketClient(simple_websocket.Client):
    """simple_websocket's client, keeping the frames that arrive with the handshake's answer.

    The library reads the `101 Switching Protocols` and whatever follows it in the same read, handles
    the first event only, and leaves the rest for its next read; when that read finds the connection
    closed, the rest is lost. A server that refuses a connection at once (`connection_error`, then the
    close) sends both right behind the 101, so a loaded machine delivers them in that one read and the
    client saw a bare close (1005) instead of the error it is owed. Here they are handled at once; a
    close among them ends the connection when the reader thread next reads, after the frames before it.

        ws = WebSocketClient.connect(url, subprotocols=[SUBPROTOCOL])
    """

    def handshake(self) -> None:
        super().handshake()
        self._handle_events()
        self.connected = True


class RealtimeClient:
    """A small client of the endpoint, for tests and the demo: messages as dicts, every wait bounded.

    with RealtimeClient.connect("http://127.0.0.1:4000/graphql", token) as client:
        query = "subscription($id: ID!) { onBookingStatusChanged(id: $id) { status } }"
        client.subscribe("s1", query, {"id": booking_id}, token)  # {"type": "start_ack", "id": "s1"}
        change = client.receive(timeout=30)  # {"type": "data", "id": "s1", "payload": {"data": …}}
    """

    def __init__(self, ws: Any, host: str) -> None:
        self.ws = ws
        self.host = host

    @classmethod
    def connect(
        cls, graphql_url: str, token: str, *, init: bool = True, timeout: float = 10.0
    ) -> RealtimeClient:
        """Open the real-time endpoint of the API at `graphql_url` with a user pool ID token (the
        `host` AppSync wants is the GraphQL URL's), then `connection_init` and its ack."""
        host = urlsplit(graphql_url).netloc
        ws = WebSocketClient.connect(
            connection_url(graphql_url, {"Authorization": token, "host": host}), subprotocols=[SUBPROTOCOL]
        )
        client = cls(ws, host)
        if init:
            client.send({"type": "connection_init"})
            ack = client.receive(timeout)
            if ack.get("type") != "connection_ack":
                client.close()
                raise ConnectionError(f"no connection_ack: {ack}")
        return client

    def __enter__(self) -> RealtimeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, message: dict[str, Any] | str | bytes) -> None:
        self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    def receive(self, timeout: float = 10.0, *, skip_ka: bool = True) -> dict[str, Any]:
        """The next message (keep-alives skipped unless asked for); TimeoutError if none comes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no message in {timeout}s")
            try:
                frame = self.ws.receive(timeout=left)
            except simple_websocket.ConnectionClosed:
                raise ConnectionError("the server closed the connection") from None
            if frame is None:
                if not self.ws.connected:
                    raise ConnectionError("the server closed the connection")
                continue
            message: dict[str, Any] = json.loads(frame)
            if skip_ka and message.get("type") == "ka":
                continue
            return message

    def start(self, subscription_id: str, query: str, variables: dict[str, Any], token: str) -> None:
        data = json.dumps({"query": query, "variables": variables})
        self.send(
            {
                "id": subscription_id,
                "type": "start",
                "payload": {
                    "data": data,
                    "extensions": {"authorization": {"Authorization": token, "host": self.host}},
                },
            }
        )

    def subscribe(
        self, subscription_id: str, query: str, variables: dict[str, Any], token: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """`start`, then the answer: `start_ack`, or the `error` (returned, not raised)."""
        self.start(subscription_id, query, variables, token)
        return self.receive(timeout)

    def close(self) -> None:
        with contextlib.suppress(simple_websocket.ConnectionClosed, OSError):
            self.ws.close()
