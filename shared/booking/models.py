from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from babel import Locale
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime, utcnow
from shared.i18n import DEFAULT_LANGUAGE, N_, Translator, normalise_language


class BookingState(StrEnum):
    BOOKED = "booked"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED_BY_CITIZEN = "cancelled_by_citizen"
    CANCELLED_BY_STAFF = "cancelled_by_staff"


class Moderation(StrEnum):
    """Where a request at a moderated helpdesk stands (`Booking.moderation`; null elsewhere).

    A pending request holds its place like any booking (state `booked`); declined and
    expired ones are cancelled bookings too, and so are withdrawn ones: cancelled or moved
    (by the citizen or the staff) before anyone confirmed or declined them."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class WaitlistState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    DECLINED = "declined"
    LEFT = "left"


@dataclass(frozen=True)
class Directions:
    """A helpdesk's directions as a citizen reading one language gets them."""

    text: str
    # The language `text` is written in.
    language: str
    # The reader's language has none: these are the Italian ones, and `note` says so.
    fallback: bool
    # "(in Italian)" in the reader's language when `fallback`, else empty.
    note: str = ""

    @property
    def shown(self) -> str:
        """The text with its note, as a citizen reads it."""
        return f"{self.text} {self.note}" if self.note else self.text


FALLBACK_NOTE = N_("(in {language})")


class Helpdesk(Base):
    """A sportello: a place and its staff where interviews happen."""

    __tablename__ = "helpdesk"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    address: Mapped[str] = mapped_column(String(200))
    # The Italian directions: what every citizen gets when their language has none.
    directions: Mapped[str] = mapped_column(Text, default="")
    # Directions in the program's other languages ("en" → text), each optional.
    directions_translations: Mapped[dict[str, str]] = mapped_column(
        JSON, default=dict, server_default=text("'{}'")
    )
    active: Mapped[bool] = mapped_column(default=True)
    # A citizen's choice here is a request a coordinator confirms (or declines).
    moderated: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def directions_by_language(self) -> dict[str, str]:
        """Every language that has directions, Italian first."""
        given = {DEFAULT_LANGUAGE: self.directions, **(self.directions_translations or {})}
        return {language: text for language, text in given.items() if text}

    def directions_in(self, language: str) -> Directions | None:
        """The directions a citizen reading `language` gets: theirs, else the Italian ones
        with a note saying so; None when the helpdesk has no directions."""
        reader = normalise_language(language)
        given = self.directions_by_language
        if reader in given:
            return Directions(given[reader], reader, fallback=False)
        if DEFAULT_LANGUAGE not in given:
            return None
        name = Locale.parse(reader).languages.get(DEFAULT_LANGUAGE, DEFAULT_LANGUAGE)
        note = Translator(reader)(FALLBACK_NOTE, language=name)
        return Directions(given[DEFAULT_LANGUAGE], DEFAULT_LANGUAGE, fallback=True, note=note)


class OpeningRule(Base):
    """Weekly hours: every `weekday` (0 = Monday) from `opens_at` to `closes_at`, local time."""

    __tablename__ = "opening_rule"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("opens_at < closes_at", name="hours"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 480", name="slot_minutes"),
        CheckConstraint("places BETWEEN 1 AND 100", name="places"),
        CheckConstraint("valid_until IS NULL OR valid_from <= valid_until", name="validity"),
        Index("ix_opening_rule_helpdesk", "helpdesk_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    helpdesk_id: Mapped[int] = mapped_column(ForeignKey("helpdesk.id", ondelete="CASCADE"))
    weekday: Mapped[int]
    opens_at: Mapped[time] = mapped_column(Time)
    closes_at: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int]
    places: Mapped[int]
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)


