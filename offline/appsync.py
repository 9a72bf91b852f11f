"""AppSync offline: graphql-core runs schema.graphql the way AppSync runs it, resolvers from template.yaml.

    api = AppSyncApi(ROOT / "schema.graphql", ROOT / "template.yaml", lambdas, TokenIssuer())
    status, body = api.execute({"query": "{ getFlight(id: \\"F1\\") { id } }"}, authorization=token)

What AppSync does with a request, in order, and how this module reproduces it:

1. **Authorization.** A Cognito user pool ID token, or, when the template lists `AWS_IAM` among the
   API's `AdditionalAuthenticationProviders`, a SigV4 signature (`AWS4-HMAC-SHA256`); anything else
   is 401 `UnauthorizedException` and nothing runs. Offline the tokens are `offline.auth`'s (HS256, a
   local key), and a signature is checked against the credentials given to `AppSyncApi(iam=…)`
   (`offline.auth.IamCredentials`: there is no STS offline; `IamCaller.role_session` makes a role's
   session, or an identity pool's). An IAM caller's `identity` is AppSync's IAM shape (accountId,
   cognitoIdentityPoolId, cognitoIdentityId, sourceIp, username, userArn, cognitoIdentityAuthType,
   cognitoIdentityAuthProvider), and it may read only fields whose directives include `@aws_iam`.
2. **The body.** JSON with a string `query`; an empty or unreadable body, or a query that is not
   GraphQL, is 400 `MalformedHttpRequestException` (the messages AppSync sends).
3. **Validation** against the schema, with AppSync's scalars and directives declared first (the SDL
   above `schema.graphql`): an unknown field, a bad argument or a bad scalar literal or variable
   (`"2027-13-45"` for an `AWSDate`) gives HTTP 200 with `data: null` and the errors, and no resolver
   runs. AppSync answers validation errors with 200, not 400: its team documented the wire behaviour in
   https://github.com/graphql/graphql-over-http/issues/81, which is what this follows.
4. **Execution.** Every field with an `AWS::AppSync::Resolver` calls its data source's Lambda function
   with the direct Lambda resolver event, through `LambdaRuntime.invoke`; a function error becomes a
   field error whose `errorType`/`message` are the function's `errorType`/`errorMessage`. A field with
   no resolver reads its parent's property of the same name. Before a field resolves, its auth
   directives are checked: a caller they do not admit gets `Unauthorized` for that field, a null, and
   its resolver never runs.
5. **Batching.** A resolver with `MaxBatchSize` gets all of its field's resolutions of one execution
   level as one invocation whose payload is a list of events (in chunks of `MaxBatchSize`), and must
   answer with a list in the same order. Each item is read as AppSync's documented default batch
   response template reads it ("Direct Lambda Resolvers: Batching enabled", resolver mapping template
   reference for Lambda): `{"data": value}` resolves the item's field to `value`; an item with
   `errorMessage` is that item's error (`errorType`, `errorMessage`, and `data` in the error entry)
   and the field is null; other keys are ignored; a null item is null. Any other answer is refused
   with a `MappingTemplate` error, never read as a value or a silent null: an item with neither
   `data` nor `errorMessage` (a bare object, as Powertools' `batch_resolver` returns one), an item
   that is not an object, and an answer that is not a list of the batch's length, which fails every
   item of the batch (decision 0013: the documented shape is the only one offline accepts).
6. **Limits.** As AWS documents them, both are field errors, not request errors: a field deeper than
   `QueryDepthLimit` (a root field is depth 1) is an error and null, and the null travels up to the
   nearest nullable parent; a resolver run past `ResolverCountLimit` is an error
   (`ResolverExecutionLimitReached`) and its function is not invoked. A document that selects more
   fields with resolvers than the limit (aliases and fragment spreads counted) cannot stay under it,
   so it is refused whole, with one `ResolverExecutionLimitReached` error, before anything runs; the
   count takes time linear in the document, and so does placing every error on its line and column.
7. **Subscriptions.** `api.realtime` (`offline.realtime`) is AppSync's real-time endpoint: after a
   mutation request runs, each root field that a Subscription field `@aws_subscribe`s to and that
   answered an object is published to that field's subscriptions whose arguments it matches; the
   publishing only queues messages, so the mutation's answer never waits for a subscriber.

Not emulated: pipeline resolvers, VTL/JS mapping templates and non-Lambda data sources (the template
is refused at construction, naming what it uses), enhanced subscription filters, caching, the user pool's
`DefaultAction: DENY`, and two habits of graphql-java, on which AppSync runs: its wording of validation
messages (graphql-core's say the same things in other words), and its reporting of every item's error
when several items of a list fail under a non-null type (graphql-core stops at the first error that
nulls the list, so the response lists that one).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import ipaddress
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from inspect import isawaitable
from pathlib import Path
from typing import Any, cast

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NoSchemaIntrospectionCustomRule,
    OperationType,
    SelectionSetNode,
    Source,
    SourceLocation,
    StringValueNode,
    ValueNode,
    build_schema,
    get_named_type,
    parse,
    print_ast,
    specified_rules,
    validate,
)
from graphql import execute as execute_document
from graphql.language import ConstDirectiveNode, DocumentNode, FragmentDefinitionNode, OperationDefinitionNode

from offline import iam as offline_iam
from offline import template as cfn
from offline.auth import IamCaller, IamCredentials, Identity, InvalidToken, TokenIssuer
from offline.lambdas import LambdaRuntime, UnknownFunction
from offline.realtime import RealtimeEndpoint

APPSYNC_DEFINITIONS = """
scalar AWSDate
scalar AWSTime
scalar AWSDateTime
scalar AWSTimestamp
scalar AWSEmail
scalar AWSJSON
scalar AWSURL
scalar AWSPhone
scalar AWSIPAddress
directive @aws_cognito_user_pools(cognito_groups: [String]) on OBJECT | FIELD_DEFINITION
directive @aws_auth(cognito_groups: [String]) on OBJECT | FIELD_DEFINITION
directive @aws_iam on OBJECT | FIELD_DEFINITION
directive @aws_api_key on OBJECT | FIELD_DEFINITION
directive @aws_oidc on OBJECT | FIELD_DEFINITION
directive @aws_lambda on OBJECT | FIELD_DEFINITION
directive @aws_subscribe(mutations: [String]) on OBJECT | FIELD_DEFINITION
"""
"""What AppSync declares before a schema is read: its scalars and its directives."""

MAPPING_PROPERTIES = frozenset(
    {"Code", "RequestMappingTemplate", "ResponseMappingTemplate", "PipelineConfig"}
)
"""What a resolver that is not a direct Lambda resolver has: offline runs no VTL or JS."""
COGNITO_DIRECTIVES = frozenset({"aws_cognito_user_pools", "aws_auth"})
AUTH_DIRECTIVES = COGNITO_DIRECTIVES | {"aws_iam", "aws_api_key", "aws_oidc", "aws_lambda"}
DEFAULT_RESOLVER_COUNT_LIMIT = 10_000
"""AppSync's limit when ResolverCountLimit is 0 or absent (QueryDepthLimit 0 means no limit)."""
SHAPE_ERROR = "MappingTemplate"
"""The errorType of a batch answer offline refuses: AppSync's type for a resolver response it cannot
map (troubleshooting guide, "Mapping template errors"); AWS documents no error for these answers."""
SERIAL_FIELDS = 500
"""graphql-core chains a mutation's root fields one inside the other (~950 overflow Python's stack):
offline refuses a mutation request selecting more resolver fields than this before any of them runs,
even when ResolverCountLimit (up to 10,000) would allow more."""


