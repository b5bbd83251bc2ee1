"""Screenshots of every web page at phone (390x844) and desktop (1440x900) size.

Builds a throw-away demo server (demo world, two trained model versions, a running experiment
with a simulated audience, a pending and a reported video), then drives Debian's headless
Chromium through Playwright and writes ``docs/screenshots/<page>-<size>.png``. Exits non-zero
when a page logs a console error. Run it with ``make screenshots``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fyp(env: dict[str, str], *args: str, timeout: float = 300) -> None:
    subprocess.run(
        [sys.executable, "-m", "fyp.cli", *args],
        env=env,
        check=True,
        timeout=timeout,
        stdout=subprocess.DEVNULL,
    )


def keys(var: Path) -> dict[str, str]:
    out = {}
    for line in (var / "demo-keys.env").read_text().splitlines():
        k, _, v = line.partition("=")
        out[k.strip()] = v.strip()
    return out


def prepare(base: str, admin: str, app: str) -> None:
    """A running experiment, a video held for review and one reported by several users."""
    a = {"Authorization": f"Bearer {admin}"}
    spec = {
        "name": "share-boost",
        "hypothesis": "Weighting shares more raises watch time per user",
        "arms": [
            {"name": "control"},
            {"name": "shares-x4", "overrides": {"blend": {"share": 16}}},
        ],
    }
    httpx.post(f"{base}/v1/experiments", json=spec, headers=a).raise_for_status()
    httpx.post(f"{base}/v1/experiments/share-boost/start", headers=a).raise_for_status()
    httpx.post(
        f"{base}/v1/videos/video0007/moderation", json={"state": "pending"}, headers=a
    ).raise_for_status()
    now = datetime.now(UTC).isoformat()
    reports = [
        {
            "event_id": uuid.uuid4().hex,
            "user_id": f"user{u:04d}",
            "type": "report",
            "ts": now,
            "video_id": "video0042",
        }
        for u in range(3)
    ]
    httpx.post(
        f"{base}/v1/events", json={"events": reports}, headers={"Authorization": f"Bearer {app}"}
    ).raise_for_status()


def shoot_feed(page: Page, base: str, out: Path, size: str) -> None:
    page.goto(base + "/")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=out / f"feed-start-{size}.png")
    for tag in ("cooking", "pets", "travel"):
        chip = page.locator(f'#interests .chip[data-tag="{tag}"]')
        if chip.count():
            chip.click()
    page.click("#create-go")
    page.wait_for_function("() => window.fyp && window.fyp.state.idx === 0")
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(600)
    page.screenshot(path=out / f"feed-card-{size}.png")
    page.click("#why-open")
    page.wait_for_timeout(400)
    page.screenshot(path=out / f"feed-why-{size}.png")


def shoot_dashboard(
    page: Page, base: str, admin: str, out: Path, size: str, view: tuple[int, int]
) -> None:
    page.goto(base + "/dashboard")
    page.screenshot(path=out / f"dashboard-login-{size}.png")
    page.fill("input[name=api_key]", admin)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/dashboard")
    pages = [
        ("overview", "/dashboard"),
        ("trending", "/dashboard/trending"),
        ("creators", "/dashboard/creators"),
        ("creator", "/dashboard/creators/creator001"),
        ("experiments", "/dashboard/experiments"),
        ("experiment", "/dashboard/experiments/share-boost"),
        ("moderation", "/dashboard/moderation"),
        ("models", "/dashboard/models"),
    ]
    for name, path in pages:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        # The whole page, up to three screens tall (long tables would make unreadable images).
        height = min(int(page.evaluate("document.documentElement.scrollHeight")), 3 * view[1])
        page.screenshot(
            path=out / f"dashboard-{name}-{size}.png",
            full_page=True,
            clip={"x": 0, "y": 0, "width": view[0], "height": height},
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--sim-users", type=int, default=300, help="0: no simulated audience")
    parser.add_argument("--url", help="Shoot this running server instead of a fresh demo one.")
    parser.add_argument("--admin-key", help="Its admin key (with --url).")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fyp-shots-"))
    env = {
        **os.environ,
        "FYP_VAR_DIR": str(tmp),
        "FYP_DATABASE_URL": f"sqlite:///{tmp / 'fyp.db'}",
    }
    server: subprocess.Popen[bytes] | None = None
    errors: list[str] = []
    try:
        if args.url:
            base, admin = args.url.rstrip("/"), args.admin_key or ""
        else:
            base, admin, server = start_demo(tmp, env, args.sim_users)
        shoot(chromium, base, admin, args.out, errors)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    for e in errors:
        print("console error:", e, file=sys.stderr)
    print(f"screenshots in {args.out}/ ({len(list(args.out.glob('*.png')))} files)")
    return 1 if errors else 0


def start_demo(
    tmp: Path, env: dict[str, str], sim_users: int
) -> tuple[str, str, subprocess.Popen[bytes]]:
    """A fresh server on the demo world, prepared so that every page has something to show."""
    fyp(env, "demo")
    fyp(env, "train")
    fyp(env, "train")  # two versions: the models page can show a roll-back
    k = keys(tmp)
    admin, app = k["FYP_DEMO_ADMIN_KEY"], k["FYP_DEMO_APP_KEY"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "fyp.cli", "serve", "--port", str(port), "--no-access-log"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError((tmp / "server.log").read_text()[-3000:])
        time.sleep(0.1)
    prepare(base, admin, app)
    if sim_users:
        fyp(
            env, "simulate", "--users", str(sim_users), "--days", "1", "--videos", "300",
            "--setup", "--url", base, timeout=600,
        )  # fmt: skip
    return base, admin, server


def shoot(chromium: str, base: str, admin: str, out: Path, errors: list[str]) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        for size, (w, h) in SIZES.items():
            ctx: Any = browser.new_context(
                viewport={"width": w, "height": h},
                has_touch=size == "phone",
                is_mobile=size == "phone",
                device_scale_factor=1,
            )
            page = ctx.new_page()
            page.on(
                "console",
                lambda m, s=size: errors.append(f"{s}: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e, s=size: errors.append(f"{s}: {e}"))
            shoot_feed(page, base, out, size)
            shoot_dashboard(page, base, admin, out, size, (w, h))
            ctx.close()
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
