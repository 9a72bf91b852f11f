"""Which stack the operator means, and the AWS clients that reach it.

The stage, region and endpoint are settled once, from the command line, the git branch and the
environment, the way `make deploy` settles them, so `python -m booking.ops` with no options talks to
the stack `make deploy` made from the same checkout. Resource names are found as CloudFormation
makes them (`booking-<stage>-BookingDLQ-<suffix>`), or as the template fixes them
(`booking-<stage>-<function>`), so no stack output or parameter store is needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "eu-west-1"
"""samconfig.toml's region (`sam deploy` deploys there); a test keeps the two in step."""

OFFLINE_STAGE = "offline"
"""The stage of the offline stack (`make run`), which `--endpoint-url` implies unless `--stage` is given."""

QUEUE_VISIBILITY_SECONDS = 30
"""How long a received DLQ message stays hidden if this tool dies before it gives the message back."""

_INVOKE_CONFIG = Config(
    # Longer than any task function's timeout: a slow compensation must answer, not be abandoned.
    read_timeout=120,
    connect_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
)
_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})


class OpsError(Exception):
    """The command cannot run as given (no such queue, no credentials…): one line, nothing done."""


def stage_from_branch(branch: str) -> str:
    """The Makefile's STAGE for a branch: lower case, runs of anything but [a-z0-9-] as one '-',
    no leading or trailing '-', then cut to 40 characters (in that order, as the Makefile does)."""
    stage = re.sub(r"[^a-z0-9-]+", "-", branch.lower())
    stage = re.sub(r"^-+", "", stage)
    stage = re.sub(r"-+$", "", stage)
    return stage[:40]


def current_branch() -> str:
    """The checkout's branch, as `git rev-parse --abbrev-ref HEAD` says; `dev` outside git, as the
    Makefile falls back."""
    git = shutil.which("git")
    if git is None:
        return "dev"
    try:
        answer = subprocess.run(  # noqa: S603 - a fixed git command, no user input
            [git, "rev-parse", "--abbrev-ref", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "dev"
    branch = answer.stdout.strip()
    return branch if answer.returncode == 0 and branch else "dev"


@dataclass(frozen=True)
class Target:
    """One deployed (or offline) booking stack, and how to reach it."""

    stage: str
    region: str | None = None
    endpoint_url: str | None = None
    queue_url: str | None = None

    @classmethod
    def resolve(
        cls,
        *,
        stage: str | None,
        region: str | None,
        endpoint_url: str | None,
        queue_url: str | None,
    ) -> Target:
        """Fill in what the operator left out: the stage from the git branch (or `offline` against an
        endpoint), the region from the environment or AWS config (else samconfig's)."""
        if stage is None:
            stage = OFFLINE_STAGE if endpoint_url else stage_from_branch(current_branch())
        return cls(stage=stage, region=region, endpoint_url=endpoint_url, queue_url=queue_url)


class Stack:
    """The AWS clients and resource names of one `Target`; names are looked up once, on first use."""

    def __init__(self, target: Target) -> None:
        self.target = target
        session = boto3.session.Session(region_name=target.region)
        if session.region_name is None:
            session = boto3.session.Session(region_name=DEFAULT_REGION)
        if target.endpoint_url and session.get_credentials() is None:
            # The offline endpoint takes any credentials; a laptop with none configured still works.
            session = boto3.session.Session(
                region_name=session.region_name,
                aws_access_key_id="offline",
                aws_secret_access_key="offline",  # noqa: S106 - the offline endpoint's dummy key
            )
        self.session = session
        self.region: str = str(session.region_name)

    def _client(self, service: str, config: Config = _CONFIG) -> Any:
        return self.session.client(service, endpoint_url=self.target.endpoint_url, config=config)

    @cached_property
    def sqs(self) -> Any:
        return self._client("sqs")

    @cached_property
    def lambda_(self) -> Any:
        return self._client("lambda", _INVOKE_CONFIG)

    @cached_property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")

    @cached_property
    def sfn(self) -> Any:
        return self._client("stepfunctions")

    def state_machine_arn(self, short: str) -> str:
        """The template names its state machines `booking-<stage>-<name>` (`process-booking`, …)."""
        name = f"booking-{self.target.stage}-{short}"
        for page in self.sfn.get_paginator("list_state_machines").paginate():
            for machine in page.get("stateMachines", []):
                if machine["name"] == name:
                    return str(machine["stateMachineArn"])
        raise OpsError(f"no state machine {name} for {self.where()}")

    def where(self) -> str:
        """The stage and region (and endpoint) named in errors, so the operator sees what was asked."""
        place = f"stage {self.target.stage!r} in {self.region}"
        return f"{place} at {self.target.endpoint_url}" if self.target.endpoint_url else place

    def function_name(self, short: str) -> str:
        """The template names every function `booking-<stage>-<name>`."""
        return f"booking-{self.target.stage}-{short}"

    @cached_property
    def queue_url(self) -> str:
        """The Booking DLQ: `--queue-url`, else the one queue named `booking-<stage>-BookingDLQ…`."""
        if self.target.queue_url:
            return self.target.queue_url
        prefix = f"booking-{self.target.stage}-BookingDLQ"
        urls = self.sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        if not urls:
            raise OpsError(
                f"no Booking DLQ (a queue named {prefix}…) for {self.where()}; give --stage or --queue-url"
            )
        if len(urls) > 1:
            raise OpsError(
                f"{len(urls)} queues are named {prefix}…; give --queue-url (one of {', '.join(urls)})"
            )
        return str(urls[0])

    def table_name(self, logical_id: str) -> str:
        """A table CloudFormation named `booking-<stage>-<logical id>-<suffix>`."""
        return self._tables[logical_id]

    @cached_property
    def _tables(self) -> dict[str, str]:
        prefix = f"booking-{self.target.stage}-"
        found: dict[str, str] = {}
        for page in self.dynamodb.get_paginator("list_tables").paginate():
            for name in page.get("TableNames", []):
                for logical_id in ("BookingTable", "FlightTable"):
                    if name.startswith(prefix + logical_id):
                        found.setdefault(logical_id, name)
        missing = [logical_id for logical_id in ("BookingTable", "FlightTable") if logical_id not in found]
        if missing:
            raise OpsError(f"no {' or '.join(missing)} for {self.where()}")
        return found
