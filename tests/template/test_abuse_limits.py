"""Abuse limits in the template: a rate-based WAF web ACL on the API, reserved concurrency on the Api
function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from offline import deployer
from offline import template as cfn

REPO = Path(__file__).resolve().parents[2]
STACK_NAME = "booking-test"


def _resolver(translated: dict[str, Any], **parameters: str) -> cfn.Resolver:
    return cfn.Resolver(translated, {"Stage": "main", **parameters}, STACK_NAME)


def test_a_rate_based_web_acl_guards_the_graphql_api(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    acl = resources["ApiWebAcl"]
    association = resources["ApiWebAclAssociation"]

    assert acl["Type"] == "AWS::WAFv2::WebACL"
    assert acl["Properties"]["Scope"] == "REGIONAL"  # AppSync is regional; CLOUDFRONT is for distributions
    assert acl["Properties"]["DefaultAction"] == {"Allow": {}}
    [rate] = [rule for rule in acl["Properties"]["Rules"] if "RateBasedStatement" in rule["Statement"]]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "Limit": {"Ref": "WafRateLimit"},
        "EvaluationWindowSec": 300,
        "AggregateKeyType": "IP",
    }
    assert association["Type"] == "AWS::WAFv2::WebACLAssociation"
    assert association["Properties"] == {
        "ResourceArn": {"Fn::GetAtt": ["BookingApi", "Arn"]},
        "WebACLArn": {"Fn::GetAtt": ["ApiWebAcl", "Arn"]},
    }
    assert acl["Condition"] == association["Condition"] == "HasWebAcl"


@pytest.mark.parametrize(
    ("stage", "choice", "protected"),
    [
        ("main", "auto", True),
        ("prod", "auto", True),
        ("production", "auto", True),
        ("staging", "auto", True),
        ("feature-seat-map", "auto", False),  # a per-branch preview: no web ACL billed per branch
        ("feature-seat-map", "enabled", True),
        ("main", "disabled", False),
    ],
)
def test_the_web_acl_is_on_for_long_lived_stages_unless_a_parameter_says_otherwise(
    translated_template: dict[str, Any], stage: str, choice: str, protected: bool
) -> None:
    resolver = _resolver(translated_template, Stage=stage, WafWebAcl=choice)
    assert resolver.conditions["HasWebAcl"] is protected


def test_the_api_function_has_reserved_concurrency_unless_the_account_cannot_spare_it(
    translated_template: dict[str, Any],
) -> None:
    reserved = translated_template["Resources"]["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"]

    assert _resolver(translated_template).resolve(reserved) == "100"  # the e2e crowd test sends 200 at once
    assert _resolver(translated_template, ApiReservedConcurrency="0").resolve(reserved) is None  # NoValue


def test_the_offline_stack_skips_waf_for_a_stated_reason() -> None:
    for resource_type in ("AWS::WAFv2::WebACL", "AWS::WAFv2::WebACLAssociation"):
        assert resource_type not in deployer.CREATORS
        assert "moto" in deployer._why_not(resource_type)
