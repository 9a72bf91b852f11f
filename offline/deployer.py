"""Deploys template.yaml onto moto: the resources the saga needs, built from the template itself.

moto's CloudFormation cannot deploy this template (state machines, AppSync and Cognito are missing
or wrong), so each resource type the application uses gets a small creator here, fed by the
template's resolved properties. A type with no creator is listed in `Deployment.skipped` (alarms,
log groups, IAM: nothing to emulate on a laptop).

One documented switch changes what runs: `fast_retries=True` rewrites every `Retry` of the state
machine to `IntervalSeconds: 1, MaxDelaySeconds: 1, BackoffRate: 1` (Step Functions' minimum) at
deploy time, so tests that exhaust retries finish in seconds. The definition file is never copied.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
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
    "AWS_REGION": cfn.REGION,
    "AWS_DEFAULT_REGION": cfn.REGION,
}
STATE_MACHINE_ROLE = f"arn:aws:iam::{cfn.ACCOUNT_ID}:role/offline-state-machine"


@dataclass
class Deployment:
    """What was created: physical ids by logical id, plus the template's outputs."""

    stack_name: str
    physical_ids: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    state_machine_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)

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
    """Create every supported resource of the template, in dependency order, and register its functions."""
    template_path = Path(template_path)
    template = cfn.load(template_path)
    resolver = cfn.Resolver(template, parameters or {}, stack_name)
    deployment = Deployment(stack_name)
    resources: dict[str, dict[str, Any]] = template["Resources"]
    creators = {
        "AWS::SecretsManager::Secret": _secret,
        "AWS::DynamoDB::Table": _table,
        "AWS::SNS::Topic": _topic,
        "AWS::SQS::Queue": _queue,
        "AWS::Serverless::Function": _function,
        "AWS::Serverless::StateMachine": _state_machine,
        "AWS::SSM::Parameter": _parameter,
    }
    context = _Context(
        template, template_path.parent, resolver, runtime, fast_retries, extra_environment or {}
    )
    wanted = {
        logical_id: resource
        for logical_id, resource in resources.items()
        if resolver.conditions.get(resource.get("Condition", ""), True)
    }
    _name_in_advance(context, wanted)
    for resource_type, create in creators.items():
        for logical_id, resource in wanted.items():
            if resource["Type"] == resource_type:
                create(context, logical_id, resource.get("Properties", {}), deployment)
                deployment.physical_ids[logical_id] = str(resolver.refs[logical_id])
    for logical_id, resource in resources.items():
        if logical_id not in wanted:
            deployment.skipped[logical_id] = (
                f"{resource['Type']} (condition {resource['Condition']} is false)"
            )
        elif resource["Type"] not in creators:
            deployment.skipped[logical_id] = resource["Type"]
    for name, output in template.get("Outputs", {}).items():
        if not resolver.conditions.get(output.get("Condition", ""), True):
            continue
        try:
            deployment.outputs[name] = str(resolver.resolve(output["Value"]))
        except cfn.UnsupportedIntrinsic:
            continue  # an output of a resource with no offline counterpart (AppSync, Cognito)
    return deployment


@dataclass
class _Context:
    template: dict[str, Any]
    base: Path
    resolver: cfn.Resolver
    runtime: LambdaRuntime
    fast_retries: bool
    extra_environment: Mapping[str, str]

    def name(self, logical_id: str, given: Any) -> str:
        """CloudFormation's generated name when the template gives none."""
        return str(given) if given else f"{self.resolver.stack_name}-{logical_id}"


def _resolve_used(ctx: _Context, raw: Mapping[str, Any], used: tuple[str, ...]) -> dict[str, Any]:
    """Resolve only the properties offline uses: IAM policies and log settings name resources
    (log groups, roles) that have no offline counterpart."""
    return {key: ctx.resolver.resolve(value) for key, value in raw.items() if key in used}


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{cfn.REGION}:{cfn.ACCOUNT_ID}:{resource}"


def _name_in_advance(ctx: _Context, resources: Mapping[str, dict[str, Any]]) -> None:
    """Functions and state machines refer to each other (the saga invokes functions, the Api function
    starts the saga); their ARNs follow from their names, so give both before creating either."""
    for logical_id, resource in resources.items():
        props = _resolve_used(ctx, resource.get("Properties", {}), ("FunctionName", "Name"))
        if resource["Type"] == "AWS::Serverless::Function":
            name = ctx.name(logical_id, props.get("FunctionName"))
            ctx.resolver.refs[logical_id] = name
            ctx.resolver.attributes[logical_id] = {"Arn": _arn("lambda", f"function:{name}")}
        elif resource["Type"] == "AWS::Serverless::StateMachine":
            name = ctx.name(logical_id, props.get("Name"))
            arn = _arn("states", f"stateMachine:{name}")
            ctx.resolver.refs[logical_id] = arn
            ctx.resolver.attributes[logical_id] = {"Arn": arn, "Name": name}


def _secret(ctx: _Context, logical_id: str, raw: dict[str, Any], deployment: Deployment) -> None:
    """A generated secret, as `GenerateSecretString` would make it."""
    props = _resolve_used(ctx, raw, ("Name", "Description"))
    arn = boto3.client("secretsmanager", region_name=cfn.REGION).create_secret(
        Name=ctx.name(logical_id, props.get("Name")), SecretString=secrets.token_urlsafe(48)
    )["ARN"]
    ctx.resolver.refs[logical_id] = arn
    ctx.resolver.attributes[logical_id] = {"Id": arn}


