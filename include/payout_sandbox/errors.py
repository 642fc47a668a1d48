"""The gateway's two error shapes (a list, and a field map for 422) and the handlers that use them."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from payout_sandbox.jsonio import DecimalJSONResponse

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered in the list shape: ``{"errors": [{"status", "code", ...}]}``."""

    def __init__(
        self,
        http_status: int,
        status: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        meta: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title or str(http_status))
        self.http_status = http_status
        self.status = status or HTTPStatus(http_status).phrase
        self.title = title
        self.detail = detail
        self.meta = meta
        self.headers = headers

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "code": str(self.http_status)}
        if self.title is not None:
            error["title"] = self.title
        if self.detail is not None:
            error["detail"] = self.detail
        if self.meta is not None:
            error["meta"] = self.meta
        return {"errors": [error]}

    def response(self) -> Response:
        return DecimalJSONResponse(self.body(), status_code=self.http_status, headers=self.headers)


class FieldErrors(Exception):
    """A 422 answered in the field-map shape: ``{"errors": {"amount": "This value ..."}}``."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors

    def response(self) -> Response:
        return DecimalJSONResponse({"errors": self.errors}, status_code=422)


def unauthorized() -> ApiError:
    return ApiError(401, headers={"WWW-Authenticate": 'Basic realm="payout-sandbox"'})


def not_found() -> ApiError:
    return ApiError(404)


def server_error(http_status: int = 500) -> ApiError:
    """The documented 500 body (also used for injected 502/503/504)."""
    return ApiError(
        http_status, status="internal_error", title="internal_error", detail="Internal server error."
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Answer FastAPI's own 404/405/422/500 in the documented shapes."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def on_field_errors(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FieldErrors)
        return exc.response()

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return ApiError(exc.status_code, headers=getattr(exc, "headers", None)).response()

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors: dict[str, str] = {}
        for error in exc.errors():
            name = _field_name(tuple(error.get("loc", ())))
            if error.get("type") == "json_invalid":
                name = "body"
            errors.setdefault(name, str(error.get("msg", "This value is not valid.")))
        return FieldErrors(errors).response()

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return server_error().response()

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(FieldErrors, on_field_errors)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
