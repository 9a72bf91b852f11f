"""The quick form of each benchmark that runs the stack in its own process: it runs to the end and
prints every figure beside its goal. In two modules (this one and test_quick_servers.py) so that
`make test`'s two workers, one test file each at a time, share them."""

from __future__ import annotations

from tests.bench.conftest import assert_quick_form, run_quick
from tests.conftest import FUNCTIONS

NO_GOAL_YET = "none in README's bench table or this docstring"


def test_transitions_quick_form_counts_every_outcome_against_its_goal() -> None:
    run = run_quick("transitions")
    assert_quick_form(run, {"confirmed booking, transitions", "customer's cancellation, transitions"})
    for outcome in ("confirmed", "card declined", "flight full", "payment API down twice"):
        assert f"\n{outcome} " in run.stdout, run.explain()


def test_deploy_quick_form_prints_its_figures_with_no_goal_set() -> None:
    run = run_quick("deploy")
    assert_quick_form(run, set(), {"first deploy in the process", "each further deploy, median"})
    assert NO_GOAL_YET in run.stdout


def test_cold_imports_quick_form_imports_every_function() -> None:
    assert_quick_form(run_quick("cold_imports"), {f"import {function} ÷ floor" for function in FUNCTIONS})


def test_cold_starts_quick_form_cold_starts_every_function() -> None:
    judged = {f"{kind} {function} ÷ floor" for function in FUNCTIONS for kind in ("init", "import")}
    assert_quick_form(run_quick("cold_starts"), judged)


def test_iam_checks_quick_form_times_the_checks_and_finds_no_denial() -> None:
    run = run_quick("iam_checks")
    assert_quick_form(
        run,
        set(),
        {
            "roles compiled per deployment",
            "checked calls per booking + cancellation",
            "deciding a call, median",
            "reading a request, median",
            "per booking + cancellation, in all",
        },
    )
    assert "0 denied" in run.stdout, run.explain()
