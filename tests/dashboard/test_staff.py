"""Staff accounts (administrators): list, create, deactivate, reset password, change role."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from dashboard.deps import SESSION_COOKIE
from shared.audit.models import AuditEvent
from shared.db import Database
from shared.staff.models import StaffSession, StaffUser
from tests.dashboard.conftest import PASSWORD, login, page_csrf

NEW_PASSWORD = "violet tractor under seven moons"


async def user_id(database: Database, username: str) -> int:
    async with database.transaction(read_only=True) as session:
        found = await session.scalar(select(StaffUser.id).where(StaffUser.username == username))
        assert found is not None
        return found


async def audited(database: Database, action: str) -> list[AuditEvent]:
    async with database.transaction(read_only=True) as session:
        rows = await session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows.all())


async def admin_csrf(client: httpx.AsyncClient) -> str:
    await login(client, "admin")
    return await page_csrf(client, "/staff/new")


def other_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=client._transport, base_url="http://testserver")


async def test_list_shows_accounts_without_password_hashes(client: httpx.AsyncClient) -> None:
    await login(client, "admin")
    page = await client.get("/staff")
    assert page.status_code == 200
    for username in ("operatore", "coordinatore", "admin"):
        assert f">{username}</a>" in page.text
    assert "argon2" not in page.text
    assert "<caption>" in page.text and 'scope="col"' in page.text
    assert (await client.get("/staff/new")).status_code == 200


async def test_create_account(client: httpx.AsyncClient, database: Database) -> None:
    token = await admin_csrf(client)
    response = await client.post(
        "/staff",
        data={
            "username": "Anna.Verdi", "display_name": "Anna Verdi", "role": "coordinatore",
            "password": NEW_PASSWORD, "repeat": NEW_PASSWORD, "csrf_token": token,
        },
    )  # fmt: skip
    assert response.status_code == 303
    new_id = await user_id(database, "anna.verdi")
    assert response.headers["location"] == f"/staff/{new_id}?done=created"
    page = await client.get(response.headers["location"])
    assert "Account creato." in page.text
    assert "Anna Verdi" in page.text
    assert "argon2" not in page.text
    events = await audited(database, "staff.create")
    assert [(e.actor, e.object_id) for e in events if e.actor == "staff:admin"] == [
        ("staff:admin", str(new_id))
    ]
    async with other_client(client) as anna:
        signed_in = await login(anna, "anna.verdi", NEW_PASSWORD)
        assert signed_in.headers["location"] == "/agenda"


async def test_create_refuses_weak_passwords_and_keeps_the_input(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await admin_csrf(client)
    base = {
        "username": "luca",
        "display_name": "Luca <b>",
        "role": "operatore",
        "csrf_token": token,
    }
    weak = await client.post(
        "/staff", data={**base, "password": "password1234", "repeat": "password1234"}
    )
    assert weak.status_code == 400
    assert 'id="e-password"' in weak.text
    assert 'value="luca"' in weak.text
    assert 'value="Luca &lt;b&gt;"' in weak.text
    assert "password1234" not in weak.text
    short = await client.post("/staff", data={**base, "password": "abc", "repeat": "abc"})
    assert short.status_code == 400
    assert "almeno 10 caratteri" in short.text
    differ = await client.post(
        "/staff", data={**base, "password": NEW_PASSWORD, "repeat": NEW_PASSWORD + "x"}
    )
    assert differ.status_code == 400 and 'id="e-repeat"' in differ.text
    taken = await client.post(
        "/staff",
        data={**base, "username": "Operatore", "password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    )
    assert taken.status_code == 400 and "già in uso" in taken.text
    bad = await client.post(
        "/staff",
        data={**base, "username": "l u c a", "role": "boss", "password": NEW_PASSWORD,
              "repeat": NEW_PASSWORD},
    )  # fmt: skip
    assert bad.status_code == 400
    assert 'id="e-username"' in bad.text
    assert "Scegli un ruolo" in bad.text
    # The new account's own names and the programme's words are the first guesses.
    for guessable in ("lucaverdi1234", "cernusco2020", "ripartire2021"):
        named = await client.post(
            "/staff",
            data={**base, "username": "luca.verdi", "display_name": "Luca Verdi",
                  "password": guessable, "repeat": guessable},
        )  # fmt: skip
        assert named.status_code == 400, guessable
        assert "troppo facile da indovinare" in named.text
    assert "il nome utente" in named.text
    async with database.transaction(read_only=True) as session:
        names = set((await session.scalars(select(StaffUser.username))).all())
    assert names == {"operatore", "coordinatore", "admin"}


async def test_deactivation_revokes_sessions_and_reactivation(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with other_client(client) as worker:
        await login(worker, "operatore")
        assert (await worker.get("/password")).status_code == 200
        cookie = worker.cookies.get(SESSION_COOKIE)
        target = await user_id(database, "operatore")
        token = await admin_csrf(client)
        done = await client.post(f"/staff/{target}/deactivate", data={"csrf_token": token})
        assert done.status_code == 303
        assert done.headers["location"] == f"/staff/{target}?done=deactivated"
        page = await client.get(done.headers["location"])
        assert "Disattivato" in page.text

        # The deactivated user's cookie is refused from the next request on.
        worker.cookies.set(SESSION_COOKIE, cookie or "")
        refused = await worker.get("/password")
        assert refused.status_code == 303
        assert refused.headers["location"] == "/login"
        assert (await login(worker, "operatore")).status_code == 401
        async with database.transaction(read_only=True) as session:
            open_sessions = await session.scalars(
                select(StaffSession).where(
                    StaffSession.user_id == target, StaffSession.revoked_at.is_(None)
                )
            )
            assert open_sessions.all() == []
        assert [e.object_id for e in await audited(database, "staff.deactivate")] == [str(target)]

        again = await client.post(f"/staff/{target}/reactivate", data={"csrf_token": token})
        assert again.status_code == 303
        assert (await login(worker, "operatore")).status_code == 303
        assert [e.actor for e in await audited(database, "staff.reactivate")] == ["staff:admin"]


async def test_admins_cannot_deactivate_demote_or_reset_themselves(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await admin_csrf(client)
    own = await user_id(database, "admin")
    deactivate = await client.post(f"/staff/{own}/deactivate", data={"csrf_token": token})
    assert deactivate.status_code == 400
    assert "Non puoi disattivare il tuo account" in deactivate.text
    demote = await client.post(
        f"/staff/{own}/role", data={"role": "operatore", "csrf_token": token}
    )
    assert demote.status_code == 400
    assert "Non puoi cambiare il tuo ruolo" in demote.text
    reset = await client.post(
        f"/staff/{own}/password",
        data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD, "csrf_token": token},
    )
    assert reset.status_code == 400
    # Still signed in, still an administrator.
    assert (await client.get("/staff")).status_code == 200
    async with database.transaction(read_only=True) as session:
        me = await session.get(StaffUser, own)
        assert me is not None and (me.active, me.role) == (True, "admin")


async def test_reset_password(client: httpx.AsyncClient, database: Database) -> None:
    async with other_client(client) as worker:
        await login(worker, "coordinatore")
        target = await user_id(database, "coordinatore")
        token = await admin_csrf(client)
        weak = await client.post(
            f"/staff/{target}/password",
            data={"password": "coordinatore1", "repeat": "coordinatore1", "csrf_token": token},
        )
        assert weak.status_code == 400 and 'id="e-password"' in weak.text
        differ = await client.post(
            f"/staff/{target}/password",
            data={"password": NEW_PASSWORD, "repeat": "other", "csrf_token": token},
        )
        assert differ.status_code == 400 and 'id="e-repeat"' in differ.text
        done = await client.post(
            f"/staff/{target}/password",
            data={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD, "csrf_token": token},
        )
        assert done.status_code == 303
        assert (await worker.get("/password")).headers.get("location") == "/login"
        assert (await login(worker, "coordinatore", PASSWORD)).status_code == 401
        assert (await login(worker, "coordinatore", NEW_PASSWORD)).status_code == 303
    events = await audited(database, "staff.password_reset")
    assert [(e.actor, e.object_id) for e in events] == [("staff:admin", str(target))]
    assert NEW_PASSWORD not in str(events[0].details)


async def test_change_role_applies_at_once(client: httpx.AsyncClient, database: Database) -> None:
    async with other_client(client) as worker:
        await login(worker, "operatore")
        assert (await worker.get("/audit")).status_code == 403
        target = await user_id(database, "operatore")
        token = await admin_csrf(client)
        bad = await client.post(f"/staff/{target}/role", data={"role": "boss", "csrf_token": token})
        assert bad.status_code == 400
        done = await client.post(
            f"/staff/{target}/role", data={"role": "coordinatore", "csrf_token": token}
        )
        assert done.status_code == 303
        assert (await worker.get("/audit")).status_code == 200
    events = await audited(database, "staff.role_change")
    assert [(e.details["from"], e.details["to"]) for e in events] == [("operatore", "coordinatore")]


async def test_unknown_account(client: httpx.AsyncClient) -> None:
    token = await admin_csrf(client)
    assert (await client.get("/staff/99999")).status_code == 404
    response = await client.post("/staff/99999/deactivate", data={"csrf_token": token})
    assert response.status_code == 404


async def test_other_roles_are_refused(client: httpx.AsyncClient) -> None:
    await login(client, "coordinatore")
    assert (await client.get("/staff")).status_code == 403
    token = await page_csrf(client, "/password")
    response = await client.post("/staff/1/deactivate", data={"csrf_token": token})
    assert response.status_code == 403
