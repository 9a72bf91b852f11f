"""Cold import time of each Lambda handler, as a ratio to creating one boto3 DynamoDB client.

A cold start pays for every module a handler imports before the first event is handled, so the
figure that matters is the import of the handler module in a fresh interpreter. Absolute times
depend on the machine; the ratio to `import boto3; boto3.client("dynamodb")`, measured in the same
run, does not much. Goals: at most 1.3 for a task function, 1.5 for the Api function.

Each function of template.yaml is imported in fresh subprocesses with the environment the SAM
translation gives it (Globals merged, references resolved to stand-ins shaped as in AWS), samconfig's
region, dummy credentials, and Lambda's own `LAMBDA_TASK_ROOT`, so Powertools Tracer takes the path
it takes in Lambda (X-Ray SDK loaded and libraries patched; `--outside-lambda` leaves it unset).
`POWERTOOLS_TRACE_DISABLED` is never set: the Tracer's cost counts. Runs are interleaved (baseline,
then every function, repeated) so load on the machine hits all of them alike; one round is
discarded first. Nothing is sent over the network. `--quick` imports each once, with no round
discarded.

Run: `make bench` (or `.venv/bin/python bench/cold_imports.py [--quick] [--runs 7]`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from goals import Goals, add_quick_option  # noqa: E402

from offline import template as cfn  # noqa: E402

REGION = cfn.REGION
ACCOUNT = cfn.ACCOUNT_ID
BASELINE = f'import boto3; boto3.client("dynamodb", region_name="{REGION}")'
BASELINE_LABEL = "boto3 + dynamodb client"
TASK_GOAL = 1.3
API_GOAL = 1.5
API_FUNCTION = "ApiFunction"
SUBPROCESS_TIMEOUT_SECONDS = 60.0
RUNS = 7
QUICK_RUNS = 1
GOAL_SOURCE = "docs/decisions/0007"

PARAMETER_VALUES = {"PaymentApiUrl": "http://127.0.0.1:9"}
"""Template parameters given a value of their own; the others keep their Default."""

COMMON_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}
LAMBDA_ENVIRONMENT = {
    "LAMBDA_TASK_ROOT": str(ROOT / "src"),
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
}
DROPPED_PREFIXES = ("AWS_", "POWERTOOLS_", "LAMBDA_", "_X_AMZN_", "_HANDLER", "PYTHONPATH")
"""Variables of the calling shell that would change what a handler does at import."""


@dataclass(frozen=True)
class Case:
    label: str
    module: str
    environment: dict[str, str]
    goal: float | None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, help=f"fresh imports per function (default {RUNS}, --quick {QUICK_RUNS})"
    )
    parser.add_argument(
        "--outside-lambda", action="store_true", help="leave LAMBDA_TASK_ROOT unset (Tracer disables itself)"
    )
    add_quick_option(parser)
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else QUICK_RUNS if args.quick else RUNS
    if not 1 <= runs <= 100:
        parser.error("--runs is between 1 and 100")
    goals = Goals(quick=args.quick)

    result = measure(runs, lambda_like=not args.outside_lambda, discarded=0 if args.quick else 1)
    width = max(len(case.label) for case in result.cases)
    print(
        f"{runs} fresh interpreters each, interleaved; Python {sys.version.split()[0]}; "
        f"{'outside Lambda' if args.outside_lambda else 'LAMBDA_TASK_ROOT set'}"
    )
    print(f"{'function':<{width}}  {'median s':>8}  {'min s':>6}  {'ratio':>5}")
    for case in result.cases:
        fastest = min(result.timings[case.label])
        print(
            f"{case.label:<{width}}  {result.median(case.label):>8.3f}  {fastest:>6.3f}  "
            f"{result.ratio(case.label):>5.2f}"
        )
    for case in result.cases:
        if case.goal is not None:
            goals.at_most(
                f"import {case.label} ÷ floor", result.ratio(case.label), case.goal, source=GOAL_SOURCE
            )
    return goals.exit_status()


@dataclass(frozen=True)
class Result:
    """Seconds per import, by label; the first case is the baseline the ratios divide by."""

    cases: list[Case]
    timings: dict[str, list[float]]

    def median(self, label: str) -> float:
        return statistics.median(self.timings[label])

    def ratio(self, label: str) -> float:
        return self.median(label) / self.median(self.cases[0].label)


def measure(runs: int, *, lambda_like: bool = True, discarded: int = 1) -> Result:
    """The baseline and every function of template.yaml, each imported `runs` times in fresh
    interpreters (this one's `sys.executable`), interleaved, after `discarded` rounds (the disk
    cache warming up)."""
    base = _base_environment(lambda_like=lambda_like)
    cases = [Case(BASELINE_LABEL, "", base, None), *_function_cases(base)]
    timings: dict[str, list[float]] = {case.label: [] for case in cases}
    for round_number in range(discarded + runs):
        for case in cases:
            seconds = _import_seconds(case)
            if round_number >= discarded:
                timings[case.label].append(seconds)
    return Result(cases, timings)


def _base_environment(*, lambda_like: bool) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(DROPPED_PREFIXES)}
    environment.update(COMMON_ENVIRONMENT)
    if lambda_like:
        environment.update(LAMBDA_ENVIRONMENT)
    environment["PYTHONPATH"] = str(ROOT / "src")
    return environment


def _function_cases(base: dict[str, str]) -> list[Case]:
    """One case per function of the translated template, in template order, with its resolved environment."""
    template = cfn.translate((ROOT / "template.yaml").read_text(encoding="utf-8"))
    resources: dict[str, Any] = template["Resources"]
    resolver = cfn.Resolver(template, PARAMETER_VALUES, stack_name="bench")
    for logical_id, resource in resources.items():
        ref, attributes = _stand_in(logical_id, str(resource.get("Type")))
        resolver.refs[logical_id] = ref
        resolver.attributes[logical_id] = attributes
    cases = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        properties = resource.get("Properties", {})
        variables = resolver.resolve(properties.get("Environment", {}).get("Variables", {}))
        environment = dict(base)
        environment.update({name: str(value) for name, value in variables.items()})
        environment["AWS_LAMBDA_FUNCTION_NAME"] = f"bench-{logical_id}"
        cases.append(
            Case(
                label=logical_id,
                module=str(properties["Handler"]).rsplit(".", 1)[0],
                environment=environment,
                goal=API_GOAL if logical_id == API_FUNCTION else TASK_GOAL,
            )
        )
    return cases


def _stand_in(logical_id: str, resource_type: str) -> tuple[str, dict[str, str]]:
    """What `Ref` and `Fn::GetAtt` of a resource return in AWS, for a resource named `bench-<LogicalId>`:
    a handler may check the shape of what it is given at import (the Api function reads role ARNs), so
    a stand-in must have the real one. An attribute not listed here fails the resolution by name."""
    name = f"bench-{logical_id}"

    def arn(service: str, resource: str, region: str = REGION) -> str:
        return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"

    if resource_type == "AWS::IAM::Role":
        return name, {
            "Arn": arn("iam", f"role/{name}", region=""),
            "RoleId": f"AROA{logical_id.upper()[:17]}",
        }
    if resource_type == "AWS::Lambda::Function":
        return name, {"Arn": arn("lambda", f"function:{name}")}
    if resource_type == "AWS::DynamoDB::Table":
        return name, {"Arn": arn("dynamodb", f"table/{name}")}
    if resource_type == "AWS::SNS::Topic":
        return arn("sns", name), {"TopicArn": arn("sns", name), "TopicName": name}
    if resource_type == "AWS::SQS::Queue":
        url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        return url, {"Arn": arn("sqs", name), "QueueName": name, "QueueUrl": url}
    if resource_type == "AWS::StepFunctions::StateMachine":
        return arn("states", f"stateMachine:{name}"), {
            "Arn": arn("states", f"stateMachine:{name}"),
            "Name": name,
        }
    if resource_type == "AWS::SecretsManager::Secret":
        return arn("secretsmanager", f"secret:{name}"), {"Id": arn("secretsmanager", f"secret:{name}")}
    if resource_type == "AWS::AppSync::GraphQLApi":
        api_id = "benchbenchbenchbenchbench0"
        url = f"https://{api_id}.appsync-api.{REGION}.amazonaws.com/graphql"
        return arn("appsync", f"apis/{api_id}"), {
            "Arn": arn("appsync", f"apis/{api_id}"),
            "ApiId": api_id,
            "GraphQLUrl": url,
        }
    return name, {}


def _import_seconds(case: Case) -> float:
    statement = BASELINE if not case.module else f"import {case.module}"
    code = f"import time; t=time.perf_counter(); {statement}; print(time.perf_counter()-t)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=case.environment,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{case.label}: the import failed\n{result.stderr.strip()}")
    return float(lines[-1])


if __name__ == "__main__":
    sys.exit(main())
