"""End to end: the streaming chat page (examples/web_chat) in headless Chromium.

Needs Debian's ``chromium`` package at /usr/bin/chromium and Playwright for Python (no browser
download): ``apt-get install -y chromium`` and ``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip install
playwright`` (or ``pip install -e '.[web]'``). Without them these tests fail and say so.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from aiohttp import web

from inference.testing import Emulator

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "web_chat"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HELP = (
    "install the browser test dependencies: `apt-get update && apt-get install -y chromium` "
    "(Debian's Chromium at /usr/bin/chromium) and `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip "
    "install playwright` (or `pip install -e '.[web]'`)"
)
MILE_QUESTION = "How many feet are in a mile?"
MILE_ANSWER = (
    "There are 5,280 feet in a mile. The figure comes from the imperial and U.S. customary "
    "systems, where a mile is defined as 1,760 yards of three feet each."
)
JOKE_ANSWER = "Why did the developer go broke? Because they used up all their cache."

# Records the text length of the newest answer at every DOM change and at every animation
# frame while it streams, so the test can see the answer grow in steps.
RECORDER = """() => {
  window.__mutations = [];
  window.__frames = [];
  const newest = () => {
    const boxes = document.querySelectorAll(".msg.assistant");
    const box = boxes[boxes.length - 1];
    return box ? [box.querySelector(".text").textContent.length, box.dataset.state] : [0, ""];
  };
  new MutationObserver(() => window.__mutations.push(newest())).observe(
    document.getElementById("log"), {childList: true, subtree: true, characterData: true});
  const frame = () => { window.__frames.push(newest()); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
}"""


def load_app() -> ModuleType:
    """The example app module, loaded from its file."""
    spec = importlib.util.spec_from_file_location("web_chat_app", EXAMPLE / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _missing_browser(reason: str) -> None:
    """Fail in CI (``CI=true``: the browser is installed there), skip elsewhere with ``reason``.

    ``scripts/test.sh`` installs Debian's Chromium when it runs as root on a machine with
    ``apt-get``; on any other machine (not root, not Debian) the browser may not be installable,
    so the page test is skipped there, saying what to install, instead of failing the suite.
    """
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(reason)
    pytest.skip(reason)


def require_browser() -> Any:
    """``async_playwright``, or a skip (a failure in CI) saying how to install what is missing."""
    if not Path(CHROMIUM).exists():
        _missing_browser(f"Chromium is missing at {CHROMIUM}: {INSTALL_HELP}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing_browser(f"Playwright for Python is missing: {INSTALL_HELP}")
    return async_playwright


@pytest.fixture
async def browser(anyio_backend: str) -> AsyncIterator[Any]:
    """A headless Chromium (the system one), closed after the test."""
    async_playwright = require_browser()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def chat_app(emulator: Emulator) -> AsyncIterator[tuple[web.Application, str, ModuleType]]:
    """The example app, answering from the test's emulator: (app, page URL, module)."""
    module = load_app()
    app = module.create_app(emulator.endpoint(), None, model="emulator-1")
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield app, f"http://{host}:{port}/", module
    finally:
        await runner.cleanup()


async def eventually(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10) -> None:
    """Wait until ``condition()`` holds; fail after ``timeout`` seconds."""
    with anyio.move_on_after(timeout):
        while True:
            value = condition()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
            await anyio.sleep(0.02)
    raise AssertionError(f"the condition did not hold within {timeout} s")


async def test_page_streams_answers_and_stop_releases_the_upstream(
    emulator: Emulator, chat_app: tuple[web.Application, str, ModuleType], browser: Any
) -> None:
    """Tokens paint incrementally with usage after the answer; Stop freezes the answer,
    shows it in the UI, closes the upstream stream, and the next turn keeps the partial."""
    app, url, module = chat_app
    client = app[module.CLIENT]
    page = await browser.new_page()
    page.set_default_timeout(15_000)
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    await page.goto(url)
    assert await page.title() == "inference chat"
    assert "emulator-1" in await page.inner_text("header")

    # 1. An answer streams in: the text grows in several steps before the done marker.
    await page.evaluate(RECORDER)
    emulator.options.token_delay = 0.03
    await page.fill("#prompt", MILE_QUESTION)
    await page.press("#prompt", "Enter")
    done = page.locator('.msg.assistant[data-state="done"]')
    await done.first.wait_for()
    assert await page.inner_text(".msg.assistant .text") == MILE_ANSWER
    usage = await page.inner_text(".msg.assistant .usage")
    assert usage == "Tokens: 8 prompt · 39 completion · 47 total"
    assert await page.inner_text("#status") == "Done."
    mutations: list[list[Any]] = await page.evaluate("window.__mutations")
    frames: list[list[Any]] = await page.evaluate("window.__frames")
    lengths = [length for length, state in mutations if state == "streaming"]
    assert lengths == sorted(lengths), "the answer shrank while streaming"
    partial = {n for n in lengths if 0 < n < len(MILE_ANSWER)}
    assert len(partial) >= 3, f"the answer did not grow in steps: {mutations}"
    painted = {n for n, state in frames if state == "streaming" and 0 < n < len(MILE_ANSWER)}
    assert len(painted) >= 2, f"fewer than two partial answers were painted: {frames}"
    await eventually(lambda: client._transport.pool_stats()[0] == 0)

    # 2. Stop in the middle of a slow answer.
    emulator.options.token_delay = 0.05
    emulator.options.repeat = 50
    await page.fill("#prompt", "Tell me a joke")
    await page.press("#prompt", "Enter")
    answer = page.locator(".msg.assistant .text").nth(1)
    await eventually(lambda: _longer_than(answer, 20))
    assert emulator.active_streams == 1
    assert client._transport.pool_stats()[0] == 1
    assert await page.is_disabled("#send")
    await page.click("#stop")
    stopped = page.locator(".msg.assistant").nth(1)
    await page.wait_for_selector('.msg.assistant[data-state="stopped"]')
    assert "Stopped" in await stopped.locator(".meta").inner_text()
    assert await page.inner_text("#status") == "Stopped."
    assert await page.is_disabled("#stop")
    assert await page.is_enabled("#send")
    await eventually(lambda: emulator.active_streams == 0)
    await eventually(lambda: client._transport.pool_stats()[0] == 0)
    shown = await answer.inner_text()
    await anyio.sleep(0.5)  # ten token delays: nothing more may arrive
    assert await answer.inner_text() == shown
    full = " ".join([JOKE_ANSWER] * 50)
    assert full.startswith(shown)
    assert 20 < len(shown) < len(full)

    # 3. The conversation goes on, with the partial answer in its history.
    emulator.options.token_delay = 0.0
    emulator.options.repeat = 1
    await page.fill("#prompt", "Go on")
    await page.press("#prompt", "Enter")
    await eventually(lambda: _count(done, 2))
    messages = emulator.requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2 + ["user"]
    assert messages[3]["content"] == shown
    assert messages[4]["content"] == "Go on"

    assert all(address.startswith(url) for address in requested), requested
    assert problems == []
    await page.close()


async def _longer_than(locator: Any, size: int) -> bool:
    return len(await locator.inner_text()) > size


async def _count(locator: Any, expected: int) -> bool:
    count: int = await locator.count()
    return count == expected


async def test_screenshot_script(
    tmp_path: Path, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/web_chat/screenshot.py writes a PNG of the page after answers streamed."""
    monkeypatch.setitem(sys.modules, "app", load_app())  # its `from app import create_app`
    spec = importlib.util.spec_from_file_location("web_chat_screenshot", EXAMPLE / "screenshot.py")
    assert spec is not None and spec.loader is not None
    screenshot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshot)
    output = tmp_path / "page.png"
    await screenshot.capture(output, browser=browser)
    data = output.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (900, 620)
