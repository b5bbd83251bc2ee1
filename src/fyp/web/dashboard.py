"""The product dashboard at ``/dashboard``: server-rendered pages behind a cookie session.

Actions (experiments, moderation, models) are HTML forms posted back here and carried out by the
same services the admin API uses, so the browser never holds an admin key. The session cookie is
``SameSite=Strict``, which keeps other sites from posting those forms.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qs, quote

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from fyp.dashboard import DECISIONS, decide, moderation_queue
from fyp.experiments.metrics import METRICS
from fyp.experiments.service import ExperimentError, ExperimentService, describe
from fyp.experiments.spec import ExperimentSpec
from fyp.models import describe as describe_error
from fyp.types import now_ms
from fyp.web.session import COOKIE
from fyp.web.state import WebState, get_web

router = APIRouter(prefix="/dashboard", include_in_schema=False)

NAV = [
    ("overview", "/dashboard", "Overview"),
    ("trending", "/dashboard/trending", "Trending"),
    ("creators", "/dashboard/creators", "Creators"),
    ("experiments", "/dashboard/experiments", "Experiments"),
    ("moderation", "/dashboard/moderation", "Moderation"),
    ("models", "/dashboard/models", "Models"),
]
METRIC_NAMES = [m.name for m in METRICS]


def _login_redirect(request: Request) -> RedirectResponse:
    get_web(request).warm()
    target = quote(request.url.path)
    return RedirectResponse(f"/dashboard/login?next={target}", status_code=303)


def _page(
    web: WebState,
    request: Request,
    template: str,
    active: str,
    status_code: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    return web.templates.TemplateResponse(
        request,
        template,
        {"nav": NAV, "active": active, "who": web.user(request), **ctx},
        status_code=status_code,
    )


async def _form(request: Request) -> dict[str, list[str]]:
    body = (await request.body()).decode("utf-8", "replace")
    return parse_qs(body, keep_blank_values=True)


def _one(form: dict[str, list[str]], key: str, default: str = "") -> str:
    return form.get(key, [default])[0].strip()


def _json_script(value: Any) -> str:
    # Safe inside <script type="application/json">: no "</" can close the element early.
    return orjson.dumps(value).decode().replace("</", "<\\/")


# -- login --
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/dashboard") -> HTMLResponse:
    web = get_web(request)
    web.warm()
    return web.templates.TemplateResponse(
        request,
        "login.html",
        {"next": next, "error": None, "password_login": bool(web.settings.admin_user)},
    )


def _check_login(web: WebState, form: dict[str, list[str]]) -> str | None:
    key = _one(form, "api_key")
    if key:
        found = web.services.keys.lookup(key)
        if found is not None and found.scope == "admin":
            return f"key:{found.id}"
        return None
    cfg = web.settings
    user, password = _one(form, "username"), _one(form, "password")
    want = cfg.admin_password.get_secret_value()
    if cfg.admin_user and want and user:
        same_user = hmac.compare_digest(user.encode(), cfg.admin_user.encode())
        same_pw = hmac.compare_digest(password.encode(), want.encode())
        if same_user and same_pw:
            return f"user:{user}"
    return None


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    web = get_web(request)
    form = await _form(request)
    who = await run_in_threadpool(_check_login, web, form)
    target = _one(form, "next", "/dashboard")
    if not target.startswith("/dashboard"):
        target = "/dashboard"  # never an open redirect
    if who is None:
        return web.templates.TemplateResponse(
            request,
            "login.html",
            {
                "next": target,
                "error": "That key or password is not valid for the dashboard.",
                "password_login": bool(web.settings.admin_user),
            },
        )
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        COOKIE,
        web.signer.sign(who, now_ms()),
        max_age=web.signer.ttl_ms // 1000,
        httponly=True,
        samesite="strict",
        secure=web.settings.secure_cookies,
        path="/",
    )
    return resp


@router.post("/logout")
def logout() -> RedirectResponse:
    resp = RedirectResponse("/dashboard/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- overview, trending, creators --
@router.get("", response_class=HTMLResponse, response_model=None)
def overview(request: Request, hours: float = 24.0) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    hours = min(max(hours, 1.0), 72.0)
    step = 5 if hours <= 6 else 15 if hours <= 24 else 60
    data = web.analytics.overview(hours, step)
    return _page(web, request, "overview.html", "overview", data=data, data_json=_json_script(data))


@router.get("/trending", response_class=HTMLResponse, response_model=None)
def trending(request: Request, hours: int = 6) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    data = web.analytics.trending(min(max(hours, 1), 72), 20)
    return _page(web, request, "trending.html", "trending", data=data, data_json=_json_script(data))


@router.get("/creators", response_class=HTMLResponse, response_model=None)
def creators(request: Request) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    data = web.analytics.creators(100)
    return _page(web, request, "creators.html", "creators", data=data)


@router.get("/creators/{creator_id}", response_class=HTMLResponse, response_model=None)
def creator(request: Request, creator_id: str) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    data = web.analytics.creator(creator_id)
    if data is None:
        return _page(
            web, request, "message.html", "creators", status_code=404,
            title="No such creator", message=f"Nothing is known about {creator_id!r} yet.",
        )  # fmt: skip
    return _page(web, request, "creator.html", "creators", data=data, data_json=_json_script(data))


# -- experiments --
def _experiments(web: WebState) -> ExperimentService:
    s = web.services
    return ExperimentService(s.store, s.settings, s.assigner)


@router.get("/experiments", response_class=HTMLResponse, response_model=None)
def experiments(request: Request) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    return _experiments_page(web, request, {}, None)


def _experiments_page(
    web: WebState, request: Request, form: dict[str, str], error: str | None
) -> HTMLResponse:
    # A refused form is answered 200 with the reason on the page: a 4xx document would also
    # land in the browser console as a failed load, which reads as a page bug.
    rows = [describe(e) for e in reversed(_experiments(web).list())]
    return _page(
        web,
        request,
        "experiments.html",
        "experiments",
        experiments=rows,
        metrics=METRIC_NAMES,
        form=form,
        error=error,
    )


def _spec_from_form(form: dict[str, list[str]]) -> ExperimentSpec:
    arms = []
    for i in range(3):
        name = _one(form, f"arm{i}_name")
        if not name:
            continue
        raw = _one(form, f"arm{i}_overrides") or "{}"
        try:
            overrides = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"arm {name!r}: overrides are not valid JSON ({e})") from None
        if not isinstance(overrides, dict):
            raise ValueError(f"arm {name!r}: overrides must be a JSON object")
        weight = float(_one(form, f"arm{i}_weight") or 1)
        arms.append({"name": name, "weight": weight, "overrides": overrides})
    spec: dict[str, Any] = {
        "name": _one(form, "name"),
        "hypothesis": _one(form, "hypothesis"),
        "primary_metric": _one(form, "primary_metric") or "watch_ms_per_user",
        "guardrails": form.get("guardrails", []),
        "traffic": float(_one(form, "traffic") or 100) / 100,
        "layer": _one(form, "layer") or "default",
        "arms": arms,
    }
    return ExperimentSpec.model_validate(spec)


@router.post("/experiments", response_model=None)
async def create_experiment(request: Request) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    form = await _form(request)
    flat = {k: v[0] for k, v in form.items()}
    flat["guardrails"] = ",".join(form.get("guardrails", []))
    try:
        spec = _spec_from_form(form)
        record = await run_in_threadpool(_experiments(web).create, spec)
        if _one(form, "start"):
            await run_in_threadpool(_experiments(web).start, record.name)
    except ValidationError as e:
        return _experiments_page(web, request, flat, describe_error(e))
    except ValueError as e:
        return _experiments_page(web, request, flat, str(e))
    except ExperimentError as e:
        return _experiments_page(web, request, flat, e.message)
    return RedirectResponse(f"/dashboard/experiments/{quote(spec.name)}", status_code=303)


@router.get("/experiments/{name}", response_class=HTMLResponse, response_model=None)
def experiment(request: Request, name: str) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    service = _experiments(web)
    try:
        record = service.get(name)
    except ExperimentError as e:
        return _page(
            web, request, "message.html", "experiments", status_code=e.status,
            title="No such experiment", message=e.message,
        )  # fmt: skip
    results = service.results(name) if record.state != "draft" else None
    return _page(
        web,
        request,
        "experiment.html",
        "experiments",
        exp=describe(record),
        results=results,
        results_json=_json_script(results),
    )


@router.post("/experiments/{name}/{action}", response_model=None)
def experiment_action(request: Request, name: str, action: str) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    service = _experiments(web)
    try:
        if action == "start":
            service.start(name)
        elif action == "stop":
            service.stop(name)
        else:
            raise ExperimentError(404, "not_found", f"no action {action!r}")
    except ExperimentError as e:
        return _page(
            web, request, "message.html", "experiments", status_code=e.status,
            title=f"Could not {action} {name}", message=e.message,
        )  # fmt: skip
    return RedirectResponse(f"/dashboard/experiments/{quote(name)}", status_code=303)


# -- moderation --
@router.get("/moderation", response_class=HTMLResponse, response_model=None)
def moderation(request: Request) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    queue = moderation_queue(web.services.store, web.analytics)
    return _page(
        web, request, "moderation.html", "moderation", queue=queue, decisions=list(DECISIONS)
    )


@router.post("/moderation/{video_id}", response_model=None)
async def moderate(request: Request, video_id: str) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    form = await _form(request)
    regions = [r.strip().upper() for r in _one(form, "regions").split(",") if r.strip()]
    try:
        video = await run_in_threadpool(
            decide,
            web.services.store,
            web.analytics,
            video_id,
            _one(form, "decision"),
            _one(form, "note"),
            regions or None,
        )
    except ValueError as e:
        return _page(
            web, request, "message.html", "moderation", status_code=422,
            title="Not a decision", message=str(e),
        )  # fmt: skip
    if video is None:
        return _page(
            web, request, "message.html", "moderation", status_code=404,
            title="No such video", message=f"no video {video_id!r}",
        )  # fmt: skip
    return RedirectResponse("/dashboard/moderation", status_code=303)


# -- models --
@router.get("/models", response_class=HTMLResponse, response_model=None)
def models(request: Request) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    registry = web.registry()
    versions: list[dict[str, Any]] = []
    for info in reversed(registry.list()):
        manifest = registry.manifest(info.version)
        versions.append({"info": info, "manifest": manifest})
    chart = [
        {
            "version": v["info"].version,
            "metrics": {
                name: m
                for name, m in v["manifest"].get("metrics", {}).items()
                if isinstance(m, dict) and "recall" in m
            },
        }
        for v in reversed(versions)
    ]
    return _page(
        web,
        request,
        "models.html",
        "models",
        versions=versions,
        chart_json=_json_script(chart),
    )


@router.post("/models/{version}/activate", response_model=None)
def activate_model(request: Request, version: str) -> Response:
    web = get_web(request)
    if web.user(request) is None:
        return _login_redirect(request)
    try:
        web.registry().activate(version)
    except KeyError as e:
        return _page(
            web, request, "message.html", "models", status_code=404,
            title="No such model version", message=str(e),
        )  # fmt: skip
    return RedirectResponse("/dashboard/models", status_code=303)
