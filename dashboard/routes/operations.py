"""What operators and their tools poll: readiness (`/healthz` is in `dashboard.app`)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared import migrate
from shared.db import Database

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
