from __future__ import annotations

import httpx

from dashboard.app import create_app
from shared.db import Database
from shared.settings import Settings


async def test_healthz_ok_with_database_up(database: Database, settings: Settings) -> None:
    app = create_app(settings=settings, database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_503_with_database_unreachable(settings: Settings) -> None:
    unreachable = Database("postgresql+asyncpg://nobody@127.0.0.1:9/nowhere")
    app = create_app(settings=settings, database=unreachable)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            response = await c.get("/healthz")
    finally:
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
