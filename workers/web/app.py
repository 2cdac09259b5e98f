"""The console's ASGI app: routes, sessions, templates, static files and error pages. Pages
read and write through the same storage functions as the jobs and the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from storage.errors import PersistenceError
from storage.seeds.bundle import DEFAULT_PACKAGE
from storage.seeds.sync import ensure_imported
from storage.settings import Settings
from storage.stores import Stores
from workers.web import datasets, entries, operations
from workers.web.security import (
    CsrfRefused,
    SecurityHeaders,
    check_csrf,
    credentials_match,
    csrf_token,
    require_password,
    signing_key,
)

HERE = Path(__file__).parent
SESSION_HOURS = 12
STATUS = {"NOT_FOUND": 404, "VALIDATION": 422, "CONFLICT": 409, "LOCK_TIMEOUT": 503}


class Console:
    """What every page needs: the settings, the open storage, the templates."""

    def __init__(self, settings: Settings, seeds_package: str) -> None:
        self.settings = settings
        self.seeds_package = seeds_package  # where the bundled datasets come from
        self.stores = Stores(settings)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape()
        )

    def page(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        context = {
            "user": request.session.get("user"),
            "csrf": csrf_token(request),
            "flower_url": self.settings.flower_url,
            "path": request.url.path,
            **context,
        }
        return HTMLResponse(self.templates.get_template(template).render(**context), status)

    def actor(self, request: Request) -> str:
        return f"{request.session.get('user')} (web console)"


def create_web_app(settings: Settings, *, seeds_package: str = DEFAULT_PACKAGE) -> Starlette:
    """The console for `settings`; CONFIGURATION without a password."""
    require_password(settings)
    console = Console(settings, seeds_package)
    console.stores.prepare()
    ensure_imported(console.stores.database)  # the datasets' first use, as for the jobs

    async def healthz(request: Request) -> Response:
        health = console.stores.database.health()
        return JSONResponse({"status": "ok", "database": health.get("url")})

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return console.page(request, "login.html")
        form = await request.form()
        try:
            check_csrf(request, form.get("csrf"))
        except CsrfRefused as refused:
            return console.page(request, "login.html", 403, error=refused.message)
        user, password = str(form.get("user", "")), str(form.get("password", ""))
        if not credentials_match(settings, user, password):
            return console.page(request, "login.html", 401, error="wrong user or password")
        request.session.clear()
        request.session["user"] = user
        return RedirectResponse("/datasets", 303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        check_csrf(request, form.get("csrf"))
        request.session.clear()
        return RedirectResponse("/login", 303)

    async def home(request: Request) -> Response:
        return RedirectResponse("/datasets", 303)

    async def failed(request: Request, error: Exception) -> Response:
        assert isinstance(error, PersistenceError)
        status = 403 if isinstance(error, CsrfRefused) else STATUS.get(str(error.code), 500)
        return console.page(request, "error.html", status, error=error)

    routes = [
        Route("/healthz", healthz),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home),
        *datasets.routes(console),
        *entries.routes(console),
        *operations.routes(console),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=signing_key(settings),
            session_cookie="trainlog_console",
            max_age=int(timedelta(hours=SESSION_HOURS).total_seconds()),
            same_site="strict",
            https_only=bool(settings.web_secure_cookie),
        ),
        Middleware(LoginRequired),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        console.stores.close()

    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={PersistenceError: failed},
        lifespan=lifespan,
    )


OPEN_PATHS = ("/healthz", "/login", "/static/")


class LoginRequired:
    """Every page but the login, the health check and the static files needs a session."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        guarded = scope["type"] == "http" and not scope["path"].startswith(OPEN_PATHS)
        if guarded and not scope.get("session", {}).get("user"):
            await RedirectResponse("/login", 303)(scope, receive, send)
            return
        await self.app(scope, receive, send)
