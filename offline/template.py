"""template.yaml as data: parsed with cfn-lint's decoder, translated by SAM, intrinsic functions resolved.

`translate` turns the SAM template into the plain CloudFormation that `sam deploy` would have
CloudFormation create (Globals merged, function roles and policies), with no network: the region is
samconfig.toml's, code locations are placeholders and AWS managed policy names come from moto's copy
of them. `REGION` is the region `sam deploy` deploys to, read from samconfig.toml.

Only what this application's template uses is supported (Ref, Fn::Sub, Fn::GetAtt, Fn::If,
Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, Fn::Join, Fn::Select, AWS::NoValue and the pseudo
parameters); anything else
raises `UnsupportedIntrinsic` naming it, so a template change that the offline stack cannot follow
fails loudly instead of deploying something different from AWS.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
SAMCONFIG = ROOT / "samconfig.toml"
ACCOUNT_ID = "123456789012"
"""moto's default account: every offline ARN carries it."""
CODE_BUCKET = "offline-placeholder"
"""The bucket of the placeholder S3 locations `translate` writes for local code and definitions."""


def samconfig_region(path: Path = SAMCONFIG, config_env: str = "default") -> str:
    """The region `sam deploy --config-env default` deploys to: `[default.global.parameters] region`."""
    with path.open("rb") as file:
        config = tomllib.load(file)
    try:
        return str(config[config_env]["global"]["parameters"]["region"])
    except KeyError:
        raise ValueError(f"{path} gives no [{config_env}.global.parameters] region") from None


REGION = samconfig_region()

_NO_VALUE = object()


class UnsupportedIntrinsic(ValueError):
    """The template uses something the offline resolver does not know: extend `Resolver`."""


