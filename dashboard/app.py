"""The FastAPI application: health check now, the staff pages as they are added."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from shared.db import Database
from shared.runtime import Component
from shared.settings import Settings


def create_app(
    *, settings: Settings, database: Database, components: Sequence[Component] = ()
) -> FastAPI:
    """Build the dashboard app; `components` start and stop with it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for component in components:
                await stack.enter_async_context(component.lifespan())
            yield

    app = FastAPI(
        title="Ripartire",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.database = database

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        if await database.ping():
            return JSONResponse({"status": "ok", "database": "ok"})
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)

    for component in components:
        app.router.routes.extend(component.routes)
    return app
