"""IAM offline: every AWS call a function or a state machine makes is allowed or denied by its role.

moto does not do this job (docs/decisions/0012): in moto 5.2.5 most services check an action against
resource `*` only, so a statement scoped to a table ARN grants nothing there, and condition keys are
not evaluated. So the offline stack decides itself, for the callers whose roles the template defines:

- **Who.** A function's sandbox signs with a session of its execution role (`OfflineStack`), and moto's
  ASL interpreter signs with a session of the state machine's role (`install` makes its clients so);
  the access key id names the session. Anyone else (a test's boto3 client, the AWS CLI) is not checked.
- **What.** `calls` turns one AWS operation into the IAM requests it makes: action, resource ARN and
  the condition keys the template's policies use (`dynamodb:Attributes`, `dynamodb:ReturnValues`,
  `dynamodb:Select`, `dynamodb:EnclosingOperation`, `cloudwatch:namespace`). A DynamoDB transaction
  or batch asks once per item or table, with the item's own action.
- **Against what.** The role's identity-based policies as deployed in moto's IAM (inline and
  managed), compiled once per deployment into `RolePolicy`: actions expanded with policyuniverse,
  resources matched with IAM's `*` and `?` wildcards, conditions evaluated with the operators and
  set qualifiers of IAM's documentation. An explicit Deny wins; otherwise an Allow is needed.
- **Answer.** A denied call is answered as the service answers it (DynamoDB's JSON
  `AccessDeniedException`, HTTP 400; SNS's `AuthorizationError`, 403; Lambda's 403
  `AccessDeniedException`; AppSync's field error `Unauthorized`), with AWS's message, and recorded:
  `OfflineIam.denials` is what `OfflineStack.assert_iam_allowed()` reports at a test's end.

AWS documentation followed:
- Policy evaluation logic: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- Condition operators (a missing key, `...IfExists`, `Null`, wildcards):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- Multivalued keys (`ForAllValues`, `ForAnyValue`):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
- Resource wildcards: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- DynamoDB's condition keys (attributes read, written or evaluated in a condition or filter):
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
- DynamoDB transactions (each item needs its own action; `ConditionCheckItem`):
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
- The denial's wording: https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html
- AppSync's `appsync:GraphQL` on `apis/<id>/types/<type>/fields/<field>` (root fields, as CDK's
  `grantMutation` grants them): https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsappsync.html
"""

from __future__ import annotations

import collections
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config
from moto.core.responses import BaseResponse
from policyuniverse import all_permissions
from policyuniverse.expander_minimizer import get_actions_from_statement

from offline.auth import IamCaller
from offline.template import ACCOUNT_ID, REGION

LOG = logging.getLogger(__name__)

Context = Mapping[str, tuple[str, ...]]
"""Condition keys of one request (lower-cased: IAM compares key names without case) and their values."""


