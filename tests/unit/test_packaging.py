"""The package builds without a warning and carries what the offline server reads at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_builds_without_warnings_and_holds_the_offline_packages_and_data(tmp_path: Path) -> None:
    project = tmp_path / "project"  # a copy: setuptools writes build/ and *.egg-info beside the sources
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for tree in ("src", "offline"):
        shutil.copytree(ROOT / tree, project / tree, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", project)
    result = subprocess.run(  # noqa: S603 - pip on this project
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""  # setuptools warns through stderr; nothing to warn about

    [wheel] = tmp_path.glob("booking_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "booking/handlers/__init__.py",
        "offline/cli.py",
        "offline/lambdas/__init__.py",
        "offline/static/index.html",
        "offline/flights.json",
    ):
        assert needed in names, needed
    metadata = zipfile.ZipFile(wheel).read(wheel.name.split("-")[0] + "-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT-0" in metadata
