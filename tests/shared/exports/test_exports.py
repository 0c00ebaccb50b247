"""Every export read back (csv module, openpyxl) on the figures' small program, both
databases: the same rows, typed cells; the funder pack's PII scan; streaming."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.cases.models import Case
from shared.citizens.models import Citizen
from shared.exports import definitions, service, writers
from shared.exports.columns import Column, Days, Kind, Sheet
from shared.funds.models import FundMovement
from shared.i18n import Translator
from shared.plans.models import Plan, PlanSupport
from shared.settings import Settings
from tests.factories import rome
from tests.shared.figures.dataset import NOW, PERIOD, build

ALL = Days(date(2026, 1, 1), date(2027, 12, 31))
# The figures tests' period, whose numbers are hand-counted in `dataset`.
PAGE = Days(PERIOD.first, PERIOD.last)


async def _csv(session: AsyncSession, settings: Settings, name: str, days: Days = ALL) -> str:
    export, fmt = service.find(name, "csv")
    out = io.BytesIO()
    await service.write(session=session, settings=settings, export=export, fmt=fmt, days=days,
                        language="it", now=NOW, target=out)  # fmt: skip
    raw = out.getvalue()
    assert raw.startswith("\ufeff".encode())
    return raw.decode("utf-8-sig")


async def _xlsx(
    session: AsyncSession, settings: Settings, name: str, days: Days = ALL
) -> openpyxl.Workbook:
    export, fmt = service.find(name, "xlsx")
    out = io.BytesIO()
    await service.write(session=session, settings=settings, export=export, fmt=fmt, days=days,
                        language="it", now=NOW, target=out)  # fmt: skip
    out.seek(0)
    return openpyxl.load_workbook(out)


def _naive(day: date, at: time = time.min) -> datetime:
    """A cell's value as openpyxl reads it: local time, no time zone (Excel keeps none)."""
    return datetime.combine(day, at)


def _values(sheet: Any) -> list[list[Any]]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


