"""Abuse limits in the template: a rate-based WAF web ACL on the API, reserved concurrency on the Api
function, and checkov's findings either fixed or skipped for a written reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def _skips() -> list[tuple[str, str]]:
    """(check id, its reason) for every check .checkov.yaml skips: the comment block right above the
    check, or above a run of checks when the comment names this one."""
    lines = (REPO / ".checkov.yaml").read_text().splitlines()
    skips: list[tuple[str, str]] = []
    reason, in_comment, after_reason = "", False, False
    for line in lines[lines.index("skip-check:") + 1 :]:
        if line.lstrip().startswith("#"):
            text = line.strip().lstrip("#").strip()
            reason, in_comment = (f"{reason} {text}" if in_comment else text), True
        elif line.startswith("  - "):
            check = line.removeprefix("  - ").strip()
            skips.append((check, reason if in_comment or (after_reason and check in reason) else ""))
            in_comment, after_reason = False, True
        else:
            break
    return skips


def test_every_checkov_skip_is_listed_beside_its_reason() -> None:
    config = yaml.safe_load((REPO / ".checkov.yaml").read_text())
    skips = _skips()

    assert [check for check, _ in skips] == config["skip-check"]
    assert all(re.fullmatch(r"CKV2?_AWS_\d+", check) for check, _ in skips)
    assert [check for check, reason in skips if len(reason) < 40] == []
    assert config["file"] == ["template.yaml"]


def test_make_test_runs_a_pinned_checkov_from_its_own_environment() -> None:
    makefile = (REPO / "Makefile").read_text()

    assert re.search(r"^CHECKOV_VERSION := \d+\.\d+\.\d+$", makefile, re.MULTILINE)
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "$(CHECKOV_STAMP)" in recipe  # made by make test itself, timed with it
    assert "lint checkov" in recipe
    assert "checkov==$(CHECKOV_VERSION)" in makefile
    assert "--config-file .checkov.yaml" in makefile
