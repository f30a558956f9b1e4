"""/docs in a real headless Chromium: Swagger UI renders offline and "Try it out" works.

The gateway runs under gunicorn in front of the local model server with the tiny repo.
Chromium is Debian's (``apt-get install chromium``; ``.ci/run`` installs it), driven by
Playwright: Playwright's own browser download is not used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Page, Route, expect, sync_playwright

from serving.gateway.launcher import RunningGateway
from tests.support.model_server import ModelServerHandle
from tests.support.served_gateway import served_gateway

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]
# Without the background-networking flags Chromium calls Google's services at start-up.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000  # 2 shared cores: Swagger UI's 1.7 MB bundle parses slowly


@pytest.fixture(scope="module")
def gateway(tiny_repo: Path, tiny_model_server: ModelServerHandle) -> Iterator[RunningGateway]:
    with served_gateway(tiny_repo, workers=1, threads=4, server=tiny_model_server) as running:
        yield running


@dataclass
class Browsing:
    """A page, the URLs it requested from the gateway, from elsewhere, and its console errors."""

    page: Page
    own: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def browsing(gateway: RunningGateway, tmp_path: Path) -> Iterator[Browsing]:
    """A fresh Chromium profile's page; every request is recorded, any to another origin
    is recorded and aborted (so nothing leaves the machine even if the page tried).
    """
    origin = urlsplit(gateway.url)
    own: list[str] = []
    foreign: list[str] = []
    console_errors: list[str] = []

    def guard(route: Route) -> None:
        url = urlsplit(route.request.url)
        if (url.scheme, url.netloc) == (origin.scheme, origin.netloc):
            own.append(route.request.url)
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":  # a CSP violation or a blocked resource shows here
            console_errors.append(message.text)

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",  # fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            context.route("**/*", guard)
            page = context.new_page()
            page.on("console", on_console)
            yield Browsing(page, own, foreign, console_errors)
        finally:
            context.close()


def test_docs_lists_every_operation_offline_and_try_it_out_answers(
    gateway: RunningGateway, browsing: Browsing
) -> None:
    browser_page = browsing.page
    browser_page.goto(f"{gateway.url}/docs")

    document = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    operations = [
        (method, path) for path, methods in document["paths"].items() for method in methods
    ]
    assert ("post", "/v1/qa") in operations
    for method, path in operations:
        summary = browser_page.locator(
            f'.opblock-{method} .opblock-summary-path[data-path="{path}"]'
        )
        expect(summary).to_have_count(1)
    expect(browser_page.locator(".opblock")).to_have_count(len(operations))
    for suffix in ("png", "txt"):  # per-model links, listed from /v1/models
        link = f'#architecture-links a[href="v1/models/qa/architecture.{suffix}"]'
        expect(browser_page.locator(link)).to_have_count(1)

    qa = browser_page.locator(".opblock-post").filter(
        has=browser_page.locator('.opblock-summary-path[data-path="/v1/qa"]')
    )
    qa.locator(".opblock-summary").click()
    qa.get_by_role("button", name="Try it out").click()
    body = qa.locator(".body-param textarea")
    expect(body).not_to_be_empty()  # the example body Swagger UI fills in
    qa.get_by_role("button", name="Execute").click()
    status = qa.locator(".live-responses-table .response .response-col_status")
    expect(status).to_have_text("200")
    answer = qa.locator(".live-responses-table .response .response-col_description")
    expect(answer).to_contain_text('"candidates"')

    assert browsing.foreign == [], f"the page sent requests off the gateway: {browsing.foreign}"
    requested = {urlsplit(url).path for url in browsing.own}
    assert {"/docs", "/docs/static/swagger-ui-bundle.js", "/openapi.json", "/v1/qa"} <= requested
    assert browsing.console_errors == [], "the page logged errors (a CSP violation?)"
