"""Nothing the dashboard serves makes the browser fetch from another machine: every request
of a walk through the seven pages goes to the loopback server (the tab icon used to come
from a Google font server)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e
WAIT_MS = 60_000
PAGES = ["data", "train", "embeddings", "fairness", "explain", "compare", "review"]


def test_a_walk_through_every_page_requests_nothing_outside_loopback(page: Page, app_url: str):
    hosts: list[str] = []
    page.on("request", lambda request: hosts.append(urlparse(request.url).hostname or request.url))
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    for name in PAGES:
        page.goto(f"{app_url}/{name}")
        expect(page.get_by_role("heading").first).to_be_visible(timeout=WAIT_MS)
        page.wait_for_timeout(1500)  # icons, fonts and figures load after the heading
    assert len(hosts) > 20, hosts  # the walk really loaded the pages' assets
    outside = sorted({host for host in hosts if host not in ("127.0.0.1", "localhost")})
    assert outside == []
