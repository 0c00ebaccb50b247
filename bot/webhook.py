"""The webhook endpoint, served by the dashboard's server when RIPARTIRE_WEBHOOK_URL is set.

The 200 that tells Telegram the update arrived is sent once the update is stored
(`bot.inbox`): a crash before it, and Telegram sends the update again.
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot.inbox import Inbox

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
MAX_BODY_BYTES = 1_000_000


def webhook_route(
    application: Application,  # type: ignore[type-arg]
    inbox: Inbox,
    *,
    path: str,
    secret: str,
) -> Route:
    """POST `path`: check Telegram's secret header (403 without it), then store the update."""

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return Response(status_code=403)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response(status_code=413)
        try:
            update = Update.de_json(json.loads(body), application.bot)
        except (ValueError, TypeError, KeyError):
            log.warning("webhook: malformed update ignored")
            return Response(status_code=400)
        if update is None:
            return Response(status_code=400)
        await inbox.receive([update])
        return Response(status_code=200)

    return Route(path, receive, methods=["POST"], name="telegram-webhook")
