"""How a front end plugs into the single `ripartire run` process.

The dashboard owns the process and the HTTP server; other front ends (the Telegram
bot) are *components* found through the `ripartire.components` entry-point group, so
the dashboard never imports them and they never import the dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol

from starlette.routing import BaseRoute

from shared.db import Database
from shared.settings import Settings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ripartire.components"


@dataclass
class Component:
    """Something that runs beside the dashboard for the life of the process."""

    name: str
    lifespan: Callable[[], AbstractAsyncContextManager[None]]
    # HTTP routes served by the dashboard's server (e.g. the bot's webhook).
    routes: list[BaseRoute] = field(default_factory=list)


class ComponentFactory(Protocol):
    def __call__(self, *, settings: Settings, database: Database) -> Component | None: ...


def load_components(*, settings: Settings, database: Database) -> list[Component]:
    """Build every installed component; a factory returns None (and logs why) to stay off."""
    components = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        factory: ComponentFactory = entry.load()
        component = factory(settings=settings, database=database)
        if component is not None:
            components.append(component)
    return components
