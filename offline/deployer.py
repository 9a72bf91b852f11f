"""Deploys template.yaml onto moto as CloudFormation deploys it: its SAM translation, resource by resource.

`offline.template.translate` turns the SAM template into plain CloudFormation (Globals merged,
function roles and policies, as `sam deploy` has CloudFormation do it). moto's CloudFormation cannot
carry that template (docs/decisions/0006), so each resource type moto can hold gets a small creator
here, calling the service's API in samconfig.toml's region: IAM roles and their policies, Lambda
functions, log groups, alarms, tables, topic, queue, SSM parameters, the secret and the state
machine, and the Cognito user pool with its groups and app clients. The AWS CLI and boto3 against the
offline endpoint then list them as in AWS, and moto's Cognito signs its users in with RS256 ID tokens
that the offline AppSync accepts (docs/decisions/0009).

Every function is also registered with the local Lambda runtime (`offline.lambdas`), which runs its
handler: moto only stores functions. A resource type with no creator (AppSync, WAF) is listed in
`Deployment.skipped` with the reason.

One documented switch changes what runs: `fast_retries=True` rewrites every `Retry` of the state
machine to `IntervalSeconds: 1, MaxDelaySeconds: 1, BackoffRate: 1` (Step Functions' minimum) at
deploy time, so tests that exhaust retries finish in seconds. The definition file is never copied.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import secrets
import string
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

from offline import template as cfn
from offline.lambdas import LambdaRuntime, LocalFunction

OFFLINE_ENVIRONMENT = {
    # No X-Ray daemon on a laptop: the Tracer stays a no-op.
    "POWERTOOLS_TRACE_DISABLED": "true",
}
"""Added to every function's own environment when it runs offline (never to what moto records)."""

NOT_OFFLINE = {
    "AWS::AppSync::": "offline.appsync serves the API from template.yaml and schema.graphql "
    "(moto 5.2.5's AppSync has no data sources or resolvers)",
    "AWS::WAFv2::": "nothing to attach it to offline: the API is offline.appsync on loopback, not a moto "
    "resource, and moto 5.2.5's WAFv2 stores web ACLs without enforcing any rule (the rate limit is AWS's)",
}
"""Why a resource type is not created in moto, by type prefix."""

NAME_LIMITS = {
    "AWS::IAM::Role": 64,
    "AWS::Lambda::Function": 64,
    "AWS::SQS::Queue": 80,
    "AWS::StepFunctions::StateMachine": 80,
}
"""The longest name AWS accepts, for the types whose generated name could exceed it (others: 255)."""


@dataclass
class Deployment:
    """What was created: physical ids by logical id, plus the template's outputs."""

    stack_name: str
    physical_ids: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    state_machine_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    """The resource type of each logical id created."""
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    """What `Fn::GetAtt` of each resource returned (the GraphQL API's among them, served offline)."""

    def __getitem__(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]


def deploy(
    template_path: str | Path,
    runtime: LambdaRuntime,
    *,
    stack_name: str,
    parameters: Mapping[str, str] | None = None,
    fast_retries: bool = False,
    extra_environment: Mapping[str, str] | None = None,
) -> Deployment:
    """Create every resource of the translated template that moto holds, in dependency order, and
    register its functions with `runtime`. `extra_environment` is added to every function's
    environment offline (nothing in the service uses it)."""
    template_path = Path(template_path)
    template = cfn.translate(template_path.read_text(encoding="utf-8"), parameters or {})
    resolver = cfn.Resolver(template, parameters or {}, stack_name)
    deployment = Deployment(stack_name)
    resources: dict[str, dict[str, Any]] = template["Resources"]
    context = _Context(template_path.parent, resolver, runtime, fast_retries, extra_environment or {})
    wanted = {
        logical_id: resource
        for logical_id, resource in resources.items()
        if resolver.conditions.get(resource.get("Condition", ""), True)
    }
    _name_in_advance(context, wanted)
    for resource_type, create in CREATORS.items():
        for logical_id, resource in wanted.items():
            if resource["Type"] == resource_type:
                properties = resolver.resolve(resource.get("Properties", {}))
                create(context, logical_id, properties, deployment)
                deployment.physical_ids[logical_id] = str(resolver.refs[logical_id])
                deployment.types[logical_id] = resource_type
    for logical_id, resource in resources.items():
        if logical_id not in wanted:
            deployment.skipped[logical_id] = (
                f"{resource['Type']} (condition {resource['Condition']} is false)"
            )
        elif resource["Type"] not in CREATORS:
            deployment.skipped[logical_id] = f"{resource['Type']}: {_why_not(resource['Type'])}"
    deployment.attributes = {logical_id: dict(values) for logical_id, values in resolver.attributes.items()}
    for name, output in template.get("Outputs", {}).items():
        if not resolver.conditions.get(output.get("Condition", ""), True):
            continue
        try:
            deployment.outputs[name] = str(resolver.resolve(output["Value"]))
        except cfn.UnsupportedIntrinsic:
            continue  # an output of a resource with no offline counterpart (AppSync)
    return deployment