class FieldError(Exception):
    """An error of one field, in AppSync's terms: the field is null and the response lists the error."""

    def __init__(self, error_type: str | None, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.data = data
        """What the error entry carries as `data` (a batch item's `data` beside its `errorMessage`)."""


class _ScalarOutputError(Exception):
    """A resolver answered a value its AppSync scalar cannot represent."""


# ---------------------------------------------------------------------- AppSync's scalars
_OFFSET = r"(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)"
_DATE = re.compile(rf"(\d{{4}})-(\d{{2}})-(\d{{2}}){_OFFSET}?")
_TIME = re.compile(rf"(\d{{2}}):(\d{{2}})(?::(\d{{2}})(?:\.\d{{1,9}})?)?{_OFFSET}?")
_DATETIME = re.compile(rf"(\d{{4}}-\d{{2}}-\d{{2}})T(\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d{{1,9}})?)?){_OFFSET}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{3,}[0-9]")


def _text(value: Any, scalar: str, shape: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{scalar} must be a string ({shape}), not {type(value).__name__}")
    return value


def _aws_date(value: Any) -> str:
    text = _text(value, "AWSDate", "YYYY-MM-DD")
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError("not a valid AWSDate (YYYY-MM-DD)") from None
    return text


def _aws_time(value: Any) -> str:
    text = _text(value, "AWSTime", "hh:mm:ss.sss")
    match = _TIME.fullmatch(text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59:
        raise ValueError("not a valid AWSTime (hh:mm[:ss[.sss]], optional offset)")
    return text


def _aws_datetime(value: Any) -> str:
    text = _text(value, "AWSDateTime", "YYYY-MM-DDThh:mm:ss.sssZ")
    match = _DATETIME.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        _aws_date(match[1])
        _aws_time(match[2])
    except ValueError:
        raise ValueError("not a valid AWSDateTime (YYYY-MM-DDThh:mm:ss.sss with Z or an offset)") from None
    return text


def _aws_timestamp(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("not a valid AWSTimestamp (whole seconds since the epoch)")
    return value


def _matching(pattern: re.Pattern[str], scalar: str, shape: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _text(value, scalar, shape)
        if not pattern.fullmatch(text):
            raise ValueError(f"not a valid {scalar} ({shape})")
        return text

    return check


def _aws_ip_address(value: Any) -> str:
    text = _text(value, "AWSIPAddress", "IPv4 or IPv6, optionally /prefix")
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        raise ValueError("not a valid AWSIPAddress (IPv4 or IPv6, optionally /prefix)") from None
    return text


def _aws_json_input(value: Any) -> Any:
    """AppSync hands resolvers an AWSJSON argument parsed, not as the string the client sent."""
    text = _text(value, "AWSJSON", "a JSON document in a string")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("not a valid AWSJSON (a JSON document in a string)") from None


def _aws_json_output(value: Any) -> str:
    if isinstance(value, str):
        _aws_json_input(value)
        return value
    return json.dumps(value)


@dataclass(frozen=True)
class _AppSyncScalar:
    """How one AppSync scalar reads input and checks output; `kind` is what AppSync's messages call it."""

    kind: str
    read: Callable[[Any], Any]
    write: Callable[[Any], Any]
    literal: type[ValueNode] = StringValueNode


def _same(kind: str, check: Callable[[Any], str]) -> _AppSyncScalar:
    """A string scalar whose input and output follow one rule."""
    return _AppSyncScalar(kind, check, check)


_SCALARS: dict[str, _AppSyncScalar] = {
    "AWSDate": _AppSyncScalar("Date", _aws_date, _aws_date),
    "AWSTime": _AppSyncScalar("Time", _aws_time, _aws_time),
    "AWSDateTime": _AppSyncScalar("DateTime", _aws_datetime, _aws_datetime),
    "AWSTimestamp": _AppSyncScalar("Timestamp", _aws_timestamp, _aws_timestamp, IntValueNode),
    "AWSEmail": _same("Email", _matching(_EMAIL, "AWSEmail", "local@domain.tld")),
    "AWSJSON": _AppSyncScalar("JSON", _aws_json_input, _aws_json_output),
    "AWSURL": _same("URL", _matching(_URL, "AWSURL", "scheme:…")),
    "AWSPhone": _same("Phone", _matching(_PHONE, "AWSPhone", "+country digits")),
    "AWSIPAddress": _AppSyncScalar("IPAddress", _aws_ip_address, _aws_ip_address),
}


def _install_scalar(scalar_type: GraphQLScalarType, scalar: _AppSyncScalar) -> None:
    """Give a scalar declared by APPSYNC_DEFINITIONS its coercion: validation and execution both use it."""

    def read_literal(node: ValueNode) -> Any:
        if not isinstance(node, scalar.literal):
            raise ValueError(f"{scalar_type.name} cannot be written as {print_ast(node)}")
        value = int(node.value) if isinstance(node, IntValueNode) else getattr(node, "value", None)
        return scalar.read(value)

    def write(value: Any) -> Any:
        try:
            return scalar.write(value)
        except ValueError:
            raise _ScalarOutputError(
                f"Unable to serialize `{value}` as a valid {scalar.kind} Object."
            ) from None

    for name, function in {
        "coerce_input_value": scalar.read,
        "parse_value": scalar.read,
        "coerce_input_literal": read_literal,
        "coerce_output_value": write,
        "serialize": write,
    }.items():
        setattr(scalar_type, name, function)


def load_schema(path: str | Path) -> GraphQLSchema:
    """schema.graphql as AppSync reads it: its scalars and directives declared first, then the file."""
    schema = build_schema(APPSYNC_DEFINITIONS + Path(path).read_text())
    for name, scalar in _SCALARS.items():
        scalar_type = schema.get_type(name)
        assert isinstance(scalar_type, GraphQLScalarType)
        _install_scalar(scalar_type, scalar)
    return schema


# ---------------------------------------------------------------------- the template's resolvers
@dataclass(frozen=True)
class LambdaResolver:
    """One `AWS::AppSync::Resolver` on a Lambda data source, with no mapping templates (direct)."""

    type_name: str
    field_name: str
    function: str
    """What `LambdaRuntime.find` takes: a logical id, a name or an ARN."""
    max_batch_size: int = 0
    """0: one invocation per resolution; n > 0: batch invoke with lists of up to n events."""


def _reference(value: Any) -> str | None:
    """The logical id that `!GetAtt X.Attribute` or `!Ref X` names; None for anything else."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Fn::GetAtt":
            return str(argument.split(".", 1)[0] if isinstance(argument, str) else argument[0])
        if key == "Ref":
            return str(argument)
    return None


def load_resolvers(
    template: Mapping[str, Any], conditions: Mapping[str, bool] | None = None
) -> dict[tuple[str, str], LambdaResolver]:
    """Every resolver of the template, by (type, field); anything offline cannot run is refused by name."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    conditions = conditions or {}

    def wanted(resource: Mapping[str, Any]) -> bool:
        return conditions.get(resource.get("Condition", ""), True)

    data_sources = {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::AppSync::DataSource" and wanted(resource)
    }
    resolvers: dict[tuple[str, str], LambdaResolver] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::AppSync::Resolver" or not wanted(resource):
            continue
        props = resource.get("Properties", {})
        unsupported = MAPPING_PROPERTIES & set(props)
        if unsupported or props.get("Kind", "UNIT") != "UNIT":
            raise ValueError(
                f"{logical_id}: offline AppSync runs direct Lambda UNIT resolvers only "
                f"(Kind {props.get('Kind', 'UNIT')}, {sorted(unsupported)})"
            )
        source_props = _data_source(logical_id, props.get("DataSourceName"), data_sources)
        if source_props.get("Type") != "AWS_LAMBDA":
            raise ValueError(
                f"{logical_id}: data source type {source_props.get('Type')} is not emulated offline"
            )
        arn = source_props.get("LambdaConfig", {}).get("LambdaFunctionArn")
        function = _reference(arn) or (arn if isinstance(arn, str) else None)
        if function is None:
            raise ValueError(f"{logical_id}: cannot tell which function LambdaFunctionArn {arn!r} names")
        key = (str(props["TypeName"]), str(props["FieldName"]))
        resolvers[key] = LambdaResolver(
            *key, function=function, max_batch_size=int(props.get("MaxBatchSize", 0))
        )
    return resolvers


def _data_source(
    resolver_id: str, name: Any, data_sources: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any]:
    """The data source a resolver's DataSourceName means: `!GetAtt X.Name` or the literal name."""
    logical_id = _reference(name)
    if logical_id is not None and logical_id in data_sources:
        return data_sources[logical_id]
    for props in data_sources.values():
        if props.get("Name") == name:
            return props
    raise ValueError(f"{resolver_id}: no AWS::AppSync::DataSource matches DataSourceName {name!r}")


# ---------------------------------------------------------------------- auth directives
@dataclass(frozen=True)
class _Access:
    """Who may read one field: `groups` None means any user pool caller; `iam`: `@aws_iam` callers."""

    cognito: bool
    groups: frozenset[str] | None
    iam: bool = False

    def admits(self, groups: frozenset[str], *, iam: bool = False) -> bool:
        if iam:
            return self.iam
        return self.cognito and (self.groups is None or bool(self.groups & groups))


def _auth_directives(nodes: Iterable[ConstDirectiveNode]) -> list[ConstDirectiveNode]:
    return [node for node in nodes if node.name.value in AUTH_DIRECTIVES]


def _access(directives: list[ConstDirectiveNode]) -> _Access:
    iam = any(node.name.value == "aws_iam" for node in directives)
    cognito = [node for node in directives if node.name.value in COGNITO_DIRECTIVES]
    if not cognito:
        return _Access(cognito=False, groups=None, iam=iam)
    groups: set[str] = set()
    for node in cognito:
        argument = next((arg for arg in node.arguments or () if arg.name.value == "cognito_groups"), None)
        if argument is None or not isinstance(argument.value, ListValueNode):
            return _Access(cognito=True, groups=None, iam=iam)
        groups.update(value.value for value in argument.value.values if isinstance(value, StringValueNode))
    return _Access(cognito=True, groups=frozenset(groups), iam=iam)


def _field_access(schema: GraphQLSchema) -> dict[tuple[str, str], _Access]:
    """AppSync's rule per field: the field's auth directives, else its type's, else the default mode
    (the user pool, any signed-in caller)."""
    rules: dict[tuple[str, str], _Access] = {}
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        type_nodes = [type_.ast_node, *type_.extension_ast_nodes]
        on_type = _auth_directives(d for node in type_nodes if node for d in node.directives or ())
        for name, field_def in type_.fields.items():
            on_field = _auth_directives(field_def.ast_node.directives or () if field_def.ast_node else ())
            chosen = on_field or on_type
            rules[(type_.name, name)] = _access(chosen) if chosen else _Access(cognito=True, groups=None)
    return rules


# ---------------------------------------------------------------------- one request
@dataclass
class _Request:
    """What every resolver of one request shares."""

    identity: dict[str, Any]
    groups: frozenset[str]
    iam: bool
    headers: dict[str, str]
    variables: dict[str, Any]
    batcher: _Batcher
    resolver_runs: int = 0
    caller: IamCaller | None = None


class _Batcher:
    """Collects the events of one event-loop tick per resolver and sends them when the tick ends.

    graphql-core calls the resolvers of one level (every booking's `outboundFlight`) synchronously
    before it awaits any of them, so one tick holds exactly what AppSync would put in one batch.
    """

    def __init__(self, lambdas: LambdaRuntime) -> None:
        self.lambdas = lambdas
        self._pending: dict[LambdaResolver, list[tuple[dict[str, Any], asyncio.Future[Any]]]] = {}
        self._scheduled = False

    def load(self, resolver: LambdaResolver, event: dict[str, Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.setdefault(resolver, []).append((event, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        pending, self._pending, self._scheduled = self._pending, {}, False
        for resolver, entries in pending.items():
            if resolver.max_batch_size > 0:
                for start in range(0, len(entries), resolver.max_batch_size):
                    self._invoke_batch(resolver, entries[start : start + resolver.max_batch_size])
            else:
                for event, future in entries:
                    _settle(future, *self._invoke(resolver, event))

    def _invoke_batch(
        self, resolver: LambdaResolver, entries: list[tuple[dict[str, Any], asyncio.Future[Any]]]
    ) -> None:
        results, error = self._invoke(resolver, [event for event, _ in entries])
        if error is None and (not isinstance(results, list) or len(results) != len(entries)):
            answered = f"a list of {len(results)}" if isinstance(results, list) else type(results).__name__
            error = FieldError(
                SHAPE_ERROR,
                f"{resolver.function} answered a batch of {len(entries)} events with {answered}: a direct "
                "Lambda resolver with batching must return a list of the same length, in the same order",
            )
        for index, (_, future) in enumerate(entries):
            if error is not None:
                _settle(future, None, error)
            else:
                _settle(future, *_batch_item(resolver, index, results[index]))

    def _invoke(self, resolver: LambdaResolver, payload: Any) -> tuple[Any, FieldError | None]:
        try:
            response = self.lambdas.invoke(resolver.function, json.dumps(payload, default=str))
        except UnknownFunction as error:
            return None, FieldError("Lambda:ResourceNotFoundException", str(error))
        body = json.loads(response.body or b"null")
        if response.service_error:  # Invoke itself refused (throttled: 429): no answer to read as data
            refusal = body if isinstance(body, Mapping) else {}
            return None, FieldError(
                f"Lambda:{response.service_error}",
                str(refusal.get("message") or refusal.get("Message") or response.service_error),
            )
        if response.function_error:
            answer = body if isinstance(body, Mapping) else {}
            error_type = str(answer.get("errorType") or f"Lambda:{response.function_error}")
            return None, FieldError(error_type, str(answer.get("errorMessage") or error_type))
        return body, None


def _batch_item(resolver: LambdaResolver, index: int, item: Any) -> tuple[Any, FieldError | None]:
    """One item of a batch answer, as AppSync's default response template for batched direct Lambda
    resolvers reads it:

        #if( $context.result && $context.result.errorMessage )
          $utils.error($context.result.errorMessage, $context.result.errorType, $context.result.data)
        #else
          $utils.toJson($context.result.data)
        #end

    AWS documents each item as `{"data", "errorMessage"?, "errorType"?}` and a null item as valid. An
    item with neither `data` nor `errorMessage` would be null by that template, yet Powertools' own
    tests against AppSync resolve bare items as values: what AWS does with one is not settled, so it
    is refused here (decision 0013) instead of being read either way.
    """
    if item is None:
        return None, None
    message = item.get("errorMessage") if isinstance(item, Mapping) else None
    if message is not None and message != "":
        error_type = item.get("errorType")
        return None, FieldError(
            None if error_type is None else str(error_type), str(message), item.get("data")
        )
    if isinstance(item, Mapping) and "data" in item:
        return item["data"], None
    shape = f"an object with keys {sorted(item)[:5]}" if isinstance(item, Mapping) else type(item).__name__
    field = f"{resolver.type_name}.{resolver.field_name}"
    return None, FieldError(
        SHAPE_ERROR,
        f"{resolver.function} answered item {index} of a batch for {field} with {shape}: each item "
        "of a batched direct Lambda resolver's answer is "
        '{"data": …} or {"data": …, "errorMessage": …, "errorType": …}, or null',
    )


def _settle(future: asyncio.Future[Any], result: Any, error: FieldError | None) -> None:
    if future.done():  # cancelled: a sibling's error already nulled this part of the response
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


# ---------------------------------------------------------------------- the API
class AppSyncApi:
    """The template's `AWS::AppSync::GraphQLApi`, answering requests as AppSync does (module docstring).

    `parameters` are template parameters (defaults fill the rest); `query_depth_limit` and
    `resolver_count_limit` override what the GraphQLApi resource resolves to.
    """

    def __init__(
        self,
        schema: str | Path,
        template: str | Path | Mapping[str, Any],
        lambdas: LambdaRuntime,
        tokens: TokenIssuer,
        *,
        parameters: Mapping[str, str] | None = None,
        query_depth_limit: int | None = None,
        resolver_count_limit: int | None = None,
        iam: IamCredentials | None = None,
    ) -> None:
        parsed = cfn.load(template) if isinstance(template, str | Path) else dict(template)
        intrinsics = cfn.Resolver(parsed, parameters or {}, stack_name="offline")
        api_props = _graphql_api(parsed, intrinsics)
        self.schema = load_schema(schema)
        self.lambdas = lambdas
        self.tokens = tokens
        self.iam = iam if iam is not None else IamCredentials()
        self.iam_enabled = "AWS_IAM" in api_props.get("AdditionalAuthenticationTypes", ())
        self.resolvers = load_resolvers(parsed, intrinsics.conditions)
        self.query_depth_limit = (
            query_depth_limit if query_depth_limit is not None else int(api_props.get("QueryDepthLimit") or 0)
        )
        self.resolver_count_limit = (
            resolver_count_limit
            if resolver_count_limit is not None
            else int(api_props.get("ResolverCountLimit") or 0) or DEFAULT_RESOLVER_COUNT_LIMIT
        )
        rules = list(specified_rules)
        if api_props.get("IntrospectionConfig") == "DISABLED":
            rules.append(NoSchemaIntrospectionCustomRule)
        self._rules = rules
        # Each query text parsed and validated once (a client sends the same few documents again and
        # again); a document is not changed by executing it. Bounded, as a server's memory must be.
        self._documents: collections.OrderedDict[str, _Parsed] = collections.OrderedDict()
        self._documents_lock = threading.Lock()
        self._access = _field_access(self.schema)
        self._check_resolvers()
        self.arn: str | None = None
        """The API's ARN, which `appsync:GraphQL` names (set by the stack that deployed it): an IAM
        caller whose role the offline IAM knows must be allowed each root field it asks for."""
        self.realtime = RealtimeEndpoint(self)
        """The real-time endpoint (WebSocket, `offline.realtime`) and its subscriptions."""

    def _check_resolvers(self) -> None:
        """AppSync refuses a resolver on a field the schema lacks; the function must be deployed."""
        for (type_name, field_name), resolver in self.resolvers.items():
            type_ = self.schema.get_type(type_name)
            if not isinstance(type_, GraphQLObjectType) or field_name not in type_.fields:
                raise ValueError(f"No field named {field_name} found on type {type_name}")
            self.lambdas.find(resolver.function)

    # ------------------------------------------------------------------ a request
    def execute(
        self,
        body: bytes | str | Mapping[str, Any],
        *,
        authorization: str | None,
        headers: Mapping[str, str] | None = None,
        source_ip: str = "127.0.0.1",
        path: str = "/graphql",
    ) -> tuple[int, dict[str, Any]]:
        """One HTTP request to the GraphQL endpoint: (status, JSON body), as AppSync answers it.

        Synchronous and safe to call from many threads at once: each call runs its own event loop.
        """
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        if authorization is None:
            authorization = lowered.get("authorization")
        elif "authorization" not in lowered:
            lowered["authorization"] = authorization
        try:
            identity = self.authenticate(authorization, lowered, body, path)
        except InvalidToken as error:
            return 401, _transport_error("UnauthorizedException", error.message)
        try:
            query, variables, operation_name = _read_body(body)
        except _Malformed as error:
            return 400, _transport_error("MalformedHttpRequestException", str(error))
        try:
            parsed = self._parsed(query)
        except GraphQLError:
            return 400, _transport_error("MalformedHttpRequestException", "Unable to parse GraphQL query.")
        document = parsed.document
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        names = {d.name.value for d in operations if d.name}
        if operation_name is not None and operation_name not in names:
            message = f"Unknown operation named '{operation_name}'."
            return 400, _transport_error("BadRequestException", message)
        if operation_name is None and len(operations) > 1:
            message = "Must provide operation name if query contains multiple operations."
            return 400, _transport_error("BadRequestException", message)
        operation = next(
            (d for d in operations if operation_name is None or (d.name and d.name.value == operation_name)),
            None,
        )
        limit = self.resolver_count_limit
        try:
            selected = self._resolver_fields(operation, document) if operation is not None else 0
            if selected > limit:
                message = f"Resolver invocation limit reached: the request selects more than {limit} fields"
                return 200, _limit_error(
                    "ResolverExecutionLimitReached", message + " with resolvers; none ran."
                )
            serial = operation is not None and operation.operation == OperationType.MUTATION
            if serial and selected > SERIAL_FIELDS:
                message = f"A mutation request runs at most {SERIAL_FIELDS} resolvers offline; none ran."
                return 200, _limit_error("ResolverExecutionLimitReached", message)
            errors = self._validated(parsed)
            if errors:
                return 200, {"data": None, "errors": [_request_error(error) for error in errors]}
            result = _run(self._execute(document, variables, operation_name, identity, lowered, source_ip))
        except RecursionError:
            return 200, _limit_error("QueryTooComplex", "The request is nested or chained too deeply to run.")
        if serial and operation is not None:
            self.realtime.mutation_answered(document, operation, result.data)
        return 200, self._response(result)

    def _parsed(self, query: str) -> _Parsed:
        """The query's document, parsed once per text while it is among the latest DOCUMENTS_KEPT."""
        if len(query) > DOCUMENT_KEPT_LENGTH:
            return _Parsed(parse(_IndexedSource(query)))
        with self._documents_lock:
            parsed = self._documents.get(query)
            if parsed is not None:
                self._documents.move_to_end(query)
                return parsed
        parsed = _Parsed(parse(_IndexedSource(query)))
        with self._documents_lock:
            self._documents[query] = parsed
            while len(self._documents) > DOCUMENTS_KEPT:
                self._documents.popitem(last=False)
        return parsed

    def _validated(self, parsed: _Parsed) -> list[GraphQLError]:
        """The document's validation errors, found once per parsed document (a race finds them twice,
        with the same answer)."""
        if parsed.errors is None:
            parsed.errors = validate(self.schema, parsed.document, self._rules, hide_suggestions=True)
        return parsed.errors

    # ------------------------------------------------------------------ for offline.realtime
    def validation_errors(self, document: DocumentNode) -> list[dict[str, Any]]:
        """The document's validation errors against the schema, as a request's errors."""
        errors = validate(self.schema, document, self._rules, hide_suggestions=True)
        return self.request_errors(errors)

    @staticmethod
    def request_errors(errors: Iterable[GraphQLError]) -> list[dict[str, Any]]:
        return [_request_error(error) for error in errors]

    def run(
        self,
        document: DocumentNode,
        variables: dict[str, Any],
        operation_name: str | None,
        identity: Identity | IamCaller,
        headers: dict[str, str],
        source_ip: str,
    ) -> dict[str, Any]:
        """Execute a validated document for a verified caller: the response body (data, errors)."""
        return self._response(
            _run(self._execute(document, variables, operation_name, identity, headers, source_ip))
        )

    def _resolver_fields(self, operation: OperationDefinitionNode, document: DocumentNode) -> int:
        """How many fields with a resolver the operation selects, fragments counted where they are spread:
        the least number of resolver runs it asks for, found in time linear in the document (each
        fragment is counted once per type it is spread on), before anything runs."""
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        counted: dict[tuple[str, str], int] = {}
        limit = self.resolver_count_limit

        def count(selection_set: SelectionSetNode, type_name: str, spreading: frozenset[str]) -> int:
            total = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    name = selection.name.value
                    parent = self.schema.get_type(type_name)
                    field_def = parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
                    if field_def is None:
                        continue  # unknown or introspection: validation has its say
                    total += (type_name, name) in self.resolvers
                    if selection.selection_set:
                        total += count(
                            selection.selection_set, get_named_type(field_def.type).name, spreading
                        )
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    total += count(
                        selection.selection_set, condition.name.value if condition else type_name, spreading
                    )
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = fragments.get(selection.name.value)
                    if fragment is None or fragment.name.value in spreading:
                        continue  # unknown or cyclic: validation refuses it
                    key = (fragment.name.value, type_name)
                    if key not in counted:
                        counted[key] = count(
                            fragment.selection_set,
                            fragment.type_condition.name.value,
                            spreading | {fragment.name.value},
                        )
                    total += counted[key]
                if total > limit:
                    return total
            return total

        root = self.schema.get_root_type(operation.operation)
        return count(operation.selection_set, root.name, frozenset()) if root else 0

    def authenticate(
        self,
        authorization: str | None,
        headers: Mapping[str, str],
        body: bytes | str | Mapping[str, Any],
        path: str,
    ) -> Identity | IamCaller:
        """The caller `authorization` names (a user pool ID token, or a SigV4 signature of POST `path`
        with `body` and the signed `headers`, lower-cased); InvalidToken otherwise."""
        if authorization is None or not authorization.strip():
            raise InvalidToken("Missing authorization header")
        if authorization.lstrip().startswith("AWS4-HMAC-SHA256"):
            if not self.iam_enabled:
                raise InvalidToken("This API does not accept IAM (SigV4) authorization.")
            raw = body.encode() if isinstance(body, str) else body
            signed = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
            return self.iam.verify(authorization, headers, signed, path)
        return self.tokens.verify(authorization)

    async def _execute(
        self,
        document: DocumentNode,
        variables: dict[str, Any],
        operation_name: str | None,
        identity: Identity | IamCaller,
        headers: dict[str, str],
        source_ip: str,
    ) -> ExecutionResult:
        request = _Request(
            identity=identity.as_appsync_identity(source_ip),
            groups=frozenset(identity.groups) if isinstance(identity, Identity) else frozenset(),
            iam=isinstance(identity, IamCaller),
            headers=headers,
            variables=variables,
            batcher=_Batcher(self.lambdas),
            caller=identity if isinstance(identity, IamCaller) else None,
        )
        outcome = execute_document(
            self.schema,
            document,
            context_value=request,
            variable_values=variables,
            operation_name=operation_name,
            field_resolver=self._resolve,
            hide_suggestions=True,
        )
        return cast(ExecutionResult, await outcome if isawaitable(outcome) else outcome)

    def _resolve(self, source: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        """Every field of every request: depth, auth, then the Lambda resolver or the parent's property."""
        request: _Request = info.context
        type_name, field_name = info.parent_type.name, info.field_name
        depth = sum(1 for key in info.path.as_list() if isinstance(key, str))
        if self.query_depth_limit and depth > self.query_depth_limit:
            raise FieldError(
                "QueryDepthLimitExceeded",
                f"Query depth limit of {self.query_depth_limit} exceeded: {field_name} is at depth {depth}",
            )
        access = self._access.get((type_name, field_name))
        if access is not None and not access.admits(request.groups, iam=request.iam):
            raise FieldError("Unauthorized", f"Not Authorized to access {field_name} on type {type_name}")
        if request.caller is not None and info.path.prev is None and self.arn is not None:
            field_arn = f"{self.arn}/types/{type_name}/fields/{field_name}"
            call = offline_iam.Call("appsync:GraphQL", field_arn)
            if offline_iam.authorize(request.caller.access_key_id, [call]) is not None:
                raise FieldError("Unauthorized", f"Not Authorized to access {field_name} on type {type_name}")
        resolver = self.resolvers.get((type_name, field_name))
        if resolver is None:
            return source.get(field_name) if isinstance(source, Mapping) else None
        request.resolver_runs += 1
        if request.resolver_runs > self.resolver_count_limit:
            raise FieldError("ResolverExecutionLimitReached", "Resolver invocation limit reached.")
        return request.batcher.load(resolver, _event(source, info, arguments, request))

    # ------------------------------------------------------------------ the answer
    def _response(self, result: ExecutionResult) -> dict[str, Any]:
        if result.data is None and result.errors and all(error.path is None for error in result.errors):
            return {"data": None, "errors": [_request_error(error) for error in result.errors]}
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [self._field_error(error) for error in result.errors]
        return body

    def _field_error(self, error: GraphQLError) -> dict[str, Any]:
        """AppSync's shape of a field error, with graphql-java's wording where graphql-core's differs."""
        original = error.original_error
        error_type: str | None = None
        message = error.message
        path = list(error.path or [])
        data: Any = None
        if isinstance(original, FieldError):
            error_type, message, data = original.error_type, original.message, original.data
        elif match := _NON_NULL.fullmatch(message):
            type_ = self.schema.get_type(match[1])
            field_def = type_.fields.get(match[2]) if isinstance(type_, GraphQLObjectType) else None
            named = get_named_type(field_def.type).name if field_def else match[2]
            message = (
                f"Cannot return null for non-nullable type: '{named}' within parent '{match[1]}' "
                f"({_slashed(path)})"
            )
        elif isinstance(original, _ScalarOutputError | GraphQLError):
            message = f"Can't serialize value ({_slashed(path)}) : {message}"
        return {
            "path": path,
            "data": data,
            "errorType": error_type,
            "errorInfo": None,
            "locations": _locations(error),
            "message": message,
        }


_NON_NULL = re.compile(r"Cannot return null for non-nullable field (\w+)\.(\w+)\.")


def _graphql_api(template: Mapping[str, Any], intrinsics: cfn.Resolver) -> dict[str, Any]:
    """The settings of the template's one GraphQL API that change how requests are answered."""
    apis = [
        resource.get("Properties", {})
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::AppSync::GraphQLApi"
    ]
    if len(apis) != 1:
        raise ValueError(f"offline AppSync serves one AWS::AppSync::GraphQLApi; the template has {len(apis)}")
    props = apis[0]
    settings = {
        name: intrinsics.resolve(props[name])
        for name in ("AuthenticationType", "QueryDepthLimit", "ResolverCountLimit", "IntrospectionConfig")
        if name in props
    }
    settings["AdditionalAuthenticationTypes"] = [
        intrinsics.resolve(provider.get("AuthenticationType"))
        for provider in intrinsics.resolve(props.get("AdditionalAuthenticationProviders") or [])
    ]
    if settings.get("AuthenticationType") != "AMAZON_COGNITO_USER_POOLS":
        raise ValueError(
            f"offline AppSync emulates the Cognito user pool mode, not {settings.get('AuthenticationType')}"
        )
    action = intrinsics.resolve(props.get("UserPoolConfig", {}).get("DefaultAction", "ALLOW"))
    if action != "ALLOW":
        raise ValueError(f"offline AppSync emulates UserPoolConfig DefaultAction ALLOW, not {action}")
    return settings


# ---------------------------------------------------------------------- the resolver event
def _event(
    source: Any, info: GraphQLResolveInfo, arguments: dict[str, Any], request: _Request
) -> dict[str, Any]:
    """The direct Lambda resolver event AppSync sends for one field resolution."""
    return {
        "arguments": arguments,
        "identity": request.identity,
        "source": dict(source) if isinstance(source, Mapping) else None,
        "request": {"headers": request.headers, "domainName": None},
        "prev": None,
        "info": {
            "fieldName": info.field_name,
            "parentTypeName": info.parent_type.name,
            "variables": request.variables,
            "selectionSetList": _selection_set_list(info),
            "selectionSetGraphQL": _selection_set_graphql(info),
        },
        "stash": {},
    }


def _selection_set_list(info: GraphQLResolveInfo) -> list[str]:
    """AppSync's `selectionSetList`: the sub-fields' paths (`items`, `items/outboundFlight/id`), aliases
    by their alias, fragments expanded, introspection fields left out."""
    paths: list[str] = []

    def walk(selection_set: SelectionSetNode, prefix: str) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue
                path = prefix + (selection.alias or selection.name).value
                if path not in paths:
                    paths.append(path)
                if selection.selection_set:
                    walk(selection.selection_set, path + "/")
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, prefix)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in info.fragments:
                walk(info.fragments[selection.name.value].selection_set, prefix)

    for node in info.field_nodes:
        if node.selection_set:
            walk(node.selection_set, "")
    return paths


def _selection_set_graphql(info: GraphQLResolveInfo) -> str:
    """AppSync's `selectionSetGraphQL`: the field's selection set as written (fragment spreads kept)."""
    selection_set = info.field_nodes[0].selection_set
    return print_ast(selection_set) if selection_set else ""


# ---------------------------------------------------------------------- the wire
class _Malformed(ValueError):
    """The body is not a GraphQL request: AppSync's 400 MalformedHttpRequestException."""


def _read_body(body: bytes | str | Mapping[str, Any]) -> tuple[str, dict[str, Any], str | None]:
    if isinstance(body, Mapping):
        request: Any = body
    else:
        try:
            text = body.decode() if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            raise _Malformed("Unable to parse GraphQL query.") from None
        if not text.strip():
            raise _Malformed("Request body is empty.")
        try:
            request = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, nested past the parser, or digits past int's limit
            raise _Malformed("Unable to parse GraphQL query.") from None
    if not isinstance(request, Mapping):
        raise _Malformed("Unable to parse GraphQL query.")
    query, variables, operation_name = (
        request.get("query"),
        request.get("variables"),
        request.get("operationName"),
    )
    if not isinstance(query, str) or not query.strip():
        raise _Malformed("Unable to parse GraphQL query.")
    if variables is not None and not isinstance(variables, Mapping):
        raise _Malformed("Unable to parse GraphQL query.")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _Malformed("Unable to parse GraphQL query.")
    return query, dict(variables or {}), operation_name


DOCUMENTS_KEPT = 256
DOCUMENT_KEPT_LENGTH = 16_384
"""Query texts longer than this are parsed at each request, never kept."""


@dataclass
class _Parsed:
    """A query's document and, once found, its validation errors."""

    document: DocumentNode
    errors: list[GraphQLError] | None = None


class _IndexedSource(Source):
    """A document whose errors find their line and column by bisection: graphql-core scans the body
    from the start for every error, which made a document with thousands of failing fields quadratic."""

    def __init__(self, body: str) -> None:
        super().__init__(body)
        breaks = list(re.finditer(r"\r\n|[\n\r]", body))  # graphql-core's line breaks
        self._break_starts = [match.start() for match in breaks]
        self._line_starts = [0] + [match.end() for match in breaks]

    def get_location(self, position: int) -> SourceLocation:
        """graphql-core's answer: a line break counts once it starts before the position."""
        lines_before = bisect.bisect_left(self._break_starts, position)
        return SourceLocation(lines_before + 1, position + 1 - self._line_starts[lines_before])


def _limit_error(error_type: str, message: str) -> dict[str, Any]:
    """One error for a request refused whole, before any resolver ran."""
    return {
        "data": None,
        "errors": [
            {
                "path": None,
                "data": None,
                "errorType": error_type,
                "errorInfo": None,
                "locations": None,
                "message": message,
            }
        ],
    }


def _transport_error(error_type: str, message: str) -> dict[str, Any]:
    return {"errors": [{"errorType": error_type, "message": message}]}


def _request_error(error: GraphQLError) -> dict[str, Any]:
    """An error of the whole request (validation, variables): no path, no data, as AppSync lists them."""
    return {
        "path": None,
        "data": None,
        "errorType": "ValidationError",
        "errorInfo": None,
        "locations": _locations(error),
        "message": error.message,
    }


def _locations(error: GraphQLError) -> list[dict[str, Any]] | None:
    if not error.locations:
        return None
    return [
        {"line": location.line, "column": location.column, "sourceName": None} for location in error.locations
    ]


def _slashed(path: list[str | int]) -> str:
    """A response path as graphql-java prints it: /getBookingByStatus/items[0]/outboundFlight."""
    return "".join(f"[{key}]" if isinstance(key, int) else f"/{key}" for key in path)


def _run(coroutine: Any) -> Any:
    """Run a request's coroutine to the end from synchronous code, even from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
