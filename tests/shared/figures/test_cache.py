"""The figures kept for a while (`shared.figures.cache`): served within
`figures_cache_minutes`, computed again after it or when asked, shared through the
database, the default views kept fresh by the running process's refresh."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import demo
from shared.booking import hours
from shared.citizens.models import ConsentRefusal
from shared.db import Database, utcnow
from shared.figures import cache, service
from shared.figures.models import EVERY_HELPDESK, KeptFigures
from shared.figures.period import Period
from shared.figures.service import Figures
from shared.i18n import available_languages
from shared.settings import Settings
from tests.shared.figures.dataset import NOW, PERIOD, build

MINUTES = 10


class Drawing:
    """A stand-in for the dashboard's charts: one "chart" per call, saying what it drew."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, str]] = []

    def __call__(self, figures: Figures, language: str, names: Mapping[int, str]) -> dict[str, str]:
        self.calls.append((language, figures.helpdesk_id, figures.period.first.isoformat()))
        started = figures.funnel.count("started")
        return {"funnel": f"<svg>{language} {started} {sorted(names.values())}</svg>"}


def _settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"figures_cache_minutes": MINUTES})


async def _refuse_consent(database: Database) -> None:
    """A change in the data the figures read: one more refusal in the period."""
    async with database.transaction() as session:
        session.add(ConsentRefusal(notice_version="2026-11", at=NOW - timedelta(hours=1)))


async def _figures_for(
    database: Database, settings: Settings, draw: Drawing, *, at: timedelta, language: str = "it"
) -> cache.Kept:
    async with database.transaction() as session:
        return await cache.figures_for(
            session=session, settings=settings, period=PERIOD, now=NOW + at,
            language=language, names={}, draw=draw,
        )  # fmt: skip


async def test_kept_figures_are_served_until_they_expire(
    database: Database, settings: Settings
) -> None:
    settings = _settings(settings)
    async with database.transaction() as session:
        await build(session)
    draw = Drawing()
    first = await _figures_for(database, settings, draw, at=timedelta(0))
    assert first.computed_at == NOW
    started = first.figures.funnel.count("started")
    assert first.charts == {"funnel": f"<svg>it {started} []</svg>"}

    await _refuse_consent(database)
    # Within the minutes: the same figures (the new refusal is not counted), not drawn again.
    kept = await _figures_for(database, settings, draw, at=timedelta(minutes=MINUTES, seconds=-1))
    assert kept.computed_at == NOW
    assert kept.figures == first.figures
    assert kept.charts == first.charts
    assert draw.calls == [("it", None, "2027-01-01")]

    # Then computed again, with the refusal.
    later = NOW + timedelta(minutes=MINUTES)
    again = await _figures_for(database, settings, draw, at=timedelta(minutes=MINUTES))
    assert again.computed_at == later
    assert again.figures.funnel.count("started") == started + 1
    assert again.figures.funnel.consent_refusals == first.figures.funnel.consent_refusals + 1
    assert len(draw.calls) == 2


async def test_each_language_is_drawn_once_per_computation(
    database: Database, settings: Settings
) -> None:
    settings = _settings(settings)
    async with database.transaction() as session:
        await build(session)
    draw = Drawing()
    await _figures_for(database, settings, draw, at=timedelta(0), language="it")
    english = await _figures_for(database, settings, draw, at=timedelta(minutes=1), language="en")
    assert english.charts["funnel"].startswith("<svg>en ")
    for language in ("it", "en"):
        kept = await _figures_for(
            database, settings, draw, at=timedelta(minutes=2), language=language
        )
        assert kept.charts["funnel"].startswith(f"<svg>{language} ")
    assert [language for language, _, _ in draw.calls] == ["it", "en"]
    async with database.transaction() as session:
        row = (await session.scalars(select(KeptFigures))).one()
    assert set(row.charts) == {"it", "en"}


