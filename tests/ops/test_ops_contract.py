"""What the tool assumes about the rest of the project, kept in step with it."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from booking import models
from booking.errors import InvalidSagaInput
from booking.ops import aws, dlq

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "branch",
    ["main", "Feature/Cancel_Booking", "--odd--", "release/2027.01", "UPPER__case--x", "a" * 50 + "-b"],
)
def test_the_default_stage_is_the_makefiles(branch: str) -> None:
    """`make -n deploy` prints the stack name it would deploy, from the Makefile's own STAGE."""
    printed = subprocess.run(  # noqa: S603 - fixed arguments
        ["make", "-n", "deploy", f"BRANCH={branch}", "BUILD_IN=host"],  # noqa: S607 - make on PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    [stack] = {word for word in printed.split() if word.startswith("booking-")}
    assert stack == f"booking-{aws.stage_from_branch(branch)}"


def test_the_default_region_is_samconfigs() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["global"]["parameters"]["region"] == aws.DEFAULT_REGION


def test_booking_ids_are_checked_as_the_saga_checks_them() -> None:
    assert dlq.BOOKING_ID.pattern == r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
    for good in ("b1", "3f0c7a2e-0d1b-4c55-9c1e-2a6b0e5a9f10", "A" * 64):
        assert dlq.BOOKING_ID.fullmatch(good)
        models.parse_task_input({"bookingId": good}, models.BookingIdentity)
    for bad in ("", "-b", "a b", "a" * 65, "é"):
        assert not dlq.BOOKING_ID.fullmatch(bad)
        with pytest.raises(InvalidSagaInput):
            models.parse_task_input({"bookingId": bad}, models.BookingIdentity)


def test_no_function_imports_the_operators_tools() -> None:
    """booking.ops ships in the code package (CodeUri: src/) but is never on a function's cold path."""
    offenders = []
    for path in (ROOT / "src" / "booking").rglob("*.py"):
        if "ops" in path.relative_to(ROOT / "src" / "booking").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            if any(name == "booking.ops" or name.startswith("booking.ops.") for name in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_every_step_a_state_machine_can_list_is_known() -> None:
    """The step names the ASL writes into notUndone / notDone are the ones redrive knows, per kind."""
    sources = {
        "BookingFailed": (ROOT / "statemachine" / "process_booking.asl.yaml").read_text(),
        "CancellationFailed": (ROOT / "statemachine" / "cancel_booking.asl.yaml").read_text(),
    }
    for kind, text in sources.items():
        written = set()
        for appended in re.findall(r"States\.Format\('\{\} ([A-Za-z ]+)'", text):
            written.update(appended.split())
        for literal in re.findall(r"^ +list: ([A-Za-z ]+)$", text, flags=re.MULTILINE):
            written.update(literal.split())
        assert written, kind
        assert written == set(dlq.CHAINS[kind]), kind  # nothing the tool does not know, nothing it invents
    assert "notDone: [notifyBookingConfirmed]" in sources["BookingFailed"]
    assert dlq.CHAINS["NotificationMissing"] == ("notifyBookingConfirmed",)


def test_the_operators_tools_are_packaged() -> None:
    """`pip install .` must carry booking.ops, so `python -m booking.ops` works outside a checkout."""
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert "booking.ops" in packages
