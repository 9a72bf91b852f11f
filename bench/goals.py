"""Every benchmark's figures beside their goals, in one format, and the exit status they make.

A script prints its own tables first, then one line per figure that has a goal:

    booking latency median ÷ moto floor       2.41         goal ≤ 3          ok

and, for a figure nobody has set a goal for, the same line with `no goal set` and why. In the full
form (the default) a missed goal makes the script exit 1, naming the goal; `--quick` runs the same
code paths on the smallest counts that still exercise them, prints the same lines and judges
nothing (a few samples are noise): a missed goal reads `missed (not judged: --quick)`. An error —
a booking that does not confirm, an import that fails — is not a figure: it fails either form.

`tests/bench/test_quick.py` runs every script with `--quick` and reads these lines (GOAL_LINE,
UNSET_LINE).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

LABEL_WIDTH = 44
FIGURE_WIDTH = 12
GOAL_WIDTH = 16
QUICK_HELP = (
    "the same code paths on the smallest counts that exercise them (seconds, not minutes); "
    "figures are printed beside their goals, goals are not judged"
)
GOAL_LINE = re.compile(
    r"^(?P<label>\S.*?) {2,}(?P<figure>-?\d[\d.]*)(?: \S+)? +goal (?P<op>[≤≥]) (?P<goal>\d[\d.]*)(?: \S+)? +"
    r"(?P<verdict>ok|MISSED|missed \(not judged: --quick\))(?:  \((?P<source>.+)\))?$"
)
"""A figure beside its goal, as `Goals` prints it."""
UNSET_LINE = re.compile(
    r"^(?P<label>\S.*?) {2,}(?P<figure>-?\d[\d.]*)(?: \S+)? +no goal set \((?P<why>.+)\)$"
)
"""A figure nobody has set a goal for, as `Goals` prints it."""


def add_quick_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)


@dataclass(frozen=True)
class Missed:
    label: str
    figure: str
    goal: str


class Goals:
    """Collects a script's figures against their goals; `exit_status()` is what the script returns."""

    def __init__(self, *, quick: bool) -> None:
        self.quick = quick
        self.missed: list[Missed] = []
        self._headed = False

    def at_most(
        self, label: str, figure: float, goal: float, unit: str = "", *, digits: int = 2, source: str = ""
    ) -> bool:
        """`figure ≤ goal`; `source` names where the goal comes from when the script did not set it."""
        return self._judge(label, figure, "≤", goal, unit, figure <= goal, digits, source)

    def at_least(
        self, label: str, figure: float, goal: float, unit: str = "", *, digits: int = 2, source: str = ""
    ) -> bool:
        """`figure ≥ goal`."""
        return self._judge(label, figure, "≥", goal, unit, figure >= goal, digits, source)

    def without_goal(self, label: str, figure: float, unit: str = "", *, digits: int = 2, why: str) -> None:
        """A figure printed in the same format, with no goal to judge it by, and why there is none."""
        self._head()
        print(f"{label:<{LABEL_WIDTH}}  {_figure(figure, unit, digits):<{FIGURE_WIDTH}} no goal set ({why})")

    def _judge(
        self,
        label: str,
        figure: float,
        op: str,
        goal: float,
        unit: str,
        met: bool,
        digits: int,
        source: str,
    ) -> bool:
        self._head()
        shown = _figure(figure, unit, digits)
        wanted = f"goal {op} {_number(goal)}{' ' + unit if unit else ''}"
        if met:
            verdict = "ok"
        elif self.quick:
            verdict = "missed (not judged: --quick)"
        else:
            verdict = "MISSED"
            self.missed.append(Missed(label, shown, wanted))
        line = f"{label:<{LABEL_WIDTH}}  {shown:<{FIGURE_WIDTH}} {wanted:<{GOAL_WIDTH}} {verdict}"
        print(f"{line}  ({source})" if source else line, flush=True)
        return met

    def _head(self) -> None:
        if not self._headed:
            form = (
                "quick form (--quick): goals not judged" if self.quick else "full form: a missed goal fails"
            )
            print(f"\nfigures and goals, {form}")
            self._headed = True

    def exit_status(self) -> int:
        """0 unless a goal was missed in the full form; then each missed goal is named on stderr."""
        if not self.missed:
            return 0
        for missed in self.missed:
            print(f"missed goal: {missed.label} is {missed.figure}, {missed.goal}", file=sys.stderr)
        return 1


def _number(value: float) -> str:
    return f"{value:g}"


def _figure(value: float, unit: str, digits: int) -> str:
    return f"{value:.{digits}f}{' ' + unit if unit else ''}"
