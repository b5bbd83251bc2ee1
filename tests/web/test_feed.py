"""The swipe feed at ``/`` in a real browser: create a user, swipe, like, watch the feed learn."""

from __future__ import annotations

from collections import Counter
from typing import Any

from playwright.sync_api import Browser, Page

from tests.web.conftest import Console, DemoServer, load_ms, open_page

INTEREST = "cooking"
LIKES = 4  # "several": enough for a clear signal over quick-swipe noise


def cards(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(
        "() => window.fyp.state.cards.map(c => ({id: c.video.id, tags: c.video.hashtags,"
        " page: c.page, request_id: c.requestId, liked: c.liked}))"
    )
    return result


def index(page: Page) -> int:
    return int(page.evaluate("() => window.fyp.state.idx"))


def step(page: Page, key: str = "ArrowDown", dwell_ms: int = 300) -> None:
    """Move one card; the card left was on screen for ``dwell_ms`` (page clock time)."""
    page.clock.run_for(dwell_ms)
    before = index(page)
    page.keyboard.press(key)
    want = before + (1 if key == "ArrowDown" else -1)
    page.wait_for_function(f"() => window.fyp.state.idx === {want}")


def start_user(page: Page, server: DemoServer) -> str:
    page.goto(server.url + "/")
    page.select_option("select[name=region]", "GB")
    page.click(f'#interests .chip[data-tag="{INTEREST}"]')
    page.click("#create-go")
    page.wait_for_function("() => window.fyp.state.idx === 0")
    user: str = page.evaluate("() => window.fyp.state.user")
    return user


def flush(page: Page) -> None:
    page.evaluate("() => window.fyp.flush()")
    page.wait_for_function("() => window.fyp.state.queue.length === 0 && !window.fyp.state.sending")


def test_swipe_like_and_the_feed_shifts_toward_the_liked_hashtag(
    browser: Browser, demo_server: DemoServer, console: Console
) -> None:
    page = open_page(browser, console, viewport={"width": 1440, "height": 900})
    # The test moves the page's clock on: long dwell times without sleeping through them.
    page.clock.install()
    user = start_user(page, demo_server)
    assert page.locator(".vcard").first.is_visible()

    # Ten cards, one at a time, each left after 0.3 s (skips).
    for _ in range(10):
        step(page)
    first = cards(page)[:10]
    assert len({c["id"] for c in first}) == 10, "the feed repeated a video"

    # The rarest hashtag of those ten that the user did not declare: the feed has no reason
    # to favour it until the user likes it.
    counts = Counter(t for c in first for t in c["tags"] if t != INTEREST)
    target = min(counts, key=lambda t: (counts[t], t))
    before_share = sum(target in c["tags"] for c in first) / len(first)

    # Like four of its videos, watching each for 3 s: back to the ones already seen first,
    # then onwards through new cards.
    liked = 0
    for _ in range(80):
        i = index(page)
        here = cards(page)[i]
        if target in here["tags"] and not here["liked"]:
            page.click(f".vcard >> nth={i} >> [data-action=like]")
            liked += 1
            if liked == LIKES:
                break
        seen_before = any(target in c["tags"] and not c["liked"] for c in cards(page)[:i])
        step(page, "ArrowUp" if seen_before else "ArrowDown", 3000 if here["liked"] else 300)
    assert liked == LIKES, f"could not find {LIKES} #{target} videos to like"
    step(page, dwell_ms=3000)
    flush(page)
    last_page = max(c["page"] for c in cards(page))

    # Cards from pages fetched after the likes lean towards the liked hashtag.
    while len([c for c in cards(page) if c["page"] > last_page]) < 10:
        step(page)
    after = [c for c in cards(page) if c["page"] > last_page][:10]
    after_share = sum(target in c["tags"] for c in after) / len(after)
    assert after_share > before_share, (target, before_share, after_share)
    assert after_share >= 0.3, (target, after_share)

    # The events arrived in the log, with the request ids of the responses that served them.
    step(page)
    flush(page)
    store = demo_server.store()
    try:
        events = [e for _, e in store.read_events(0, 100_000) if e.user_id == user]
    finally:
        store.close()
    kinds = Counter(e.type.value for e in events)
    assert kinds["impression"] >= 20
    assert kinds["play"] >= 20
    assert kinds["like"] == LIKES
    assert kinds["skip"] >= 10  # quick swipes without engaging
    served = {c["request_id"] for c in cards(page)}
    assert all(e.request_id in served for e in events)
    likes = {e.video_id for e in events if e.type.value == "like"}
    assert all(target in c["tags"] for c in cards(page) if c["id"] in likes)
    plays = [e for e in events if e.type.value == "play"]
    # The dwell times the clock gave (it also runs on by itself, hence the ranges).
    assert all(e.watch_ms is not None and 300 <= e.watch_ms < 2000 for e in plays[:10])
    liked_plays = [e for e in plays if e.video_id in likes]
    assert liked_plays and all(
        e.watch_ms is not None and e.watch_ms >= 3000 for e in liked_plays[-1:]
    )


def test_phone_touch_swipe_wheel_and_why_panel(
    browser: Browser, demo_server: DemoServer, console: Console
) -> None:
    page = open_page(
        browser, console, viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    start_user(page, demo_server)
    # A swipe up: touchstart low on the screen, touchend high.
    page.evaluate(
        """() => {
          const stage = document.getElementById('stage');
          const t = (y) => new Touch({identifier: 1, target: stage, clientX: 200, clientY: y});
          stage.dispatchEvent(new TouchEvent('touchstart', {touches: [t(700)], bubbles: true}));
          const end = {changedTouches: [t(300)], bubbles: true};
          stage.dispatchEvent(new TouchEvent('touchend', end));
        }"""
    )
    page.wait_for_function("() => window.fyp.state.idx === 1")
    page.mouse.move(200, 400)
    page.mouse.wheel(0, 200)
    page.wait_for_function("() => window.fyp.state.idx === 2")

    page.click("#why-open")
    panel = page.locator("#why")
    panel.locator(".sig").first.wait_for()
    text = panel.inner_text()
    assert "Source:" in text
    assert panel.locator(".sig").count() >= 1
    box = panel.bounding_box()
    assert box is not None and box["width"] <= 390


def test_continue_as_an_existing_user(
    browser: Browser, demo_server: DemoServer, console: Console
) -> None:
    page = open_page(browser, console, viewport={"width": 1440, "height": 900})
    page.goto(demo_server.url + "/")
    assert load_ms(page) < 1000
    page.fill("#existing input[name=user_id]", "user0003")
    page.click("#existing button")
    page.wait_for_function("() => window.fyp.state.idx === 0")
    assert page.evaluate("() => window.fyp.state.user") == "user0003"
