"""The audit log as a hash chain, with checkpoints for pruning; no personal data in it.

Each event gets `prev_hash` and `row_hash` (`shared.audit.hashing`), computed here for the
events already recorded, in id order; a unique index on `prev_hash` lets no two events
follow the same one. `audit_checkpoint` records what a prune removed (insert-only). The
append-only triggers of 0001 are replaced: UPDATE is still always refused, DELETE only of
events a checkpoint covers (and on PostgreSQL only while `ripartire.audit_prune` is on in
the transaction: `shared.audit.service.prune_before` is the one path that sets it).

Before the chain is computed, the details recorded so far lose what the services no
longer record (SPEC J8: the log outlives an erasure): booking codes, usernames, the
text of case searches and what staff typed as reasons and referrals (the booking, the
case and the interview keep those); a failed sign-in names the account by id when the
username typed was one. That part is not undone by the downgrade.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.audit import hashing
from shared.db import UTCDateTime

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# asyncpg runs one statement per call, hence tuples.
_PG_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE'
           AND current_setting('ripartire.audit_prune', true) = 'on'
           AND OLD.id <= (SELECT max(through_id) FROM audit_checkpoint) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_event is append-only';
    END;
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
    """CREATE FUNCTION audit_checkpoint_insert_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit_checkpoint is append-only';
    END;
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_insert_only()""",
)
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
    "WHEN OLD.id > coalesce((SELECT max(through_id) FROM audit_checkpoint), 0) "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint "
    "BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END",
    "CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint "
    "BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END",
)
# 0001's triggers, for the downgrade.
_PG_0001 = """CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit_event is append-only';
    END;
    $$ LANGUAGE plpgsql"""

_EVENTS = sa.table(
    "audit_event",
    sa.column("id", sa.Integer()),
    sa.column("at", UTCDateTime()),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("object_type", sa.String()),
    sa.column("object_id", sa.String()),
    sa.column("details", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("row_hash", sa.String()),
)
_STAFF = sa.table("staff_user", sa.column("id", sa.Integer()), sa.column("username", sa.String()))
_BATCH = 1000
# Details no event keeps any more (see the docstring), and where "reason" is typed text.
_NEVER = ("code", "username", "text", "referred_to")
_TYPED_REASON = ("case.outcome", "case.eligibility", "case.close", "booking.request_declined")
_REASON_CODES = ("moved", "erasure")


def _scrubbed(row: Any, staff: dict[str, int]) -> tuple[dict[str, Any], str | None]:
    details = dict(row.details or {}) if isinstance(row.details, dict) else {}
    object_id = row.object_id
    if row.action == "staff.login_failed" and object_id is None:
        known = staff.get(str(details.get("username", "")).strip().lower())
        object_id = str(known) if known is not None else None
    if row.action == "case.search" and details.get("text"):
        details["by_text"] = True
    for key in _NEVER:
        details.pop(key, None)
    if row.action in _TYPED_REASON:
        details.pop("reason", None)
    if row.action == "booking.cancel" and details.get("reason") not in _REASON_CODES:
        details["reason"] = None
    return hashing.plain_details(details), object_id


def _rows(connection: sa.Connection) -> Iterator[list[Any]]:
    after = 0
    while True:
        batch = list(
            connection.execute(
                sa.select(_EVENTS).where(_EVENTS.c.id > after).order_by(_EVENTS.c.id).limit(_BATCH)
            )
        )
        if not batch:
            return
        yield batch
        after = batch[-1].id


def _chain_existing(connection: sa.Connection) -> None:
    staff = {
        name: id_ for id_, name in connection.execute(sa.select(_STAFF.c.id, _STAFF.c.username))
    }
    update = (
        sa.update(_EVENTS)
        .where(_EVENTS.c.id == sa.bindparam("event_id"))
        .values(
            details=sa.bindparam("new_details", type_=sa.JSON()),
            object_id=sa.bindparam("new_object_id"),
            prev_hash=sa.bindparam("new_prev_hash"),
            row_hash=sa.bindparam("new_row_hash"),
        )
    )
    prev_hash = hashing.GENESIS
    for batch in _rows(connection):
        changes = []
        for row in batch:
            details, object_id = _scrubbed(row, staff)
            content = {**row._asdict(), "details": details, "object_id": object_id}
            row_hash = hashing.content_hash(content, prev_hash)
            changes.append(
                {"event_id": row.id, "new_details": details, "new_object_id": object_id,
                 "new_prev_hash": prev_hash, "new_row_hash": row_hash}
            )  # fmt: skip
            prev_hash = row_hash
        connection.execute(update, changes)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("through_id", sa.Integer(), nullable=False),
        sa.Column("pruned", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoint")),
    )
    if postgresql:
        op.execute("DROP TRIGGER audit_event_no_update ON audit_event")
    else:
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("DROP TRIGGER audit_event_no_delete")
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
    _chain_existing(op.get_bind())
    with op.batch_alter_table("audit_event") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("row_hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_index("ix_audit_event_prev_hash", ["prev_hash"], unique=True)
    for statement in _PG_TRIGGERS if postgresql else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP TRIGGER audit_checkpoint_no_update ON audit_checkpoint")
        op.execute("DROP FUNCTION audit_checkpoint_insert_only()")
        op.execute("DROP TRIGGER audit_event_no_update ON audit_event")
    else:
        for name in ("audit_checkpoint_no_update", "audit_checkpoint_no_delete"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("DROP TRIGGER audit_event_no_delete")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_index("ix_audit_event_prev_hash")
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
    op.drop_table("audit_checkpoint")
    if postgresql:
        op.execute(_PG_0001)
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
            )
