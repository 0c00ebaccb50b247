"""The figures are a report, not a live screen: each filter's are computed once and kept
for `settings.figures_cache_minutes`, in the database (`KeptFigures`), so that every
instance of the program serves the same ones and a restart loses nothing.

At 100k cases computing a filter's figures reads a year of rows (seconds: see
docs/benchmarks.md, "Figures and exports"), and drawing the page's nine charts takes
another ~0.3 s; the page reads both from here instead, in one statement:

- `figures_for`: the filter's figures computed less than `figures_cache_minutes` ago, or
  computed now and kept (an upsert: two requests computing the same filter at once both
  succeed, the later computation stays); the charts in the viewer's language, drawn by
  the dashboard's `draw` once per computation and language and kept in the same row;
- `recompute`: the "refresh now" of the page, and the running process's refresh;
- `refresh_default_views`: what `figures_cache_component` runs every minute (on one
  instance of several: `shared.leases`), so that the
  page as it opens (the last twelve months, every helpdesk, and each open helpdesk's)
  is always kept: recomputed once half of `figures_cache_minutes` has passed, each in a
  read-only transaction (SQLite's write lock is not held for the seconds it takes), and
  the rows of filters nobody asked for since they expired are deleted.

What is kept is numbers, no citizen (`shared.figures.models`): an erasure has nothing to
remove here, and the figures it leaves are the ones the page computes (the questionnaire's
anonymous tally keeps an erased questionnaire's counts). The exports compute their figures
afresh (`shared.exports.definitions`): a file for the funders is a document of the moment
it was written, not of up to `figures_cache_minutes` before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shared.booking import hours
from shared.db import Database, upsert_insert
from shared.figures import service
from shared.figures.models import EVERY_HELPDESK, KeptFigures
from shared.figures.period import Period
from shared.figures.service import Figures
from shared.i18n import available_languages
from shared.leases import service as leases
from shared.runtime import Component
from shared.settings import Settings

log = logging.getLogger(__name__)

# `Figures` to JSON and back: plain data (numbers, dates, names), validated when read.
FIGURES: TypeAdapter[Figures] = TypeAdapter(Figures)
INTERVAL_SECONDS = 60.0
# One instance of several refreshes the views (`shared.leases`): the one renewing this
# lease each round; one that died hands it over after LEASE_TTL.
LEASE_NAME = "figures-refresh"
LEASE_TTL = timedelta(minutes=5)

# One chart's name -> its SVG.
Charts = Mapping[str, str]
# The dashboard's charts of some figures in a language, with the helpdesks' names.
Draw = Callable[[Figures, str, Mapping[int, str]], Charts]


@dataclass(frozen=True, slots=True)
class Kept:
    """A filter's figures, when they were computed, and their charts in one language."""

    figures: Figures
    computed_at: datetime
    charts: Charts


def _ttl(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.figures_cache_minutes)


def _key(period: Period, helpdesk_id: int | None) -> tuple[ColumnElement[bool], ...]:
    return (
        KeptFigures.first_day == period.first,
        KeptFigures.last_day == period.last,
        KeptFigures.helpdesk == (EVERY_HELPDESK if helpdesk_id is None else helpdesk_id),
    )


async def figures_for(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period,
    helpdesk_id: int | None = None,
    now: datetime,
    language: str,
    names: Mapping[int, str],
    draw: Draw,
) -> Kept:
    """The page's figures for the filter and their charts in `language`: kept ones if
    computed less than `figures_cache_minutes` before `now`, else computed now and kept.

    One statement when they are kept with charts in that language, two when they are kept
    without (drawn now, added); the figures' statements and one more when not kept."""
    found = (
        await session.execute(
            select(KeptFigures.computed_at, KeptFigures.figures, KeptFigures.charts[language])
            .where(*_key(period, helpdesk_id))
            .where(KeptFigures.computed_at > now - _ttl(settings))
        )
    ).first()
    if found is None:
        return await recompute(
            session=session, settings=settings, period=period, helpdesk_id=helpdesk_id,
            now=now, languages=(language,), names=names, draw=draw,
        )  # fmt: skip
    computed_at, stored, charts = found
    figures = FIGURES.validate_python(stored)
    if charts is None:
        charts = dict(draw(figures, language, names))
        await _add_charts(session, period, helpdesk_id, computed_at, language, charts)
    return Kept(figures=figures, computed_at=computed_at, charts=charts)


async def _add_charts(
    session: AsyncSession,
    period: Period,
    helpdesk_id: int | None,
    computed_at: datetime,
    language: str,
    charts: Charts,
) -> None:
    """Keep one more language's charts with the figures they were drawn from.

    Read and written back whole (SQLite and PostgreSQL change JSON differently): two
    languages added at the same moment may keep only one, and the other is drawn again
    at its next request. Not at all if the figures were computed again meanwhile."""
    same = (*_key(period, helpdesk_id), KeptFigures.computed_at == computed_at)
    kept = await session.scalar(select(KeptFigures.charts).where(*same))
    if kept is None:
        return
    await session.execute(
        update(KeptFigures).where(*same).values(charts={**kept, language: dict(charts)})
    )


