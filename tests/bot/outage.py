"""A database that stops answering, for the bot's tests of what a citizen's update becomes."""

from __future__ import annotations

import sqlite3

from sqlalchemy import event

from shared.db import Database


class Outage:
    """The database stops answering: pooled connections are dropped and new ones refused
    the way each driver refuses them (a closed PostgreSQL port, an SQLite file that can't
    be opened), until `end()`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.down = False
        self.refused = 0
        event.listen(database.engine.sync_engine, "do_connect", self._connect)

    def _connect(self, *_args: object) -> None:
        if self.down:
            self.refused += 1
            if self.database.is_sqlite:
                raise sqlite3.OperationalError("unable to open database file")
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    async def begin(self) -> None:
        self.down = True
        await self.database.engine.dispose()

    def end(self) -> None:
        self.down = False

    def remove(self) -> None:
        event.remove(self.database.engine.sync_engine, "do_connect", self._connect)