@dataclass(frozen=True)
class Call:
    """One authorization IAM makes for a request: `action` on `resource`, with these condition keys."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)


@dataclass(frozen=True)
class Denial:
    """A call a role's policies did not allow, and why (`condition`: the failed condition of a statement
    that matched the action and resource, when one did)."""

    role: str
    principal: str
    action: str
    resource: str
    explicit: bool = False
    condition: str | None = None

    @property
    def message(self) -> str:
        """AWS's message for an identity-based policy's implicit or explicit deny."""
        on = f" on resource: {self.resource}" if self.resource != "*" else ""
        if self.explicit:
            why = "with an explicit deny in an identity-based policy"
        else:
            why = f"because no identity-based policy allows the {self.action} action"
        return f"User: {self.principal} is not authorized to perform: {self.action}{on} {why}"

    def __str__(self) -> str:
        why = " (explicit deny)" if self.explicit else ""
        failed = f" (failed condition: {self.condition})" if self.condition else ""
        return f"{self.role}: {self.action} on {self.resource}{why}{failed}"


# ------------------------------------------------------------------------------------------ policies
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_POSITIVE = {
    "StringEquals": "StringEquals",
    "StringNotEquals": "StringEquals",
    "StringEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringLike": "StringLike",
    "StringNotLike": "StringLike",
    "ArnEquals": "StringLike",  # "ArnEquals and ArnLike behave identically"
    "ArnLike": "StringLike",
    "ArnNotEquals": "StringLike",
    "ArnNotLike": "StringLike",
    "Bool": "StringEqualsIgnoreCase",
    "Null": "Null",
}


def _wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM's `*` (any run of characters) and `?` (one character); nothing else is special."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


@dataclass(frozen=True)
class _Condition:
    """One key under one operator: `ForAllValues:StringEquals: {dynamodb:Attributes: [...]}`."""

    text: str
    key: str
    qualifier: str  # "", "ForAllValues" or "ForAnyValue"
    operator: str
    if_exists: bool
    values: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def parse(cls, operator_text: str, key: str, values: Any) -> _Condition:
        qualifier, _, operator = operator_text.rpartition(":")
        if_exists = operator.endswith("IfExists") and operator != "IfExists"
        operator = operator.removesuffix("IfExists") if if_exists else operator
        if qualifier not in ("", "ForAllValues", "ForAnyValue") or operator not in _POSITIVE:
            raise ValueError(f"the offline IAM does not evaluate the condition operator {operator_text}")
        listed = tuple(str(value) for value in (values if isinstance(values, list) else [values]))
        like = _POSITIVE[operator] == "StringLike"
        return cls(
            text=f"{operator_text} {key} {list(listed)}",
            key=key.lower(),
            qualifier=qualifier,
            operator=operator,
            if_exists=if_exists,
            values=listed,
            patterns=tuple(_wildcard(value) for value in listed) if like else (),
        )

    def holds(self, context: Context) -> bool:
        present = context.get(self.key)
        if self.operator == "Null":
            return (not present) == (self.values[0].lower() == "true")
        if not present:
            if self.qualifier == "ForAllValues" or self.if_exists:
                return True
            return self.qualifier == "" and self.operator in _NEGATED
        matches = [self._matches(value) != (self.operator in _NEGATED) for value in present]
        return all(matches) if self.qualifier == "ForAllValues" else any(matches)

    def explain(self, context: Context) -> str:
        """The condition, and the request's values it refused (or that the key is absent)."""
        present = context.get(self.key)
        if not present:
            return f"{self.text}; the request has no {self.key}"
        refused = [value for value in present if self._matches(value) == (self.operator in _NEGATED)]
        return f"{self.text}; the request has {refused or list(present)}"

    def _matches(self, value: str) -> bool:
        kind = _POSITIVE[self.operator]
        if kind == "StringLike":
            return any(pattern.fullmatch(value) for pattern in self.patterns)
        if kind == "StringEqualsIgnoreCase":
            return value.lower() in (listed.lower() for listed in self.values)
        return value in self.values


@dataclass(frozen=True)
class _Statement:
    allow: bool
    resources: tuple[re.Pattern[str], ...]
    not_resource: bool
    conditions: tuple[_Condition, ...]
    action_patterns: tuple[re.Pattern[str], ...]
    not_action: bool

    @classmethod
    def parse(cls, statement: Mapping[str, Any]) -> _Statement:
        not_resource = "NotResource" in statement
        resources = statement.get("NotResource" if not_resource else "Resource", [])
        conditions = tuple(
            _Condition.parse(operator, key, values)
            for operator, keys in (statement.get("Condition") or {}).items()
            for key, values in keys.items()
        )
        not_action = "NotAction" in statement
        actions = statement.get("NotAction" if not_action else "Action", [])
        return cls(
            allow=statement.get("Effect") == "Allow",
            resources=tuple(
                _wildcard(str(r)) for r in (resources if isinstance(resources, list) else [resources])
            ),
            not_resource=not_resource,
            conditions=conditions,
            action_patterns=tuple(
                _wildcard(str(a), ignore_case=True)
                for a in (actions if isinstance(actions, list) else [actions])
            ),
            not_action=not_action,
        )

    def covers_action(self, action: str) -> bool:
        """For an action policyuniverse does not list (newer than its data): match the patterns."""
        return any(pattern.fullmatch(action) for pattern in self.action_patterns) != self.not_action

    def covers_resource(self, resource: str) -> bool:
        return any(pattern.fullmatch(resource) for pattern in self.resources) != self.not_resource

    def failed_condition(self, context: Context) -> _Condition | None:
        return next((condition for condition in self.conditions if not condition.holds(context)), None)