async def recompute(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period,
    helpdesk_id: int | None = None,
    now: datetime,
    languages: Iterable[str],
    names: Mapping[int, str],
    draw: Draw,
) -> Kept:
    """Compute the filter's figures as of `now`, draw their charts in each language and
    keep them (in place of older ones); the first language's charts come back."""
    figures = await service.figures(
        session=session, settings=settings, period=period, helpdesk_id=helpdesk_id, now=now
    )
    charts = {language: dict(draw(figures, language, names)) for language in languages}
    await keep(session=session, figures=figures, computed_at=now, charts=charts)
    return Kept(figures=figures, computed_at=now, charts=next(iter(charts.values()), {}))


async def keep(
    *,
    session: AsyncSession,
    figures: Figures,
    computed_at: datetime,
    charts: Mapping[str, Charts],
) -> None:
    """Keep figures computed at `computed_at` for their filter, with their charts; one
    statement. Two computations of one filter at once both succeed: the later one stays."""
    helpdesk = EVERY_HELPDESK if figures.helpdesk_id is None else figures.helpdesk_id
    values = upsert_insert(session, KeptFigures).values(
        first_day=figures.period.first,
        last_day=figures.period.last,
        helpdesk=helpdesk,
        computed_at=computed_at,
        figures=FIGURES.dump_python(figures, mode="json"),
        charts={language: dict(drawn) for language, drawn in charts.items()},
    )
    await session.execute(
        values.on_conflict_do_update(
            index_elements=[KeptFigures.first_day, KeptFigures.last_day, KeptFigures.helpdesk],
            set_={
                "computed_at": values.excluded.computed_at,
                "figures": values.excluded.figures,
                "charts": values.excluded.charts,
            },
            where=KeptFigures.computed_at <= values.excluded.computed_at,
        )
    )


def default_filters(
    *, now: datetime, settings: Settings, helpdesk_ids: Iterable[int]
) -> list[tuple[Period, int | None]]:
    """The page as it opens at `now`: every helpdesk, then each of `helpdesk_ids`."""
    period = Period.last_months(now.astimezone(settings.tz).date())
    return [(period, None), *((period, helpdesk_id) for helpdesk_id in helpdesk_ids)]


@dataclass(frozen=True, slots=True)
class Refreshed:
    # Default views computed again (the others were recent enough, perhaps by another
    # instance); rows deleted because nobody had asked for their filter since they expired.
    recomputed: int
    deleted: int


async def refresh_default_views(
    *, database: Database, settings: Settings, now: datetime, draw: Draw
) -> Refreshed:
    """Keep the default views' figures fresh: each one kept for less than half of
    `figures_cache_minutes` is computed again, with its charts in every language."""
    ttl = _ttl(settings)
    async with database.transaction(read_only=True) as session:
        helpdesks = await hours.list_helpdesks(session=session, active_only=False)
    names = {h.id: h.name for h in helpdesks}
    recomputed = 0
    views = default_filters(
        now=now, settings=settings, helpdesk_ids=[h.id for h in helpdesks if h.active]
    )
    for period, helpdesk_id in views:
        async with database.transaction(read_only=True) as session:
            computed_at = await session.scalar(
                select(KeptFigures.computed_at).where(*_key(period, helpdesk_id))
            )
            if computed_at is not None and now - computed_at < ttl / 2:
                continue
            figures = await service.figures(
                session=session, settings=settings, period=period, helpdesk_id=helpdesk_id,
                now=now,
            )  # fmt: skip
        # Drawing takes a few tenths of a second per language: off the event loop.
        charts = {
            language: await asyncio.to_thread(draw, figures, language, names)
            for language in available_languages()
        }
        async with database.transaction() as session:
            await keep(session=session, figures=figures, computed_at=now, charts=charts)
        recomputed += 1
    async with database.transaction() as session:
        result = await session.execute(
            delete(KeptFigures).where(KeptFigures.computed_at <= now - ttl)
        )
        deleted = cast(CursorResult[Any], result).rowcount
    return Refreshed(recomputed=recomputed, deleted=deleted or 0)


def figures_cache_component(
    *, settings: Settings, database: Database, draw: Draw, interval: float = INTERVAL_SECONDS
) -> Component:
    """The default views' refresh as a component of the `ripartire run` process, every
    `interval` seconds when this instance holds the lease; `draw` is the dashboard's
    (`shared/` draws no chart)."""
    holder = leases.new_holder()

    async def round_(now: datetime) -> None:
        done = await refresh_default_views(database=database, settings=settings, now=now, draw=draw)
        if done.recomputed or done.deleted:
            log.info("figures kept: %s", done)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        stop = asyncio.Event()
        loop = leases.periodic(
            database=database, name=LEASE_NAME, holder=holder, interval=interval,
            ttl=LEASE_TTL, job=round_, stop=stop,
        )  # fmt: skip
        task = asyncio.create_task(
            loop,
            name="figures-refresh",
        )
        try:
            yield
        finally:
            stop.set()
            await task

    return Component(name="figures-refresh", lifespan=lifespan)
