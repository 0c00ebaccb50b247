"""One XLSX export in a process of its own, for its peak memory (`bench_figures`).

    python -m tests.bench._export_process MODE DATABASE_URL OUTPUT

MODE `export`: the full cases export (no period) written by `shared.exports.service.write`
to OUTPUT, as `ripartire export cases --format xlsx` and `/exports/cases.xlsx` do (the
route writes to a temporary file, then streams it).

MODE `xlsxwriter` or `openpyxl`: the floor. The same rows are read first, untimed, through
the export's own definition and turned into what the library takes (local naive
datetimes, euros as floats); then the bare loop of the library writes them, typed and
formatted as the export formats them: XlsxWriter in `constant_memory` mode, openpyxl in
write-only mode.

Prints one JSON object: the resident set after the imports (`baseline_kb`, VmRSS), just
before the timed part (`before_kb`), the high-water mark after it (`peak_kb`, VmHWM, and
`maxrss_kb`, getrusage's ru_maxrss), the seconds of the timed part and the rows written.
The Italian catalogs are read before the timed part (once per process: a running
server has them already). Only this module's imports are loaded before `baseline_kb`: the export's own modules, the
settings and the database driver, as the CLI's export loads them (without click and
uvicorn).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import time
from datetime import datetime
from typing import Any

from shared.db import Database, utcnow
from shared.exports import service
from shared.exports.columns import Context, Days, Format, Kind
from shared.exports.definitions import EXPORTS
from shared.exports.writers import DATE_FORMAT, DATETIME_FORMAT, EURO_FORMAT
from shared.i18n import DEFAULT_LANGUAGE, Translator, translations
from shared.settings import Settings

EXPORT = "cases"


def _status_kb(field: str) -> int:
    """A field of /proc/self/status, in kB (VmRSS: resident now; VmHWM: its peak so far)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


async def _export(database: Database, settings: Settings, output: str) -> tuple[float, int]:
    export, fmt = service.find(EXPORT, Format.XLSX.value)
    async with database.transaction(read_only=True) as session:
        await session.connection()
        with open(output, "wb") as target:
            start = time.perf_counter()
            await service.write(
                session=session, settings=settings, export=export, fmt=fmt, days=Days(),
                language=DEFAULT_LANGUAGE, now=utcnow(), target=target,
            )  # fmt: skip
            seconds = time.perf_counter() - start
    return seconds, -1


async def _rows(database: Database, settings: Settings) -> tuple[list[Kind], list[list[Any]]]:
    """The export's rows as the library takes them (read untimed, kept in memory)."""
    tz = settings.tz
    async with database.transaction(read_only=True) as session:
        ctx = Context(
            session=session, settings=settings, days=Days(), t=Translator(DEFAULT_LANGUAGE),
            now=utcnow(),
        )  # fmt: skip
        (sheet,) = EXPORTS[EXPORT].sheets(ctx)
        kinds = [c.kind for c in sheet.columns]
        rows = []
        async for row in sheet.rows:
            values: list[Any] = []
            for kind, value in zip(kinds, row, strict=True):
                if value is None or value == "":
                    values.append(None)
                elif kind is Kind.DATETIME and isinstance(value, datetime):
                    values.append(value.astimezone(tz).replace(tzinfo=None))
                elif kind is Kind.MONEY:
                    values.append(int(value) / 100)
                else:
                    values.append(value)
            rows.append(values)
    return kinds, rows


def _xlsxwriter(kinds: list[Kind], rows: list[list[Any]], output: str) -> float:
    import xlsxwriter  # type: ignore[import-untyped]

    start = time.perf_counter()
    workbook = xlsxwriter.Workbook(output, {"constant_memory": True})
    formats = {
        Kind.DATE: workbook.add_format({"num_format": DATE_FORMAT}),
        Kind.DATETIME: workbook.add_format({"num_format": DATETIME_FORMAT}),
        Kind.MONEY: workbook.add_format({"num_format": EURO_FORMAT}),
    }
    sheet = workbook.add_worksheet("Cases")
    sheet.write_row(0, 0, [k.value for k in kinds])
    writers = []
    for kind in kinds:
        if kind in (Kind.DATE, Kind.DATETIME):
            writers.append((sheet.write_datetime, formats[kind]))
        elif kind is Kind.MONEY:
            writers.append((sheet.write_number, formats[kind]))
        elif kind is Kind.INT:
            writers.append((sheet.write_number, None))
        else:
            writers.append((sheet.write_string, None))
    for index, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            if value is None:
                sheet.write_blank(index, column, None)
            else:
                write, cell_format = writers[column]
                write(index, column, value, cell_format)
    workbook.close()
    return time.perf_counter() - start


def _openpyxl(kinds: list[Kind], rows: list[list[Any]], output: str) -> float:
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]

    start = time.perf_counter()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Cases")
    sheet.append([k.value for k in kinds])
    number_formats = {Kind.DATE: DATE_FORMAT, Kind.DATETIME: DATETIME_FORMAT,
                      Kind.MONEY: EURO_FORMAT}  # fmt: skip
    formatted = [number_formats.get(kind) for kind in kinds]
    for row in rows:
        cells: list[Any] = []
        for value, number_format in zip(row, formatted, strict=True):
            if number_format is None or value is None:
                cells.append(value)
            else:
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = number_format
                cells.append(cell)
        sheet.append(cells)
    workbook.save(output)
    return time.perf_counter() - start


async def main(mode: str, url: str, output: str) -> dict[str, Any]:
    baseline = _status_kb("VmRSS")
    # The catalogs are read once per process (a running server has them already).
    translations(DEFAULT_LANGUAGE)
    settings = Settings(database_url=url, _env_file=None)
    database = Database(url)
    try:
        if mode == "export":
            gc.collect()
            before = _status_kb("VmRSS")
            seconds, rows = await _export(database, settings, output)
        else:
            kinds, read = await _rows(database, settings)
            rows = len(read)
            gc.collect()
            before = _status_kb("VmRSS")
            write = _xlsxwriter if mode == "xlsxwriter" else _openpyxl
            seconds = write(kinds, read, output)
    finally:
        await database.dispose()
    return {
        "mode": mode,
        "baseline_kb": baseline,
        "before_kb": before,
        "peak_kb": _status_kb("VmHWM"),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "seconds": seconds,
        "rows": rows,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