def load(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, short-form tags (`!Ref`, `!Sub`…) included; a copy
    the caller may change."""
    return copy.deepcopy(_parse(Path(path).read_text(encoding="utf-8"), str(path)))


@functools.lru_cache(maxsize=16)
def _parse(text: str, name: str | None = None) -> dict[str, Any]:
    """One parse per template text and process (every test deploys a fresh stack): never modify it."""
    parsed: dict[str, Any] = _plain(cfn_yaml.loads(text, name))
    return parsed


def translate(text: str, parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The SAM template `text` as plain CloudFormation, as the `AWS::Serverless` transform gives it to
    CloudFormation (intrinsic functions left for CloudFormation, or `Resolver`, to resolve); a copy
    the caller may change.

    Before translating, local code and definition paths become placeholder S3 locations, as
    `sam package` would write them, whose key is the local path: a function's `Code` is
    `{"S3Bucket": CODE_BUCKET, "S3Key": "src/"}`, a state machine's `DefinitionS3Location`
    `{"Bucket": CODE_BUCKET, "Key": "statemachine/…"}`, both relative to the template's folder.
    Translations are cached by (text, parameters), so a test suite pays for each once.
    """
    key = tuple(sorted((str(name), str(value)) for name, value in (parameters or {}).items()))
    return copy.deepcopy(_translated(text, key))


@functools.lru_cache(maxsize=16)
def _translated(text: str, parameters: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    sam = copy.deepcopy(_parse(text))
    _put_placeholder_locations(sam)
    values: dict[str, Any] = dict(parameters)
    # What samtranslator.translator.transform.transform does, with a session in samconfig's region
    # (no credentials are looked up) and a managed policy map that does not call IAM.
    to_py27_compatible_template(sam, values)
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(None, Parser(), boto_session=_session(), metrics=metrics)
    translated = translator.translate(
        sam, parameter_values=values, get_managed_policy_map=aws_managed_policies
    )
    metrics.publish()
    result: dict[str, Any] = json.loads(json.dumps(undo_mark_unicode_str_in_template(translated)))
    return result


def _put_placeholder_locations(sam: dict[str, Any]) -> None:
    """Local `CodeUri` and `DefinitionUri` paths become `s3://CODE_BUCKET/<path>` (what `sam package`
    uploads and writes), so that the translation keeps saying where the code is."""

    def placeholder(location: Any) -> Any:
        if isinstance(location, str) and not location.startswith("s3://"):
            return f"s3://{CODE_BUCKET}/{location}"
        return location

    function_globals = sam.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = placeholder(function_globals["CodeUri"])
    for resource in sam.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = placeholder(properties["CodeUri"])
        if resource.get("Type") == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["DefinitionUri"] = placeholder(properties["DefinitionUri"])


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session(region_name=REGION)


@functools.cache
def aws_managed_policies() -> dict[str, str]:
    """AWS managed policy names and ARNs, from moto's copy of them (SAM asks only when a function's
    `Policies` names one)."""
    return {name: arn for name, (arn, _) in aws_managed_policy_documents().items()}


@functools.cache
def aws_managed_policy_documents() -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (ARN, moto's record of the policy: path, version, document, dates)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    policies: dict[str, dict[str, Any]] = json.loads(aws_managed_policies_data)
    return {
        name: (f"arn:aws:iam::aws:policy{data.get('Path', '/')}{name}", data)
        for name, data in policies.items()
    }


def _plain(node: Any) -> Any:
    """cfn-lint returns its own node classes that carry line marks; plain types are easier to copy."""
    if isinstance(node, Mapping):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    if isinstance(node, str):
        return str(node)
    return node


class Resolver:
    """Resolves intrinsic functions against parameters and the physical ids of created resources.

    `refs[logical_id]` is what `Ref` returns and `attributes[logical_id][name]` what `Fn::GetAtt`
    returns; the deployer fills both as it creates each resource.
    """

    def __init__(self, template: dict[str, Any], parameters: Mapping[str, str], stack_name: str) -> None:
        self.template = template
        self.stack_name = stack_name
        self.refs: dict[str, Any] = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.attributes: dict[str, dict[str, Any]] = {}
        declared = template.get("Parameters", {})
        unknown = set(parameters) - set(declared)
        if unknown:
            raise ValueError(f"unknown template parameters: {sorted(unknown)}")
        for name, spec in declared.items():
            if name in parameters:
                self.refs[name] = str(parameters[name])
            elif "Default" in spec:
                self.refs[name] = str(spec["Default"])
            else:
                raise ValueError(f"template parameter {name} has no default and no value was given")
        self._condition_expressions: dict[str, Any] = template.get("Conditions", {})
        self.conditions: dict[str, bool] = {}
        for name in self._condition_expressions:
            self._condition(name)

    def resolve(self, value: Any) -> Any:
        """Return `value` with every intrinsic function replaced by its value."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self._resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            function = self._functions().get(key)
            if function is not None:
                return function(argument)
            if key == "Condition" and isinstance(argument, str):  # a condition named in a condition
                return self._condition(argument)
            if key.startswith("Fn::"):
                raise UnsupportedIntrinsic(f"{key} is not supported offline")
        return {k: r for k, r in ((k, self._resolve(v)) for k, v in value.items()) if r is not _NO_VALUE}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::Equals": lambda args: self._resolve(args[0]) == self._resolve(args[1]),
            "Fn::Not": lambda args: not self._resolve(args[0]),
            "Fn::And": lambda args: all(self._resolve(arg) for arg in args),
            "Fn::Or": lambda args: any(self._resolve(arg) for arg in args),
            "Fn::Join": lambda args: str(args[0]).join(str(v) for v in self._resolve(args[1])),
            "Fn::Select": lambda args: self._resolve(args[1])[int(self._resolve(args[0]))],
        }

    def _condition(self, name: str) -> bool:
        """A condition's value, worked out on first use: a condition may name one declared after it."""
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self._condition_expressions[name]))
        return self.conditions[name]

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name not in self.refs:
            raise UnsupportedIntrinsic(f"Ref {name}: not a parameter or a resource the offline stack created")
        return self.refs[name]

    def _get_att(self, argument: str | list[str]) -> Any:
        logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        try:
            return self.attributes[logical_id][attribute]
        except KeyError:
            raise UnsupportedIntrinsic(f"Fn::GetAtt {logical_id}.{attribute} is not known offline") from None

    def _if(self, argument: list[Any]) -> Any:
        condition, when_true, when_false = argument
        return self._resolve(when_true if self.conditions[condition] else when_false)

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        values = {name: self.resolve(v) for name, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name:
                return str(self._get_att(name))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def substitute_definition(definition: str, substitutions: Mapping[str, Any]) -> str:
    """Apply `DefinitionSubstitutions` as Step Functions does, refusing a placeholder left unset."""
    missing = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition)) - set(substitutions))
    if missing:
        raise ValueError(f"DefinitionSubstitutions do not define {missing}")
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: str(substitutions[m.group(1)]), definition)
