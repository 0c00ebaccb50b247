from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime


class RetentionRun(Base):
    """The daily retention run of one local day (`shared.privacy.retention.run_daily`).

    The row is the day's claim: the instance that inserts it runs that day's retention,
    any other finds it and does nothing. A run that failed gives its claim back
    (`claimed_until` set to when it failed); one whose process died loses it when the
    lease lapses, and the next instance to look runs the day instead.
    """

    __tablename__ = "retention_run"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
