"""The query page at `/`, in a real headless Chromium: a newcomer signs in, books, follows, lists and cancels.

The page follows each booking and cancellation live (onBookingStatusChanged over the WebSocket at
/graphql/realtime: subscribe, start_ack, one getBooking, then the pushes); it reads every 300 ms only
when the socket fails, and says so.

Chromium comes from Debian's packages (`.ci/run` installs it); Playwright's Python package drives
that system browser, so nothing is downloaded at test time.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Locator,
    Page,
    Request,
    Response,
    Route,
    WebSocket,
    WebSocketRoute,
    expect,
    sync_playwright,
)

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
FLIGHT = "SA1001-LGW-MAD"  # the page's default flight: 129.00 EUR (offline/flights.json)
CANCEL = "mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { id status } }"
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium; .ci/run does)"
)


@needs_chromium
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


# Every status badge the page draws, in order, as "<booking id> <STATUS>": a status shown for a moment
# (CANCELLING) is seen however fast the saga is.
RECORD_BADGES = """
window.painted = [];
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType !== 1) { continue; }
      for (const badge of [node, ...node.querySelectorAll("[data-booking]")]) {
        if (badge.dataset.booking) { window.painted.push(badge.dataset.booking + " " + badge.textContent); }
      }
    }
  }
}).observe(document, {childList: true, subtree: true});
"""


@needs_chromium
def test_the_page_cancels_a_confirmed_booking_once_shows_the_refund_and_gives_the_seat_back(
    server: Server, tmp_path: Path
) -> None:
    """Three bookings cancelled from the page: A from its line with a double click (one request), B from
    the list after its first answer is lost (the retry sends the same key and is answered, not refused),
    C from a row left out of date by a cancellation made elsewhere (the refusal is shown, then C as it is)."""
    customer = f"cancel-{uuid.uuid4().hex[:8]}"
    seats_before, _ = _seats(server)
    with _chromium(server) as (page, seen):
        page.add_init_script(RECORD_BADGES)
        page.goto(f"{server.url}/")
        page.fill("#sub", customer)
        page.click("#signin")
        expect(page.locator("#who")).to_have_text(f"Signed in as {customer}")

        a, b, c = (_book(page) for _ in range(3))
        seats_booked, held = _seats(server)
        assert seats_booked == seats_before - 3
        assert {a, b, c} <= held
        page.click("#list")
        expect(page.locator("#page-info")).to_have_text("Page 1: 3 booking(s); the last page")
        for booking in (a, b, c):
            expect(_row(page, booking).locator("button.cancel")).to_be_enabled()
            expect(_line(page, booking).locator("button.cancel")).to_be_enabled()
        page.screenshot(path=str(tmp_path / "query-page-confirmed.png"), full_page=True)

        # A, from its line: a double click is one request; CANCELLING, then CANCELLED with the refund,
        # on its line and on its row of the list alike.
        _line(page, a).locator("button.cancel").dblclick()
        for view in (_line(page, a), _row(page, a)):
            expect(view.locator(".CANCELLED")).to_have_text("CANCELLED", timeout=FINAL_WITHIN_MS)
            expect(view).to_contain_text("refunded 129.00 EUR")
            expect(view.locator("button")).to_have_count(0)
        assert len(seen.cancels(a)) == 1
        assert _painted(page, a)[-3:] == ["CONFIRMED", "CANCELLING", "CANCELLED"]

        # B, from the list: its first answer is lost on the way back (the server did start it); Cancel
        # again sends the same key, which the server answers as the same request.
        lost: list[int] = []

        def lose_the_first_answer(route: Route) -> None:
            if "cancelBooking" in (route.request.post_data or "") and not lost:
                lost.append(route.fetch().status)
                route.abort()
            else:
                route.continue_()

        page.route("**/graphql", lose_the_first_answer)
        _row(page, b).locator("button.cancel").click()
        expect(_row(page, b).locator(".refusal")).to_contain_text("No answer from the server")
        page.unroute("**/graphql", lose_the_first_answer)
        _row(page, b).locator("button.cancel").click()
        expect(_row(page, b)).to_contain_text("CANCELLED, refunded 129.00 EUR", timeout=FINAL_WITHIN_MS)
        assert lost == [200]
        first, retry = seen.cancels(b)
        assert first == retry, "a retry must send the same idempotencyKey"
        assert re.fullmatch(r"cancel-[0-9a-f]{32}", first), first
        expect(_row(page, b).locator(".refusal")).to_have_count(0)

        # C, cancelled elsewhere while the list still shows it CONFIRMED: the page says why it refused,
        # then shows C as it is.
        token = page.input_value("#token")
        status, answer = server.graphql(
            CANCEL, {"i": {"id": c, "idempotencyKey": f"elsewhere-{c}"}}, token=token
        )
        assert (status, answer) == (200, {"data": {"cancelBooking": {"id": c, "status": "CANCELLING"}}})
        _row(page, c).locator("button.cancel").click()
        expect(_row(page, c).locator(".refusal")).to_have_text(
            re.compile(rf"Not cancelled: BadRequest: booking {c} is already (being )?cancelled")
        )
        expect(_row(page, c)).to_contain_text("CANCELLED, refunded 129.00 EUR", timeout=FINAL_WITHIN_MS)
        page.screenshot(path=str(tmp_path / "query-page-refused.png"), full_page=True)
        assert len({*seen.cancels(a), *seen.cancels(b), *seen.cancels(c)}) == 3  # a key of its own each

        page.select_option("#list-status", "CANCELLED")
        page.click("#list")
        expect(page.locator("#page-info")).to_have_text("Page 1: 3 booking(s); the last page")
        expect(page.locator("#bookings tbody tr", has_text="CANCELLED, refunded 129.00 EUR")).to_have_count(3)
        expect(page.locator(".refusal")).to_have_count(0)  # a new list reads each booking afresh, everywhere
        page.screenshot(path=str(tmp_path / "query-page-cancelled.png"), full_page=True)
        problems = seen.problems()

    seats_after, held = _seats(server)
    assert seats_after == seats_before
    assert not held & {a, b, c}
    # nothing failed but the answer the test lost and C's refusal
    assert len(problems) == 2, problems
    assert problems[0] == f"POST {server.url}/graphql: net::ERR_FAILED"
    assert re.fullmatch(rf"GraphQL error: BadRequest: booking {c} is already (being )?cancelled", problems[1])
    for screenshot in ("query-page-confirmed.png", "query-page-refused.png", "query-page-cancelled.png"):
        assert (tmp_path / screenshot).stat().st_size > 10_000


class _Seen:
    """What the page sent and got: cancelBooking's keys by booking, failed requests, GraphQL errors."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.failed: list[str] = []
        self.answers: list[Response] = []

    def request(self, request: Request) -> None:
        if request.url.endswith("/graphql") and request.post_data:
            self.sent.append(json.loads(request.post_data))

    def response(self, response: Response) -> None:
        self.answers.append(response)

    def cancels(self, booking_id: str) -> list[str]:
        """The idempotencyKey of every cancelBooking the page sent for this booking, in order."""
        return [
            body["variables"]["input"].get("idempotencyKey")
            for body in self.sent
            if "cancelBooking" in body["query"] and body["variables"]["input"]["id"] == booking_id
        ]

    def reads(self, booking_id: str) -> list[dict[str, Any]]:
        """Every getBooking the page sent for this booking, in order."""
        return [
            body
            for body in self.sent
            if "getBooking(" in body["query"] and (body.get("variables") or {}).get("id") == booking_id
        ]

    def problems(self) -> list[str]:
        """Failed requests, then HTTP errors and GraphQL errors, each in the order they came."""
        found = list(self.failed)
        for response in self.answers:
            if response.status >= 400:
                found.append(f"HTTP {response.status} {response.url}")
            elif response.url.endswith("/graphql"):
                found += [
                    f"GraphQL error: {e.get('errorType')}: {e['message']}"
                    for e in response.json().get("errors", [])
                ]
        return found