def _why_not(resource_type: str) -> str:
    for prefix, reason in NOT_OFFLINE.items():
        if resource_type.startswith(prefix):
            return reason
    return "no creator in offline.deployer"


@dataclass
class _Context:
    base: Path
    resolver: cfn.Resolver
    runtime: LambdaRuntime
    fast_retries: bool
    extra_environment: Mapping[str, str]

    def client(self, service: str) -> Any:
        return _client(service)

    def name(self, logical_id: str, given: Any, resource_type: str = "") -> str:
        """CloudFormation's generated name (without its random suffix) when the template gives none,
        shortened as CloudFormation does where AWS limits the length."""
        if given:
            return str(given)
        stack = self.resolver.stack_name
        limit = NAME_LIMITS.get(resource_type, 255)
        if len(stack) + 1 + len(logical_id) > limit:
            stack = stack[: max(1, limit - 1 - len(logical_id))]
        return f"{stack}-{logical_id}"[:limit]

    def define(self, logical_id: str, ref: str, **attributes: str) -> None:
        """What `Ref` and `Fn::GetAtt` of this resource return from now on."""
        self.resolver.refs[logical_id] = ref
        self.resolver.attributes[logical_id] = attributes


@functools.cache
def _client(service: str) -> Any:
    """One client per service and process, in samconfig's region: making a boto3 client costs more
    than the calls a deployment makes with it, and a client holds no state of the stack it created."""
    return boto3.client(service, region_name=cfn.REGION)


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{cfn.REGION}:{cfn.ACCOUNT_ID}:{resource}"


def _name_in_advance(ctx: _Context, resources: Mapping[str, dict[str, Any]]) -> None:
    """Functions and state machines refer to each other (the saga invokes functions, the Api function
    starts the saga, roles name both); their ARNs follow from their names, so give them first."""
    for logical_id, resource in resources.items():
        raw = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            name = ctx.name(logical_id, ctx.resolver.resolve(raw.get("FunctionName")), resource["Type"])
            ctx.define(logical_id, name, Arn=_arn("lambda", f"function:{name}"))
        elif resource["Type"] == "AWS::StepFunctions::StateMachine":
            name = ctx.name(logical_id, ctx.resolver.resolve(raw.get("StateMachineName")), resource["Type"])
            arn = _arn("states", f"stateMachine:{name}")
            ctx.define(logical_id, arn, Arn=arn, Name=name)
        elif resource["Type"] == "AWS::AppSync::GraphQLApi":
            # Served by offline.appsync, not created here; the functions that push status changes
            # reach it at the stack's AWS endpoint, which answers POST /graphql as AppSync does.
            api_id = hashlib.sha256(f"{ctx.resolver.stack_name}/{logical_id}".encode()).hexdigest()[:26]
            arn = _arn("appsync", f"apis/{api_id}")
            url = f"{ctx.runtime.aws_endpoint or 'http://127.0.0.1'}/graphql"
            ctx.define(logical_id, arn, Arn=arn, ApiId=api_id, GraphQLUrl=url)


# ------------------------------------------------------------------------------------------ creators
# Each gets the resource's properties with every intrinsic function resolved.
Creator = Callable[[_Context, str, dict[str, Any], Deployment], None]


