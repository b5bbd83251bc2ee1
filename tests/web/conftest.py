"""Browser tests: a real ``fyp serve`` over a SQLite file holding the demo world, driven by
Debian's headless Chromium through Playwright. Under ``CI=true`` a missing Chromium fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from fyp import demo
from fyp.auth import create_key
from fyp.catalog import Catalog
from fyp.config import CatalogSettings, IngestSettings
from fyp.events import EventIngestor
from fyp.importers.runner import ImportKind, run_import
from fyp.storage.data import DataStore, open_data_store
from tests.server import ServerProcess

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PENDING_VIDEO = "video0007"
WEB_USER, WEB_PASSWORD = "pm", "s3cret-pass"


@dataclass
class DemoServer:
    url: str
    database_url: str
    admin_key: str

    def store(self) -> DataStore:
        return open_data_store(self.database_url)


def load_demo(store: DataStore) -> None:
    world = demo.build()
    catalog = Catalog(store, CatalogSettings())
    ingestor = EventIngestor(store, IngestSettings())
    for kind, rows in (
        (ImportKind.users, world.users),
        (ImportKind.videos, world.videos),
        (ImportKind.events, world.events),
    ):
        run_import(kind, rows, store, catalog, ingestor, source=f"test:{kind.value}")


@pytest.fixture(scope="package")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    var = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{var / 'fyp.db'}"
    store = open_data_store(url)
    store.migrate()
    load_demo(store)
    store.set_moderation(PENDING_VIDEO, "pending", None, None)
    _, admin = create_key(store, "admin", "web tests")
    store.close()
    server = ServerProcess(
        url,
        var,
        env={
            "FYP_WEB__ADMIN_USER": WEB_USER,
            "FYP_WEB__ADMIN_PASSWORD": WEB_PASSWORD,
            # A busy machine must not turn into skipped stages (and a feed that stops learning)
            # here; tests/pipeline/test_runner.py covers budgets.
            "FYP_FEED__STAGE_BUDGET_MS": "5000",
        },
    )
    server.start()
    yield DemoServer(server.url, url, admin)
    server.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    exe = shutil.which("chromium")
    if exe is None:
        message = "chromium is not installed (apt-get install chromium; `make test` does it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    b = playwright.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
    yield b
    b.close()


@dataclass
class Console:
    """Console errors and uncaught page errors seen while a test ran."""

    errors: list[str] = field(default_factory=list)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} at {msg.location}")

    def on_error(self, error: Any) -> None:
        self.errors.append(f"page error: {error}")


def open_page(browser: Browser, console: Console, **context: Any) -> Page:
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_error)
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def console() -> Iterator[Console]:
    seen = Console()
    yield seen
    assert seen.errors == [], "\n".join(seen.errors)


def load_ms(page: Page) -> float:
    """How long the last navigation took, from its start to the load event."""
    value = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return n.loadEventEnd - n.startTime; }"
    )
    return float(value)