class _Frames:
    """Every WebSocket message the page sent and received (JSON), in order, and the sockets it opened."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        self.urls.append(socket.url)
        socket.on("framesent", lambda payload: self.sent.append(json.loads(payload)))
        socket.on("framereceived", lambda payload: self.received.append(json.loads(payload)))

    def pushed(self, booking_id: str) -> list[dict[str, Any]]:
        """The status changes pushed to the page for this booking (`data` messages), in order."""
        changes = [
            message["payload"]["data"]["onBookingStatusChanged"]
            for message in self.received
            if message.get("type") == "data"
        ]
        return [change for change in changes if change["id"] == booking_id]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [message for message in self.sent + self.received if message.get("type") == kind]


def _is_get_booking(response: Response) -> bool:
    return response.url.endswith("/graphql") and "getBooking(" in (response.request.post_data or "")


@contextmanager
def _payment_outage(server: Server) -> Iterator[None]:
    """The Payment API down: a saga waits in Collect Payment's (or Refund Payment's) retries, about 2 s
    with --fast-retries, so the booking cannot change meanwhile."""
    server.outage(True)
    try:
        yield
    finally:
        server.outage(False)


def _read_during_outage(server: Server, page: Page, action: Callable[[], None]) -> dict[str, Any]:
    """Do `action` while the Payment API is down, and wait for the page's first getBooking after it: the
    booking as that read found it, which the saga, held in its retries, cannot have ended yet."""
    with _payment_outage(server), page.expect_response(_is_get_booking, timeout=FINAL_WITHIN_MS) as read:
        action()
    booking: dict[str, Any] = read.value.json()["data"]["getBooking"]
    return booking


@needs_chromium
def test_the_page_learns_confirmed_and_then_cancelled_from_the_websocket_without_polling(
    server: Server, tmp_path: Path
) -> None:
    """The saga is held (Payment API down) until the page has subscribed and made its one read, which can
    only say UNCONFIRMED; then the final status can reach the page only as a push. It must show CONFIRMED
    with the pushed reference and no further getBooking; after Cancel, CANCELLED from the push, then one
    read for the refund (a push carries none)."""
    customer = f"live-{uuid.uuid4().hex[:8]}"
    with _chromium(server) as (page, seen):
        frames = _Frames(page)
        page.add_init_script(RECORD_BADGES)
        page.goto(f"{server.url}/")
        page.fill("#sub", customer)
        page.click("#signin")
        expect(page.locator("#who")).to_have_text(f"Signed in as {customer}")

        first_read = _read_during_outage(server, page, lambda: page.click("#book"))
        assert first_read["status"] == "UNCONFIRMED"
        line = page.locator("#outcome li").first
        expect(line.locator(".CONFIRMED")).to_have_text("CONFIRMED", timeout=FINAL_WITHIN_MS)
        booking_id, reference = line.locator("code").all_inner_texts()
        assert first_read["id"] == booking_id
        [pushed] = frames.pushed(booking_id)
        assert (pushed["status"], pushed["bookingReference"]) == ("CONFIRMED", reference)
        assert len(seen.reads(booking_id)) == 1, "the one read of the pattern, then no polling"
        [start] = frames.of_type("start")
        assert json.loads(start["payload"]["data"])["variables"] == {"id": booking_id}
        assert start["payload"]["extensions"]["authorization"]["Authorization"] == page.input_value("#token")
        assert [m["id"] for m in frames.of_type("start_ack")] == [start["id"]]
        assert frames.urls == [frames.urls[0]]  # one socket for the page
        realtime = r"ws://127\.0\.0\.1:\d+/graphql/realtime\?header=[^&]+&payload=e30="
        assert re.fullmatch(realtime, frames.urls[0])
        expect(page.locator("#live")).to_contain_text("Live status: connected")
        page.screenshot(path=str(tmp_path / "query-page-live-confirmed.png"), full_page=True)

        cancel_read = _read_during_outage(server, page, lambda: line.locator("button.cancel").click())
        assert cancel_read["status"] in ("CONFIRMED", "CANCELLING")  # the saga's first step may not have run
        expect(line.locator(".CANCELLED")).to_have_text("CANCELLED", timeout=FINAL_WITHIN_MS)
        expect(line).to_contain_text(f"CANCELLED, reference {reference}, refunded 129.00 EUR")
        changes = frames.pushed(booking_id)
        assert [c["status"] for c in changes] in (
            ["CONFIRMED", "CANCELLED"],  # CANCELLING was pushed before the page subscribed
            ["CONFIRMED", "CANCELLING", "CANCELLED"],
        )
        assert changes[-1]["reason"] == "CustomerCancelled"
        assert len(seen.reads(booking_id)) == 3, "booking 1; cancellation: the pattern's read, the refund's"
        assert [m["id"] for m in frames.of_type("stop")] == [m["id"] for m in frames.of_type("start")]
        assert _painted(page, booking_id)[-3:] == ["CONFIRMED", "CANCELLING", "CANCELLED"]
        expect(page.locator("#live.refusal")).to_have_count(0)
        page.screenshot(path=str(tmp_path / "query-page-live-cancelled.png"), full_page=True)
        problems = seen.problems()
    assert problems == []
    for screenshot in ("query-page-live-confirmed.png", "query-page-live-cancelled.png"):
        assert (tmp_path / screenshot).stat().st_size > 10_000


@needs_chromium
def test_when_the_websocket_fails_the_page_says_so_and_follows_the_booking_by_reading_it(
    server: Server,
) -> None:
    customer = f"nosocket-{uuid.uuid4().hex[:8]}"
    with _chromium(server) as (page, seen):
        refused: list[str] = []

        def refuse(socket: WebSocketRoute) -> None:
            refused.append(socket.url)
            socket.close(code=1011, reason="refused by the test")

        page.route_web_socket(re.compile(r".*/graphql/realtime.*"), refuse)
        page.goto(f"{server.url}/")
        page.fill("#sub", customer)
        page.click("#signin")
        expect(page.locator("#who")).to_have_text(f"Signed in as {customer}")
        booking_id = _book(page)
        expect(page.locator("#live")).to_have_text(
            "Live status unavailable (the WebSocket closed): following bookings by reading them every "
            "300 ms instead."
        )
        assert refused
        assert len(seen.reads(booking_id)) >= 1


@contextmanager
def _chromium(server: Server) -> Iterator[tuple[Page, _Seen]]:
    seen = _Seen()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", seen.request)
            page.on("requestfailed", lambda r: seen.failed.append(f"{r.method} {r.url}: {r.failure}"))
            page.on("response", seen.response)
            yield page, seen
        finally:
            browser.close()


def _book(page: Page) -> str:
    """Book a seat from the page and wait for its line to say CONFIRMED; the booking's id."""
    count = page.locator("#outcome li").count()
    page.click("#book")
    expect(page.locator("#outcome li")).to_have_count(count + 1)
    latest = page.locator("#outcome li").first
    expect(latest.locator(".CONFIRMED")).to_have_text("CONFIRMED", timeout=FINAL_WITHIN_MS)
    return latest.locator("code").first.inner_text()


def _line(page: Page, booking_id: str) -> Locator:
    return page.locator("#outcome li", has=page.locator(f'[data-booking="{booking_id}"]'))


def _row(page: Page, booking_id: str) -> Locator:
    return page.locator("#bookings tbody tr", has=page.locator(f'[data-booking="{booking_id}"]'))


def _painted(page: Page, booking_id: str) -> list[str]:
    """The statuses the page drew for this booking, in order, each change once."""
    drawn: list[str] = []
    for entry in page.evaluate("window.painted"):
        shown_for, status = entry.split(" ", 1)
        if shown_for == booking_id and (not drawn or drawn[-1] != status):
            drawn.append(status)
    return drawn


def _seats(server: Server) -> tuple[int, set[str]]:
    """The page's flight's free seats and the bookings holding one, read through the AWS endpoint."""
    item = server.aws("dynamodb").get_item(
        TableName="booking-offline-FlightTable", Key={"id": {"S": FLIGHT}}, ConsistentRead=True
    )["Item"]
    return int(item["seatCapacity"]["N"]), set(item.get("heldBy", {}).get("SS", []))
