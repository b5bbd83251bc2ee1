"""One JSON error shape for every failure: ``{"error": {"code", "message", "details"?}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from fyp.api.responses import JSON
from fyp.models import BatchRefused
from fyp.storage.data import StoreUnavailable

log = logging.getLogger("fyp.api")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSON:
    return JSON(error_body(code, message, details), status_code=status, headers=headers)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError) -> JSON:
        return error_response(e.status, e.code, e.message, headers=e.headers)

    @app.exception_handler(BatchRefused)
    async def _batch(_: Request, e: BatchRefused) -> JSON:
        return error_response(e.status, e.code, str(e))

    @app.exception_handler(StoreUnavailable)
    async def _store(_: Request, e: StoreUnavailable) -> JSON:
        log.warning("store unavailable: %s", e)
        return error_response(
            503,
            "store_unavailable",
            "the store is unavailable; retry later",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> JSON:
        # The client hung up before its body arrived: nothing was read, so nothing was stored,
        # and nobody is left to read an answer. Not a server error.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return error_response(400, "client_disconnected", "the client disconnected mid-request")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSON:
        details = [
            {"loc": list(err.get("loc", ())), "message": err.get("msg", "")} for err in e.errors()
        ]
        summary = "; ".join(
            f"{'.'.join(str(p) for p in d['loc'])}: {d['message']}" for d in details[:5]
        )
        return error_response(422, "invalid_request", summary or "invalid request", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSON:
        code = _STATUS_CODES.get(e.status_code, "http_error")
        headers = dict(e.headers) if e.headers else None
        return error_response(e.status_code, code, str(e.detail), headers=headers)
