"""Sign-in, sessions (expiry, revocation, replay), lockout, CSRF, password change."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from dashboard.deps import SESSION_COOKIE
from shared.db import Database, utcnow
from shared.staff.models import LoginThrottle, StaffSession
from tests.dashboard.conftest import PASSWORD, csrf_from, login, page_csrf


async def test_sign_in_sets_a_safe_cookie_and_redirects_by_role(client: httpx.AsyncClient) -> None:
    response = await login(client, "operatore")
    assert response.status_code == 303
    assert response.headers["location"] == "/agenda"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain http in tests; https adds Secure
    admin = httpx.AsyncClient(transport=client._transport, base_url="https://testserver")
    async with admin:
        response = await login(admin, "admin")
        assert response.headers["location"] == "/staff"
        assert "Secure" in response.headers["set-cookie"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: httpx.AsyncClient,
) -> None:
    wrong = await login(client, "operatore", "not the password at all")
    unknown = await login(client, "nobody", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "Nome utente o password errati" in wrong.text
    assert wrong.text.replace("operatore", "X").count("errati") == unknown.text.replace(
        "nobody", "X"
    ).count("errati")


async def test_anonymous_is_sent_to_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/password")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


async def test_lockout_and_its_release(client: httpx.AsyncClient, database: Database) -> None:
    for _ in range(5):
        assert (await login(client, "coordinatore", "wrong password 123")).status_code == 401
    locked = await login(client, "coordinatore")  # the right password doesn't help now
    assert locked.status_code == 429
    assert "Troppi tentativi" in locked.text
    async with database.transaction() as session:
        await session.execute(
            update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert (await login(client, "coordinatore")).status_code == 303


async def test_logout_revokes_and_cookie_replay_is_refused(client: httpx.AsyncClient) -> None:
    await login(client, "operatore")
    stolen = client.cookies.get(SESSION_COOKIE)
    assert (await client.get("/password")).status_code == 200
    token = await page_csrf(client)
    assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
    client.cookies.set(SESSION_COOKIE, stolen or "")
    replay = await client.get("/password")
    assert replay.status_code == 303
    assert replay.headers["location"] == "/login"


@pytest.mark.parametrize("field", ["last_seen_at", "created_at"])
async def test_idle_and_absolute_expiry(
    client: httpx.AsyncClient, database: Database, field: str
) -> None:
    await login(client, "operatore")
    assert (await client.get("/password")).status_code == 200
    age = timedelta(minutes=31) if field == "last_seen_at" else timedelta(hours=12, minutes=1)
    async with database.transaction() as session:
        values = {field: utcnow() - age}
        if field == "created_at":
            values["last_seen_at"] = utcnow()
        await session.execute(update(StaffSession).values(**values))
    assert (await client.get("/password")).status_code == 303


async def test_csrf_is_required(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    no_token = await client.post("/login", data={"username": "operatore", "password": PASSWORD})
    assert no_token.status_code == 403
    assert (
        await client.post(
            "/login",
            data={
                "username": "operatore",
                "password": PASSWORD,
                "csrf_token": csrf_from(page.text),
            },
        )
    ).status_code == 303
    assert (await client.post("/logout")).status_code == 403
    assert (await client.post("/logout", data={"csrf_token": "forged"})).status_code == 403


async def test_password_change(client: httpx.AsyncClient) -> None:
    await login(client, "operatore")
    token = await page_csrf(client)
    bad = await client.post(
        "/password", data={"csrf_token": token, "current": "nope", "new": "x", "repeat": "x"}
    )
    assert bad.status_code == 400
    assert "attuale è sbagliata" in bad.text
    weak = await client.post(
        "/password",
        data={"csrf_token": token, "current": PASSWORD, "new": "password1", "repeat": "password1"},
    )
    assert weak.status_code == 400
    new = "tramonto viola sul naviglio 42"
    ok = await client.post(
        "/password", data={"csrf_token": token, "current": PASSWORD, "new": new, "repeat": new}
    )
    assert ok.status_code == 200
    assert (await login(client, "operatore", new)).status_code == 303
