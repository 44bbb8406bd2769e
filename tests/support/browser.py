"""Headless Chromium for the dashboard's browser tests: Debian's `chromium` driven by Playwright
(never a browser Playwright downloads), axe-core run in each page checked (no serious or
critical violation allowed), screenshots kept under test-artifacts/screenshots/ for CI, and
any Content-Security-Policy violation of a page counted as a failure."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = os.environ.get("REMIXQ_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = Path(__file__).with_name("axe") / "axe.min.js"
PHONE = {"width": 390, "height": 844}


@contextmanager
def chromium() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        raise AssertionError(
            f"{CHROMIUM} is missing: scripts/ensure-services installs Debian's chromium"
            " (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A browser context whose pages report CSP violations and page errors here."""

    def __init__(self, context: BrowserContext):
        self.context = context
        self.problems: list[str] = []
        context.add_init_script(path=str(AXE))  # by the DevTools protocol: no CSP applies
        context.on("page", self._watch)

    def _watch(self, page: Page) -> None:
        def console(message: Any) -> None:
            if "Content Security Policy" in message.text or message.type == "error":
                if "Failed to load resource" in message.text and "status of 4" in message.text:
                    return  # an expected 4xx answer (a refused form) logs one of these
                self.problems.append(f"{page.url}: console {message.type}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))

    def new_page(self) -> Page:
        return self.context.new_page()


@contextmanager
def watched_context(browser: Browser, base_url: str, **options: Any) -> Iterator[Watched]:
    context = browser.new_context(base_url=base_url, accept_downloads=True, **options)
    try:
        yield Watched(context)
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot, kept as a CI artifact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


SERIOUS = ("serious", "critical")
ALL_IMPACTS = ("minor", "moderate", *SERIOUS)


def axe_violations(page: Page, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    """axe-core's violations of these impacts (serious and critical ones unless told) on the
    page as it is now."""
    result = page.evaluate(
        """async () => {
            const found = await axe.run(document, {resultTypes: ["violations"]});
            return found.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary)
            }));
        }"""
    )
    return [v for v in result if v["impact"] in impacts]


def check_page(page: Page, name: str) -> None:
    """Screenshot the page, then assert axe finds nothing serious in it."""
    screenshot(page, name)
    violations = axe_violations(page)
    assert not violations, f"{name}: accessibility violations: {violations}"


def wider_than_the_screen(page: Page) -> list[str]:
    """Why the page scrolls sideways in the viewport's width (a phone's, say): nothing when the
    document is no wider than the window. A wide table may scroll inside its own `.scroll` box,
    but whatever makes the page as a whole wider (even an element inside that box) is a failure;
    the elements reaching past the window's edge are listed to say which."""
    found: list[str] = page.evaluate(
        """() => {
            const width = document.documentElement.scrollWidth;
            if (width <= window.innerWidth + 1) return [];
            const past = [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .filter(e => !e.closest(".scroll") || e.closest(".scroll") === e
                             || getComputedStyle(e).position === "absolute")
                .slice(0, 10)
                .map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`);
            return [`the page is ${width} px wide in a ${window.innerWidth} px window`, ...past];
        }"""
    )
    return found
