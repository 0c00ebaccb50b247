from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime


class Lease(Base):
    """Who runs a periodic job (`shared.leases.service`) until `expires_at`.

    One row per job, e.g. "housekeeping": with several instances on one database, the
    instance named in `holder` runs the job's rounds and renews the lease at each; the
    others skip theirs. A holder that stops gives it back; one whose process died loses
    it when it expires, and the next instance to ask takes it.
    """

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # An instance's name for itself (`new_holder`): host, process and a random part.
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