class Closure(Base):
    """A dated closure: the whole day when `starts_at` is null, else those hours."""

    __tablename__ = "closure"
    __table_args__ = (
        CheckConstraint(
            "(starts_at IS NULL AND ends_at IS NULL) OR "
            "(starts_at IS NOT NULL AND ends_at IS NOT NULL AND starts_at < ends_at)",
            name="hours",
        ),
        Index("ix_closure_helpdesk_day", "helpdesk_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    helpdesk_id: Mapped[int] = mapped_column(ForeignKey("helpdesk.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[time | None] = mapped_column(Time)
    ends_at: Mapped[time | None] = mapped_column(Time)
    reason: Mapped[str] = mapped_column(String(200), default="")


class ExtraOpening(Base):
    """A one-off opening on a date, outside (or on top of) the weekly rules."""

    __tablename__ = "extra_opening"
    __table_args__ = (
        CheckConstraint("opens_at < closes_at", name="hours"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 480", name="slot_minutes"),
        CheckConstraint("places BETWEEN 1 AND 100", name="places"),
        Index("ix_extra_opening_helpdesk_day", "helpdesk_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    helpdesk_id: Mapped[int] = mapped_column(ForeignKey("helpdesk.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    opens_at: Mapped[time] = mapped_column(Time)
    closes_at: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int]
    places: Mapped[int]
    note: Mapped[str] = mapped_column(String(200), default="")


class Slot(Base):
    """Places taken in one slot. Created at the first booking; the row the race is fought on.

    `taken` counts bookings and waitlist holds; the database refuses `taken > capacity`.
    """

    __tablename__ = "slot"
    __table_args__ = (
        UniqueConstraint("helpdesk_id", "starts_at"),
        CheckConstraint("taken >= 0", name="taken_not_negative"),
        CheckConstraint("taken <= capacity", name="not_overfilled"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    helpdesk_id: Mapped[int] = mapped_column(ForeignKey("helpdesk.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capacity: Mapped[int]
    taken: Mapped[int] = mapped_column(default=0)


ACTIVE = BookingState.BOOKED.value
# Citizens with this many no-shows or more are the board's "repeated no-shows".
REPEATED_NO_SHOWS = 2


class Booking(Base):
    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint(
            "state IN ('booked', 'attended', 'no_show', 'cancelled_by_citizen', "
            "'cancelled_by_staff')",
            name="state",
        ),
        # One active booking per citizen, enforced by the database whatever the concurrency.
        Index(
            "uq_booking_one_active_per_citizen",
            "citizen_id",
            unique=True,
            sqlite_where=text("state = 'booked'"),
            postgresql_where=text("state = 'booked'"),
        ),
        Index("ix_booking_helpdesk_starts_at", "helpdesk_id", "starts_at"),
        Index("ix_booking_slot", "slot_id"),
        Index(
            "ix_booking_pending_request",
            "created_at",
            sqlite_where=text("moderation = 'pending'"),
            postgresql_where=text("moderation = 'pending'"),
        ),
        # The coordinators' board (shared.booking.board): its orders, alone and by state,
        # the moderated bookings, and each citizen's no-shows.
        Index("ix_booking_starts_at", "starts_at", "id"),
        Index("ix_booking_created_at", "created_at", "id"),
        Index("ix_booking_state_starts_at", "state", "starts_at", "id"),
        Index("ix_booking_state_created_at", "state", "created_at", "id"),
        Index(
            "ix_booking_moderation_starts_at",
            "moderation",
            "starts_at",
            "id",
            sqlite_where=text("moderation IS NOT NULL"),
            postgresql_where=text("moderation IS NOT NULL"),
        ),
        Index(
            "ix_booking_no_show_citizen",
            "citizen_id",
            sqlite_where=text("state = 'no_show'"),
            postgresql_where=text("state = 'no_show'"),
        ),
        Index(
            "ix_booking_urgent_state_starts_at",
            "state",
            "starts_at",
            "id",
            # As each database writes the filter (SQLite: `= 1`): a partial index serves
            # SQLite only when the query says the same (migration 0025).
            sqlite_where=text("citizen_urgent = 1"),
            postgresql_where=text("citizen_urgent"),
        ),
        Index(
            "ix_booking_repeated_state_starts_at",
            "state",
            "starts_at",
            "id",
            sqlite_where=text("citizen_repeated_no_shows = 1"),
            postgresql_where=text("citizen_repeated_no_shows"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    helpdesk_id: Mapped[int] = mapped_column(ForeignKey("helpdesk.id"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(24), default=ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(80))
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    # A move is a cancellation plus a new booking that points back to the old one.
    moved_from_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    # The citizen's `urgent`, kept equal to it by `shared.booking.places` (when the booking
    # is made and when the citizen is assessed again): the board filters on it by index.
    citizen_urgent: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # Whether the citizen has missed `REPEATED_NO_SHOWS` appointments or more, on every
    # booking of theirs: set by `shared.booking.places` when the booking is made and when a
    # no-show is recorded (a no-show is final, so it never goes back); the board's
    # "repeated no-shows" filter walks its index like the urgent one.
    citizen_repeated_no_shows: Mapped[bool] = mapped_column(
        default=False, server_default=text("false")
    )
    # At a moderated helpdesk: a `Moderation` value, and until when a pending request
    # holds its place; who confirmed or declined it, and when. Null elsewhere.
    moderation: Mapped[str | None] = mapped_column(String(10))
    request_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    moderated_by: Mapped[str | None] = mapped_column(String(80))


class WaitlistEntry(Base):
    __tablename__ = "waitlist_entry"
    __table_args__ = (
        CheckConstraint(
            "state IN ('waiting', 'offered', 'accepted', 'expired', 'declined', 'left')",
            name="state",
        ),
        Index(
            "uq_waitlist_one_open_per_citizen",
            "citizen_id",
            unique=True,
            sqlite_where=text("state IN ('waiting', 'offered')"),
            postgresql_where=text("state IN ('waiting', 'offered')"),
        ),
        Index("ix_waitlist_entry_queue", "state", "urgent", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    # Null: any helpdesk will do.
    helpdesk_id: Mapped[int | None] = mapped_column(ForeignKey("helpdesk.id"))
    urgent: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(10), default=WaitlistState.WAITING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    offered_slot_id: Mapped[int | None] = mapped_column(ForeignKey("slot.id"))
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    # A place offered by staff (`shared.booking.offers`), not freed for the waitlist: who
    # offered it, and the booking that accepting it moves there (None: a booking of its own).
    offered_by: Mapped[str | None] = mapped_column(String(80))
    replaces_booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
