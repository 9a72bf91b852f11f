"""The query page at `/`, in a real headless Chromium: a newcomer signs in, books, follows and lists.

Chromium comes from Debian's packages (`.ci/run` installs it); Playwright's Python package drives
that system browser, so nothing is downloaded at test time.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.conftest import Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FINAL_WITHIN_MS = 60_000


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium; .ci/run does)"
)
def test_the_page_signs_in_books_twice_follows_each_booking_and_pages_through_them(
    server: Server, tmp_path: Path
) -> None:
    customer = f"page-{uuid.uuid4().hex[:8]}"
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("response", lambda r: refused.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(f"{server.url}/")

            page.fill("#sub", customer)
            page.click("#signin")
            expect(page.locator("#who")).to_have_text(f"Signed in as {customer}")

            cards, booked = [], []
            for count in (1, 2):
                page.click("#book")
                latest = page.locator("#outcome li").first
                expect(page.locator("#outcome li")).to_have_count(count)
                expect(latest.locator(".CONFIRMED")).to_have_text("CONFIRMED", timeout=FINAL_WITHIN_MS)
                booking_id, reference = latest.locator("code").all_inner_texts()
                assert re.fullmatch(r"[A-Z0-9]{6}", reference), reference
                booked.append(booking_id)
                cards.append(json.loads(page.input_value("#variables"))["input"]["paymentToken"])
                assert _shows_all_of(page, "#variables")
            assert len(set(booked)) == 2
            assert all(card.startswith("tok_visa_") for card in cards)
            assert cards[0] != cards[1]

            listed = _list_every_page(page, status="CONFIRMED", per_page=1)
            assert sorted(listed) == sorted(booked)
            page.locator("#page-size").fill("5")
            page.click("#list")
            expect(page.locator("#page-info")).to_have_text("Page 1: 2 booking(s); the last page")
            page.screenshot(path=str(tmp_path / "query-page.png"), full_page=True)

            page.fill("#query", "query($id: ID!) { getBooking(id: $id) { status bookingReference } }")
            page.fill("#variables", json.dumps({"id": booked[0]}))
            page.locator("#answer").evaluate("answer => { answer.textContent = '' }")
            page.press("#query", "Control+Enter")
            expect(page.locator("#answer")).to_contain_text('"status": "CONFIRMED"')
            assert page.locator("#variables").evaluate("box => getComputedStyle(box).resize") == "vertical"

            page.check("#admin")
            page.click("#signin")
            expect(page.locator("#who")).to_have_text(f"Signed in as {customer} (Admin)")

            icon = page.request.get(f"{server.url}/favicon.ico")
            assert (icon.status, icon.headers["content-type"]) == (200, "image/svg+xml")
        finally:
            browser.close()
    assert refused == []  # no 404 for the icon, no refused token, nothing else failed
    assert (tmp_path / "query-page.png").stat().st_size > 10_000


def _shows_all_of(page: Page, selector: str) -> bool:
    return bool(page.locator(selector).evaluate("box => box.scrollHeight <= box.clientHeight"))


def _list_every_page(page: Page, *, status: str, per_page: int) -> list[str]:
    """Booking ids of every page of the list, following "Next page" until the last."""
    page.select_option("#list-status", status)
    page.locator("#page-size").fill(str(per_page))
    page.click("#list")
    ids: list[str] = []
    for number in range(1, 10):
        expect(page.locator("#page-info")).to_contain_text(f"Page {number}:")
        rows = page.locator("#bookings tbody tr")
        assert rows.count() <= per_page
        ids += [rows.nth(i).locator("td").last.inner_text() for i in range(rows.count())]
        if page.locator("#next").is_disabled():
            return ids
        page.click("#next")
    raise AssertionError(f"more than 9 pages of {per_page}: {ids}")
