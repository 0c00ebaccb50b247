"""Sensitive free text encrypted at rest (shared.crypto): the values already stored.

The columns keep their types (text, JSON): from now on they hold Fernet tokens behind
the marker `fernet:` (a JSON column holds the token as a JSON string). This migration
encrypts the plain values already there with the first key of RIPARTIRE_DATA_KEY, which
`ripartire db upgrade` and `ripartire run` give the engine. Without a key it changes
nothing on a database that holds none of these values (a new one), and refuses, naming
the setting, one that does: the notes are never left in clear by an upgrade. A plain value
that arrives later anyway (a restored old dump) is read as it is, and encrypted at its
next write and by `ripartire keys rotate`.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from shared import crypto

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tables() -> list[sa.Table]:
    """The encrypted columns as of this revision (not the models of a later one)."""
    metadata = sa.MetaData()
    key = lambda: sa.Column("id", sa.Integer, primary_key=True)  # noqa: E731
    return [
        sa.Table("interview", metadata, key(), sa.Column("answers", crypto.EncryptedJSON())),
        sa.Table(
            "plan",
            metadata,
            key(),
            sa.Column("summary", crypto.EncryptedText()),
            sa.Column("return_comment", crypto.EncryptedText()),
            sa.Column("outcome_notes", crypto.EncryptedText()),
        ),
        sa.Table(
            "plan_change",
            metadata,
            key(),
            sa.Column("before", crypto.EncryptedJSON()),
            sa.Column("after", crypto.EncryptedJSON()),
        ),
        sa.Table(
            "plan_review",
            metadata,
            key(),
            sa.Column("progress", crypto.EncryptedJSON()),
            sa.Column("notes", crypto.EncryptedText()),
        ),
    ]


def _holds_values(connection: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> bool:
    # A JSON column's SQL text of a Python None is 'null': nothing to encrypt.
    stored = sa.cast(column, sa.Text)
    query = sa.select(sa.literal(1)).where(stored.is_not(None), stored != "null").limit(1)
    return connection.execute(query).first() is not None


def upgrade() -> None:
    connection = op.get_bind()
    tables = _tables()
    try:
        crypto.cipher_of(connection.dialect)
    except crypto.DataKeyError:
        for table, column in crypto.encrypted_columns(tables):
            if _holds_values(connection, table, column):
                raise crypto.DataKeyError(
                    f"{crypto.SETTING} is not set: migration 0022 encrypts the notes already "
                    f"stored ({table.name}.{column.name}); generate a key with "
                    f"{crypto.GENERATE_DATA_KEY}, set it and run again"
                ) from None
        return
    report = crypto.RotationReport()
    for table in tables:
        columns = [c for c in table.columns if not c.primary_key]
        after: Any = None
        while (
            after := crypto.rotate_batch(connection, table, columns, after=after, report=report)
        ) is not None:
            pass


def downgrade() -> None:
    connection = op.get_bind()
    for table in _tables():
        for column in (c for c in table.columns if not c.primary_key):
            is_json = isinstance(column.type, crypto.EncryptedJSON)
            stored_type = sa.JSON() if is_json else sa.Text()
            key = table.c.id
            rows = connection.execute(
                sa.select(key, sa.type_coerce(column, stored_type).label("value"))
            ).all()
            plain = []
            for row in rows:
                if crypto.is_encrypted(row.value):
                    text = crypto.cipher_of(connection.dialect).decrypt(row.value)
                    plain.append(
                        {"row_key": row.id, "plain": json.loads(text) if is_json else text}
                    )
            if plain:
                connection.execute(
                    sa.update(table)
                    .where(key == sa.bindparam("row_key"))
                    .values({column.name: sa.type_coerce(sa.bindparam("plain"), stored_type)}),
                    plain,
                )
