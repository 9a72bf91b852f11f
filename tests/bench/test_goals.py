"""A missed goal fails a benchmark's full form and is named; the quick form prints it and judges nothing."""

from __future__ import annotations

import pytest

from bench.goals import GOAL_LINE, UNSET_LINE, Goals


def test_a_missed_goal_fails_the_full_form_and_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    goals = Goals(quick=False)
    goals.at_most("booking latency median ÷ floor", 2.4, 3, source="bench/latency.py docstring")
    goals.at_least("throughput 8 clients ÷ 1 client", 1.24, 1.6)

    assert goals.exit_status() == 1
    printed = capsys.readouterr()
    verdicts = {m["label"]: m["verdict"] for m in map(GOAL_LINE.match, printed.out.splitlines()) if m}
    assert verdicts == {"booking latency median ÷ floor": "ok", "throughput 8 clients ÷ 1 client": "MISSED"}
    assert printed.err == "missed goal: throughput 8 clients ÷ 1 client is 1.24, goal ≥ 1.6\n"


def test_the_full_form_passes_when_every_goal_is_met(capsys: pytest.CaptureFixture[str]) -> None:
    goals = Goals(quick=False)
    goals.at_most("serve → first answer, median of 3", 9.87, 15, "s")
    goals.at_most("confirmed booking, transitions", 5, 5, digits=0)

    assert goals.exit_status() == 0
    printed = capsys.readouterr()
    lines = [
        GOAL_LINE.match(line) for line in printed.out.splitlines() if line.startswith(("serve", "confirmed"))
    ]
    assert [(m["figure"], m["goal"], m["verdict"]) for m in lines if m] == [
        ("9.87", "15", "ok"),
        ("5", "5", "ok"),
    ]
    assert printed.err == ""


def test_the_quick_form_prints_a_missed_goal_and_does_not_fail(capsys: pytest.CaptureFixture[str]) -> None:
    goals = Goals(quick=True)
    goals.at_least("throughput 8 clients ÷ 1 client", 0.34, 1.6, source="bench/latency.py docstring")
    goals.without_goal(
        "first deploy in the process", 2.909, "s", digits=3, why="none in README's bench table"
    )

    assert goals.exit_status() == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "figures and goals, quick form (--quick): goals not judged"
    judged = GOAL_LINE.match(out[2])
    assert judged is not None
    assert judged["verdict"] == "missed (not judged: --quick)"
    assert judged["source"] == "bench/latency.py docstring"
    unset = UNSET_LINE.match(out[3])
    assert unset is not None
    assert (unset["label"], unset["figure"], unset["why"]) == (
        "first deploy in the process",
        "2.909",
        "none in README's bench table",
    )