async def test_bookings_csv_and_xlsx_read_back(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    text = await _csv(session, settings, "bookings")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == [
        "Appuntamento", "Sportello", "Codice di prenotazione", "Cittadino", "Telefono", "Canale",
        "Stato", "Urgenza", "Prenotato il",
    ]  # fmt: skip
    assert len(rows) == 1 + 7
    # 15 Jan 2027 at 10:00 in Rome, C11's cancelled booking, the first of the period.
    assert rows[1][0] == "15/01/2027 10:00"
    assert rows[1][1:4] == ["Sportello Comune", rows[1][2], "Cittadino 11"]
    book = await _xlsx(session, settings, "bookings")
    sheet = _values(book.worksheets[0])
    assert sheet[0] == rows[0]
    assert len(sheet) == len(rows)
    assert sheet[1][0] == _naive(date(2027, 1, 15), time(10, 0))
    assert [r[2] for r in sheet[1:]] == [r[2] for r in rows[1:]]
    assert book.worksheets[0]["A2"].number_format == writers.DATETIME_FORMAT


async def test_a_period_filters_the_rows(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    text = await _csv(session, settings, "bookings", Days(date(2027, 3, 1), date(2027, 3, 1)))
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert [r[0] for r in rows[1:]] == ["01/03/2027 10:00"]


async def test_cases_types(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    rows = _values((await _xlsx(session, settings, "cases")).worksheets[0])
    assert len(rows) == 1 + 7
    first = rows[1]
    assert isinstance(first[0], int)
    assert first[1] == "Cittadino 1"
    assert first[11] == _naive(date(2027, 1, 10))  # a date cell (openpyxl reads it as datetime)
    text = await _csv(session, settings, "cases")
    csv_rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert [r[0] for r in csv_rows[1:]] == [str(r[0]) for r in rows[1:]]
    assert csv_rows[1][11] == "10/01/2027"


async def test_plans_and_payments_money_is_a_number(
    session: AsyncSession, settings: Settings
) -> None:
    await build(session)
    plans = (await _xlsx(session, settings, "plans")).worksheets[0]
    rows = _values(plans)
    assert len(rows) == 1 + 5
    assert all(isinstance(r[10], int | float) for r in rows[1:])
    assert plans["K2"].number_format == writers.EURO_FORMAT
    payments = (await _xlsx(session, settings, "payments")).worksheets[0]
    rows = _values(payments)
    assert rows[1][:3] == [_naive(date(2027, 3, 1)), "Fondo Cariplo", 1000]
    assert payments["C2"].number_format == writers.EURO_FORMAT
    text = await _csv(session, settings, "payments")
    csv_rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert csv_rows[1][:5] == ["01/03/2027", "Fondo Cariplo", "1.000,00", "Al cittadino",
                               "Bonifico"]  # fmt: skip


async def test_figures_are_the_page_s(session: AsyncSession, settings: Settings) -> None:
    await build(session)
    rows = _values((await _xlsx(session, settings, "figures", PAGE)).worksheets[0])
    counts = {(r[0], r[1]): r[2] for r in rows[1:]}
    assert counts[("Percorso dei cittadini", "Iniziati")] == 12
    money = {(r[0], r[1]): r[3] for r in rows[1:]}
    assert money[("Fondo: Fondo Cariplo", "Pagato")] == 1000


PII_PHONE = "+393331234567"


async def test_the_funder_pack_carries_no_personal_data(
    session: AsyncSession, settings: Settings
) -> None:
    await build(session)
    citizens = (await session.scalars(select(Citizen))).all()
    for n, citizen in enumerate(citizens):
        await session.execute(
            update(Citizen).where(Citizen.id == citizen.id).values(
                phone=f"+39333123{n:04d}", email=f"persona{n}@example.it",
                fiscal_code=f"RSSMRA80A01F{n:03d}X"[:16],
            )
        )  # fmt: skip
    await session.flush()
    citizens = (await session.execute(
        select(Citizen.name, Citizen.phone, Citizen.email, Citizen.fiscal_code)
    )).all()  # fmt: skip
    book = await _xlsx(session, settings, "funder_pack", Days())
    assert [s.title for s in book.worksheets] == ["Statistiche", "Beneficiari"]
    cells = [str(v) for s in book.worksheets for r in _values(s) for v in r if v is not None]
    for name, phone, email, fiscal_code in citizens:
        for secret in (name, phone, phone[3:], email, fiscal_code):
            assert not any(secret.lower() in cell.lower() for cell in cells), secret
    beneficiaries = _values(book.worksheets[1])
    assert len(beneficiaries) == 1 + 7
    references = [r[0] for r in beneficiaries[1:]]
    assert len(set(references)) == 7 and all(r.startswith("R-") for r in references)
    again = await _xlsx(session, settings, "funder_pack", Days())
    assert not set(references) & {r[0] for r in _values(again.worksheets[1])[1:]}
    # C1: emergency support and job search, 1.600 € committed, 1.000 € paid, employed.
    first = beneficiaries[1]
    assert first[1:3] == [_naive(date(2027, 1, 10)), 1]
    assert first[6:10] == [
        "Supporto economico d'emergenza, Supporto nella ricerca attiva del lavoro", 1600,
        1000, "Occupato",
    ]  # fmt: skip


async def test_the_funder_pack_has_one_row_per_beneficiary(
    session: AsyncSession, settings: Settings
) -> None:
    """C1 came back after their case closed: a second case, with a plan of its own."""
    built = await build(session)
    first_case = await session.scalar(
        select(Case)
        .join(Citizen, Citizen.id == Case.citizen_id)
        .where(Citizen.name == "Cittadino 1")
    )
    assert first_case is not None
    again = Case(
        citizen_id=first_case.citizen_id, state="interviewed", eligible=True,
        opened_at=rome(2027, 3, 5, 9), previous_case_id=first_case.id,
    )  # fmt: skip
    session.add(again)
    await session.flush()
    plan = Plan(case_id=again.id, state="active", approved_at=rome(2027, 3, 8, 12))
    session.add(plan)
    await session.flush()
    support = PlanSupport(
        plan_id=plan.id, kind="microcredit", state="active", fund_id=built.funds["F1"]
    )
    session.add(support)
    await session.flush()
    for kind, cents, extra in (
        ("commitment", 500_00, {}),
        ("payment", 200_00, {"paid_on": date(2027, 3, 9), "paid_to": "citizen",
                             "method": "bank_transfer"}),
    ):  # fmt: skip
        session.add(
            FundMovement(fund_id=built.funds["F1"], kind=kind, amount_cents=cents,
                         support_id=support.id, plan_id=plan.id, actor="test",
                         at=rome(2027, 3, 9, 12), **extra)
        )  # fmt: skip
    await session.flush()

    beneficiaries = _values((await _xlsx(session, settings, "funder_pack", Days())).worksheets[1])
    # Still seven citizens with a case, one row each, one reference each.
    assert len(beneficiaries) == 1 + 7
    assert len({r[0] for r in beneficiaries[1:]}) == 7
    [c1] = [r for r in beneficiaries[1:] if r[2] == 2]
    # From the first case's opening; both cases' interventions and money; the latest
    # case's state (its plan has no outcome yet), not the first one's "employed".
    assert c1[1:3] == [_naive(date(2027, 1, 10)), 2]
    assert c1[6:10] == [
        "Supporto economico d'emergenza, Supporto nella ricerca attiva del lavoro, "
        "Sostegno per l'accesso al microcredito", 2100, 1200, "Colloquio svolto",
    ]  # fmt: skip
    # A period holding only the second case: one case, its own plan only.
    march = _values(
        (await _xlsx(session, settings, "funder_pack", Days(date(2027, 3, 2), None))).worksheets[1]
    )
    assert [r[1:3] + r[6:10] for r in march[1:] if r[6]] == [
        [
            _naive(date(2027, 3, 5)),
            1,
            "Sostegno per l'accesso al microcredito",
            500,
            200,
            "Colloquio svolto",
        ],
    ]


def test_a_reference_is_stable_within_an_export_only() -> None:
    one, two = definitions.reference_coder(), definitions.reference_coder()
    assert one(5) == one(5) != one(6)
    assert one(5) != two(5)


def test_unknown_names_formats_and_days() -> None:
    with pytest.raises(service.ExportError) as unknown:
        service.find("citizens", "csv")
    assert unknown.value.code == service.UNKNOWN
    with pytest.raises(service.ExportError) as pack_csv:
        service.find("funder_pack", "csv")
    assert pack_csv.value.code == service.NO_FORMAT
    export, _ = service.find("bookings", "csv")
    with pytest.raises(service.ExportError) as reversed_:
        service.check_days(export, Days(date(2027, 2, 1), date(2027, 1, 1)), today=NOW.date())
    assert reversed_.value.code == service.REVERSED


async def test_csv_is_written_as_rows_arrive() -> None:
    """The writer asks for no more rows than the chunk it is about to give."""
    read = 0

    async def rows() -> AsyncIterator[list[Any]]:
        nonlocal read
        for n in range(10 * writers.CSV_CHUNK_ROWS):
            read += 1
            yield [n]

    sheet = Sheet("N", (Column("N", Kind.INT),), rows())
    chunks = writers.csv_chunks(sheet, t=Translator("it"), tz=ZoneInfo("Europe/Rome"))
    await anext(chunks)  # the header
    await anext(chunks)
    assert read == writers.CSV_CHUNK_ROWS


async def test_the_query_streams(
    session: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows come from a server-side cursor in batches, never one fetch of the table."""
    await build(session)
    seen: list[Any] = []
    original = session.stream

    async def spy(statement: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(statement.get_execution_options().get("yield_per"))
        return await original(statement, *args, **kwargs)

    monkeypatch.setattr(session, "stream", spy)
    monkeypatch.setattr(definitions, "BATCH", 2)
    for name in ("bookings", "cases", "plans", "payments"):
        export, _ = service.find(name, "csv")
        chunks = service.csv_chunks(session=session, settings=settings, export=export,
                                    days=ALL, language="it", now=NOW)  # fmt: skip
        async for _ in chunks:
            pass
    assert seen == [2, 2, 2, 2]


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+cmd", "'+cmd"),
        ("-2+3", "-2+3"),
        ("-", "-"),
        ("+39 333 123 4567", "+39 333 123 4567"),
        ("Maria Rossi", "Maria Rossi"),
    ],
)
def test_a_csv_text_is_never_a_formula(typed: str, written: str) -> None:
    """A name typed as `=...` opens in Excel as text, not as a formula to run."""
    assert writers.csv_value(Kind.TEXT, typed, language="it", tz=ZoneInfo("Europe/Rome")) == written
    document = writers.csv_text([[typed]])
    assert document == "\ufeff" + _line(written)


def _line(value: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerow([value])
    return out.getvalue()


@pytest.mark.parametrize(
    ("days", "code"),
    [
        (Days(None, date(2020, 1, 1)), None),  # the twelve months up to that day
        (Days(date(2020, 1, 1), None), service.TOO_LONG),  # from 2020 to today (NOW)
        (Days(date(2027, 6, 1), None), None),  # a first day after today: that day alone
        (Days(date(2020, 1, 1), date(2027, 1, 1)), service.TOO_LONG),
    ],
)
async def test_the_figures_period_with_one_side_open(
    session: AsyncSession, settings: Settings, days: Days, code: str | None
) -> None:
    """Checked before the first byte: the figures never fail once the file has started."""
    for name in ("figures", "funder_pack"):
        export, fmt = service.find(name, "xlsx")
        if code is None:
            service.check_days(export, days, today=NOW.date())
            await service.write(session=session, settings=settings, export=export, fmt=fmt,
                                days=days, language="it", now=NOW, target=io.BytesIO())  # fmt: skip
        else:
            with pytest.raises(service.ExportError) as refused:
                service.check_days(export, days, today=NOW.date())
            assert refused.value.code == code
