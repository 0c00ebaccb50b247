"""`ripartire audit verify`, run as a real process: "ok, N events" (0), or the first
event that breaks the chain (1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from shared import migrate
from shared.audit import service as audit
from shared.audit.models import AuditEvent
from shared.db import Database
from tests.audit_tampering import tamper
from tests.conftest import DatabaseFactory

RIPARTIRE = shutil.which("ripartire", path=str(Path(sys.executable).parent)) or "ripartire"


def _verify(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPARTIRE_")}
    return subprocess.run(
        [RIPARTIRE, "audit", "verify"],
        cwd=cwd,
        env={**env, "RIPARTIRE_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_audit_verify_says_ok_or_names_the_first_broken_event(
    database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    database = Database(await database_factory.create())
    try:
        await migrate.upgrade(database)
        long_ago = datetime.now(UTC) - timedelta(days=400)
        async with database.transaction() as session:
            for n in range(2):
                session.add(
                    AuditEvent(at=long_ago, actor="cli", action="test.old", object_type="x",
                               details={"n": n})
                )  # fmt: skip
        async with database.transaction() as session:
            for n in range(3):
                await audit.record(
                    session=session, actor="staff:anna", action="case.read", object_type="case",
                    object_id=str(n), details={"page": "detail"},
                )  # fmt: skip
        result = _verify(database.url, tmp_path)
        assert (result.returncode, result.stdout.splitlines()[0]) == (0, "ok, 5 events")
        assert "Traceback" not in result.stderr

        async with database.transaction() as session:
            pruned = await audit.prune_before(
                session=session, before=long_ago + timedelta(days=1), actor="retention"
            )
        assert pruned is not None and pruned.pruned == 2
        result = _verify(database.url, tmp_path)
        lines = result.stdout.splitlines()
        assert (result.returncode, lines[0]) == (0, "ok, 4 events")  # 3 and the prune's own
        assert lines[1] == (
            f"after checkpoint {pruned.checkpoint_id}: 2 earlier events pruned, "
            f"through event {pruned.through_id}"
        )

        async with database.transaction(read_only=True) as session:
            ids = list(await session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))
        await tamper(database, [f"UPDATE audit_event SET object_id = '9' WHERE id = {ids[1]}"])
        result = _verify(database.url, tmp_path)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout.splitlines() == [
            f"broken at event {ids[1]}: its content is not what its hash says: it was changed",
            "1 events before it hold.",
        ]
    finally:
        await database.dispose()
