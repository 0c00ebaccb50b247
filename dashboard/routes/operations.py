"""What operators and their tools poll: readiness and metrics (`/healthz` is in
`dashboard.app`)."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from shared import metrics, migrate
from shared.db import Database, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and its schema is the code's (migrations at head).

    A load balancer sends traffic only to a ready instance: one started on a database that
    was not upgraded yet (or already upgraded by a newer release) is alive but not ready.
    """
    database: Database = request.app.state.database
    if not await database.ping():
        return _not_ready("database unreachable")
    head = migrate.code_head()
    try:
        async with asyncio.timeout(3.0):
            revision = await migrate.current_revision(database)
    except Exception as exc:  # any failure means "not ready" to a probe
        log.warning("readiness: the schema's revision is unknown: %s", exc.__class__.__name__)
        return _not_ready("database unreachable")
    if revision != head:
        return _not_ready("migrations not at head", revision=revision, head=head)
    return JSONResponse({"status": "ok", "database": "ok", "migrations": head})


def _not_ready(reason: str, **details: str | None) -> JSONResponse:
    return JSONResponse({"status": "error", "reason": reason, **details}, status_code=503)


# Headers a reverse proxy adds: a request carrying one came through a proxy, so its
# loopback address (the proxy's, when it runs on this host) says nothing of its sender.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


@router.get("/metrics", include_in_schema=False)
async def metrics_page(request: Request) -> Response:
    """This instance's metrics and the database's gauges (shared.metrics), for Prometheus.

    Answered to a client on this host that did not come through a proxy, or to anyone
    sending `Authorization: Bearer <RIPARTIRE_METRICS_TOKEN>`; to others it does not
    exist (404). The figures carry no personal data, but they say how busy the program is.
    """
    settings: Settings = request.app.state.settings
    if not (_has_token(request, settings) or _local(request)):
        raise HTTPException(status_code=404)
    database: Database = request.app.state.database
    async with database.transaction(read_only=True) as session:
        figures = await metrics.database_figures(session=session, now=utcnow(), tz=settings.tz)
    return Response(metrics.exposition(figures), media_type=metrics.CONTENT_TYPE)


def _has_token(request: Request, settings: Settings) -> bool:
    if settings.metrics_token is None:
        return False
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    )


def _local(request: Request) -> bool:
    """A client on this host, talking to the app directly (not through a proxy).

    uvicorn (`proxy_headers`, dashboard.cli) replaces a trusted proxy's address with the
    X-Forwarded-For client's; a proxy that sends no such header would still look local,
    hence the check of the headers themselves.
    """
    if request.client is None or any(h in request.headers for h in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False
