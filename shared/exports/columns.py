"""What an export is made of: typed columns, sheets of rows, and the export itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.i18n import Translator
from shared.settings import Settings


class Kind(StrEnum):
    """How a column's values are typed in a spreadsheet."""

    TEXT = "text"
    INT = "int"
    DATE = "date"
    DATETIME = "datetime"
    # Integer cents; a number with the euro format in XLSX.
    MONEY = "money"


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True, slots=True)
class Column:
    label: str  # a msgid
    kind: Kind = Kind.TEXT


Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Days:
    """The local days an export covers, both included; None is open on that side."""

    first: date | None = None
    last: date | None = None

    def described(self) -> dict[str, str | None]:
        """The filter as the audit event keeps it."""
        return {
            "from": self.first.isoformat() if self.first else None,
            "to": self.last.isoformat() if self.last else None,
        }


@dataclass(frozen=True, slots=True)
class Context:
    """What a definition reads its rows with."""

    session: AsyncSession
    settings: Settings
    days: Days
    t: Translator
    now: datetime


@dataclass(frozen=True, slots=True)
class Sheet:
    """A table: a title (a msgid, the XLSX sheet's name), its columns and its rows, read
    as they are iterated."""

    title: str
    columns: tuple[Column, ...]
    rows: AsyncIterator[Row]


@dataclass(frozen=True, slots=True)
class Export:
    name: str  # stable: the CLI's argument and the address
    title: str  # msgid
    description: str  # msgid
    sheets: Callable[[Context], Sequence[Sheet]]
    formats: tuple[Format, ...] = (Format.CSV, Format.XLSX)
