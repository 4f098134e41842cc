"""One JSON error shape for every API failure: {"error": {"status", "field", "message"}}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.logs import get_logger
from dispatcher.service import ErrorKind, ServiceError

log = get_logger(__name__)
DATABASE_RETRY_SECONDS = 30

STATUS_OF = {
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.CLOSED: 410,
    ErrorKind.INVALID: 422,
    ErrorKind.CONFLICT: 409,
    ErrorKind.UNAVAILABLE: 503,
}


class ApiError(Exception):
    """A refusal decided by the web layer itself (auth, rate limit, body size, form token)."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"status": status, "field": field, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def describe_validation(errors: list[Any]) -> tuple[str | None, str]:
    """The first pydantic error as (field path, sentence); the path drops the "body" prefix."""
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return None, "the request body is not valid JSON"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return field, f"{field}: {message}" if field else message


# Paths whose answers are for programs: JSON errors. Everything else is a page.
MACHINE_PATHS = ("/api/", "/webhooks/", "/healthz", "/metrics", "/openapi.json", "/static/")

PageRenderer = Callable[[Request, int, dict[str, str] | None], Awaitable[Response]]


def wants_page(request: Request) -> bool:
    return not request.url.path.startswith(MACHINE_PATHS)


def install_error_handlers(app: FastAPI, page: PageRenderer | None = None) -> None:
    """JSON errors for the API; with ``page``, a page in the site's style for a browser."""

    async def respond(
        request: Request,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if page is not None and wants_page(request):
            return await page(request, status, headers)
        return error_response(status, message, field, headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return await respond(request, exc.status, exc.message, exc.field, exc.headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return await respond(request, STATUS_OF[exc.kind], exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        field, message = describe_validation(list(exc.errors()))
        return await respond(request, 422, message, field)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(ConnectionError)
    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        # Unreachable, locked past the busy timeout, read-only: nothing was stored (the
        # transaction rolled back), and trying again shortly is the right thing to do.
        log.warning("the database did not answer a request", error=repr(exc))
        return await respond(
            request,
            503,
            "the service cannot reach its database at the moment; nothing was saved, "
            "please try again in a minute",
            headers={"Retry-After": str(DATABASE_RETRY_SECONDS)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        return await respond(request, exc.status_code, str(exc.detail), headers=headers)

    app.add_middleware(UnexpectedErrors, respond=respond)


Responder = Callable[[Request, int, str], Awaitable[Response]]


class UnexpectedErrors:
    """A failure no handler expected: one ``request_failed`` event in the log (plain
    traceback, no locals: see ``dispatcher.logs``), and a 500 in the usual shape. Nothing
    is raised on to the server, which would log the same failure a second time.

    Innermost of the middlewares, so the 500 still gets the security headers and is
    said in the request's language."""

    def __init__(self, app: ASGIApp, respond: Responder) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            log.error(
                "request_failed",
                method=scope.get("method"),
                path=scope.get("path"),
                error=type(exc).__name__,
                exc_info=exc,
            )
            if started:  # part of an answer went out: the server ends the connection
                return
            response = await self.respond(
                Request(scope, receive), 500, "internal error; it has been logged"
            )
            await response(scope, receive, send)
