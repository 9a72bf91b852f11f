"""template.yaml and the saga definition as data, shared by the static checks of this directory.

These tests read the files the way the tools that deploy them do (cfn-lint's decoder for the
template, plain YAML for the ASL), never through the offline stack, so they stay fast and catch a
broken template before anything is deployed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline import template as cfn

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
STACK_NAME = "booking-test"


@pytest.fixture(scope="session")
def _loaded_template() -> dict[str, Any]:
    return cfn.load(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def translated_template() -> dict[str, Any]:
    """template.yaml after the SAM transform (`offline.template.translate`, parameter defaults): what
    `sam deploy` has CloudFormation create, and what the offline stack creates on moto."""
    return cfn.translate(TEMPLATE_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def template(_loaded_template: dict[str, Any]) -> dict[str, Any]:
    """template.yaml with its short-form tags expanded; a copy, so a test may change it freely."""
    return copy.deepcopy(_loaded_template)


@pytest.fixture
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return template["Resources"]


STATE_MACHINES = ("ProcessBooking", "CancelBookingSaga")
"""The booking saga and the cancellation saga: every check of a state machine runs on both."""


def test_the_stack_has_exactly_the_two_sagas(resources: dict[str, dict[str, Any]]) -> None:
    machines = {name for name, r in resources.items() if r["Type"] == "AWS::Serverless::StateMachine"}
    assert machines == set(STATE_MACHINES)


@pytest.fixture(params=STATE_MACHINES)
def saga(request: pytest.FixtureRequest) -> str:
    """The logical id of one of the stack's state machines: a test that takes it runs once per saga."""
    return str(request.param)


@pytest.fixture
def state_machine(saga: str, resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Properties of one of the stack's state machines."""
    properties: dict[str, Any] = resources[saga]["Properties"]
    return properties


@pytest.fixture
def booking_asl(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The booking saga's definition, for the checks of its own states."""
    path = REPO / str(resources["ProcessBooking"]["Properties"]["DefinitionUri"])
    definition: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return definition


@pytest.fixture
def asl_path(state_machine: dict[str, Any]) -> Path:
    return REPO / str(state_machine["DefinitionUri"])


@pytest.fixture
def asl_text(asl_path: Path) -> str:
    return asl_path.read_text(encoding="utf-8")


@pytest.fixture
def asl(asl_text: str) -> dict[str, Any]:
    """The definition as written: placeholders not substituted, anchors expanded by the YAML loader."""
    definition: dict[str, Any] = yaml.safe_load(asl_text)
    return definition


def dummy_physical_id(logical_id: str, resource_type: str) -> tuple[str, dict[str, str]]:
    """What `Ref` and `Fn::GetAtt` of a resource return, shaped like AWS's answer for its type."""
    name = f"{STACK_NAME}-{logical_id}"
    region_account = f"{cfn.REGION}:{cfn.ACCOUNT_ID}"
    arns = {
        "AWS::DynamoDB::Table": (name, f"arn:aws:dynamodb:{region_account}:table/{name}"),
        "AWS::SNS::Topic": (f"arn:aws:sns:{region_account}:{name}",) * 2,
        "AWS::SQS::Queue": (
            f"https://sqs.{cfn.REGION}.amazonaws.com/{cfn.ACCOUNT_ID}/{name}",
            f"arn:aws:sqs:{region_account}:{name}",
        ),
        "AWS::Serverless::Function": (name, f"arn:aws:lambda:{region_account}:function:{name}"),
        "AWS::Serverless::StateMachine": (f"arn:aws:states:{region_account}:stateMachine:{name}",) * 2,
        "AWS::Logs::LogGroup": (name, f"arn:aws:logs:{region_account}:log-group:{name}:*"),
    }
    ref, arn = arns.get(resource_type, (name, f"arn:aws:cloudformation:{region_account}:{name}"))
    return ref, {
        "Arn": arn,
        "QueueName": name,
        "TopicName": name,
        "Name": name,
        "ApiId": name,
        "GraphQLUrl": f"https://{name}.appsync-api.{cfn.REGION}.amazonaws.com/graphql",
    }


@pytest.fixture(scope="session")
def dummy_resolver(_loaded_template: dict[str, Any]) -> cfn.Resolver:
    """Resolves the template's intrinsics with parameter defaults and made-up physical ids."""
    resolver = cfn.Resolver(copy.deepcopy(_loaded_template), {}, STACK_NAME)
    for logical_id, resource in _loaded_template["Resources"].items():
        ref, attributes = dummy_physical_id(logical_id, resource["Type"])
        resolver.refs[logical_id] = ref
        resolver.attributes[logical_id] = attributes
        if resource["Type"] == "AWS::Serverless::Function":  # SAM makes its role, `<Function>Role`
            role = f"{logical_id}Role"
            resolver.refs[role] = f"{STACK_NAME}-{role}"
            resolver.attributes[role] = {"Arn": f"arn:aws:iam::{cfn.ACCOUNT_ID}:role/{STACK_NAME}-{role}"}
    return resolver
