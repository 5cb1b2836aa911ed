"""The hub's playground page (GET /) in a real headless Chromium (Debian's package, driven by Playwright with
that executable: Playwright never downloads a browser here). The hub, its agents and the loopback model stub
are the same real parts the endpoint scenarios use (tests/bridge/hub_driver.py).

A screenshot of the finished run lands in the test's output directory; with UPDATE_SCREENSHOTS=1 it also
replaces docs/img/playground.png, the one the README shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.bridge.hub_driver import HubDriver
from tests.endpoints.conftest import CLIENT_KEY, UPSTREAM_TOKEN
from tests.endpoints.drivers import EndpointConfig
from tests.support.openai_stub import MODEL_ID, streamed_text, text, tool_call

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "playground.png"


@pytest.fixture
def hub(openai_stub):
    openai_stub.token = UPSTREAM_TOKEN
    driver = HubDriver(EndpointConfig(upstream_url=openai_stub.base_url, upstream_token=UPSTREAM_TOKEN,
                                      client_key=CLIENT_KEY, model=MODEL_ID, deadline_seconds=20.0,
                                      tool_mode="native"))
    yield driver
    driver.close()


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run `make core` (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make core`")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def test_a_run_streams_its_tool_step_and_answer_into_the_page(hub, browser, openai_stub, tmp_path):
    expert = {"description_of_expert": "a veterinarian", "prompt": "Are cats good pets?"}
    openai_stub.enqueue(
        tool_call("prompt_expert", expert),
        text("Yes: cats are independent, clean and affectionate companions."),  # the tool's own model call
        streamed_text("A veterinarian says cats make good pets: independent, clean and affectionate.",
                      chunk_delay=0.05),
    )
    page = browser.new_page(viewport={"width": 1200, "height": 760})
    page.goto(hub.server.url + "/")
    assert page.title() == "LM Studio agent · playground"
    page.fill("#key", CLIENT_KEY)
    page.click("#load-tools")
    page.wait_for_selector("#tools input[value=prompt_expert]")
    page.check("#tools input[value=prompt_expert]")
    page.fill("#instruction", "Ask a veterinarian whether cats make good pets.")
    page.click("#run")
    tool = page.wait_for_selector("[data-testid=tool]", timeout=15_000)
    page.wait_for_selector("[data-testid=finish]", timeout=15_000)
    assert "prompt_expert" in tool.inner_text() and "Yes: cats are independent" in tool.inner_text()
    texts = page.locator("[data-testid=text]").all_inner_texts()
    assert texts[-1] == "A veterinarian says cats make good pets: independent, clean and affectionate."
    assert page.locator("[data-testid=step]").count() == 2
    assert page.inner_text("[data-testid=finish]") == "finished"
    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, README_SHOT)
    # The page itself sent the key only to its own origin, as a header.
    assert CLIENT_KEY not in page.content()


def test_a_wrong_key_is_shown_as_an_error(hub, browser, openai_stub):
    page = browser.new_page()
    page.goto(hub.server.url + "/")
    page.fill("#key", "not-the-right-key")
    page.fill("#instruction", "Hello")
    page.click("#run")
    error = page.wait_for_selector("[data-testid=error]", timeout=10_000)
    assert error.inner_text().startswith("FORBIDDEN: ")
    assert openai_stub.chat_requests == []