async def test_recompute_replaces_what_is_kept(database: Database, settings: Settings) -> None:
    """The page's "refresh now": computed again at once, whatever the minutes say."""
    settings = _settings(settings)
    async with database.transaction() as session:
        await build(session)
    draw = Drawing()
    first = await _figures_for(database, settings, draw, at=timedelta(0))
    await _refuse_consent(database)
    async with database.transaction() as session:
        refreshed = await cache.recompute(
            session=session, settings=settings, period=PERIOD, now=NOW + timedelta(minutes=1),
            languages=("it",), names={}, draw=draw,
        )  # fmt: skip
    refusals = first.figures.funnel.consent_refusals + 1
    assert refreshed.figures.funnel.consent_refusals == refusals
    kept = await _figures_for(database, settings, draw, at=timedelta(minutes=2))
    assert kept.computed_at == NOW + timedelta(minutes=1)
    assert kept.figures.funnel.consent_refusals == refusals


async def test_two_computations_of_one_filter_at_once_both_succeed(
    database: Database, settings: Settings
) -> None:
    """Two requests (or instances) computing the same filter at once: no failure, one row,
    and the later computation stays even if it is written first."""
    settings = _settings(settings)
    async with database.transaction() as session:
        await build(session)
    draw = Drawing()

    async def compute(minutes: int) -> cache.Kept:
        async with database.transaction() as session:
            return await cache.recompute(
                session=session, settings=settings, period=PERIOD,
                now=NOW + timedelta(minutes=minutes), languages=("it",), names={}, draw=draw,
            )  # fmt: skip

    done = await asyncio.gather(compute(2), compute(1), compute(2))
    assert [k.computed_at for k in done] == [NOW + timedelta(minutes=m) for m in (2, 1, 2)]
    async with database.transaction() as session:
        rows = (await session.scalars(select(KeptFigures))).all()
    assert len(rows) == 1
    assert rows[0].computed_at == NOW + timedelta(minutes=2)
    # Written last, the earlier computation does not replace the later one.
    await compute(1)
    kept = await _figures_for(database, settings, draw, at=timedelta(minutes=3))
    assert kept.computed_at == NOW + timedelta(minutes=2)


async def test_the_filters_are_kept_apart(database: Database, settings: Settings) -> None:
    settings = _settings(settings)
    async with database.transaction() as session:
        built = await build(session)
    draw = Drawing()
    other = Period(PERIOD.first, PERIOD.last - timedelta(days=1))
    async with database.transaction() as session:
        for period, helpdesk_id in ((PERIOD, None), (PERIOD, built.h1), (other, None)):
            kept = await cache.figures_for(
                session=session, settings=settings, period=period, helpdesk_id=helpdesk_id,
                now=NOW, language="it", names={}, draw=draw,
            )  # fmt: skip
            assert (kept.figures.period, kept.figures.helpdesk_id) == (period, helpdesk_id)
        keys = (await session.execute(select(KeptFigures.last_day, KeptFigures.helpdesk))).all()
    assert sorted(keys) == sorted(
        [(other.last, EVERY_HELPDESK), (PERIOD.last, EVERY_HELPDESK), (PERIOD.last, built.h1)]
    )
    assert len(draw.calls) == 3