class RolePolicy:
    """A role's identity-based policies, compiled once: the statements that name each action (expanded
    with policyuniverse, lower-cased as IAM compares actions), so a call looks at those alone."""

    def __init__(self, role_arn: str, documents: Iterable[Mapping[str, Any]]) -> None:
        self.role_arn = role_arn
        self._by_action: dict[str, list[_Statement]] = collections.defaultdict(list)
        self._all: list[_Statement] = []
        for document in documents:
            statements = document.get("Statement", [])
            for raw in statements if isinstance(statements, list) else [statements]:
                statement = _Statement.parse(raw)
                self._all.append(statement)
                for action in get_actions_from_statement(raw):
                    self._by_action[action].append(statement)

    def decide(self, call: Call, principal: str) -> Denial | None:
        """None when the policies allow the call; the Denial otherwise."""
        action = call.action.lower()
        if action in all_permissions:
            statements: Sequence[_Statement] = self._by_action.get(action, ())
        else:
            statements = [statement for statement in self._all if statement.covers_action(action)]
        allowed = False
        failed: str | None = None
        for statement in statements:
            if not statement.covers_resource(call.resource):
                continue
            condition = statement.failed_condition(call.context)
            if condition is not None:
                failed = failed or condition.explain(call.context)
                continue
            if not statement.allow:
                return Denial(self.role_arn, principal, call.action, call.resource, explicit=True)
            allowed = True
        if allowed:
            return None
        return Denial(self.role_arn, principal, call.action, call.resource, condition=failed)


# ------------------------------------------------------------------------------------------ the account
class OfflineIam:
    """The roles of one deployment and the sessions of them that sign requests offline."""

    def __init__(self) -> None:
        self._policies: dict[str, RolePolicy] = {}
        self._sessions: dict[str, tuple[IamCaller, str]] = {}
        self._by_role: dict[str, IamCaller] = {}
        self._lock = threading.Lock()
        self.denials: collections.deque[Denial] = collections.deque(maxlen=1000)
        """The denied calls, oldest first (bounded: a server that runs for days keeps the latest)."""

    def load(self, iam_client: Any) -> None:
        """Compile every role's inline and attached managed policies, as IAM holds them now."""
        details = iam_client.get_account_authorization_details(
            Filter=["Role", "LocalManagedPolicy", "AWSManagedPolicy"]
        )
        managed = {
            policy["Arn"]: next(v["Document"] for v in policy["PolicyVersionList"] if v["IsDefaultVersion"])
            for policy in details.get("Policies", [])
        }
        for role in details.get("RoleDetailList", []):
            documents = [policy["PolicyDocument"] for policy in role.get("RolePolicyList", [])]
            documents += [
                managed[p["PolicyArn"]]
                for p in role.get("AttachedManagedPolicies", [])
                if p["PolicyArn"] in managed
            ]
            self._policies[role["Arn"]] = RolePolicy(role["Arn"], [_document(d) for d in documents])

    def session(self, role_arn: str, name: str) -> IamCaller:
        """A session of `role_arn` whose calls are checked (one per role and name, made on first use)."""
        with self._lock:
            caller = self._by_role.get(f"{role_arn}/{name}")
            if caller is None:
                caller = IamCaller.role_session(role_arn, session=name)
                self.register(caller, role_arn)
                self._by_role[f"{role_arn}/{name}"] = caller
            return caller

    def register(self, caller: IamCaller, role_arn: str) -> None:
        """Check the calls signed with `caller`'s access key against `role_arn`'s policies."""
        self._sessions[caller.access_key_id] = (caller, role_arn)

    def checks(self, access_key: str | None) -> bool:
        return access_key is not None and access_key in self._sessions

    def knows(self, role_arn: str) -> bool:
        return role_arn in self._policies

    def authorize(self, access_key: str | None, calls: Iterable[Call]) -> Denial | None:
        """The first of `calls` the key's role may not make (recorded), or None; a key of no registered
        session is not checked."""
        session = self._sessions.get(access_key) if access_key else None
        if session is None:
            return None
        caller, role_arn = session
        policy = self._policies.get(role_arn) or RolePolicy(role_arn, ())
        for call in calls:
            denial = policy.decide(call, caller.user_arn)
            if denial is not None:
                self.denials.append(denial)
                LOG.warning("IAM denied %s", denial)
                return denial
        return None


def _document(document: Any) -> Mapping[str, Any]:
    return json.loads(document) if isinstance(document, str) else dict(document)


# ------------------------------------------------------------------------------------------ requests
_PREFIXES = {"stepfunctions": "states"}
"""Services whose IAM prefix is not their botocore (and moto) name."""
_KEYWORDS = frozenset({"and", "or", "not", "between", "in", "set", "remove", "add", "delete"})
_NAME = re.compile(r"(?<![\w.#:])#?[A-Za-z_]\w*(?!\w|\s*\()")
_ITEM_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem"}
)
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "Get": "GetItem"}
_TRANSACT["ConditionCheck"] = "ConditionCheckItem"


