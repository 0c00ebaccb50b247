"""The figures kept for a while (`shared.figures.cache`): one row per filter of the page.

The figures are a report, not a live screen: each filter's are computed once and served
for `settings.figures_cache_minutes`, from the database so that every instance of the
program serves the same ones. A row holds numbers only (counts, sums, medians, the
funds' names), never a citizen: no erasure has anything to remove from it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime

# `KeptFigures.helpdesk` of the figures of every helpdesk. A primary key can't hold NULL,
# and a unique index would not treat two NULLs as the same filter (ON CONFLICT).
EVERY_HELPDESK = 0


class KeptFigures(Base):
    """The figures of one filter (period, helpdesk) as computed at `computed_at`."""

    __tablename__ = "kept_figures"
    __table_args__ = (CheckConstraint("helpdesk >= 0", name="helpdesk"),)

    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_day: Mapped[date] = mapped_column(Date, primary_key=True)
    # The helpdesk's id, or EVERY_HELPDESK. Not a foreign key: helpdesks are never
    # deleted (they close), and the row would go with the figures' period anyway.
    helpdesk: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # `shared.figures.service.Figures` as JSON (`cache.FIGURES`, a pydantic TypeAdapter).
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The charts the dashboard drew from these figures: language -> chart -> SVG.
    charts: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
