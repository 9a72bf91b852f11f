"""A page served from another origin (as a Vite or webpack dev server serves a front end on its own
port) books through `/graphql` and hears its booking's CONFIRMED on the real-time endpoint, in
Chromium: the browser's CORS checks (a preflight for `Authorization` and JSON) are the judge.

The page is a blank document on a second loopback port; its script is what any front end's GraphQL
and WebSocket code does with `fetch` and `WebSocket`, the headers offered as the `header-` subprotocol
as Amplify offers them. The payment is held until the server has registered the subscription.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from offline.server import OfflineServer
from offline.stack import OfflineStack
from tests.conftest import listening, unique_token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

BOOK_AND_FOLLOW = """async ([url, token, input, header]) => {
  const answer = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: token },
    body: JSON.stringify({
      query: 'mutation($i: CreateBookingInput!) { processBooking(input: $i) { id status } }',
      variables: { i: input },
    }),
  });
  const id = (await answer.json()).data.processBooking.id;
  window.pushes = [];
  const realtime = `${url.replace('http', 'ws')}/graphql/realtime`;
  const ws = new WebSocket(realtime, ['graphql-ws', `header-${header}`]);
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'connection_ack') {
      const data = JSON.stringify({
        query: 'subscription($id: ID!) { onBookingStatusChanged(id: $id) { status bookingReference } }',
        variables: { id },
      });
      const authorization = { Authorization: token, host: new URL(url).host };
      const payload = { data, extensions: { authorization } };
      ws.send(JSON.stringify({ id: 'mine', type: 'start', payload }));
    } else if (message.type === 'data') {
      window.pushes.push(message.payload.data.onBookingStatusChanged);
    }
  };
  ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init' }));
  return id;
}"""


class _Blank(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another origin</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def other_origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium; .ci/run does)"
)
def test_a_page_of_another_origin_books_and_hears_confirmed_in_chromium(
    stack: OfflineStack, served: OfflineServer, other_origin: str
) -> None:
    flight = f"CORS-{uuid.uuid4().hex[:6]}"
    stack.put_flight(flight, seats=5)
    token = stack.tokens.mint(f"cors-{uuid.uuid4().hex[:6]}")
    header = base64.urlsafe_b64encode(json.dumps({"Authorization": token, "host": "x"}).encode()).decode()
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(other_origin)
            stack.gateway.set_hold(True)
            try:
                request = {"paymentToken": unique_token(), "bookingOutboundFlightId": flight}
                booking_id = page.evaluate(BOOK_AND_FOLLOW, [served.url, token, request, header.rstrip("=")])
                listening(stack)
            finally:
                stack.gateway.set_hold(False)
            page.wait_for_function("window.pushes.some(p => p.status === 'CONFIRMED')", timeout=30_000)
            pushes = page.evaluate("window.pushes")
        finally:
            browser.close()
    reference = stack.booking(booking_id)["bookingReference"]  # type: ignore[index]
    assert pushes[-1] == {"status": "CONFIRMED", "bookingReference": reference}
    assert problems == []
