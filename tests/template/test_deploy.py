"""`make deploy` works for whoever runs it: the right Python for `sam build`, every tag, the same pins.

`sam build` installs `src/requirements.txt` with the template's runtime; without that Python (or
Docker for `--use-container`) it fails half-way with pip's error. `sam deploy --tags` replaces the
tags of samconfig.toml instead of adding to them. And the pins `sam build` reads must be the ones the
tests ran. Each is checked here with `make -n deploy`, which prints the commands without running them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("bash", "sh", "git", "sed", "tr", "cut", "head")
"""What the Makefile runs to work out the stage and the runtime, linked into a bare PATH."""


def _make_n_deploy(path: Path | None = None, *arguments: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not on PATH")
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = str(path)
    return subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [make, "--no-print-directory", "-n", "deploy", *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def _commands(printed: str) -> dict[str, list[str]]:
    lines = [shlex.split(line) for line in printed.replace("\\\n", " ").splitlines() if line.strip()]
    return {" ".join(line[:2]): line for line in lines if line[:1] == ["sam"]}


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH with the Makefile's tools and no Python or Docker: a test adds what the machine has."""
    for tool in TOOLS:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not on PATH")
        (tmp_path / tool).symlink_to(found)
    return tmp_path


def _fake(path: Path, name: str, exit_code: int = 0) -> None:
    script = path / name
    script.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    script.chmod(0o755)


def _runtime(template: dict[str, Any]) -> str:
    return str(template["Globals"]["Function"]["Runtime"])


def test_make_deploy_builds_on_this_machine_with_the_templates_python(
    bare_path: Path, template: dict[str, Any]
) -> None:
    _fake(bare_path, _runtime(template))
    _fake(bare_path, "docker")

    done = _make_n_deploy(bare_path)

    assert done.returncode == 0, done.stderr
    assert _commands(done.stdout)["sam build"] == ["sam", "build", "--template-file", "template.yaml"]


def test_make_deploy_builds_in_docker_when_the_templates_python_is_missing_or_broken(
    bare_path: Path, template: dict[str, Any]
) -> None:
    _fake(bare_path, _runtime(template), exit_code=127)  # a pyenv shim of a version not selected
    _fake(bare_path, "docker")

    done = _make_n_deploy(bare_path)

    assert done.returncode == 0, done.stderr
    assert "--use-container" in _commands(done.stdout)["sam build"]


def test_make_deploy_without_the_python_or_docker_says_what_to_install_and_runs_nothing(
    bare_path: Path, template: dict[str, Any]
) -> None:
    _fake(bare_path, "python3")  # another Python is no help: pip must build for the runtime's
    _fake(bare_path, "docker", exit_code=1)  # installed, daemon not running

    done = _make_n_deploy(bare_path)

    assert done.returncode != 0
    assert "sam " not in done.stdout
    runtime = _runtime(template)
    assert f"sam build needs {runtime}" in done.stderr
    assert f"uv python install {runtime.removeprefix('python')}" in done.stderr
    assert "Docker" in done.stderr


def test_build_in_chooses_the_build_whatever_the_machine_has() -> None:
    assert "--use-container" in _commands(_make_n_deploy(None, "BUILD_IN=container").stdout)["sam build"]
    assert "--use-container" not in _commands(_make_n_deploy(None, "BUILD_IN=host").stdout)["sam build"]


def test_every_tag_is_passed_on_the_command_line_and_samconfig_has_none_to_lose() -> None:
    deploy = _commands(_make_n_deploy(None, "BUILD_IN=host", "BRANCH=Feature/x").stdout)["sam deploy"]
    tags = deploy[deploy.index("--tags") + 1 :]
    tags = tags[: next((i for i, word in enumerate(tags) if word.startswith("--")), None)]

    assert sorted(tags) == ["project=serverless-airline", "service=booking", "stage=feature-x"]
    with (REPO / "samconfig.toml").open("rb") as file:
        samconfig = tomllib.load(file)
    # `--tags` replaces samconfig's tags (it does not merge): a tag kept there would never be applied.
    placed_in_samconfig = [
        f"{environment}.{command}"
        for environment, commands in samconfig.items()
        if isinstance(commands, dict)
        for command, section in commands.items()
        if "tags" in section.get("parameters", {})
    ]
    assert placed_in_samconfig == []


def _pins(lines: list[str]) -> list[str]:
    return sorted(re.sub(r"\s+", "", line) for line in lines if line.strip() and not line.startswith("#"))


def test_src_requirements_pins_exactly_what_pyproject_pins() -> None:
    with (REPO / "pyproject.toml").open("rb") as file:
        pyproject = _pins(tomllib.load(file)["project"]["dependencies"])
    requirements = _pins((REPO / "src" / "requirements.txt").read_text().splitlines())

    assert requirements == pyproject, "sam build reads src/requirements.txt: keep it pyproject's copy"
    assert all("==" in pin for pin in requirements), "pin every runtime dependency"
