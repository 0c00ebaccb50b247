"""The figures page: coordinators only, every group drawn and tabled, bad filters refused
kindly, the charts safe under the page's CSP, and at most 12 statements (4 when the
figures are kept: tests/dashboard/test_figures_cache.py)."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from dashboard.security import CONTENT_SECURITY_POLICY
from shared.db import Database
from tests.dashboard.conftest import login, statements_of
from tests.shared.figures.dataset import NOW, build

MAX_STATEMENTS = 12
# Served from what is kept: the session, its touch (due once a minute), the helpdesks, the
# kept figures.
MAX_KEPT_STATEMENTS = 4


@pytest.fixture(autouse=True)
def _fixed_clock(app: FastAPI) -> None:
    """The figures are read at the data set's noon of 10 March 2027, whenever the test runs."""
    app.state.figures_clock = lambda: NOW


# The data set's period: every figure has something in it whatever today is.
PERIOD = "/figures?from=2027-01-01&to=2027-03-10"


@pytest.mark.parametrize("username", ["operatore", "admin"])
async def test_only_coordinators_see_the_figures(client: httpx.AsyncClient, username: str) -> None:
    await login(client, username)
    assert (await client.get("/figures")).status_code == 403
    assert (await client.get("/figures/charts.css")).status_code == 403


async def test_the_page_shows_every_group(client: httpx.AsyncClient, database: Database) -> None:
    async with database.transaction() as session:
        built = await build(session)
    await login(client, "coordinatore")
    response = await client.get(PERIOD)
    assert response.status_code == 200
    page = response.text
    for chart in ("funnel", "dropoff", "reasons", "bookings", "cancelled", "deadlines",
                  "interventions", "funds", "outcomes"):  # fmt: skip
        assert f'id="chart-{chart}"' in page, chart
        assert f'aria-labelledby="chart-{chart}-title chart-{chart}-desc"' in page
    # The numbers are in the tables, in Italian.
    assert "Fondo Banco dell&#39;energia" in page
    assert "5.600,00" in page  # F1's left
    assert "33,3%" in page  # no-shows: 1 of 3
    assert "50%" in page  # improved: 1 of 2
    assert "il fondo «Fondo Banco dell&#39;energia» dura circa 0,9 settimane" in page
    # Each deadline count opens the list of those cases, which holds them.
    links = re.findall(r'href="(/cases\?due=[^"]+)"', page)
    assert len(links) == 4
    listed = await client.get(links[0].replace("&amp;", "&"))
    assert listed.status_code == 200
    assert f'href="/cases/{built.cases["C3"]}"' in listed.text
    assert "/plans/reviews" in page


async def test_charts_carry_no_script_and_no_inline_style(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        await build(session)
    await login(client, "coordinatore")
    response = await client.get(PERIOD)
    svgs = re.findall(r"<svg.*?</svg>", response.text, flags=re.S)
    assert len(svgs) == 9
    for svg in svgs:
        assert "<script" not in svg and "<style" not in svg and " style=" not in svg
        assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
        assert 'class="tooltip' not in svg
    # The bars are there (pygal's "tooltip-trigger" class is on each of them).
    funnel = next(svg for svg in svgs if 'id="chart-funnel"' in svg)
    assert funnel.count('class="rect reactive tooltip-trigger"') == 8
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    css = await client.get("/figures/charts.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".pygal-chart .color-0" in css.text and "#chart-" not in css.text


async def test_the_page_takes_at_most_twelve_statements(
    client: httpx.AsyncClient, database: Database
) -> None:
    """Twelve when it computes the figures (the session and its touch if due, the helpdesks, what
    is kept, the figures' seven, keeping them), four when it serves the kept ones."""
    async with database.transaction() as session:
        built = await build(session)
    await login(client, "coordinatore")
    for path in (PERIOD, f"{PERIOD}&helpdesk={built.h1}", "/figures"):
        response, computed = await statements_of(database, lambda p=path: client.get(p))
        assert response.status_code == 200, path
        assert len(computed) <= MAX_STATEMENTS, (path, len(computed), computed)
        assert computed[-1].startswith("INSERT INTO KEPT_FIGURES"), path
        response, kept = await statements_of(database, lambda p=path: client.get(p))
        assert response.status_code == 200, path
        assert len(kept) <= MAX_KEPT_STATEMENTS, (path, len(kept), kept)
        assert not any(sql.startswith("INSERT") for sql in kept), path


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("from=2027-13-01", "from", "Scrivi una data"),
        ("to=31/02/2027", "to", "Scrivi una data"),
        ("from=2027-03-10&to=2027-03-01", "to", "prima della data di inizio"),
        ("from=2020-01-01&to=2027-03-01", "from", "732"),
        ("helpdesk=abc", "helpdesk", "Scegli"),
        ("helpdesk=999999", "helpdesk", "Scegli"),
        ("from=0001-01-01", "from", "1900"),
    ],
)
async def test_bad_filters_are_refused_with_the_typed_values_kept(
    client: httpx.AsyncClient, query: str, field: str, message: str
) -> None:
    await login(client, "coordinatore")
    response = await client.get(f"/figures?{query}")
    assert response.status_code == 400
    assert f'id="e-{field}"' in response.text
    assert message in response.text
    assert "chart-funnel" not in response.text
    typed = dict(part.split("=") for part in query.split("&"))
    if field in typed and field != "helpdesk":
        assert f'value="{typed[field]}"' in response.text


async def test_an_empty_program_has_its_page(client: httpx.AsyncClient) -> None:
    await login(client, "coordinatore")
    response = await client.get("/figures")
    assert response.status_code == 200
    assert "Non ci sono ancora fondi." in response.text