def dynamodb_attributes(request: Mapping[str, Any]) -> frozenset[str]:
    """`dynamodb:Attributes` of one DynamoDB request: the top-level names of the attributes it reads,
    writes, or evaluates in a condition, filter or key condition (keys included), aliases resolved."""
    names: set[str] = set()
    aliases: Mapping[str, str] = request.get("ExpressionAttributeNames") or {}
    for map_name in (
        "Key",
        "Item",
        "AttributeUpdates",
        "Expected",
        "QueryFilter",
        "ScanFilter",
        "KeyConditions",
    ):
        names.update(request.get(map_name) or {})
    for key in request.get("Keys") or []:
        names.update(key)
    names.update(request.get("AttributesToGet") or [])
    for expression_name in (
        "UpdateExpression",
        "ConditionExpression",
        "ProjectionExpression",
        "FilterExpression",
        "KeyConditionExpression",
    ):
        for token in _NAME.findall(str(request.get(expression_name) or "")):
            if token.lower() not in _KEYWORDS:
                names.add(aliases.get(token, token))
    return frozenset(names)


def _table_arn(table: str, region: str, account: str, index: str | None = None) -> str:
    arn = table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def _dynamodb_context(operation: str, request: Mapping[str, Any], enclosing: str | None = None) -> Context:
    context: dict[str, tuple[str, ...]] = {"dynamodb:attributes": tuple(sorted(dynamodb_attributes(request)))}
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        context["dynamodb:returnvalues"] = (str(request.get("ReturnValues") or "NONE"),)
    if operation in ("Query", "Scan"):
        default = "ALL_PROJECTED_ATTRIBUTES" if request.get("IndexName") else "ALL_ATTRIBUTES"
        projected = request.get("ProjectionExpression") or request.get("AttributesToGet")
        context["dynamodb:select"] = (
            str(request.get("Select") or ("SPECIFIC_ATTRIBUTES" if projected else default)),
        )
    if enclosing:
        context["dynamodb:enclosingoperation"] = (enclosing,)
    return context


def _dynamodb(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Call]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        calls = []
        for entry in params.get("TransactItems") or []:
            kind, request = next(iter(entry.items()))
            action = _TRANSACT[kind]
            arn = _table_arn(request["TableName"], region, account)
            calls.append(Call(f"dynamodb:{action}", arn, _dynamodb_context(action, request, operation)))
        return calls
    if operation in ("BatchGetItem", "BatchWriteItem"):
        calls = []
        for table, request in (params.get("RequestItems") or {}).items():
            if isinstance(request, list):  # BatchWriteItem: its puts' items and its deletes' keys
                request = {
                    "Keys": [
                        w.get("PutRequest", {}).get("Item") or w.get("DeleteRequest", {}).get("Key") or {}
                        for w in request
                    ]
                }
            calls.append(
                Call(
                    f"dynamodb:{operation}",
                    _table_arn(table, region, account),
                    _dynamodb_context(operation, request),
                )
            )
        return calls
    table = params.get("TableName")
    arn = _table_arn(str(table), region, account, params.get("IndexName")) if table else "*"
    context = _dynamodb_context(operation, params) if operation in _ITEM_OPERATIONS else {}
    return [Call(f"dynamodb:{operation}", arn, context)]


def calls(
    prefix: str, operation: str, params: Mapping[str, Any], region: str = REGION, account: str = ACCOUNT_ID
) -> list[Call]:
    """The IAM requests of one operation of the service whose IAM prefix is `prefix`, with the botocore
    parameters `params`. A service whose resources this does not know is checked against `*`: a
    policy scoped to ARNs then denies it, loudly, until its resource is taught here."""
    if prefix == "dynamodb":
        return _dynamodb(operation, params, region, account)
    resource = "*"
    context: dict[str, tuple[str, ...]] = {}
    if prefix == "states":
        resource = str(params.get("executionArn") or params.get("stateMachineArn") or "*")
    elif prefix == "sns":
        resource = str(params.get("TopicArn") or params.get("TargetArn") or "*")
    elif prefix == "sqs" and params.get("QueueUrl"):
        account_id, _, name = urlsplit(str(params["QueueUrl"])).path.strip("/").rpartition("/")
        resource = f"arn:aws:sqs:{region}:{account_id or account}:{name}"
    elif prefix == "secretsmanager" and params.get("SecretId"):
        secret = str(params["SecretId"])
        resource = (
            secret
            if secret.startswith("arn:")
            else f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}"
        )
    elif prefix == "cloudwatch" and params.get("Namespace"):
        context["cloudwatch:namespace"] = (str(params["Namespace"]),)
    return [Call(f"{prefix}:{operation}", resource, context)]


# ------------------------------------------------------------------------------------------ the doors
_accounts: list[OfflineIam] = []
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


def activate(account: OfflineIam | None) -> None:
    """Check calls against this deployment's roles alone (None: nothing is checked)."""
    _accounts[:] = [account] if account is not None else []


