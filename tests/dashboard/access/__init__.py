"""Who may use each dashboard route: one module per area, each with an EXPECTED dict.

Values: "public", or a set of role names ("operatore", "coordinatore", "admin").
"""

from __future__ import annotations

import importlib
import pkgutil

PUBLIC = "public"
OP, CO, AD = "operatore", "coordinatore", "admin"
STAFF = frozenset({OP, CO})
COORDINATION = frozenset({CO})
ADMINISTRATION = frozenset({AD})
EVERYONE = frozenset({OP, CO, AD})

Expectations = dict[tuple[str, str], str | frozenset[str]]


def all_expectations() -> Expectations:
    merged: Expectations = {}
    for module in pkgutil.iter_modules(__path__):
        area = importlib.import_module(f"{__name__}.{module.name}")
        for route, rule in area.EXPECTED.items():
            assert route not in merged, f"{route} declared twice"
            merged[route] = rule
    return merged
