"""Who may use the console and how a request proves it: a login against TRAINLOG_WEB_USER /
TRAINLOG_WEB_PASSWORD, a signed HttpOnly SameSite=Strict session cookie, a CSRF token on
every form, and headers that keep the pages out of frames and inline scripts out of them."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.errors import ConfigurationError, ValidationError
from storage.settings import Settings

SECRET_FILE = ".web-secret"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def require_password(settings: Settings) -> str:
    if not settings.web_password:
        raise ConfigurationError(
            "the web console needs a password: set TRAINLOG_WEB_PASSWORD (and TRAINLOG_WEB_USER, "
            "default admin)",
            field="web_password",
        )
    return settings.web_password


def signing_key(settings: Settings) -> str:
    """TRAINLOG_WEB_SECRET, else a key made once into the home (mode 0600) and kept, so
    sessions survive a restart and every console process on the home shares it."""
    if settings.web_secret:
        return settings.web_secret
    path: Path = settings.home / SECRET_FILE
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def credentials_match(settings: Settings, user: str, password: str) -> bool:
    """Both compared in constant time, so a wrong guess tells nothing about the right one."""
    expected = require_password(settings)
    user_ok = hmac.compare_digest(user.encode(), settings.web_user.encode())
    return hmac.compare_digest(password.encode(), expected.encode()) and user_ok


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf(request: Request, submitted: object) -> None:
    expected = request.session.get("csrf")
    if not expected or not isinstance(submitted, str):
        raise CsrfRefused()
    if not hmac.compare_digest(submitted.encode(), str(expected).encode()):
        raise CsrfRefused()


class CsrfRefused(ValidationError):
    def __init__(self) -> None:
        super().__init__("the form is stale or not from this console (CSRF token): reload it")


class SecurityHeaders:
    """Adds HEADERS to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