def attach(account: OfflineIam) -> None:
    """Check the calls of this deployment's sessions too, beside the stacks already running."""
    if account not in _accounts:
        _accounts.append(account)


def detach(account: OfflineIam) -> None:
    if account in _accounts:
        _accounts.remove(account)


def _checking(key: str | None) -> OfflineIam | None:
    """The deployment whose session signed with `key`, if any."""
    return next((account for account in reversed(_accounts) if account.checks(key)), None)


def _knowing(role_arn: str) -> OfflineIam | None:
    """The newest deployment that compiled `role_arn`'s policies (it loaded after the role existed)."""
    return next((account for account in reversed(_accounts) if account.knows(role_arn)), None)


def access_key(authorization: str | bytes | None) -> str | None:
    """The access key id of a SigV4 `Authorization` header."""
    text = authorization.decode() if isinstance(authorization, bytes) else authorization
    match = _ACCESS_KEY.search(text or "")
    return match.group(1) if match else None


def authorize(key: str | None, requested: Iterable[Call]) -> Denial | None:
    """The active deployment's decision on calls signed with `key` (None: allowed or not checked)."""
    account = _checking(key)
    return account.authorize(key, requested) if account is not None else None


def function_arn(name: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    """`lambda:InvokeFunction`'s resource for the name (or ARN) an `Invoke` path carries."""
    return name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"


def _denied(response: BaseResponse, denial: Denial) -> tuple[int, dict[str, str], str]:
    """The service's own answer to a denied call: a JSON API's `AccessDeniedException` (HTTP 400, the
    common error of every API reference); a query API's XML `AccessDenied` (403), which SNS names
    `AuthorizationError` (its Publish reference)."""
    content_type = str(response.headers.get("Content-Type") or "")
    if "json" not in content_type:
        code = "AuthorizationError" if response.service_name == "sns" else "AccessDenied"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{escape(denial.message)}</Message></Error><RequestId>offline</RequestId></ErrorResponse>"
        )
        return 403, {"Content-Type": "text/xml"}, body
    body = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException", "Message": denial.message})
    headers = {"Content-Type": content_type}
    if response.service_name in ("sqs", "cloudwatch"):  # awsQueryCompatible: the query API's code too
        headers["x-amzn-query-error"] = "AccessDenied;Sender"
    return 400, headers, body


_moto_call_action = BaseResponse.call_action


def _call_action(self: BaseResponse) -> Any:
    """moto's `call_action`, after the caller's role has allowed the call."""
    key = self.get_access_key()
    account = _checking(key)
    if account is not None:
        operation = self._get_action()
        if self.automated_parameter_parsing:  # moto parsed the request with botocore's model
            params = self.params
        else:
            json_body = "json" in str(self.headers.get("Content-Type") or "")
            params = json.loads(self.body or "{}") if json_body else {}
        model_name = str(getattr(self, "boto3_service_name", self.service_name))
        prefix = _PREFIXES.get(model_name, model_name)
        denial = account.authorize(
            key, calls(prefix, operation, params, str(self.region), str(self.current_account))
        )
        if denial is not None:
            return _denied(self, denial)
    return _moto_call_action(self)


def _state_machine_client(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's interpreter's client for a task, signed with a session of the execution's role (moto
    signs with a fixed key) so that its calls are checked against the state machine's policies."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    key, secret = "ak", "sk"
    role = getattr(state_credentials, "role_arn", None)
    account = _knowing(str(role)) if role else None
    if account is not None:
        caller = account.session(str(role), "StepFunctions")
        key, secret = caller.access_key_id, caller.secret_access_key
    endpoint = "" if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
    # One client per service, region and session, made once: botocore's clients are thread-safe, and
    # making one costs more CPU than the task it calls (a fifth of the server's, under load).
    cache_key = (service, region, key, endpoint)
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            client = boto3.session.Session().client(
                service_name=service,
                region_name=region,
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                **({"endpoint_url": endpoint} if endpoint else {}),
                config=Config(
                    parameter_validation=False,
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                ),
            )
            _clients[cache_key] = client
    return client


_clients: dict[tuple[str, str, str, str], Any] = {}
_clients_lock = threading.Lock()


def install() -> None:
    """Put the checks in moto's request path and in its ASL interpreter's clients; safe to call again."""
    BaseResponse.call_action = _call_action  # type: ignore[method-assign]
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    for name, module in list(sys.modules.items()):
        if (
            name.startswith("moto.stepfunctions.parser")
            and getattr(module, "boto_client_for", None) is original
        ):
            module.boto_client_for = _state_machine_client  # type: ignore[attr-defined]
