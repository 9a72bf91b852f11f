"""`make smoke` against `make run`: the offline server plays the deployed stack (describe-stacks, its user
pool in moto's Cognito, RS256 ID tokens), so the online path's code runs in CI, which has no AWS account."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.e2e import smoke
from tests.e2e.conftest import OFFLINE_ONLY, ROOT, Server


@pytest.fixture(scope="module")
def server(own_server: Server) -> Server:
    """A server of its own: "leaves nothing behind" is read over the whole account."""
    return own_server


def _leftovers(server: Server) -> dict[str, Any]:
    """What a smoke run could leave: users in the pool, SMOKE flights, booking rows and claims."""
    [pool] = server.aws("cognito-idp").list_user_pools(MaxResults=10)["UserPools"]
    users = server.aws("cognito-idp").list_users(UserPoolId=pool["Id"])["Users"]
    flights = server.aws("dynamodb").scan(TableName="booking-offline-FlightTable")["Items"]
    bookings = server.aws("dynamodb").scan(TableName="booking-offline-BookingTable")["Items"]
    return {
        "users": [user["Username"] for user in users],
        "flights": [item["id"]["S"] for item in flights if item["id"]["S"].startswith("SMOKE-")],
        "booking items": [item["id"]["S"] for item in bookings],
    }


def _lambda_reports(server: Server) -> int:
    """Lambda invocations so far, counted in the server's log (one REPORT line each, as in CloudWatch)."""
    return server.log.read_text(errors="replace").count("REPORT RequestId:")


def _offline_only_tests() -> int:
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "offline_only", "tests/e2e"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len([line for line in listed.splitlines() if "::" in line])


