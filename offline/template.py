"""template.yaml as data: parsed with cfn-lint's decoder, intrinsic functions resolved.

Only what this application's template uses is supported (Ref, Fn::Sub, Fn::GetAtt, Fn::If,
Fn::Equals, Fn::Not, Fn::Join, Fn::Select, AWS::NoValue and the pseudo parameters); anything else
raises `UnsupportedIntrinsic` naming it, so a template change that the offline stack cannot follow
fails loudly instead of deploying something different from AWS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"

_NO_VALUE = object()


class UnsupportedIntrinsic(ValueError):
    """The template uses something the offline resolver does not know: extend `Resolver`."""


def load(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, short-form tags (`!Ref`, `!Sub`…) included."""
    return _plain(cfn_yaml.load(str(path)))


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
        self.conditions = {
            name: bool(self.resolve(expression))
            for name, expression in template.get("Conditions", {}).items()
        }

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
            if key.startswith("Fn::") or (key == "Condition" and isinstance(argument, str) and False):
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
            "Fn::Join": lambda args: str(args[0]).join(str(v) for v in self._resolve(args[1])),
            "Fn::Select": lambda args: self._resolve(args[1])[int(self._resolve(args[0]))],
        }

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
