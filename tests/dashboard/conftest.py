from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from dashboard.app import create_app
from shared.db import Database
from shared.settings import Settings
from shared.staff import service as staff
from shared.staff.models import Role
from tests.conftest import AUDIT_CHAIN_HEAD

PASSWORD = "correct horse battery staple"
USERS = {"operatore": Role.OPERATORE, "coordinatore": Role.COORDINATORE, "admin": Role.ADMIN}


@pytest.fixture
async def app(database: Database, settings: Settings) -> FastAPI:
    async with database.transaction() as session:
        for username, role in USERS.items():
            await staff.add_user(session=session, username=username, password=PASSWORD, role=role)
    return create_app(settings=settings, database=database)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        yield c


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
    )


async def page_csrf(client: httpx.AsyncClient, path: str = "/password") -> str:
    return csrf_from((await client.get(path)).text)


async def statements_of(
    database: Database, request: Callable[[], Awaitable[httpx.Response]]
) -> tuple[httpx.Response, list[str]]:
    """The response to `request()` and the SQL statements it ran, in order."""
    statements: list[str] = []

    def count(*args: object) -> None:
        sql = str(args[2]).lstrip().upper()
        # Transaction control (BEGIN, SAVEPOINT, COMMIT) is not a query.
        if sql.startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            statements.append(sql)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        response = await request()
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    return response, statements


def budget_of(statements: list[str], budget: int) -> int:
    """A page's statement budget, plus the audit chain's end when the request recorded an
    audit event (reading a case is audited): `AUDIT_CHAIN_HEAD` statements link it."""
    audited = any(sql.startswith("INSERT INTO AUDIT_EVENT") for sql in statements)
    return budget + (AUDIT_CHAIN_HEAD if audited else 0)
