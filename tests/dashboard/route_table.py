"""The dashboard's route table, for the sweeps that are generated from it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute


@dataclass(frozen=True)
class RouteEntry:
    path: str  # with the prefixes of the routers it was included through
    route: APIRoute

    @property
    def methods(self) -> list[str]:
        return sorted(self.route.methods - {"HEAD"})


def _walk(routes: list[object], prefix: str = "") -> list[RouteEntry]:
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(RouteEntry(prefix + route.path, route))
        elif hasattr(route, "original_router"):  # FastAPI includes routers lazily
            context = getattr(route, "include_context", None)
            found += _walk(
                route.original_router.routes, prefix + (getattr(context, "prefix", "") or "")
            )
    return found


def route_entries(app: FastAPI) -> list[RouteEntry]:
    """Every API route of `app` with its full path."""
    return _walk(list(app.routes))


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, full path) the app answers, HEAD aside."""
    return [(method, entry.path) for entry in route_entries(app) for method in entry.methods]
