"""The FastAPI application: staff pages, static files, health check, error pages."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import ModuleType

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard import routes
from dashboard.deps import SignInRequired
from dashboard.params import invalid_request_page
from dashboard.security import ErrorBoundary, SecurityHeaders, request_id_of
from dashboard.templating import render
from shared.db import Database
from shared.i18n import N_
from shared.runtime import Component
from shared.settings import Settings

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
VENDOR = HERE / "assets" / "node_modules"
# (URL prefix, folder under node_modules): served by the app itself, never from a CDN.
VENDORED = (
    ("/static/vendor/bootstrap-italia", "bootstrap-italia/dist"),
    ("/static/vendor/htmx", "htmx.org/dist"),
)

# Main menu: (path, label, roles that see it). Access is enforced on each route.
NAV = (
    ("/agenda", N_("Agenda"), ("operatore", "coordinatore")),
    ("/bookings", N_("Bookings"), ("coordinatore",)),
    ("/cases", N_("Cases"), ("operatore", "coordinatore")),
    ("/plans", N_("Plans"), ("operatore", "coordinatore")),
    ("/intake", N_("Phone and walk-in"), ("operatore", "coordinatore")),
    ("/schedules", N_("Helpdesks and hours"), ("coordinatore",)),
    ("/funds", N_("Funds"), ("coordinatore",)),
    ("/figures", N_("Figures"), ("coordinatore",)),
    ("/exports", N_("Exports"), ("coordinatore",)),
    ("/audit", N_("Audit log"), ("coordinatore",)),
    ("/staff", N_("Staff accounts"), ("admin",)),
)

ERRORS = {
    400: (N_("Invalid request"), N_("Something in the address or the form was not valid.")),
    403: (N_("Not allowed"), N_("Your role does not give access to this page or action.")),
    404: (N_("Page not found"), N_("The page or the record you asked for does not exist.")),
    405: (N_("Not allowed"), N_("This action is not available here.")),
    429: (N_("Too many requests"), N_("Please wait a moment and try again.")),
    500: (
        N_("Something went wrong"),
        N_("An unexpected error occurred. It has been logged; please try again."),
    ),
}


# Refusals with a reason of their own (the `detail` of the HTTPException).
REFUSALS = {
    "csrf": (
        N_("The form has expired"),
        N_(
            "The form was sent from another page or site, or it is too old. Go back, reload "
            "the page and try again."
        ),
    ),
}


def error_page(request: Request, status: int, detail: object = None) -> Response:
    title, message = REFUSALS.get(str(detail)) or ERRORS.get(
        status, ERRORS[500] if status >= 500 else ERRORS[400]
    )
    context = {"title": title, "message": message}
    if status >= 500:
        context["request_id"] = request_id_of(request)
    return render(request, "errors/error.html", context, status_code=status)


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _exc: SignInRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path == "/healthz":
            return JSONResponse({"status": "error"}, status_code=exc.status_code)
        return error_page(request, exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return invalid_request_page(request, exc)


def _mount_static(app: FastAPI) -> None:
    for prefix, folder in VENDORED:
        path = VENDOR / folder
        if path.is_dir():
            app.mount(prefix, StaticFiles(directory=path), name=prefix)
        else:
            log.warning("%s is missing: run `make` to install the dashboard's assets", path)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


def _route_modules() -> list[ModuleType]:
    """Every module of `dashboard.routes` (each has a `router`), sign-in first."""
    names = sorted(m.name for m in pkgutil.iter_modules(routes.__path__))
    names.sort(key=lambda name: name != "auth")
    return [importlib.import_module(f"{routes.__name__}.{name}") for name in names]


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
        title="Ripartire", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings
    app.state.database = database
    app.state.nav = NAV

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        if not await database.ping():
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        if not await database.accepts_writes():
            return JSONResponse({"status": "error", "database": "not writable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    _install_error_pages(app)
    # Added last, so outermost: even the 500 page gets the security headers.
    app.add_middleware(ErrorBoundary, error_page=lambda request: error_page(request, 500))
    app.add_middleware(SecurityHeaders)
    for module in _route_modules():
        app.include_router(module.router)
    for component in components:
        app.router.routes.extend(component.routes)
    _mount_static(app)
    return app
