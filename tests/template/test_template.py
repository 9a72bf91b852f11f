"""template.yaml, checked before anything is deployed.

No AWS account is needed to know that the template lints, that SAM can transform it, that every
function can start with the environment it is given, that IAM grants no more than the code uses,
and that the data and the messages are encrypted and kept. Each of those, broken, only shows up
after a `sam deploy` (or, worse, in production); here it fails `make test` instead.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file

from offline import deployer
from offline import template as cfn
from tests.conftest import DASHBOARD_METRICS, FUNCTIONS
from tests.template.conftest import STATE_MACHINES

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"


PSEUDO_PARAMETERS = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"}

MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
"""The only AWS managed policies a role of this stack may carry: logs and traces, nothing else."""

STAR_RESOURCE_ACTIONS = frozenset(
    {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)
"""What a state machine needs to deliver its logs: AWS only accepts `Resource: '*'` for these."""


SETTINGS_READERS = {"require", "optional_float", "optional_text"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _functions(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _module_file(module: str) -> Path:
    base = REPO / "src" / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _handler_module(handler: str) -> str:
    return handler.rpartition(".")[0]


# ---------------------------------------------------------------------------------------- lint, SAM


def test_cfn_lint_finds_nothing_wrong_with_the_template() -> None:
    # `python -m cfnlint` is not runnable (the package has no __main__); the API runs the same
    # rules as the `cfn-lint` command of `make lint`, and names each finding.
    findings = lint_file(TEMPLATE_PATH)

    assert [str(finding) for finding in findings] == []


@pytest.fixture
def translated(translated_template: dict[str, Any]) -> dict[str, Any]:
    """template.yaml as CloudFormation sees it after the SAM transform, as the offline stack deploys
    it; a copy, so a test may change it freely."""
    return copy.deepcopy(translated_template)


def test_sam_transforms_the_template_into_its_functions_and_its_two_state_machines(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    assert sorted(_functions(resources)) == sorted(FUNCTIONS)
    types = {logical_id: resource["Type"] for logical_id, resource in translated["Resources"].items()}

    assert {name: types.get(name) for name in FUNCTIONS} == dict.fromkeys(FUNCTIONS, "AWS::Lambda::Function")
    machines = {name for name, kind in types.items() if kind == "AWS::StepFunctions::StateMachine"}
    assert machines == set(STATE_MACHINES)


def test_the_offline_region_is_the_region_sam_deploy_uses() -> None:
    with (REPO / "samconfig.toml").open("rb") as file:
        region = tomllib.load(file)["default"]["global"]["parameters"]["region"]

    assert region == cfn.REGION
    assert cfn.Resolver({}, {}, "booking-test").resolve({"Ref": "AWS::Region"}) == region


@pytest.mark.parametrize("function", FUNCTIONS)
def test_translation_keeps_each_function_code_directory_and_environment(
    function: str, translated: dict[str, Any], template: dict[str, Any]
) -> None:
    own = template["Resources"][function]["Properties"]
    shared = template["Globals"]["Function"]
    deployed = translated["Resources"][function]["Properties"]

    # The placeholder S3 location `sam package` would have written names the local directory.
    assert deployed["Code"] == {"S3Bucket": cfn.CODE_BUCKET, "S3Key": own.get("CodeUri", shared["CodeUri"])}
    assert (REPO / deployed["Code"]["S3Key"]).is_dir()
    # SAM merges Globals: the function's own variables win; nothing else is added.
    assert deployed["Environment"]["Variables"] == {
        **shared["Environment"]["Variables"],
        **own.get("Environment", {}).get("Variables", {}),
    }


def test_translation_keeps_the_state_machine_definition_file(
    translated: dict[str, Any], state_machine: dict[str, Any], saga: str
) -> None:
    deployed = translated["Resources"][saga]["Properties"]

    definition_uri = state_machine["DefinitionUri"]
    assert deployed["DefinitionS3Location"] == {"Bucket": cfn.CODE_BUCKET, "Key": definition_uri}
    assert (REPO / deployed["DefinitionS3Location"]["Key"]).is_file()


def test_translation_is_made_once_per_template_and_parameters_and_handed_out_as_copies() -> None:
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    first = cfn.translate(text, {"Stage": "copies"})
    first["Resources"].clear()

    again = cfn.translate(text, {"Stage": "copies"})
    hits = cfn._translated.cache_info().hits
    cfn.translate(text, {"Stage": "copies"})

    assert again["Resources"], "a caller's change never reaches the cached translation"
    assert again == cfn.translate(text, {"Stage": "copies"})
    assert cfn._translated.cache_info().hits > hits  # answered from the cache, not translated again


def test_every_translated_resource_is_created_offline_or_skipped_for_a_stated_reason(
    translated: dict[str, Any],
) -> None:
    types = {resource["Type"] for resource in translated["Resources"].values()}

    unexplained = sorted(
        resource_type
        for resource_type in types - set(deployer.CREATORS)
        if not any(resource_type.startswith(prefix) for prefix in deployer.NOT_OFFLINE)
    )

    assert unexplained == [], "give the type a creator in offline.deployer, or a reason in NOT_OFFLINE"


# ---------------------------------------------------------------------------------------- IAM


def _iam_statements(translated: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role or policy logical id, statement) for every inline statement of the transformed stack."""
    for logical_id, resource in translated["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents = [properties["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for statement in _as_list(document["Statement"]):
                yield logical_id, statement


def _role_of(translated: dict[str, Any], logical_id: str, role_property: str) -> str:
    role = translated["Resources"][logical_id]["Properties"][role_property]
    assert isinstance(role, dict), f"{logical_id} must use the role SAM makes for it, got {role!r}"
    return str(_as_list(role["Fn::GetAtt"])[0].split(".")[0])


def test_no_iam_statement_grants_a_wildcard_action(translated: dict[str, Any]) -> None:
    statements = list(_iam_statements(translated))
    assert statements, "the transformed stack has inline IAM statements to check"

    wildcards = [
        (role, action)
        for role, statement in statements
        for action in _as_list(statement.get("Action", []))
        if "*" in action
    ]
    negations = [(role, statement) for role, statement in statements if "NotAction" in statement]

    assert wildcards == [], "name each action the code calls instead of a wildcard"
    assert negations == []


def test_resource_star_is_granted_only_for_log_delivery_of_the_state_machine_and_xray(
    translated: dict[str, Any],
) -> None:
    machine_roles = {_role_of(translated, machine, "RoleArn") for machine in STATE_MACHINES}

    def allowed(role: str, statement: dict[str, Any]) -> bool:
        actions = _as_list(statement.get("Action", []))
        if all(action.startswith("xray:") for action in actions):
            return True
        if role in machine_roles and actions == ["cloudwatch:PutMetricData"]:
            # PutMetricData has no resource-level permission: the namespace condition is the limit.
            condition = statement.get("Condition", {}).get("StringEquals", {})
            return bool(condition.get("cloudwatch:namespace") == "ServerlessAirline")
        return role in machine_roles and set(actions) <= STAR_RESOURCE_ACTIONS

    too_broad = [
        (role, statement.get("Action"))
        for role, statement in _iam_statements(translated)
        if "*" in _as_list(statement.get("Resource", [])) or "NotResource" in statement
        if not allowed(role, statement)
    ]

    assert too_broad == []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_role_reaches_only_resources_of_this_stack(
    function: str, translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    role = translated["Resources"][_role_of(translated, function, "Role")]["Properties"]

    foreign = []
    for policy in role.get("Policies", []):
        for statement in _as_list(policy["PolicyDocument"]["Statement"]):
            for resource in _as_list(statement.get("Resource")):
                target = None
                if isinstance(resource, dict) and set(resource) == {"Ref"}:
                    target = resource["Ref"]
                elif isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
                    target = _as_list(resource["Fn::GetAtt"])[0].split(".")[0]
                elif isinstance(resource, dict) and set(resource) == {"Fn::Sub"}:
                    # e.g. "${BookingTable.Arn}/index/X": every name it uses is this stack's or a pseudo one
                    names = {n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", str(resource["Fn::Sub"]))}
                    own = {n for n in names if n in resources}
                    target = next(iter(own)) if own and names - own <= PSEUDO_PARAMETERS else None
                if target not in resources:
                    foreign.append((statement.get("Action"), resource))

    assert foreign == [], "a function's statements name a table, topic or queue of this stack"
    assert set(role.get("ManagedPolicyArns", [])) <= set(MANAGED_POLICIES.values())


def _settings_read(module: str, seen: set[str] | None = None) -> set[str]:
    """Environment variable names a module (and the booking modules it imports) reads at start."""
    seen = set() if seen is None else seen
    if module in seen:
        return set()
    seen.add(module)
    tree = ast.parse(_module_file(module).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in SETTINGS_READERS
        ):
            argument = node.args[0] if node.args else None
            where = f"{module}:{node.lineno}: {node.func.id}() must name its variable with a literal"
            assert isinstance(argument, ast.Constant), where
            assert isinstance(argument.value, str), where
            names.add(argument.value)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "booking":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                target = submodule if _module_file(submodule).exists() else node.module
                names |= _settings_read(target, seen)
    return names


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_environment_is_exactly_what_its_handler_reads_plus_the_globals(
    function: str, template: dict[str, Any]
) -> None:
    properties = template["Resources"][function]["Properties"]
    shared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    own = set(properties.get("Environment", {}).get("Variables", {}))

    read = _settings_read(_handler_module(properties["Handler"]))

    assert read, f"{properties['Handler']} reads its settings with require()/optional_float()"
    assert sorted(own | shared) == sorted(read | shared)


# ---------------------------------------------------------------------------------------- handlers

_IMPORT_HANDLER = """
import importlib, inspect, sys
module, _, name = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module), name)
assert callable(handler), f"{sys.argv[1]} is not callable"
inspect.signature(handler).bind({}, None)
print("ready")
"""


def _lambda_environment(variables: dict[str, Any], code_dir: Path) -> dict[str, str]:
    """Only what Lambda gives a function: its variables, its region and its code on the path;
    nothing leaks in from the environment running the tests."""
    return {
        **{name: str(value) for name, value in variables.items()},
        "AWS_REGION": cfn.REGION,
        "AWS_DEFAULT_REGION": cfn.REGION,
        "PYTHONPATH": str(code_dir),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": os.defpath,
    }


@pytest.fixture(scope="module")
def cold_starts(
    _loaded_template: dict[str, Any], translated_template: dict[str, Any], dummy_resolver: cfn.Resolver
) -> dict[str, dict[str, Any]]:
    """Each function's module imported in its own interpreter, all at once to keep the run short,
    with the code directory, handler and environment of the translated template (what is deployed).

    The extra `<Function>/globals-only` start gets the Globals and not the function's variables:
    it must fail, which shows the others succeed thanks to the template and nothing else.
    """
    shared = _loaded_template["Globals"]["Function"]
    starts: dict[str, subprocess.Popen[str]] = {}
    for function in FUNCTIONS:
        properties = translated_template["Resources"][function]["Properties"]
        code_dir = REPO / str(properties["Code"]["S3Key"])
        runs = {function: properties.get("Environment", {}).get("Variables", {})}
        if function == FUNCTIONS[0]:
            runs[f"{function}/globals-only"] = shared["Environment"]["Variables"]
        for name, run_variables in runs.items():
            starts[name] = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                [sys.executable, "-c", _IMPORT_HANDLER, str(properties["Handler"])],
                cwd=code_dir,
                env=_lambda_environment(dummy_resolver.resolve(run_variables), code_dir),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
    results = {}
    for name, process in starts.items():
        stdout, stderr = process.communicate(timeout=60)
        results[name] = {"returncode": process.returncode, "stdout": stdout, "stderr": stderr}
    return results


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_handler_imports_and_is_callable_with_the_template_environment(
    function: str, cold_starts: dict[str, dict[str, Any]]
) -> None:
    start = cold_starts[function]

    assert start["returncode"] == 0, start["stderr"][-3000:]
    assert start["stdout"].strip() == "ready"


def test_function_started_without_its_variables_stops_at_import_naming_the_missing_one(
    cold_starts: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    function = FUNCTIONS[0]
    missing = sorted(template["Resources"][function]["Properties"]["Environment"]["Variables"])[0]

    start = cold_starts[f"{function}/globals-only"]

    assert start["returncode"] != 0
    assert "MissingSetting" in start["stderr"]
    assert missing in start["stderr"]


def _handler_function(handler: str) -> ast.FunctionDef:
    module, _, name = handler.rpartition(".")
    tree = ast.parse(_module_file(module).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise AssertionError(f"{handler}: no top-level function {name}")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_handler_flushes_metrics_with_a_cold_start_metric(
    function: str, template: dict[str, Any]
) -> None:
    handler = _handler_function(template["Resources"][function]["Properties"]["Handler"])

    def flushes(decorator: ast.expr) -> bool:
        return (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and isinstance(decorator.func.value, ast.Name)
            and (decorator.func.value.id, decorator.func.attr) == ("metrics", "log_metrics")
            and any(
                keyword.arg == "capture_cold_start_metric"
                and isinstance(keyword.value, ast.Constant)
                and keyword.value.value is True
                for keyword in decorator.keywords
            )
        )

    assert any(flushes(decorator) for decorator in handler.decorator_list), [
        ast.unparse(decorator) for decorator in handler.decorator_list
    ]


def test_every_dashboard_metric_is_counted_somewhere_in_the_service() -> None:
    counted: set[str] = set()
    for path in (REPO / "src" / "booking").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "count"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                counted.add(str(node.args[0].value))

    assert sorted(DASHBOARD_METRICS - counted) == []


# ---------------------------------------------------------------------------------------- data, messages


def test_every_table_is_encrypted_recoverable_and_billed_on_demand(
    resources: dict[str, dict[str, Any]],
) -> None:
    tables = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    assert {"FlightTable", "BookingTable", "IdempotencyTable"} <= set(tables)

    settings = {
        logical_id: (
            properties.get("SSESpecification", {}).get("SSEEnabled"),
            properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"),
            properties.get("BillingMode"),
        )
        for logical_id, properties in tables.items()
    }

    assert settings == dict.fromkeys(tables, (True, True, "PAY_PER_REQUEST"))


def test_booking_table_indexes_bookings_by_customer_and_status(resources: dict[str, dict[str, Any]]) -> None:
    properties = resources["BookingTable"]["Properties"]
    indexes = {index["IndexName"]: index for index in properties.get("GlobalSecondaryIndexes", [])}

    assert "ByCustomerStatus" in indexes
    key_schema = [(key["AttributeName"], key["KeyType"]) for key in indexes["ByCustomerStatus"]["KeySchema"]]
    assert key_schema == [("customer", "HASH"), ("status", "RANGE")]
    attribute_types = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
    assert (attribute_types.get("customer"), attribute_types.get("status")) == ("S", "S")


def test_booking_topic_is_encrypted_with_kms(resources: dict[str, dict[str, Any]]) -> None:
    assert resources["BookingTopic"]["Properties"].get("KmsMasterKeyId")


def test_booking_dlq_is_encrypted_and_keeps_messages_fourteen_days(
    resources: dict[str, dict[str, Any]],
) -> None:
    properties = resources["BookingDLQ"]["Properties"]

    assert properties.get("SqsManagedSseEnabled") is True or properties.get("KmsMasterKeyId")
    assert properties.get("MessageRetentionPeriod") == 1209600


def test_an_alarm_fires_on_the_first_message_in_the_booking_dlq(resources: dict[str, dict[str, Any]]) -> None:
    def watches_dlq(properties: dict[str, Any]) -> bool:
        dimensions = {d["Name"]: d["Value"] for d in properties.get("Dimensions", [])}
        return (
            properties.get("Namespace") == "AWS/SQS"
            and properties.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and dimensions.get("QueueName") == {"Fn::GetAtt": ["BookingDLQ", "QueueName"]}
        )

    alarms = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and watches_dlq(resource["Properties"])
    ]

    assert len(alarms) == 1
    (alarm,) = alarms
    assert (alarm["ComparisonOperator"], float(alarm["Threshold"])) in {
        ("GreaterThanThreshold", 0.0),
        ("GreaterThanOrEqualToThreshold", 1.0),
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("/${Stage}/service/booking/statemachine/processBooking", {"Ref": "ProcessBooking"}),
        ("/${Stage}/service/booking/messaging/bookingTopic", {"Ref": "BookingTopic"}),
    ],
)
def test_ssm_parameter_publishes_what_other_services_look_up(
    name: str, value: dict[str, str], resources: dict[str, dict[str, Any]]
) -> None:
    published = {
        json.dumps(resource["Properties"]["Name"]): resource["Properties"]["Value"]
        for resource in resources.values()
        if resource["Type"] == "AWS::SSM::Parameter"
    }

    assert published.get(json.dumps({"Fn::Sub": name})) == value


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_runs_python313_traced_with_the_service_powertools_settings(
    function: str, translated: dict[str, Any]
) -> None:
    properties = translated["Resources"][function]["Properties"]
    variables = properties.get("Environment", {}).get("Variables", {})

    assert properties.get("Runtime") == "python3.13"
    assert properties.get("TracingConfig") == {"Mode": "Active"}
    assert (variables.get("POWERTOOLS_SERVICE_NAME"), variables.get("POWERTOOLS_METRICS_NAMESPACE")) == (
        "booking",
        "ServerlessAirline",
    )


def test_state_machine_logs_without_execution_data_and_is_traced(state_machine: dict[str, Any]) -> None:
    # The execution data holds the payment token: it must never be copied into the logs.
    assert state_machine["Logging"].get("IncludeExecutionData") is False
    assert state_machine["Logging"].get("Destinations")
    assert state_machine.get("Tracing") == {"Enabled": True}


# ---------------------------------------------------------------------------------------- make deploy


def _stage(branch: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", branch.lower()).strip("-")[:40]


def _deploy_commands(*make_arguments: str) -> tuple[list[str], list[str]]:
    """`sam build` and `sam deploy` as `make -n deploy` would run them, continuations joined."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not on PATH")
    # BUILD_IN=host: which Python or Docker this machine has is test_deploy.py's concern, not the stage's.
    printed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [make, "--no-print-directory", "-n", "deploy", "BUILD_IN=host", *make_arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    lines = [shlex.split(line) for line in printed.replace("\\\n", " ").splitlines() if line.strip()]
    builds = [line for line in lines if line[:2] == ["sam", "build"]]
    deploys = [line for line in lines if line[:2] == ["sam", "deploy"]]
    assert len(builds) == 1, printed
    assert len(deploys) == 1, printed
    assert lines.index(builds[0]) < lines.index(deploys[0]), "build before deploy"
    return builds[0], deploys[0]


def _stack_and_stage(deploy: list[str]) -> tuple[str, str | None]:
    stack = deploy[deploy.index("--stack-name") + 1]
    overrides = deploy[deploy.index("--parameter-overrides") + 1 :]
    overrides = overrides[: next((i for i, word in enumerate(overrides) if word.startswith("--")), None)]
    stages = [word.split("=", 1)[1] for word in overrides if word.startswith("Stage=")]
    return stack, (stages[0] if len(stages) == 1 else None)


def _current_branch() -> str:
    git = shutil.which("git")
    if git is None:
        return "dev"
    branch = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [git, "rev-parse", "--abbrev-ref", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    return branch.stdout.strip() if branch.returncode == 0 else "dev"


def test_make_deploy_builds_then_deploys_the_stack_of_the_current_branch(
    template: dict[str, Any],
) -> None:
    stage = _stage(_current_branch())

    _, deploy = _deploy_commands()

    assert _stack_and_stage(deploy) == (f"booking-{stage}", stage)
    assert re.fullmatch(template["Parameters"]["Stage"]["AllowedPattern"], stage)


@pytest.mark.parametrize(
    ("branch", "stage"),
    [
        pytest.param("Feature/JIRA-12_Seat map", "feature-jira-12-seat-map", id="upper-case-slash-space"),
        pytest.param("release/2024.10", "release-2024-10", id="dots"),
        pytest.param("-" + "x" * 50, "x" * 40, id="leading-dash-too-long"),
    ],
)
def test_make_deploy_turns_any_branch_into_a_stage_cloudformation_accepts(
    branch: str, stage: str, template: dict[str, Any]
) -> None:
    # BRANCH is the Makefile's variable for the git branch; overriding it stands in for a checkout.
    _, deploy = _deploy_commands(f"BRANCH={branch}")

    assert _stack_and_stage(deploy) == (f"booking-{stage}", stage)
    assert re.fullmatch(template["Parameters"]["Stage"]["AllowedPattern"], stage)


def test_trusted_service_roles_are_a_parameter_empty_by_default_given_only_to_the_api_function(
    template: dict[str, Any],
) -> None:
    from booking.access import trusted_roles

    parameter = template["Parameters"]["TrustedServiceRoleArns"]
    assert parameter["Default"] == ""
    good = [
        "",
        "arn:aws:iam::123456789012:role/reporting",
        "arn:aws:iam::123456789012:role/services/reporting,arn:aws-cn:iam::210987654321:role/audit",
    ]
    bad = [
        "*",
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:sts::123456789012:assumed-role/reporting/session",
        "arn:aws:iam::123456789012:role/*",
    ]
    for value in good:
        assert re.fullmatch(parameter["AllowedPattern"], value), value
        trusted_roles(value)  # what CloudFormation accepts, the function reads
    for value in bad:
        assert not re.fullmatch(parameter["AllowedPattern"], value), value
        with pytest.raises(ValueError, match="not an IAM role ARN"):
            trusted_roles(value)
    functions = _functions(template["Resources"])
    given = {
        name
        for name, properties in functions.items()
        if "TRUSTED_SERVICE_ROLE_ARNS" in properties.get("Environment", {}).get("Variables", {})
    }
    assert given == {"ApiFunction"}
    variables = functions["ApiFunction"]["Environment"]["Variables"]
    assert variables["TRUSTED_SERVICE_ROLE_ARNS"] == {"Ref": "TrustedServiceRoleArns"}
