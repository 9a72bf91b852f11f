"""The suite's own scheduling (tests/conftest.py): what it names must exist, or it schedules nothing."""

from __future__ import annotations

from tests.conftest import LONGEST_FIRST, ROOT


def test_every_module_started_first_exists_and_is_named_once() -> None:
    assert [path for path in LONGEST_FIRST if not (ROOT / path).is_file()] == []
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
