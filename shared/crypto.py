"""Sensitive free text encrypted at rest (SPEC J8; issue 14 point 6).

The interview's form, the plan's situation, outcome notes and return comment, the
reviews' notes and progress, and the plan's kept changes (which copy those texts) are
stored as Fernet tokens (AES-128-CBC with HMAC-SHA256, from `cryptography`) behind the
marker `fernet:`. A database dump shows only the tokens; the services and pages read
and write plain values through the column types `EncryptedText` and `EncryptedJSON`.
Nothing filters or sorts on these columns in SQL (the figures and exports read none of
them), so nothing is lost by encrypting them whole.

Keys come from `RIPARTIRE_DATA_KEY`: one or more Fernet keys separated by commas. The
first encrypts; every one decrypts (`MultiFernet`), so a rotation is: put a new key
first, run `ripartire keys rotate` (every value re-encrypted with it, in batches), then
remove the old key.

The keys belong to one engine, not to the process: `Database` attaches its `DataCipher`
to its engine's dialect, where the column types find it (a type sees only the dialect).
So two databases in one process can hold different keys, and an engine without keys
refuses, with `DataKeyError`, to read or write an encrypted value.

A stored value without the marker is one written before encryption (the migration
`encrypted_notes` encrypts those it finds): it is read as it is, and encrypted at its
next write and by `ripartire keys rotate`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, Column, Table, Text, bindparam, cast, select, type_coerce, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator, TypeEngine

from shared.settings import GENERATE_DATA_KEY

log = logging.getLogger(__name__)

MARKER = "fernet:"
SETTING = "RIPARTIRE_DATA_KEY"
_DIALECT_ATTRIBUTE = "ripartire_data_cipher"
# Rows read and rewritten per transaction by `rotate`: short write locks, few round trips.
ROTATE_BATCH = 500


class DataKeyError(Exception):
    """The data keys are missing or don't open the stored data; one line naming the setting."""


class DataCipher:
    """Encrypts with the first of its keys, decrypts with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("a DataCipher needs at least one key")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, text: str) -> str:
        return MARKER + self._all.encrypt(text.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The text of a stored token; `InvalidToken` when none of the keys opens it."""
        return self._all.decrypt(stored.removeprefix(MARKER).encode("ascii")).decode()

    def is_current(self, stored: str) -> bool:
        """Whether the first key opens the token (nothing to re-encrypt)."""
        try:
            self._primary.decrypt(stored.removeprefix(MARKER).encode("ascii"))
        except InvalidToken:
            return False
        return True

    def rotate(self, stored: str) -> str:
        """The same text, encrypted with the first key; `InvalidToken` if no key opens it."""
        return MARKER + self._all.rotate(stored.removeprefix(MARKER).encode("ascii")).decode(
            "ascii"
        )


def is_encrypted(stored: object) -> bool:
    return isinstance(stored, str) and stored.startswith(MARKER)


def attach(engine: AsyncEngine | Engine, cipher: DataCipher | None) -> None:
    """Give the engine's connections (and so the column types) their keys."""
    setattr(engine.dialect, _DIALECT_ATTRIBUTE, cipher)


def cipher_of(dialect: Dialect) -> DataCipher:
    cipher = getattr(dialect, _DIALECT_ATTRIBUTE, None)
    if not isinstance(cipher, DataCipher):
        raise DataKeyError(f"{SETTING} is not set: generate a key with {GENERATE_DATA_KEY}")
    return cipher


def _decrypt(stored: str, dialect: Dialect) -> str:
    try:
        return cipher_of(dialect).decrypt(stored)
    except InvalidToken:
        raise DataKeyError(
            f"{SETTING} does not open the encrypted data: set the key it was written with"
        ) from None


class EncryptedText(TypeDecorator[str]):
    """A text column stored as a Fernet token."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else cipher_of(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not is_encrypted(value):
            return value
        return _decrypt(value, dialect)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON column whose document is stored as a Fernet token (a JSON string).

    The column stays JSON in the schema: a value written before encryption is still a
    JSON object there, read as it is; SQL NULL and JSON null stay what they were.
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return cipher_of(dialect).encrypt(json.dumps(value, ensure_ascii=False))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(_decrypt(value, dialect)) if is_encrypted(value) else value


# --- every encrypted value: the start-up check and the rotation ------------------------


def encrypted_columns(tables: Iterable[Table]) -> list[tuple[Table, Column[Any]]]:
    """(table, column) for every column of an encrypted type, in the tables' order."""
    return [
        (table, column)
        for table in tables
        for column in table.columns
        if isinstance(column.type, EncryptedText | EncryptedJSON)
    ]


def _stored_type(column: Column[Any]) -> TypeEngine[Any]:
    """The column's type without the encryption: what the database holds."""
    return JSON() if isinstance(column.type, EncryptedJSON) else Text()


def _token_pattern(column: Column[Any]) -> str:
    # A JSON column holds the token as a JSON string, quotes included.
    return ('"' if isinstance(column.type, EncryptedJSON) else "") + MARKER + "%"


