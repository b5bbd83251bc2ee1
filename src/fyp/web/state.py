"""What the web pages share in one process: analytics, the session signer, templates, keys."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from fyp.api.deps import Services
from fyp.dashboard import Analytics
from fyp.training.artefacts import ModelRegistry
from fyp.types import now_ms
from fyp.web.session import COOKIE, Signer, session_secret, web_app_key

HERE = Path(__file__).parent


def _pct(v: Any, digits: int = 1) -> str:
    return "-" if v is None else f"{100 * float(v):.{digits}f}%"


def _num(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{float(v):,.{digits}f}"


def _secs(ms: Any) -> str:
    return "-" if ms is None else f"{float(ms) / 1000:,.1f} s"


class WebState:
    def __init__(self, services: Services) -> None:
        self.services = services
        cfg = services.settings.web
        self.settings = cfg
        self.analytics = Analytics(
            services.store,
            refresh_s=cfg.analytics_refresh_s,
            max_events=cfg.analytics_max_events,
        )
        self._signer: Signer | None = None
        self.templates = Jinja2Templates(directory=HERE / "templates")
        env = self.templates.env
        env.filters["pct"] = _pct
        env.filters["num"] = _num
        env.filters["secs"] = _secs
        self._app_key: str | None = None
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None
        # (monotonic time, tags) offered as interests on the feed page
        self.popular_hashtags: tuple[float, list[str]] | None = None

    @property
    def signer(self) -> Signer:
        # Made on first use: building an app must not write a secret file under var_dir.
        with self._lock:
            if self._signer is None:
                cfg = self.settings
                secret = session_secret(
                    cfg.session_secret.get_secret_value(), self.services.settings.var_dir
                )
                self._signer = Signer(secret, int(cfg.session_hours * 3_600_000))
            return self._signer

    def app_key(self) -> str:
        with self._lock:
            if self._app_key is None:
                s = self.services
                self._app_key = web_app_key(s.store, s.keys, s.settings.var_dir)
            return self._app_key

    def registry(self) -> ModelRegistry:
        models = self.services.models
        if isinstance(models, ModelRegistry):
            return models
        return ModelRegistry(self.services.settings)

    def user(self, request: Request) -> str | None:
        """The dashboard user signed in by cookie, or None."""
        return self.signer.check(request.cookies.get(COOKIE), now_ms())

    def warm(self) -> None:
        """Fold the event log into the analytics in the background (the first dashboard page
        then does not pay for it)."""
        with self._lock:
            if self._warming is not None:
                return
            self._warming = threading.Thread(
                target=self._warm, name="fyp-dashboard-warm", daemon=True
            )
            self._warming.start()

    def _warm(self) -> None:
        try:
            self.analytics.refresh(force=True)
        except Exception:  # the page's own refresh reports the problem; a warm-up must not
            return


def get_web(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web