def test_make_smoke_against_make_run_passes_and_leaves_nothing_behind(server: Server) -> None:
    nothing = {"users": [], "flights": [], "booking items": []}
    assert _leftovers(server) == nothing
    reports = _lambda_reports(server)

    result = subprocess.run(  # noqa: S603 - make smoke, the command under test
        ["make", "--no-print-directory", "smoke", f"URL={server.url}"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MAKEFLAGS": ""},
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    plan = output.index("make smoke will create in booking-offline")
    assert plan < output.index("test session starts")
    assert len(re.findall(r"^  user   smoke-\w+-(customer|other|admin)@example\.com", output, re.M)) == 3
    assert len(re.findall(r"^  flight SMOKE-\w+-\d ", output, re.M)) == 2
    assert re.search(r"\b9 passed\b", output), output[-3000:]
    skipped = re.search(r"make smoke: (\d+) tests need the offline stack and were skipped", output)
    assert skipped, output[-3000:]
    assert int(skipped.group(1)) == _offline_only_tests()
    assert "make smoke deleted its 3 users, 2 flights and their bookings." in output
    used = re.search(
        r"make smoke used (\d+) AppSync requests, (\d+) state transitions, (\d+) Lambda invocations "
        r"for (\d+) bookings: about \$(\d+\.\d+)",
        output,
    )
    assert used, output[-2000:]
    requests, transitions, invocations, bookings, _ = used.groups()
    assert int(bookings) == 7
    # 6 confirmed bookings of 5 transitions and one declined card of 11 (make bench)
    assert int(transitions) == 6 * 5 + 11
    # the printed count is what the Lambda service really ran: every invocation logs one REPORT line
    assert int(invocations) == _lambda_reports(server) - reports
    assert int(requests) > 0
    assert _leftovers(server) == nothing


def test_a_failing_test_still_deletes_the_users_the_flights_and_the_bookings(server: Server) -> None:
    result = subprocess.run(  # noqa: S603 - the smoke command under test
        [
            sys.executable,
            "-m",
            "tests.e2e.smoke",
            "--stack",
            "booking-offline",
            "--endpoint-url",
            server.url,
            "tests/e2e/failing_run.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "failing on purpose, after a booking" in output
    assert "make smoke deleted its 3 users, 2 flights and their bookings." in output
    assert _leftovers(server) == {"users": [], "flights": [], "booking items": []}


def _as_a_foreground_job() -> None:
    """Ctrl-C's default action, as a terminal's foreground job has it: a suite started in the background
    (`make test &`, nohup) passes SIGINT ignored to its children, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_the_tests_still_deletes_what_the_run_created(server: Server, tmp_path: Path) -> None:
    ready = tmp_path / "booked"
    runner = subprocess.Popen(  # noqa: S603 - the smoke command under test
        [
            sys.executable,
            "-m",
            "tests.e2e.smoke",
            "--stack",
            "booking-offline",
            "--endpoint-url",
            server.url,
            "tests/e2e/failing_run.py::test_books_then_waits_for_ctrl_c",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "E2E_DOUBLE_READY": str(ready)},
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=_as_a_foreground_job,  # resets one signal in the child, takes no lock
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the run never booked"
        assert _leftovers(server)["booking items"] != []
        os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C reaches the runner and its pytest alike
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()

    assert runner.returncode == 130, output[-3000:]
    assert "make smoke deleted its 3 users, 2 flights and their bookings." in output
    assert _leftovers(server) == {"users": [], "flights": [], "booking items": []}


@pytest.mark.parametrize(
    ("stack", "allow_main", "reason"),
    [
        ("booking-prod", None, "stage 'prod' is named like production"),
        ("booking-production", "1", "stage 'production' is named like production"),
        ("booking-prod-eu", None, "stage 'prod-eu' is named like production"),
        ("booking-main", None, "stage 'main' is shared: run with SMOKE_ALLOW_MAIN=1"),
        ("booking-main", "1", "stack booking-main not found"),
    ],
)
def test_a_production_stage_is_refused_before_anything_is_created(
    server: Server, monkeypatch: pytest.MonkeyPatch, stack: str, allow_main: str | None, reason: str
) -> None:
    if allow_main is None:
        monkeypatch.delenv("SMOKE_ALLOW_MAIN", raising=False)
    else:
        monkeypatch.setenv("SMOKE_ALLOW_MAIN", allow_main)
    errors = io.StringIO()

    with redirect_stderr(errors):
        code = smoke.main(["--stack", stack, "--endpoint-url", server.url])

    assert (code, reason in errors.getvalue()) == (2, True), errors.getvalue()
    assert _leftovers(server)["users"] == []


def test_a_stack_deployed_with_a_production_stage_is_refused_whatever_its_name(server: Server) -> None:
    server.aws("cloudformation").create_stack(
        StackName="booking-innocent",
        TemplateBody='{"Parameters": {"Stage": {"Type": "String"}}, "Resources": {}}',
        Parameters=[{"ParameterKey": "Stage", "ParameterValue": "prod"}],
    )
    errors = io.StringIO()

    with redirect_stderr(errors):
        code = smoke.main(["--stack", "booking-innocent", "--endpoint-url", server.url])

    assert code == 2
    assert "booking-innocent was deployed with Stage=prod" in errors.getvalue()
    assert _leftovers(server)["users"] == []


def test_the_readme_lists_every_e2e_module_that_cannot_run_online_with_its_reason() -> None:
    readme = (ROOT / "README.md").read_text()
    [section] = re.findall(r"\*\*Tests that cannot run online\.\*\*(.*?)\*\*What a run costs", readme, re.S)

    listed = set(re.findall(r"^\| `tests/e2e/(test_\w+\.py)` \| \S", section, re.M))
    assert listed == set(OFFLINE_ONLY)


def test_the_token_command_signs_a_pool_user_in_and_the_server_accepts_the_rs256_token(
    server: Server,
) -> None:
    email = f"dev-{uuid.uuid4().hex[:6]}@example.com"
    printed = subprocess.run(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "offline",
            "token",
            "--pool-user",
            email,
            "--group",
            "Admin",
            "--url",
            server.url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    claims = jwt.decode(printed, options={"verify_signature": False})
    status, body = server.graphql("{ listBookings(limit: 1) { items { id } } }", token=printed)
    try:
        assert jwt.get_unverified_header(printed)["alg"] == "RS256"
        assert (claims["email"], claims["cognito:groups"], claims["token_use"]) == (email, ["Admin"], "id")
        assert (status, body.get("errors")) == (200, None), body
    finally:
        [pool] = server.aws("cognito-idp").list_user_pools(MaxResults=10)["UserPools"]
        server.aws("cognito-idp").admin_delete_user(UserPoolId=pool["Id"], Username=email)
