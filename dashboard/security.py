"""What every response of the dashboard carries, and what happens when a route fails.

Two small ASGI middlewares, installed once by `create_app`:

- `SecurityHeaders`: a Content-Security-Policy that allows only this site (no inline
  script, no framing), `nosniff`, a same-origin referrer, HSTS over https, and
  `Cache-Control: no-store` on everything but the static files, since pages carry
  personal data and the dashboard is used on shared computers.
- `ErrorBoundary`: gives each request an id (shown on the error page and sent as
  `X-Request-ID`, so a case worker can quote it on the phone) and turns an unexpected
  exception into one log record and the 500 page. Starlette's own handler for
  `Exception` re-raises after answering, so the server logged a second traceback and
  dropped the keep-alive connection.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Bootstrap Italia's stylesheet draws a few icons as data: URIs...
        "img-src 'self' data:",
        # ... and embeds a few fonts the same way.
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000; includeSubDomains"
# Files that are the same for everyone and may be cached: the vendored front-end packages
# and our stylesheet. Everything else may show a citizen's data.
CACHEABLE_PREFIX = "/static/"
REQUEST_ID_HEADER = "X-Request-ID"


class SecurityHeaders:
    """Add the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        over_https = scope.get("scheme") == "https"
        cacheable = str(scope.get("path", "")).startswith(CACHEABLE_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if over_https:
                    headers["Strict-Transport-Security"] = HSTS
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def new_request_id() -> str:
    """Short enough to read out on the phone, long enough not to repeat in a log."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes
    raw = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def request_id_of(request: Request) -> str:
    found: str = getattr(request.state, "request_id", "")
    return found


class ErrorBoundary:
    """Give each request an id; answer an unhandled exception with the 500 page, once."""

    def __init__(self, app: ASGIApp, *, error_page: Callable[[Request], Response]) -> None:
        self.app = app
        self.error_page = error_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The path only, never the query string: it may hold a search for a name.
            log.exception(
                "unhandled error on %s %s [request %s]",
                scope.get("method", ""),
                scope.get("path", ""),
                request_id,
            )
            if started:
                return  # the client has part of a response: nothing better to send now
            response = self.error_page(Request(scope, receive))
            await response(scope, receive, send_with_id)
