"""`GET /metrics`: the Prometheus text format, answered to loopback or with the token only."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from dashboard.app import create_app
from shared.db import Database
from shared.settings import Settings, SettingsError, load_settings

TOKEN = "metrics-token-0123456789-abcdef"
LOOPBACK = ("127.0.0.1", 50_000)
REMOTE = ("203.0.113.7", 50_000)


async def scrape(
    database: Database,
    settings: Settings,
    client: tuple[str, int] = LOOPBACK,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    app = create_app(settings=settings, database=database)
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.get("/metrics", headers=headers)


def with_token(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})


async def test_a_loopback_client_gets_the_prometheus_text_format(
    database: Database, settings: Settings
) -> None:
    response = await scrape(database, settings)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(response.text)}
    assert {"ripartire_outbox_backlog", "ripartire_bot_update_seconds"} <= names
    assert (await scrape(database, settings, client=("::1", 50_000))).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "203.0.113.7"},
        {"X-Forwarded-For": "127.0.0.1"},
        {"Forwarded": "for=127.0.0.1"},
        {"X-Real-IP": "127.0.0.1"},
    ],
)
async def test_a_request_through_a_proxy_on_this_host_is_not_local(
    database: Database, settings: Settings, header: dict[str, str]
) -> None:
    # The proxy connects from 127.0.0.1; whoever sent the request did not.
    assert (await scrape(database, settings, headers=header)).status_code == 404
    authorized = {**header, "Authorization": f"Bearer {TOKEN}"}
    response = await scrape(database, with_token(settings), headers=authorized)
    assert response.status_code == 200


async def test_a_remote_client_needs_the_token(database: Database, settings: Settings) -> None:
    assert (await scrape(database, settings, client=REMOTE)).status_code == 404
    # No token set: none is accepted.
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert (await scrape(database, settings, REMOTE, bearer)).status_code == 404
    configured = with_token(settings)
    for refused in (
        {}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN}, {"Authorization": "Bearer "},
    ):  # fmt: skip
        response = await scrape(database, configured, REMOTE, refused)
        assert response.status_code == 404, refused
    for accepted in (bearer, {"Authorization": f"bearer {TOKEN}"}):
        response = await scrape(database, configured, REMOTE, accepted)
        assert response.status_code == 200
        assert "ripartire_outbox_backlog" in response.text


def test_the_metrics_token_is_long_enough() -> None:
    with pytest.raises(SettingsError, match="RIPARTIRE_METRICS_TOKEN: too short"):
        load_settings(metrics_token="short", _env_file=None)
    assert load_settings(metrics_token="", _env_file=None).metrics_token is None
