"""Running a benchmark's quick form, as `make bench QUICK=1` does, and reading its figure lines."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.goals import GOAL_LINE, UNSET_LINE

ROOT = Path(__file__).resolve().parents[2]
QUICK_TIMEOUT_SECONDS = 180.0
"""Far above any quick form's time on a loaded machine; a script over it has lost its quick form."""


@dataclass(frozen=True)
class QuickRun:
    script: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def judged(self) -> dict[str, str]:
        """Each figure printed beside its goal: label → verdict."""
        found = (GOAL_LINE.match(line) for line in self.stdout.splitlines())
        return {match["label"]: match["verdict"] for match in found if match}

    @property
    def unset(self) -> set[str]:
        """Each figure printed with no goal set."""
        found = (UNSET_LINE.match(line) for line in self.stdout.splitlines())
        return {match["label"] for match in found if match}

    def explain(self) -> str:
        return f"{self.script} --quick exited {self.returncode}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"


def run_quick(script: str) -> QuickRun:
    """`bench/<script>.py --quick` with this virtual environment's Python, from the project root."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this interpreter, one of our scripts
        [sys.executable, f"bench/{script}.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_SECONDS,
        check=False,
    )
    return QuickRun(script, done.returncode, done.stdout, done.stderr, time.perf_counter() - started)


def assert_quick_form(run: QuickRun, judged: set[str], unset: set[str] | None = None) -> None:
    """It ran to the end, printed every figure beside its goal (or as having none), and judged nothing."""
    assert run.returncode == 0, run.explain()
    assert "figures and goals, quick form (--quick): goals not judged" in run.stdout, run.explain()
    assert set(run.judged) == judged, run.explain()
    assert run.unset == (unset or set()), run.explain()
    assert "MISSED" not in run.judged.values(), run.explain()
