"""No date bombs: tests and seed data count dates from now, so they pass on any day they run.

A flight that departs on a fixed date is bookable until that day and refused after it: the tests that
booked it then fail for no change of code. These tests keep every date relative.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from offline.stack import OfflineStack, departure_in

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "offline", "bench")
SUFFIXES = {".py", ".json", ".yaml", ".yml", ".graphql", ".html", ".toml"}
ISO_DATE = re.compile(r"(?<![\d/])(\d{4})-(\d{2})-(\d{2})(?!\d)")


class _RecordingStack:
    """Just enough of OfflineStack for put_flight: the item it writes, no AWS."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.dynamodb = self

    def resource(self, logical_id: str) -> str:
        return logical_id

    def put_item(self, TableName: str, Item: dict[str, Any]) -> None:
        self.items.append(Item)


def test_put_flight_departs_from_now_unless_told_otherwise() -> None:
    recorder = _RecordingStack()
    OfflineStack.put_flight(recorder, "F1", seats=1)  # type: ignore[arg-type]
    [item] = recorder.items
    departs = datetime.fromisoformat(item["departureDateTime"]["S"].replace("Z", "+00:00"))
    assert departs.date() == datetime.now(UTC).date() + timedelta(days=30)  # a month from today
    assert item["departureDate"]["S"] == departs.date().isoformat()


def test_departure_in_counts_days_from_today() -> None:
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert departure_in(1, at="09:30") == f"{tomorrow.isoformat()}T09:30:00Z"


def _dated_lines(root: Path) -> list[str]:
    """Every literal calendar date in this year or later in the tests' and seed data's files."""
    this_year = datetime.now(UTC).year
    found = []
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*")):
            skipped = {"__pycache__", "node_modules"}  # node_modules: third-party packages, not ours
            if path.suffix not in SUFFIXES or skipped & set(path.parts) or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                for match in ISO_DATE.finditer(line):
                    year, month, day = (int(part) for part in match.groups())
                    try:
                        date(year, month, day)
                    except ValueError:
                        continue  # not a date (an invalid one, on purpose, in a validation test)
                    if year >= this_year:
                        found.append(f"{path.relative_to(root)}:{number}: {match.group(0)}")
    return found


def test_no_test_or_seed_file_names_a_date_from_this_year_on() -> None:
    assert _dated_lines(ROOT) == [], (
        "count dates from now (offline.stack.departure_in, departureInDays in offline/flights.json), "
        "or use a past year where any valid date will do"
    )


def test_the_scan_sees_a_date_that_creeps_back(tmp_path: Path) -> None:
    soon = date(datetime.now(UTC).year + 1, 1, 15).isoformat()
    for folder in SCANNED:
        (tmp_path / folder).mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(f'put_flight("F1", departure="{soon}T08:00:00Z")\n')
    (tmp_path / "offline" / "seed.json").write_text('{"departure": "2020-01-15", "bad": "2099-13-45"}\n')
    assert _dated_lines(tmp_path) == [f"tests/test_x.py:1: {soon}"]