async def test_the_default_views_are_refreshed(database: Database, settings: Settings) -> None:
    settings = _settings(settings)
    async with database.transaction() as session:
        built = await build(session)
        closed = await hours.create_helpdesk(
            session=session, name="Sportello chiuso", address="Via Verdi 2", actor="test"
        )
        await hours.set_helpdesk_active(
            session=session, helpdesk_id=closed.id, active=False, actor="test"
        )
    draw = Drawing()
    # A filter someone asked for, long expired by the time of the refresh.
    await _figures_for(database, settings, draw, at=-timedelta(minutes=MINUTES))
    draw.calls.clear()

    done = await cache.refresh_default_views(
        database=database, settings=settings, now=NOW, draw=draw
    )
    assert done == cache.Refreshed(recomputed=3, deleted=1)
    twelve_months = Period.last_months(NOW.astimezone(settings.tz).date())
    views = {(twelve_months, None), (twelve_months, built.h1), (twelve_months, built.h2)}
    # Every view drawn in every language, with the helpdesks' names (the closed one's too).
    assert len(draw.calls) == len(views) * len(available_languages())
    assert set(draw.calls) == {
        (language, helpdesk_id, twelve_months.first.isoformat())
        for language in available_languages()
        for _, helpdesk_id in views
    }
    async with database.transaction() as session:
        rows = (await session.scalars(select(KeptFigures))).all()
    assert {(Period(r.first_day, r.last_day), r.helpdesk or None) for r in rows} == views
    assert all(r.computed_at == NOW and set(r.charts) == set(available_languages()) for r in rows)
    assert all("Sportello chiuso" in r.charts["it"]["funnel"] for r in rows)

    # The page as it opens is now served as kept, in either language, not drawn again.
    await _refuse_consent(database)
    draw.calls.clear()
    for language in available_languages():
        async with database.transaction() as session:
            kept = await cache.figures_for(
                session=session, settings=settings, period=twelve_months,
                now=NOW + timedelta(minutes=1), language=language, names={}, draw=draw,
            )  # fmt: skip
        assert kept.computed_at == NOW
        assert kept.charts["funnel"].startswith(f"<svg>{language} ")
    assert draw.calls == []
    refusals = kept.figures.funnel.consent_refusals

    # Kept for less than half the minutes: left alone (another instance may have done it).
    half = timedelta(minutes=MINUTES) / 2
    again = await cache.refresh_default_views(
        database=database, settings=settings, now=NOW + half - timedelta(seconds=1), draw=draw
    )
    assert again == cache.Refreshed(recomputed=0, deleted=0)
    # From half on, computed again: before they expire, with the new refusal.
    later = await cache.refresh_default_views(
        database=database, settings=settings, now=NOW + half, draw=draw
    )
    assert later == cache.Refreshed(recomputed=3, deleted=0)
    async with database.transaction() as session:
        kept = await cache.figures_for(
            session=session, settings=settings, period=twelve_months, now=NOW + half,
            language="it", names={}, draw=draw,
        )  # fmt: skip
    assert kept.computed_at == NOW + half
    assert kept.figures.funnel.consent_refusals == refusals + 1


async def test_the_component_refreshes_on_start(database: Database, settings: Settings) -> None:
    """`ripartire run`'s component computes the default views as the process starts."""
    settings = _settings(settings)
    async with database.transaction() as session:
        await build(session)
    draw = Drawing()
    component = cache.figures_cache_component(settings=settings, database=database, draw=draw)
    assert component.name == "figures-refresh"
    async with component.lifespan():
        for _ in range(200):
            async with database.transaction(read_only=True) as session:
                count = await session.scalar(select(func.count()).select_from(KeptFigures))
            if count == 3:
                break
            await asyncio.sleep(0.05)
    assert count == 3
    assert {language for language, _, _ in draw.calls} == set(available_languages())


async def test_the_kept_figures_are_the_computed_ones_on_the_demo(
    session: AsyncSession, settings: Settings
) -> None:
    """Kept as JSON (a pydantic TypeAdapter, no pickle) and read back, every figure of the
    demo's data is the same."""
    await demo.seed(session=session, settings=settings)
    now = utcnow()
    period = Period.last_months(now.astimezone(settings.tz).date())
    for helpdesk_id in (None, *(h.id for h in await hours.list_helpdesks(session=session))):
        found = await service.figures(
            session=session, settings=settings, period=period, helpdesk_id=helpdesk_id, now=now
        )
        text = json.dumps(cache.FIGURES.dump_python(found, mode="json"))
        assert cache.FIGURES.validate_python(json.loads(text)) == found
        await cache.keep(session=session, figures=found, computed_at=now, charts={})
        kept = await cache.figures_for(
            session=session, settings=settings, period=period, helpdesk_id=helpdesk_id,
            now=now, language="it", names={}, draw=Drawing(),
        )  # fmt: skip
        assert kept.figures == found
        assert kept.charts == {"funnel": f"<svg>it {found.funnel.count('started')} []</svg>"}
