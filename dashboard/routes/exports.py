"""The exports for the coordinators and the funders (SPEC J6, issue 13): `/exports` lists
them with a period filter; `/exports/{name}.csv` and `/exports/{name}.xlsx` download one
(one route per export and format).

Each download is audited (who, which export, the format, the days) before its first byte.
A CSV streams as its rows are read, from a read-only session of its own (the request's
unit of work has ended by then); an XLSX is written to a temporary file first (its zip
index comes last), in a read-only session of its own once the audit event is committed,
then streamed from there. A bad date comes back as the page with the
message next to its field, what was typed kept (400).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from typing import IO, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from dashboard.deps import (
    COORDINATION,
    Session,
    Viewer,
    allow,
    commit_early,
    settings_of,
    writes_on_read,
)
from dashboard.params import BAD_DAY, BadDay, QueryText, read_day
from dashboard.templating import render
from shared.db import Database, utcnow
from shared.exports import service
from shared.exports.columns import Days, Export, Format
from shared.exports.definitions import EXPORTS
from shared.figures.period import MAX_PERIOD_DAYS
from shared.i18n import N_, Translator
from shared.limits import DAY_RANGE

router = APIRouter()
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]
FromDay = Annotated[QueryText, Query(alias="from")]

BAD_DATE = N_("Write a date like 31/12/2026.")
BAD_RANGE = N_("The end date is before the start date.")
TOO_LONG = N_("The period can be at most {days} days long.")
MEDIA_TYPES = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK_BYTES = 64 * 1024


def _now(request: Request) -> datetime:
    """The moment the exports are read at: the app's `figures_clock` when a test set one."""
    clock: Callable[[], datetime] = getattr(request.app.state, "figures_clock", utcnow)
    return clock()


def _read_days(values: dict[str, str], t: Translator) -> tuple[Days | None, dict[str, str]]:
    errors: dict[str, str] = {}
    found: dict[str, date | None] = {}
    for name in ("from", "to"):
        try:
            found[name] = read_day(values[name])
        except BadDay as exc:
            errors[name] = t(BAD_DATE if exc.message == BAD_DAY else exc.message, **DAY_RANGE)
    if errors:
        return None, errors
    days = Days(found["from"], found["to"])
    if days.first and days.last and days.last < days.first:
        return None, {"to": t(BAD_RANGE)}
    return days, {}


def _page(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    query = urlencode({k: v for k, v in values.items() if v}) if not errors else ""
    exports = [
        {
            "export": export,
            "links": [
                (fmt.value.upper(), f"/exports/{export.name}.{fmt.value}"
                 + (f"?{query}" if query else ""))
                for fmt in export.formats
            ],
        }
        for export in EXPORTS.values()
    ]  # fmt: skip
    context: dict[str, Any] = {"values": values, "errors": errors, "exports": exports}
    return render(request, "exports/page.html", context, status_code=status)


@router.get("/exports")
async def exports_page(
    request: Request, viewer: Coordinator, from_: FromDay = "", to: QueryText = ""
) -> HTMLResponse:
    values = {"from": from_.strip(), "to": to.strip()}
    _, errors = _read_days(values, Translator(viewer.language))
    return _page(request, values, errors, 400 if errors else 200)


async def _file_chunks(handle: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        handle.seek(0)
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()


async def _csv_stream(
    database: Database, request: Request, export: Export, days: Days, language: str
) -> AsyncIterator[bytes]:
    settings, now = settings_of(request), _now(request)
    async with database.transaction(read_only=True) as session:
        async for chunk in service.csv_chunks(
            session=session, settings=settings, export=export, days=days, language=language,
            now=now,
        ):  # fmt: skip
            yield chunk


def _download_route(export: Export, chosen: Format) -> Callable[..., Awaitable[Response]]:
    async def route(
        request: Request,
        session: Session,
        viewer: Coordinator,
        from_: FromDay = "",
        to: QueryText = "",
    ) -> Response:
        return await _download(request, session, viewer, export, chosen, from_, to)

    route.__name__ = f"download_{export.name}_{chosen.value}"
    return writes_on_read()(route)  # the download is audited


async def _download(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    export: Export,
    chosen: Format,
    from_: str,
    to: str,
) -> Response:
    """One export as a file, for the days of `from_` and `to`."""
    t = Translator(viewer.language)
    tz = settings_of(request).tz
    values = {"from": from_.strip(), "to": to.strip()}
    days, errors = _read_days(values, t)
    if days is not None:
        try:
            service.check_days(export, days, today=_now(request).astimezone(tz).date())
        except service.ExportError as exc:
            errors = (
                {"from": t(TOO_LONG, days=MAX_PERIOD_DAYS)}
                if exc.code == service.TOO_LONG
                else {"to": t(BAD_RANGE)}
            )
    if days is None or errors:
        return _page(request, values, errors, 400)
    await service.record(session=session, actor=viewer.actor, export=export, fmt=chosen, days=days)
    day = _now(request).astimezone(tz).date()
    headers = {"Content-Disposition": f'attachment; filename="{export.name}-{day}.{chosen.value}"'}
    if chosen is Format.CSV:
        database: Database = request.app.state.database
        return StreamingResponse(
            _csv_stream(database, request, export, days, viewer.language),
            media_type=MEDIA_TYPES[chosen], headers=headers,
        )  # fmt: skip
    # The audit event is committed before the file is written (which takes a minute at
    # 100k cases): the write reads in a read-only transaction of its own.
    await commit_early(session)
    database = request.app.state.database
    # Closed by _file_chunks once sent (or below, if writing fails).
    handle = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        async with database.transaction(read_only=True) as reading:
            await service.write(
                session=reading, settings=settings_of(request), export=export, fmt=chosen,
                days=days, language=viewer.language, now=_now(request), target=handle,
            )  # fmt: skip
    except BaseException:
        handle.close()
        raise
    return StreamingResponse(_file_chunks(handle), media_type=MEDIA_TYPES[chosen], headers=headers)


def _add_download_routes() -> None:
    """One address per export and format (`/exports/cases.xlsx`), so any other is a 404
    and no name from the address reaches the code."""
    for export in EXPORTS.values():
        for chosen in export.formats:
            router.add_api_route(
                f"/exports/{export.name}.{chosen.value}", _download_route(export, chosen),
                methods=["GET"], response_model=None,
            )  # fmt: skip


_add_download_routes()