def _first_token(connection: Connection, column: Column[Any]) -> str | None:
    text_of = cast(column, Text)
    stored = connection.execute(
        select(type_coerce(column, _stored_type(column)))
        .where(text_of.like(_token_pattern(column)))
        .limit(1)
    ).scalar()
    return stored if isinstance(stored, str) else None


def check_keys(connection: Connection, tables: Iterable[Table]) -> None:
    """Refuse (`DataKeyError`) keys that can't read what is stored: none while some value
    is encrypted, or keys that open none of a column's first token."""
    cipher = getattr(connection.dialect, _DIALECT_ATTRIBUTE, None)
    for table, column in encrypted_columns(tables):
        token = _first_token(connection, column)
        if token is None:
            continue
        where = f"{table.name}.{column.name}"
        if not isinstance(cipher, DataCipher):
            raise DataKeyError(
                f"{SETTING} is not set, and the database holds encrypted data ({where}): "
                "set the key it was written with"
            )
        try:
            cipher.decrypt(token)
        except InvalidToken:
            raise DataKeyError(
                f"{SETTING} does not open the encrypted data ({where}): set the key it was "
                "written with (during a rotation, the new key first and the old one after it)"
            ) from None


@dataclass
class RotationReport:
    """What `rotate` did, in counts per "table.column" (never a value)."""

    reencrypted: dict[str, int] = field(default_factory=dict)
    encrypted_plain: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)

    def count(self, counts: dict[str, int], where: str) -> None:
        counts[where] = counts.get(where, 0) + 1


def _rewritten(
    cipher: DataCipher, stored: Any, column: Column[Any], where: str, report: RotationReport
) -> str | None:
    """What to store in place of `stored` (None: it is right as it is), counted."""
    if stored is None:
        return None
    if not is_encrypted(stored):
        report.count(report.encrypted_plain, where)
        plain = json.dumps(stored, ensure_ascii=False) if _is_json(column) else str(stored)
        return cipher.encrypt(plain)
    if cipher.is_current(stored):
        report.count(report.current, where)
        return None
    report.count(report.reencrypted, where)
    return cipher.rotate(stored)


def _is_json(column: Column[Any]) -> bool:
    return isinstance(column.type, EncryptedJSON)


def rotate_batch(
    connection: Connection,
    table: Table,
    columns: Sequence[Column[Any]],
    *,
    after: Any,
    report: RotationReport,
    batch: int = ROTATE_BATCH,
) -> Any:
    """Re-encrypt with the first key the `columns` of up to `batch` rows of `table` whose
    primary key follows `after` (None: from the start); plain (legacy) values are
    encrypted. The rows are locked until the transaction ends (PostgreSQL; SQLite's
    write transaction holds the database), so no change made meanwhile is overwritten.

    Returns the last primary key read, None when the table is done. `DataKeyError` names
    the row (by id) whose value no key opens.
    """
    cipher = cipher_of(connection.dialect)
    (key,) = table.primary_key.columns
    query = select(key, *(type_coerce(c, _stored_type(c)).label(c.name) for c in columns))
    if after is not None:
        query = query.where(key > after)
    rows = connection.execute(query.order_by(key).limit(batch).with_for_update()).all()
    if not rows:
        return None
    for column in columns:
        where = f"{table.name}.{column.name}"
        changed = []
        for row in rows:
            try:
                new = _rewritten(cipher, getattr(row, column.name), column, where, report)
            except InvalidToken:
                raise DataKeyError(
                    f"{SETTING} does not open {where} of row {row[0]}: add the key it was "
                    "written with after the new one"
                ) from None
            if new is not None:
                changed.append({"row_key": row[0], "new_value": new})
        if changed:
            connection.execute(
                update(table)
                .where(key == bindparam("row_key"))
                .values({column.name: type_coerce(bindparam("new_value"), _stored_type(column))}),
                changed,
            )
    return rows[-1][0]


def _by_table(tables: Iterable[Table]) -> dict[Table, list[Column[Any]]]:
    grouped: dict[Table, list[Column[Any]]] = {}
    for table, column in encrypted_columns(tables):
        grouped.setdefault(table, []).append(column)
    return grouped


async def rotate(
    engine: AsyncEngine, tables: Iterable[Table], *, batch: int = ROTATE_BATCH
) -> RotationReport:
    """Every encrypted value re-encrypted with the first key (and every plain one
    encrypted), one transaction per batch of rows: afterwards the other keys can go."""
    report = RotationReport()
    for table, columns in _by_table(tables).items():
        after: Any = None
        while True:
            async with engine.begin() as connection:
                after = await connection.run_sync(
                    functools.partial(
                        rotate_batch, table=table, columns=columns, after=after,
                        report=report, batch=batch,
                    )
                )  # fmt: skip
            if after is None:
                break
            log.info("keys rotate: %s up to id %s", table.name, after)
    return report


async def check_stored(engine: AsyncEngine, tables: Iterable[Table]) -> None:
    """`check_keys` on a connection of `engine`."""
    chosen = list(tables)
    async with engine.connect() as connection:
        await connection.run_sync(lambda c: check_keys(c, chosen))
