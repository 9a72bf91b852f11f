"""The quick form of each benchmark that starts `python -m offline serve`: it runs to the end and
prints every figure beside its goal (see test_quick_in_process.py)."""

from __future__ import annotations

from tests.bench.conftest import assert_quick_form, run_quick


def test_startup_quick_form_times_one_start_against_its_goal() -> None:
    assert_quick_form(
        run_quick("startup"), {"serve → first answer, median of 1"}, {"SIGTERM → exit, median of 1"}
    )


def test_latency_quick_form_runs_every_phase() -> None:
    run = run_quick("latency")
    assert_quick_form(
        run,
        {"booking latency median ÷ moto floor", "throughput 8 clients ÷ 1 client"},
        {"push after processBooking answered, median"},
    )
    for phase in ("warm-up, 8 threads", "1 client thread", "8 client threads", "onBookingStatusChanged push"):
        assert f"\n{phase} " in run.stdout, run.explain()


def test_memory_quick_form_sees_its_idle_sandboxes_stopped() -> None:
    run = run_quick("memory")
    assert_quick_form(
        run,
        set(),
        {
            "PSS total, idle before any request",
            "PSS total after 2 bookings",
            "PSS total, idle sandboxes stopped",
        },
    )
    assert "Idle sandboxes: all stopped" in run.stdout, run.explain()


def test_notify_load_quick_form_counts_events_pushes_pages_and_held_money() -> None:
    run = run_quick("notify_load")
    assert_quick_form(
        run,
        {
            "events published per booking, most",
            "events published per booking, fewest",
            "status changes pushed more than once",
            "status changes never pushed",
            "DLQ messages (nothing here needs a human)",
            "false NotificationMissing in the DLQ",
            "authorisations held after the end",
        },
    )
    assert "events published per booking: 8 bookings 1" in run.stdout, run.explain()
    assert "7 SUCCEEDED" in run.stdout, run.explain()