def _secret(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    """The secret's value is given, or generated as `GenerateSecretString` asks."""
    value = props.get("SecretString")
    if value is None:
        spec = props.get("GenerateSecretString", {})
        alphabet = string.ascii_letters + string.digits
        if not _true(spec.get("ExcludePunctuation", False)):
            alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
        alphabet = "".join(c for c in alphabet if c not in str(spec.get("ExcludeCharacters", "")))
        value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    request: dict[str, Any] = {"Name": ctx.name(logical_id, props.get("Name")), "SecretString": str(value)}
    _copy(props, request, "Description", "KmsKeyId", "Tags")
    arn = ctx.client("secretsmanager").create_secret(**request)["ARN"]
    ctx.define(logical_id, arn, Id=arn)


def _table(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    name = ctx.name(logical_id, props.get("TableName"))
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    _copy(props, request, "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification", "Tags")
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {
            "Enabled": _true(sse.get("SSEEnabled", False)),
            **{key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse},
        }
    client = ctx.client("dynamodb")
    table = client.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and _true(ttl.get("Enabled")):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    recovery = props.get("PointInTimeRecoverySpecification", {})
    if _true(recovery.get("PointInTimeRecoveryEnabled", False)):
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    attributes = {"Arn": table["TableArn"]}
    if table.get("LatestStreamArn"):
        attributes["StreamArn"] = table["LatestStreamArn"]
    ctx.define(logical_id, name, **attributes)


def _topic(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    attributes = {
        key: _text(props[key])
        for key in ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")
        if key in props
    }
    request: dict[str, Any] = {"Name": ctx.name(logical_id, props.get("TopicName")), "Attributes": attributes}
    _copy(props, request, "Tags")
    arn = ctx.client("sns").create_topic(**request)["TopicArn"]
    ctx.define(logical_id, arn, TopicArn=arn, TopicName=arn.rsplit(":", 1)[1])


def _queue(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    name = ctx.name(logical_id, props.get("QueueName"), "AWS::SQS::Queue")
    attributes: dict[str, str] = {
        key: _text(props[key])
        for key in (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
            "SqsManagedSseEnabled",
            "KmsMasterKeyId",
            "FifoQueue",
            "ContentBasedDeduplication",
        )
        if key in props
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if props.get("Tags"):
        request["tags"] = {tag["Key"]: tag["Value"] for tag in props["Tags"]}
    url = ctx.client("sqs").create_queue(**request)["QueueUrl"]
    ctx.define(logical_id, url, Arn=_arn("sqs", name), QueueName=name, QueueUrl=url)


def _log_group(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    name = ctx.name(logical_id, props.get("LogGroupName"))
    request: dict[str, Any] = {"logGroupName": name}
    if props.get("KmsKeyId"):
        request["kmsKeyId"] = props["KmsKeyId"]
    if props.get("Tags"):
        request["tags"] = {tag["Key"]: tag["Value"] for tag in props["Tags"]}
    client = ctx.client("logs")
    client.create_log_group(**request)
    if "RetentionInDays" in props:
        client.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    ctx.define(logical_id, name, Arn=_arn("logs", f"log-group:{name}:*"))


def _role(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    """A role with its inline policies and its managed policies attached."""
    name = ctx.name(logical_id, props.get("RoleName"), "AWS::IAM::Role")
    request: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
    }
    _copy(props, request, "Path", "Description", "PermissionsBoundary", "Tags")
    if "MaxSessionDuration" in props:
        request["MaxSessionDuration"] = int(props["MaxSessionDuration"])
    iam = ctx.client("iam")
    role = iam.create_role(**request)["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    for arn in props.get("ManagedPolicyArns", []):
        _make_attachable(str(arn))
        iam.attach_role_policy(RoleName=name, PolicyArn=str(arn))
    ctx.define(logical_id, name, Arn=role["Arn"], RoleId=role["RoleId"])


def _make_attachable(arn: str) -> None:
    """moto 5.2.5 loads AWS managed policies only when told to for the whole mock (over 1,500 of
    them, for every new account); put just the ones the template attaches into its IAM."""
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[cfn.ACCOUNT_ID]["aws"]
    if not arn.startswith("arn:aws:iam::aws:policy/") or arn in backend.managed_policies:
        return  # a customer managed policy must exist already; AWS refuses it otherwise, and so does moto
    name = arn.rsplit("/", 1)[1]
    known = cfn.aws_managed_policy_documents().get(name)
    if known is None or known[0] != arn:
        return  # not an AWS managed policy: attach_role_policy refuses it, as IAM would
    policy = AWSManagedPolicy.from_data(name, cfn.ACCOUNT_ID, backend.region_name, known[1])
    backend.managed_policies[arn] = policy
    backend.aws_managed_policies.append(policy)


def _policy(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    """An inline policy put on each of its roles."""
    for role in props.get("Roles", []):
        ctx.client("iam").put_role_policy(
            RoleName=str(role),
            PolicyName=props["PolicyName"],
            PolicyDocument=json.dumps(props["PolicyDocument"]),
        )
    ctx.define(logical_id, str(props["PolicyName"]))


def _function(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    """The function in moto's Lambda (what `aws lambda` lists) and in the local runtime (what runs)."""
    name = str(ctx.resolver.refs[logical_id])
    code_path = _code_path(ctx, logical_id, props.get("Code", {}))
    variables = {
        key: _text(value) for key, value in props.get("Environment", {}).get("Variables", {}).items()
    }
    request: dict[str, Any] = {
        "FunctionName": name,
        "Role": props["Role"],
        "Handler": props["Handler"],
        "Runtime": props["Runtime"],
        "Code": {"ZipFile": _zip(code_path)},
        "Timeout": int(props.get("Timeout", 3)),
        "MemorySize": int(props.get("MemorySize", 128)),
    }
    if variables:
        request["Environment"] = {"Variables": variables}
    _copy(props, request, "Description", "Architectures", "TracingConfig", "EphemeralStorage")
    if props.get("Tags"):
        request["Tags"] = {tag["Key"]: tag["Value"] for tag in props["Tags"]}
    client = ctx.client("lambda")
    arn = client.create_function(**request)["FunctionArn"]
    reserved = props.get("ReservedConcurrentExecutions")
    if reserved is not None:
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=int(reserved))
    ctx.runtime.register(
        LocalFunction(
            logical_id=logical_id,
            name=name,
            arn=arn,
            handler=str(props["Handler"]),
            environment={**variables, **OFFLINE_ENVIRONMENT, **ctx.extra_environment},
            timeout_seconds=float(request["Timeout"]),
            memory_mb=request["MemorySize"],
            code_path=str(code_path),
            reserved_concurrency=int(reserved) if reserved is not None else None,
            role=str(props["Role"]),
        )
    )
    ctx.define(logical_id, name, Arn=arn)


def _code_path(ctx: _Context, logical_id: str, code: Mapping[str, Any]) -> Path:
    """The local CodeUri directory the translation's placeholder location stands for."""
    if code.get("S3Bucket") != cfn.CODE_BUCKET:
        raise ValueError(f"{logical_id}: offline runs local code only (a CodeUri path), not {code}")
    path = (ctx.base / str(code["S3Key"])).resolve()
    if not path.is_dir():
        raise ValueError(f"{logical_id}: CodeUri {code['S3Key']} is not a directory next to the template")
    return path


@functools.cache
def _zip(directory: Path) -> bytes:
    """The code directory zipped as `sam package` uploads it; made once per process."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                info = zipfile.ZipInfo(
                    path.relative_to(directory).as_posix(), date_time=(1980, 1, 1, 0, 0, 0)
                )
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _state_machine(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    """The real definition file (`DefinitionUri`, which the translation made an S3 location), with its
    `DefinitionSubstitutions`, and the role the translation gives the state machine."""
    definition = _definition(ctx, logical_id, props)
    if ctx.fast_retries:
        shorten_retries(definition)
    name = str(ctx.resolver.attributes[logical_id]["Name"])
    request: dict[str, Any] = {
        "name": name,
        "definition": json.dumps(definition),
        "roleArn": props["RoleArn"],
        "type": props.get("StateMachineType", "STANDARD"),
    }
    for cloudformation, api in (
        ("LoggingConfiguration", "loggingConfiguration"),
        ("TracingConfiguration", "tracingConfiguration"),
        ("Tags", "tags"),
    ):
        if cloudformation in props:
            request[api] = _camel(props[cloudformation])
    arn = ctx.client("stepfunctions").create_state_machine(**request)["stateMachineArn"]
    deployment.state_machine_definitions[logical_id] = definition
    ctx.define(logical_id, arn, Arn=arn, Name=name)


def _definition(ctx: _Context, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    substitutions = props.get("DefinitionSubstitutions", {})
    if "DefinitionS3Location" in props:
        location = props["DefinitionS3Location"]
        if location.get("Bucket") != cfn.CODE_BUCKET:
            raise ValueError(f"{logical_id}: offline reads a local DefinitionUri only, not {location}")
        text = (ctx.base / str(location["Key"])).read_text(encoding="utf-8")
    elif "DefinitionString" in props:
        text = str(props["DefinitionString"])
    else:
        text = json.dumps(props["Definition"])
    definition: dict[str, Any] = yaml.safe_load(cfn.substitute_definition(text, substitutions))
    return definition


def _parameter(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    name = ctx.name(logical_id, props.get("Name"))
    request: dict[str, Any] = {
        "Name": name,
        "Value": _text(props["Value"]),
        "Type": props.get("Type", "String"),
    }
    _copy(props, request, "Description", "AllowedPattern", "Tier", "DataType")
    ctx.client("ssm").put_parameter(**request)
    ctx.define(logical_id, name, Type=request["Type"], Value=request["Value"])


def _alarm(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    name = ctx.name(logical_id, props.get("AlarmName"))
    request: dict[str, Any] = {"AlarmName": name}
    _copy(
        props,
        request,
        "AlarmDescription",
        "ActionsEnabled",
        "OKActions",
        "AlarmActions",
        "InsufficientDataActions",
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Unit",
        "ComparisonOperator",
        "TreatMissingData",
        "EvaluateLowSampleCountPercentile",
        "Metrics",
        "ThresholdMetricId",
        "Tags",
    )
    if "Dimensions" in props:
        request["Dimensions"] = [{"Name": d["Name"], "Value": _text(d["Value"])} for d in props["Dimensions"]]
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in props:
            request[key] = int(props[key])
    if "Threshold" in props:
        request["Threshold"] = float(props["Threshold"])
    if "ActionsEnabled" in request:
        request["ActionsEnabled"] = _true(request["ActionsEnabled"])
    ctx.client("cloudwatch").put_metric_alarm(**request)
    ctx.define(logical_id, name, Arn=_arn("cloudwatch", f"alarm:{name}"))


def _user_pool(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    """The user pool in moto's Cognito: it signs its users in (AdminInitiateAuth…) and issues RS256 ID
    tokens whose `iss` is the pool's provider URL, with the pool's keys served at its JWKS URL."""
    request: dict[str, Any] = {"PoolName": ctx.name(logical_id, props.get("UserPoolName"))}
    _copy(
        props,
        request,
        "Policies",
        "UsernameAttributes",
        "AliasAttributes",
        "AutoVerifiedAttributes",
        "MfaConfiguration",
        "Schema",
        "AdminCreateUserConfig",
        "AccountRecoverySetting",
        "UsernameConfiguration",
        "DeletionProtection",
        "UserPoolTags",
    )
    pool = ctx.client("cognito-idp").create_user_pool(**request)["UserPool"]
    provider = f"cognito-idp.{cfn.REGION}.amazonaws.com/{pool['Id']}"
    ctx.define(
        logical_id,
        pool["Id"],
        Arn=pool["Arn"],
        ProviderName=provider,
        ProviderURL=f"https://{provider}",
        UserPoolId=pool["Id"],
    )


def _user_pool_group(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    request: dict[str, Any] = {"UserPoolId": props["UserPoolId"], "GroupName": props["GroupName"]}
    _copy(props, request, "Description", "RoleArn")
    if "Precedence" in props:
        request["Precedence"] = int(props["Precedence"])
    ctx.client("cognito-idp").create_group(**request)
    ctx.define(logical_id, str(props["GroupName"]))


def _user_pool_client(ctx: _Context, logical_id: str, props: dict[str, Any], deployment: Deployment) -> None:
    request: dict[str, Any] = {
        "UserPoolId": props["UserPoolId"],
        "ClientName": ctx.name(logical_id, props.get("ClientName")),
        "GenerateSecret": _true(props.get("GenerateSecret", False)),
    }
    _copy(
        props,
        request,
        "ExplicitAuthFlows",
        "PreventUserExistenceErrors",
        "ReadAttributes",
        "WriteAttributes",
        "TokenValidityUnits",
        "SupportedIdentityProviders",
        "CallbackURLs",
        "LogoutURLs",
        "AllowedOAuthFlows",
        "AllowedOAuthScopes",
    )
    for key in ("RefreshTokenValidity", "AccessTokenValidity", "IdTokenValidity", "AuthSessionValidity"):
        if key in props:
            request[key] = int(props[key])
    for key in ("AllowedOAuthFlowsUserPoolClient", "EnableTokenRevocation"):
        if key in props:
            request[key] = _true(props[key])
    client = ctx.client("cognito-idp").create_user_pool_client(**request)["UserPoolClient"]
    ctx.define(logical_id, client["ClientId"], Name=client["ClientName"])


CREATORS: dict[str, Creator] = {
    "AWS::Cognito::UserPool": _user_pool,
    "AWS::Cognito::UserPoolGroup": _user_pool_group,
    "AWS::Cognito::UserPoolClient": _user_pool_client,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::DynamoDB::Table": _table,
    "AWS::SNS::Topic": _topic,
    "AWS::SQS::Queue": _queue,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _policy,
    "AWS::Lambda::Function": _function,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::SSM::Parameter": _parameter,
    "AWS::CloudWatch::Alarm": _alarm,
}
"""What moto holds, in creation order: each type only refers to types above it (functions and state
machines, which refer to each other, are named in advance)."""


def undeploy(deployment: Deployment) -> None:
    """Delete what `deploy` created, in the reverse order, as `sam delete` has CloudFormation do it: for
    a stage deployed beside others in one moto (a test's second stage), so the account lists only the
    stacks still running. A resource already gone (a test deleted it) is passed over."""
    from botocore.exceptions import ClientError

    for logical_id, resource_type in reversed(list(deployment.types.items())):
        delete = DELETERS.get(resource_type)
        if delete is None:
            continue
        try:
            delete(deployment.physical_ids[logical_id])
        except ClientError:
            continue


def _delete_role(name: str) -> None:
    iam = _client("iam")
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=name)


DELETERS: dict[str, Callable[[str], Any]] = {
    "AWS::Cognito::UserPool": lambda pool: _client("cognito-idp").delete_user_pool(UserPoolId=pool),
    "AWS::SecretsManager::Secret": lambda arn: _client("secretsmanager").delete_secret(
        SecretId=arn, ForceDeleteWithoutRecovery=True
    ),
    "AWS::DynamoDB::Table": lambda name: _client("dynamodb").delete_table(TableName=name),
    "AWS::SNS::Topic": lambda arn: _client("sns").delete_topic(TopicArn=arn),
    "AWS::SQS::Queue": lambda url: _client("sqs").delete_queue(QueueUrl=url),
    "AWS::Logs::LogGroup": lambda name: _client("logs").delete_log_group(logGroupName=name),
    "AWS::IAM::Role": _delete_role,
    "AWS::Lambda::Function": lambda name: _client("lambda").delete_function(FunctionName=name),
    "AWS::StepFunctions::StateMachine": lambda arn: _client("stepfunctions").delete_state_machine(
        stateMachineArn=arn
    ),
    "AWS::SSM::Parameter": lambda name: _client("ssm").delete_parameter(Name=name),
    "AWS::CloudWatch::Alarm": lambda name: _client("cloudwatch").delete_alarms(AlarmNames=[name]),
}
"""How each created type is deleted, given its physical id (a user pool's groups and clients go with it,
a role's inline policies with the role)."""


# ------------------------------------------------------------------------------------------ helpers
def _copy(source: Mapping[str, Any], target: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key in source:
            target[key] = source[key]


def _true(value: Any) -> bool:
    """CloudFormation's booleans: true or "true" (any case)."""
    return value is True or str(value).lower() == "true"


def _text(value: Any) -> str:
    """A value as CloudFormation passes it to a string property (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase keys as Step Functions' API spells them (camelCase)."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def shorten_retries(definition: dict[str, Any]) -> None:
    """The `fast_retries` switch: every retrier waits Step Functions' minimum, attempts unchanged."""
    for state in definition.get("States", {}).values():
        for retrier in state.get("Retry", []):
            retrier.update(IntervalSeconds=1, MaxDelaySeconds=1, BackoffRate=1.0)
        for branch in state.get("Branches", []):
            shorten_retries(branch)
