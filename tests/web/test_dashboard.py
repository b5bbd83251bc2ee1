"""The dashboard in a real browser: sign in, charts with data, experiments, moderation, models."""

from __future__ import annotations

from playwright.sync_api import Browser, Page

from tests.web.conftest import (
    PENDING_VIDEO,
    WEB_PASSWORD,
    WEB_USER,
    Console,
    DemoServer,
    load_ms,
    open_page,
)


def sign_in(page: Page, server: DemoServer, path: str = "/dashboard") -> None:
    page.goto(server.url + path)
    assert "/dashboard/login" in page.url
    page.fill("input[name=api_key]", server.admin_key)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + path)


def test_overview_and_trending_charts_render_with_data(
    browser: Browser, demo_server: DemoServer, console: Console
) -> None:
    page = open_page(browser, console, viewport={"width": 1440, "height": 900})
    sign_in(page, demo_server)
    page.reload()
    assert load_ms(page) < 1000
    # The demo world holds a day of behaviour: every overview chart draws a line.
    for chart in ("c-epm", "c-users", "c-watch", "c-rates"):
        path = page.locator(f"#{chart} svg path.series").first
        assert len(path.get_attribute("d") or "") > 20, chart
    events = int(page.inner_text("#kpi-events").replace(",", ""))
    assert events > 1000

    page.click("nav >> text=Trending")
    page.wait_for_url("**/dashboard/trending")
    assert page.locator("#c-tags rect.bar-rect").count() >= 5
    assert page.locator("#c-sounds rect.bar-rect").count() >= 5
    assert page.locator("table tbody tr").count() >= 5  # rising videos

    page.click("nav >> text=Creators")
    first = page.locator("table tbody tr a").first
    name = first.inner_text()
    first.click()
    page.wait_for_url(f"**/dashboard/creators/{name}")
    assert page.locator("#c-regions rect.bar-rect").count() >= 1


def test_create_an_experiment_from_the_form_and_see_its_results(
    browser: Browser, demo_server: DemoServer, console: Console
) -> None:
    page = open_page(browser, console, viewport={"width": 1440, "height": 900})
    sign_in(page, demo_server, "/dashboard/experiments")
    page.fill("input[name=name]", "share-boost")
    page.fill("textarea[name=hypothesis]", "Weighting shares more raises watch time")
    page.fill("textarea[name=arm1_overrides]", '{"blend": {"share": 8}}')
    page.click("#new-experiment button[type=submit]")
    page.wait_for_url("**/dashboard/experiments/share-boost")
    # The SRM check comes first, then one card per metric.
    assert "Sample ratio check" in page.inner_text("#srm")
    assert page.locator(".card.metric").count() >= 10
    assert page.locator('.card.metric[data-metric="watch_ms_per_user"]').count() == 1
    assert "running" in page.inner_text("h1")

    # A bad override is refused with the reason, and nothing is created.
    page.goto(demo_server.url + "/dashboard/experiments")
    page.fill("input[name=name]", "typo")
    page.fill("textarea[name=arm1_overrides]", '{"blend": {"shares": 8}}')
    page.click("#new-experiment button[type=submit]")
    assert "unknown feed setting" in page.inner_text(".alert.bad")
    assert page.input_value("input[name=name]") == "typo"  # the form keeps what was typed
    assert page.locator("a[href='/dashboard/experiments/typo']").count() == 0

    page.goto(demo_server.url + "/dashboard/experiments/share-boost")
    page.click("button:has-text('Stop')")
    page.wait_for_url("**/dashboard/experiments/share-boost")
    assert "stopped" in page.inner_text("h1")


def test_moderation_queue_and_models_page(
    browser: Browser, demo_server: DemoServer, console: Console
) -> None:
    page = open_page(browser, console, viewport={"width": 390, "height": 844})
    page.goto(demo_server.url + "/dashboard/moderation")
    page.fill("input[name=username]", WEB_USER)
    page.fill("input[name=password]", WEB_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/moderation")
    row = page.locator(f'.queue-item[data-video="{PENDING_VIDEO}"]')
    assert row.count() == 1
    row.locator("button[value=approve]").click()
    page.wait_for_url("**/dashboard/moderation")
    assert page.locator(f'.queue-item[data-video="{PENDING_VIDEO}"]').count() == 0
    store = demo_server.store()
    try:
        video = store.get_video(PENDING_VIDEO)
    finally:
        store.close()
    assert video is not None and video.moderation == "approved"

    page.click("nav >> text=Models")
    page.wait_for_url("**/dashboard/models")
    assert "No models trained yet" in page.inner_text("main")


def test_wrong_credentials_are_refused(
    browser: Browser, demo_server: DemoServer, console: Console
) -> None:
    page = open_page(browser, console, viewport={"width": 1440, "height": 900})
    page.goto(demo_server.url + "/dashboard")
    page.fill("input[name=username]", WEB_USER)
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text(".error")
    page.goto(demo_server.url + "/dashboard/trending")
    assert "/dashboard/login" in page.url
