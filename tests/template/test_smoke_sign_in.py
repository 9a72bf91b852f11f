"""make smoke signs its test users in with ADMIN_USER_PASSWORD_AUTH: the web client allows that flow on
every stage but a production one, which keeps SRP only (tests/e2e/smoke.py refuses those stages too)."""

from __future__ import annotations

import pytest

from offline import template as cfn
from offline.stack import TEMPLATE


def _flows(stage: str) -> list[str]:
    template = cfn.load(TEMPLATE)
    resolver = cfn.Resolver(template, {"Stage": stage}, f"booking-{stage}")
    return list(resolver.resolve(template["Resources"]["UserPoolClient"]["Properties"]["ExplicitAuthFlows"]))


@pytest.mark.parametrize("stage", ["feature-x", "main", "staging", "offline"])
def test_a_non_production_web_client_allows_the_admin_password_flow(stage: str) -> None:
    assert _flows(stage) == [
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    ]


@pytest.mark.parametrize("stage", ["prod", "production"])
def test_a_production_web_client_signs_in_with_srp_only(stage: str) -> None:
    assert _flows(stage) == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
