"""Take the documentation screenshot of the chat page (``docs/web_chat.png``).

Starts the app with its built-in emulator, asks two questions in headless Chromium (Debian's
``chromium`` package, driven by Playwright; no browser download) and saves the page once the
answers have streamed::

    python examples/web_chat/screenshot.py [--output docs/web_chat.png]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiohttp import web
from app import create_app
from playwright.async_api import Browser, async_playwright

from inference.testing import EmulatorOptions

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "QUESTIONS", "capture", "main"]

#: The system Chromium (``apt-get install chromium``).
CHROMIUM = "/usr/bin/chromium"
#: Flags for a quiet, sandbox-free headless Chromium (containers, CI).
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
#: What the screenshot shows being asked.
QUESTIONS = ("How many languages are in the world?", "Tell me a joke")

_DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "web_chat.png"


async def capture(
    output: Path, *, browser: Browser | None = None, width: int = 900, height: int = 620
) -> None:
    """Serve the app on a free port, ask :data:`QUESTIONS`, save a screenshot to ``output``.

    Uses ``browser`` when given, else launches the system Chromium for the occasion.
    """
    if browser is None:
        async with async_playwright() as playwright:
            launched = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                await capture(output, browser=launched, width=width, height=height)
            finally:
                await launched.close()
        return
    app = create_app(model="emulator-1", emulator_options=EmulatorOptions(token_delay=0.005))
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        page = await browser.new_page(viewport={"width": width, "height": height})
        try:
            page.set_default_timeout(20_000)
            await page.goto(f"http://{host}:{port}/")
            for count, question in enumerate(QUESTIONS, start=1):
                await page.fill("#prompt", question)
                await page.press("#prompt", "Enter")
                await page.wait_for_function(
                    "n => document.querySelectorAll("
                    "'.msg.assistant[data-state=\"done\"]').length >= n",
                    arg=count,
                )
            await page.fill("#prompt", "What is the capital of France?")
            output.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(output))
        finally:
            await page.close()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """``python examples/web_chat/screenshot.py [--output PATH]``."""
    parser = argparse.ArgumentParser(description="Screenshot the chat page.")
    parser.add_argument(
        "--output", type=Path, default=_DEFAULT_OUTPUT, help="the PNG file to write"
    )
    args = parser.parse_args(argv)
    asyncio.run(capture(args.output))
    print(args.output)


if __name__ == "__main__":
    main()
