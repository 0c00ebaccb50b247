"""Writers of the exports: CSV as Italian Excel opens it, and XLSX with typed cells.

CSV: UTF-8 with a byte order mark (without it Excel reads accents as Latin-1), `;`
between fields (the list separator of the Italian locale, where `,` is the decimal
comma) and CRLF line ends. Dates read `31/12/2026`, money `1.234,50` in Italian: both
are what Italian Excel turns into a date and a number on opening.

XLSX: XlsxWriter in `constant_memory` mode. Each row goes to a temporary file as it is
written, so memory stays flat whatever the number of rows; openpyxl's write-only mode
does the same but is markedly slower per cell (it builds an lxml element per cell),
and the exports only ever write rows in order, which is all constant_memory asks.
Dates are date cells with a date format, money numbers with a euro format, counts
numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

import xlsxwriter  # type: ignore[import-untyped]

from shared import money
from shared.exports.columns import Column, Kind, Sheet
from shared.i18n import Translator

BOM = "\ufeff"
# Rows per chunk of a streamed CSV: small enough to start the download at once.
CSV_CHUNK_ROWS = 200
EURO_FORMAT = "#,##0.00 €"
DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
# Characters Excel refuses in a sheet's name, and its length limit.
_SHEET_FORBIDDEN = str.maketrans({c: " " for c in "[]:*?/\\"})
_SHEET_NAME_MAX = 31


# What makes Excel read a cell as a formula: a citizen's name typed as "=HYPERLINK(...)"
# must open as text. A sign before a digit ("+39 333 ...", "-2") is a number, not a formula.
_FORMULA_STARTS = ("=", "@", "\t", "\r")


def safe_text(value: str) -> str:
    """`value` as a cell Excel shows as text (a leading apostrophe when it would run)."""
    signed = len(value) > 1 and value[0] in "+-" and not value[1].isdigit()
    if signed or value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _writer(out: io.StringIO) -> Any:
    return csv.writer(out, delimiter=";", lineterminator="\r\n")


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows (the header first) as one CSV document, the BOM included; no text a formula."""
    out = io.StringIO()
    out.write(BOM)
    _writer(out).writerows([safe_text(v) if isinstance(v, str) else v for v in row] for row in rows)
    return out.getvalue()


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.astimezone(tz).replace(tzinfo=None)


def csv_value(kind: Kind, value: Any, *, language: str, tz: ZoneInfo) -> str:
    """One cell as CSV text (see the module docstring)."""
    if value is None:
        return ""
    if kind is Kind.DATE and isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if kind is Kind.DATETIME and isinstance(value, datetime):
        return _local(value, tz).strftime("%d/%m/%Y %H:%M")
    if kind is Kind.MONEY:
        return money.format_amount(int(value), language)
    return safe_text(str(value)) if kind is Kind.TEXT else str(value)


async def csv_chunks(sheet: Sheet, *, t: Translator, tz: ZoneInfo) -> AsyncIterator[bytes]:
    """The sheet as CSV, a few rows at a time as they are read: the header (with the BOM)
    first, then up to CSV_CHUNK_ROWS rows per chunk."""
    kinds = [c.kind for c in sheet.columns]
    out = io.StringIO()
    writer = _writer(out)
    out.write(BOM)
    writer.writerow([t(c.label) for c in sheet.columns])
    yield out.getvalue().encode()
    out.seek(0)
    out.truncate()
    pending = 0
    async for row in sheet.rows:
        writer.writerow(
            [csv_value(k, v, language=t.language, tz=tz) for k, v in zip(kinds, row, strict=True)]
        )
        pending += 1
        if pending == CSV_CHUNK_ROWS:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
            pending = 0
    if pending:
        yield out.getvalue().encode()


def sheet_name(title: str, taken: set[str]) -> str:
    """A name Excel accepts for a sheet, unique in the workbook."""
    name = title.translate(_SHEET_FORBIDDEN).strip()[:_SHEET_NAME_MAX] or "Sheet"
    base, n = name, 2
    while name.lower() in taken:
        suffix = f" {n}"
        name = base[: _SHEET_NAME_MAX - len(suffix)] + suffix
        n += 1
    taken.add(name.lower())
    return name


async def write_xlsx(
    sheets: Sequence[Sheet], target: IO[bytes], *, t: Translator, tz: ZoneInfo
) -> int:
    """The sheets as one XLSX workbook written to `target`; the number of rows written."""
    workbook = xlsxwriter.Workbook(target, {"constant_memory": True})
    formats = {
        Kind.DATE: workbook.add_format({"num_format": DATE_FORMAT}),
        Kind.DATETIME: workbook.add_format({"num_format": DATETIME_FORMAT}),
        Kind.MONEY: workbook.add_format({"num_format": EURO_FORMAT}),
    }
    bold = workbook.add_format({"bold": True})
    taken: set[str] = set()
    written = 0
    try:
        for sheet in sheets:
            worksheet = workbook.add_worksheet(sheet_name(t(sheet.title), taken))
            _header(worksheet, sheet.columns, bold, t)
            index = 1
            async for row in sheet.rows:
                for column, (spec, value) in enumerate(zip(sheet.columns, row, strict=True)):
                    _cell(worksheet, index, column, spec.kind, value, formats, tz)
                index += 1
            written += index - 1
    finally:
        workbook.close()
    return written


def _header(worksheet: Any, columns: Sequence[Column], bold: Any, t: Translator) -> None:
    for index, column in enumerate(columns):
        label = t(column.label)
        worksheet.set_column(index, index, max(12, min(40, len(label) + 2)))
        worksheet.write_string(0, index, label, bold)
    worksheet.freeze_panes(1, 0)


def _cell(
    worksheet: Any, row: int, column: int, kind: Kind, value: Any, formats: dict[Kind, Any],
    tz: ZoneInfo,
) -> None:  # fmt: skip
    if value is None or value == "":
        worksheet.write_blank(row, column, None)
    elif kind is Kind.DATETIME:
        worksheet.write_datetime(row, column, _local(value, tz), formats[kind])
    elif kind is Kind.DATE:
        worksheet.write_datetime(row, column, value, formats[kind])
    elif kind is Kind.MONEY:
        worksheet.write_number(row, column, int(value) / 100, formats[kind])
    elif kind is Kind.INT:
        worksheet.write_number(row, column, int(value))
    else:
        # Never a formula: a name starting with "=" stays text.
        worksheet.write_string(row, column, str(value))
