"""Running an export: find its definition, write it as CSV or XLSX, record who took it.

The front ends (the `/exports` pages, `ripartire export`) own the session and the file
or response; this module only reads and writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import IO

from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import service as audit
from shared.exports import writers
from shared.exports.columns import Context, Days, Export, Format
from shared.exports.definitions import EXPORTS, figures_period
from shared.figures.period import PeriodReversed, PeriodTooLong
from shared.i18n import Translator
from shared.settings import Settings


class ExportError(ValueError):
    """A request for an export that can't be made; `code` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


UNKNOWN = "unknown"  # no export of that name
NO_FORMAT = "format"  # the export has no such format
REVERSED = "reversed"  # the last day before the first
TOO_LONG = "too_long"  # the figures' period is longer than their limit
# The exports that carry the figures, whose period has a limit.
FIGURE_EXPORTS = ("figures", "funder_pack")


def find(name: str, fmt: str) -> tuple[Export, Format]:
    """The export called `name` in format `fmt`, or ExportError."""
    export = EXPORTS.get(name)
    if export is None:
        raise ExportError(UNKNOWN)
    try:
        chosen = Format(fmt)
    except ValueError:
        raise ExportError(NO_FORMAT) from None
    if chosen not in export.formats:
        raise ExportError(NO_FORMAT)
    return export, chosen


def check_days(export: Export, days: Days, *, today: date) -> None:
    """ExportError when the days can't be the export's period (checked before the first
    byte is written, so a download never breaks half-way for its filter)."""
    if days.first and days.last and days.last < days.first:
        raise ExportError(REVERSED)
    if export.name in FIGURE_EXPORTS:
        try:
            figures_period(days, today)
        except PeriodReversed:
            raise ExportError(REVERSED) from None
        except PeriodTooLong:
            raise ExportError(TOO_LONG) from None


def _context(
    session: AsyncSession, settings: Settings, days: Days, language: str, now: datetime
) -> Context:
    return Context(session=session, settings=settings, days=days, t=Translator(language), now=now)


async def csv_chunks(
    *, session: AsyncSession, settings: Settings, export: Export, days: Days, language: str,
    now: datetime,
) -> AsyncIterator[bytes]:  # fmt: skip
    """The export as CSV bytes, a few rows at a time as the query yields them."""
    check_days(export, days, today=now.astimezone(settings.tz).date())
    ctx = _context(session, settings, days, language, now)
    (sheet,) = export.sheets(ctx)
    async for chunk in writers.csv_chunks(sheet, t=ctx.t, tz=settings.tz):
        yield chunk


async def write(
    *, session: AsyncSession, settings: Settings, export: Export, fmt: Format, days: Days,
    language: str, now: datetime, target: IO[bytes],
) -> None:  # fmt: skip
    """The export written to `target` (a file open for writing bytes, seekable for XLSX)."""
    check_days(export, days, today=now.astimezone(settings.tz).date())
    if fmt is Format.CSV:
        async for chunk in csv_chunks(
            session=session, settings=settings, export=export, days=days, language=language,
            now=now,
        ):  # fmt: skip
            target.write(chunk)
        return
    ctx = _context(session, settings, days, language, now)
    await writers.write_xlsx(export.sheets(ctx), target, t=ctx.t, tz=settings.tz)


async def record(
    *, session: AsyncSession, actor: str, export: Export, fmt: Format, days: Days
) -> None:
    """The audit event of one export: who, which, in what format, for which days."""
    await audit.record(
        session=session, actor=actor, action="export.download", object_type="export",
        object_id=export.name, details={"format": fmt.value, **days.described()},
    )  # fmt: skip