def _table(ctx: _Context, logical_id: str, raw: dict[str, Any], deployment: Deployment) -> None:
    props = ctx.resolver.resolve(raw)
    name = ctx.name(logical_id, props.get("TableName"))
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    client = boto3.client("dynamodb", region_name=cfn.REGION)
    client.create_table(**request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    ctx.resolver.refs[logical_id] = name
    ctx.resolver.attributes[logical_id] = {"Arn": _arn("dynamodb", f"table/{name}")}


def _topic(ctx: _Context, logical_id: str, raw: dict[str, Any], deployment: Deployment) -> None:
    props = ctx.resolver.resolve(raw)
    attributes = {key: str(props[key]) for key in ("DisplayName", "KmsMasterKeyId") if key in props}
    arn = boto3.client("sns", region_name=cfn.REGION).create_topic(
        Name=ctx.name(logical_id, props.get("TopicName")), Attributes=attributes
    )["TopicArn"]
    ctx.resolver.refs[logical_id] = arn
    ctx.resolver.attributes[logical_id] = {"TopicArn": arn, "TopicName": arn.rsplit(":", 1)[1]}


def _queue(ctx: _Context, logical_id: str, raw: dict[str, Any], deployment: Deployment) -> None:
    props = ctx.resolver.resolve(raw)
    name = ctx.name(logical_id, props.get("QueueName"))
    attributes = {
        key: str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        for key in ("MessageRetentionPeriod", "VisibilityTimeout", "SqsManagedSseEnabled", "DelaySeconds")
        if key in props
    }
    url = boto3.client("sqs", region_name=cfn.REGION).create_queue(QueueName=name, Attributes=attributes)[
        "QueueUrl"
    ]
    ctx.resolver.refs[logical_id] = url
    ctx.resolver.attributes[logical_id] = {"Arn": _arn("sqs", name), "QueueName": name, "QueueUrl": url}


def _function(ctx: _Context, logical_id: str, raw: dict[str, Any], deployment: Deployment) -> None:
    """Merge Globals as SAM does and register the handler with the local Lambda runtime."""
    used = ("FunctionName", "Handler", "Environment", "Timeout", "MemorySize", "CodeUri")
    globals_ = _resolve_used(ctx, ctx.template.get("Globals", {}).get("Function", {}), used)
    props = _resolve_used(ctx, raw, used)
    environment = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **props.get("Environment", {}).get("Variables", {}),
        **OFFLINE_ENVIRONMENT,
        **ctx.extra_environment,
    }
    name = ctx.name(logical_id, props.get("FunctionName"))
    arn = _arn("lambda", f"function:{name}")
    ctx.runtime.register(
        LocalFunction(
            logical_id=logical_id,
            name=name,
            arn=arn,
            handler=str(props.get("Handler", globals_.get("Handler"))),
            environment={key: str(value) for key, value in environment.items()},
            timeout_seconds=float(props.get("Timeout", globals_.get("Timeout", 3))),
            memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            code_path=str((ctx.base / str(props.get("CodeUri", globals_.get("CodeUri", ".")))).resolve()),
        )
    )
    ctx.resolver.refs[logical_id] = name
    ctx.resolver.attributes[logical_id] = {"Arn": arn}


def _state_machine(ctx: _Context, logical_id: str, raw: dict[str, Any], deployment: Deployment) -> None:
    props = _resolve_used(ctx, raw, ("Name", "Type", "DefinitionUri", "DefinitionSubstitutions"))
    text = (ctx.base / props["DefinitionUri"]).read_text()
    substituted = cfn.substitute_definition(text, props.get("DefinitionSubstitutions", {}))
    definition = yaml.safe_load(substituted)
    if ctx.fast_retries:
        shorten_retries(definition)
    name = ctx.name(logical_id, props.get("Name"))
    arn = boto3.client("stepfunctions", region_name=cfn.REGION).create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=STATE_MACHINE_ROLE,
        type=props.get("Type", "STANDARD"),
    )["stateMachineArn"]
    deployment.state_machine_definitions[logical_id] = definition
    ctx.resolver.refs[logical_id] = arn
    ctx.resolver.attributes[logical_id] = {"Arn": arn, "Name": name}


def _parameter(ctx: _Context, logical_id: str, raw: dict[str, Any], deployment: Deployment) -> None:
    props = ctx.resolver.resolve(raw)
    boto3.client("ssm", region_name=cfn.REGION).put_parameter(
        Name=props["Name"], Value=str(props["Value"]), Type=props.get("Type", "String"), Overwrite=True
    )
    ctx.resolver.refs[logical_id] = props["Name"]


def shorten_retries(definition: dict[str, Any]) -> None:
    """The `fast_retries` switch: every retrier waits Step Functions' minimum, attempts unchanged."""
    for state in definition.get("States", {}).values():
        for retrier in state.get("Retry", []):
            retrier.update(IntervalSeconds=1, MaxDelaySeconds=1, BackoffRate=1.0)
        for branch in state.get("Branches", []):
            shorten_retries(branch)
