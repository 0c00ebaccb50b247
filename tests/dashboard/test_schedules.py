"""Schedules over HTTP: helpdesks, weekly hours, closures, extra openings, affected bookings."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from html import unescape

import httpx
from sqlalchemy import select

from shared.audit.models import AuditEvent
from shared.booking import hours
from shared.booking import service as booking
from shared.booking.models import Booking, Closure, ExtraOpening, Helpdesk, OpeningRule
from shared.db import Database, utcnow
from shared.outbox.models import OutboxMessage
from shared.settings import Settings
from tests.dashboard.conftest import csrf_from, login, page_csrf
from tests.factories import ROME, make_citizen, make_helpdesk

EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)


def _today() -> date:
    return utcnow().astimezone(ROME).date()


def _error(page: str, field: str) -> str:
    """The message shown next to a field (empty if none)."""
    found = re.search(rf'<div id="e-{re.escape(field)}"[^>]*>([^<]*)</div>', page)
    return found.group(1) if found else ""


def _value(page: str, field: str) -> str:
    found = re.search(rf'id="f-{re.escape(field)}" name="[^"]*" type="[^"]*" value="([^"]*)"', page)
    assert found, f"no field {field}"
    return found.group(1)


async def _coordinator(client: httpx.AsyncClient, path: str = "/schedules") -> str:
    await login(client, "coordinatore")
    return await page_csrf(client, path)


async def _helpdesk_id(database: Database, name: str) -> int:
    async with database.transaction() as session:
        found = await session.scalar(select(Helpdesk.id).where(Helpdesk.name == name))
        assert found is not None
        return found


async def test_case_workers_and_admins_may_not_touch_schedules(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session)
    await login(client, "operatore")
    token = await page_csrf(client, "/agenda")
    assert (await client.get("/schedules")).status_code == 403
    assert (await client.get(f"/schedules/helpdesks/{helpdesk.id}/hours")).status_code == 403
    refused = await client.post(
        f"/schedules/helpdesks/{helpdesk.id}/closures",
        data={"csrf_token": token, "closure_day": _today().isoformat()},
    )
    assert refused.status_code == 403
    async with database.transaction() as session:
        assert await hours.list_closures(session=session, helpdesk_id=helpdesk.id) == []


async def test_create_edit_and_deactivate_a_helpdesk(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await _coordinator(client)
    home = await client.get("/schedules")
    assert "Non ci sono ancora sportelli." in home.text

    missing = await client.post(
        "/schedules/helpdesks",
        data={
            "csrf_token": token,
            "name": " ",
            "address": "Via Marconi 5",
            "directions_it": "Primo piano",
        },
    )
    assert missing.status_code == 400
    assert _error(missing.text, "name") == "Questo campo è obbligatorio."
    assert _value(missing.text, "address") == "Via Marconi 5"
    assert "Primo piano</textarea>" in missing.text

    created = await client.post(
        "/schedules/helpdesks",
        data={
            "csrf_token": token,
            "name": "Sportello Centro",
            "address": "Via Marconi 5",
            "directions_it": "Primo piano",
        },
    )
    assert created.status_code == 303
    helpdesk_id = await _helpdesk_id(database, "Sportello Centro")
    assert (
        created.headers["location"] == f"/schedules/helpdesks/{helpdesk_id}?notice=helpdesk_created"
    )
    page = await client.get(created.headers["location"])
    assert "Sportello creato." in page.text
    assert _value(page.text, "name") == "Sportello Centro"

    twin = await client.post(
        "/schedules/helpdesks",
        data={"csrf_token": token, "name": "sportello centro", "address": "Altrove 1"},
    )
    assert twin.status_code == 400
    assert _error(twin.text, "name") == "Un altro sportello ha già questo nome."
    assert _value(twin.text, "name") == "sportello centro"

    blank = await client.post(
        f"/schedules/helpdesks/{helpdesk_id}",
        data={"csrf_token": token, "name": "Sportello Piazza", "address": "", "directions_it": ""},
    )
    assert blank.status_code == 400
    assert _error(blank.text, "address") == "Questo campo è obbligatorio."
    assert _value(blank.text, "name") == "Sportello Piazza"

    saved = await client.post(
        f"/schedules/helpdesks/{helpdesk_id}",
        data={
            "csrf_token": token,
            "name": "Sportello Piazza",
            "address": "Piazza Unità d'Italia 1",
            "directions_it": "Ingresso B",
        },
    )
    assert saved.headers["location"] == f"/schedules/helpdesks/{helpdesk_id}?notice=helpdesk_saved"

    off = await client.post(
        f"/schedules/helpdesks/{helpdesk_id}/active", data={"csrf_token": token, "active": "0"}
    )
    assert off.status_code == 303
    assert "Non accetta prenotazioni" in (await client.get(off.headers["location"])).text
    async with database.transaction() as session:
        helpdesk = await session.get(Helpdesk, helpdesk_id)
        assert helpdesk is not None
        assert (helpdesk.name, helpdesk.address, helpdesk.directions, helpdesk.active) == (
            "Sportello Piazza", "Piazza Unità d'Italia 1", "Ingresso B", False,
        )  # fmt: skip
        actions = list(
            await session.scalars(
                select(AuditEvent.action)
                .where(
                    AuditEvent.object_type == "helpdesk", AuditEvent.object_id == str(helpdesk_id)
                )
                .order_by(AuditEvent.id)
            )
        )
    assert actions == ["helpdesk.create", "helpdesk.update", "helpdesk.deactivate"]
    on = await client.post(
        f"/schedules/helpdesks/{helpdesk_id}/active", data={"csrf_token": token, "active": "1"}
    )
    assert on.headers["location"].endswith("notice=activated")
    bad = await client.post(
        f"/schedules/helpdesks/{helpdesk_id}/active", data={"csrf_token": token, "active": "maybe"}
    )
    assert bad.status_code == 400
    assert (await client.get("/schedules/helpdesks/999999")).status_code == 404


def _textarea(page: str, field: str) -> str:
    found = re.search(rf'<textarea id="f-{re.escape(field)}"[^>]*>([^<]*)</textarea>', page)
    assert found, f"no field {field}"
    return unescape(found.group(1))


def _read(page: str) -> list[tuple[str, str]]:
    """The "what citizens read" list of a helpdesk page: (language, what they read)."""
    found = re.search(r'<dl id="directions-read">(.*?)</dl>', page, re.S)
    assert found
    pairs = re.findall(r"<dt>([^<]*)</dt>\s*<dd>(.*?)</dd>", found.group(1), re.S)
    return [
        (term, " ".join(unescape(re.sub(r"<[^>]+>", "", text)).split())) for term, text in pairs
    ]


async def test_directions_per_language_italian_first_and_the_fallback_said(
    client: httpx.AsyncClient, database: Database
) -> None:
    token = await _coordinator(client)
    home = (await client.get("/schedules")).text
    assert home.index('id="f-directions_it"') < home.index('id="f-directions_en"')
    assert '<label for="f-directions_it" class="active">Italiano</label>' in home
    assert '<label for="f-directions_en" class="active">Inglese</label>' in home
    assert "chi legge in inglese riceve quelle in italiano" in home

    english_only = await client.post(
        "/schedules/helpdesks",
        data={
            "csrf_token": token, "name": "Sportello Centro", "address": "Via Marconi 5",
            "directions_it": " ", "directions_en": "First floor, door B",
        },
    )  # fmt: skip
    assert english_only.status_code == 400
    assert _error(english_only.text, "directions_it") == (
        "Scrivi le indicazioni anche in italiano: chi non le trova nella propria lingua "
        "riceve quelle in italiano."
    )
    assert _error(english_only.text, "directions_en") == ""
    assert _textarea(english_only.text, "directions_en") == "First floor, door B"
    assert _value(english_only.text, "name") == "Sportello Centro"
    async with database.transaction() as session:
        assert await session.scalar(select(Helpdesk.id)) is None

    created = await client.post(
        "/schedules/helpdesks",
        data={
            "csrf_token": token, "name": "Sportello Centro", "address": "Via Marconi 5",
            "directions_it": "Primo piano, porta B", "directions_en": " First floor, door B ",
        },
    )  # fmt: skip
    assert created.status_code == 303
    helpdesk_id = await _helpdesk_id(database, "Sportello Centro")
    page = (await client.get(f"/schedules/helpdesks/{helpdesk_id}")).text
    assert _textarea(page, "directions_it") == "Primo piano, porta B"
    assert _textarea(page, "directions_en") == "First floor, door B"
    assert _read(page) == [("Italiano", "Primo piano, porta B"), ("Inglese", "First floor, door B")]
    assert "<td>Italiano, Inglese</td>" in (await client.get("/schedules")).text

    # Italian emptied, English kept: refused next to the Italian box, nothing changed.
    emptied = await client.post(
        f"/schedules/helpdesks/{helpdesk_id}",
        data={
            "csrf_token": token, "name": "Sportello Centro", "address": "Via Marconi 5",
            "directions_it": "", "directions_en": "Ground floor",
        },
    )  # fmt: skip
    assert emptied.status_code == 400
    assert _error(emptied.text, "directions_it").startswith("Scrivi le indicazioni anche in")
    assert _textarea(emptied.text, "directions_en") == "Ground floor"
    async with database.transaction() as session:
        helpdesk = await session.get(Helpdesk, helpdesk_id)
        assert helpdesk is not None
        assert helpdesk.directions_by_language == {
            "it": "Primo piano, porta B",
            "en": "First floor, door B",
        }

    saved = await client.post(
        f"/schedules/helpdesks/{helpdesk_id}",
        data={
            "csrf_token": token, "name": "Sportello Centro", "address": "Via Marconi 5",
            "directions_it": "Piano terra", "directions_en": "",
        },
    )  # fmt: skip
    assert saved.status_code == 303
    page = (await client.get(saved.headers["location"])).text
    assert _textarea(page, "directions_en") == ""
    # An English reader gets the Italian directions, told in English that they are Italian.
    assert _read(page) == [("Italiano", "Piano terra"), ("Inglese", "Piano terra (in Italian)")]
    assert "<td>Italiano</td>" in (await client.get("/schedules")).text
    async with database.transaction() as session:
        helpdesk = await session.get(Helpdesk, helpdesk_id)
        assert helpdesk is not None
        assert helpdesk.directions_by_language == {"it": "Piano terra"}


async def test_weekly_hours_refusals_sit_next_to_their_fields(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=(0,), valid_from=date(2026, 1, 1))
    path = f"/schedules/helpdesks/{helpdesk.id}/hours"
    token = await _coordinator(client, path)
    good = {
        "csrf_token": token, "weekday": "1", "opens_at": "14:00", "closes_at": "17:00",
        "slot_minutes": "45", "places": "2", "valid_from": "2026-02-01", "valid_until": "",
    }  # fmt: skip
    cases = [
        (
            {"closes_at": "13:00"},
            "closes_at",
            "L’orario di chiusura deve venire dopo quello di apertura.",
        ),
        ({"slot_minutes": "3"}, "slot_minutes", "Un turno dura tra 5 e 480 minuti."),
        ({"slot_minutes": "240"}, "slot_minutes", "L’apertura è più breve di un turno."),
        ({"slot_minutes": "tanti"}, "slot_minutes", "Scrivi un numero intero."),
        ({"places": "0"}, "places", "Un turno ha tra 1 e 100 posti."),
        ({"weekday": "9"}, "weekday", "Scegli un giorno della settimana."),
        ({"weekday": ""}, "weekday", "Questo campo è obbligatorio."),
        ({"opens_at": "9h"}, "opens_at", "Scrivi un orario come 09:30."),
        ({"valid_from": "ieri"}, "valid_from", "Scrivi una data come 31/12/2026."),
        (
            {"valid_until": "2026-01-15"},
            "valid_until",
            "La fine della validità non può venire prima dell’inizio.",
        ),
        (
            {"weekday": "0", "opens_at": "11:00", "closes_at": "13:00"},
            "opens_at",
            "Questi orari si sovrappongono ad altri orari dello stesso sportello.",
        ),
    ]
    for change, field, message in cases:
        refused = await client.post(path, data=good | change)
        assert refused.status_code == 400, change
        assert _error(refused.text, field) == message, change
        for kept in ("opens_at", "closes_at", "slot_minutes", "places", "valid_from"):
            assert _value(refused.text, kept) == (good | change)[kept], (change, kept)
    async with database.transaction() as session:
        assert len(await hours.list_opening_rules(session=session, helpdesk_id=helpdesk.id)) == 1

    added = await client.post(path, data=good)
    assert added.status_code == 303
    assert added.headers["location"] == path + "?notice=rule_added"
    page = (await client.get(added.headers["location"])).text
    assert "Orari settimanali aggiunti." in page
    assert "Martedì" in page
    assert "14:00–17:00" in page
    assert "45 minuti" in page


async def test_end_and_delete_weekly_hours(client: httpx.AsyncClient, database: Database) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=(0, 2), valid_from=date(2026, 1, 1))
        monday, wednesday = await hours.list_opening_rules(session=session, helpdesk_id=helpdesk.id)
    path = f"/schedules/helpdesks/{helpdesk.id}/hours"
    token = await _coordinator(client, path)

    too_early = await client.post(
        f"/schedules/rules/{monday.id}/end", data={"csrf_token": token, "last_day": "2025-12-31"}
    )
    assert too_early.status_code == 400
    assert _error(too_early.text, f"end-{monday.id}").startswith(
        "L’ultimo giorno non può venire prima"
    )
    assert 'value="2025-12-31"' in too_early.text
    garbage = await client.post(
        f"/schedules/rules/{monday.id}/end", data={"csrf_token": token, "last_day": "presto"}
    )
    assert _error(garbage.text, f"end-{monday.id}") == "Scrivi una data come 31/12/2026."

    ended = await client.post(
        f"/schedules/rules/{monday.id}/end", data={"csrf_token": token, "last_day": "2026-06-30"}
    )
    assert ended.status_code == 303
    assert ended.headers["location"] == path + "?notice=rule_ended"
    deleted = await client.post(
        f"/schedules/rules/{wednesday.id}/delete", data={"csrf_token": token}
    )
    assert deleted.headers["location"] == path + "?notice=rule_deleted"
    async with database.transaction() as session:
        rules = await hours.list_opening_rules(session=session, helpdesk_id=helpdesk.id)
    assert [(r.id, r.valid_until) for r in rules] == [(monday.id, date(2026, 6, 30))]
    assert "Conclusi" in (await client.get(path)).text
    assert (
        await client.post("/schedules/rules/999999/delete", data={"csrf_token": token})
    ).status_code == 404


async def test_removing_hours_with_bookings_lists_them_for_staff(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    day = _today() + timedelta(days=4)
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(
            session, weekdays=EVERY_DAY, valid_from=_today() - timedelta(days=1)
        )
        citizen = await make_citizen(session, name="Lia Fuori Orario")
        held = await booking.book_slot(
            session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
            starts_at=datetime.combine(day, time(9), tzinfo=ROME), actor="test",
        )  # fmt: skip
        rules = await hours.list_opening_rules(session=session, helpdesk_id=helpdesk.id)
        (rule,) = [r for r in rules if r.weekday == day.weekday()]
    token = await _coordinator(client, f"/schedules/helpdesks/{helpdesk.id}/hours")
    quiet = (await client.get(f"/schedules/helpdesks/{helpdesk.id}/stranded")).text
    assert "Non resta nessuna prenotazione da spostare o annullare." in quiet

    ended = await client.post(
        f"/schedules/rules/{rule.id}/end",
        data={"csrf_token": token, "last_day": (day - timedelta(days=1)).isoformat()},
    )
    assert (
        ended.headers["location"] == f"/schedules/helpdesks/{helpdesk.id}/stranded?notice=stranded"
    )
    page = (await client.get(ended.headers["location"])).text
    assert "Lia Fuori Orario" in page
    assert f"/agenda/bookings/{held.id}/move?back=" in page
    assert await _booking_state(database, held.id) == "booked"  # nothing dropped silently


async def _booking_state(database: Database, booking_id: int) -> str:
    async with database.transaction() as session:
        found = await session.get(Booking, booking_id)
        assert found is not None
        return found.state


async def test_closures_and_extra_openings(client: httpx.AsyncClient, database: Database) -> None:
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(session, weekdays=(0,), valid_from=_today())
    path = f"/schedules/helpdesks/{helpdesk.id}/closures"
    token = await _coordinator(client, path)
    day = (_today() + timedelta(days=10)).isoformat()

    half = await client.post(
        path,
        data={
            "csrf_token": token,
            "closure_day": day,
            "closure_starts_at": "10:00",
            "closure_reason": "Assemblea",
        },
    )
    assert half.status_code == 400
    assert _error(half.text, "closure_ends_at").startswith("Indica sia l’inizio sia la fine")
    assert _value(half.text, "closure_reason") == "Assemblea"
    backwards = await client.post(
        path,
        data={
            "csrf_token": token,
            "closure_day": day,
            "closure_starts_at": "11:00",
            "closure_ends_at": "10:00",
        },
    )
    assert (
        _error(backwards.text, "closure_ends_at")
        == "La fine della chiusura deve venire dopo l’inizio."
    )
    no_day = await client.post(path, data={"csrf_token": token, "closure_day": ""})
    assert _error(no_day.text, "closure_day") == "Questo campo è obbligatorio."

    closed = await client.post(
        path, data={"csrf_token": token, "closure_day": day, "closure_reason": "Festa patronale"}
    )
    assert closed.status_code == 303
    assert closed.headers["location"] == path + "?notice=closure_added"
    page = (await client.get(closed.headers["location"])).text
    assert "Tutto il giorno" in page
    assert "Festa patronale" in page

    extra = f"/schedules/helpdesks/{helpdesk.id}/extra-openings"
    good = {
        "csrf_token": token, "extra_day": day, "extra_opens_at": "15:00", "extra_closes_at": "18:00",
        "extra_slot_minutes": "30", "extra_places": "3", "extra_note": "Sabato straordinario",
    }  # fmt: skip
    refused = await client.post(extra, data=good | {"extra_slot_minutes": "1"})
    assert refused.status_code == 400
    assert _error(refused.text, "extra_slot_minutes") == "Un turno dura tra 5 e 480 minuti."
    assert _value(refused.text, "extra_note") == "Sabato straordinario"
    # A date typed by hand (no date picker) is understood too.
    typed = (_today() + timedelta(days=10)).strftime("%d/%m/%Y")
    added = await client.post(extra, data=good | {"extra_day": typed})
    assert added.headers["location"] == path + "?notice=extra_added"
    page = (await client.get(path)).text
    assert "Sabato straordinario" in page
    assert "15:00–18:00" in page

    async with database.transaction() as session:
        (closure,) = (await session.scalars(select(Closure))).all()
        (opening,) = (await session.scalars(select(ExtraOpening))).all()
    removed = await client.post(
        f"/schedules/extra-openings/{opening.id}/delete", data={"csrf_token": token}
    )
    assert removed.headers["location"] == path + "?notice=extra_deleted"
    reopened = await client.post(
        f"/schedules/closures/{closure.id}/delete", data={"csrf_token": token}
    )
    assert reopened.headers["location"] == path + "?notice=closure_deleted"
    async with database.transaction() as session:
        assert (await session.scalars(select(Closure))).all() == []
        assert (await session.scalars(select(ExtraOpening))).all() == []
        assert len((await session.scalars(select(OpeningRule))).all()) == 1
    assert (await client.get("/schedules/closures/999999")).status_code == 404


async def test_closing_a_day_with_bookings_then_moving_one_and_cancelling_the_other(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    day = _today() + timedelta(days=4)
    async with database.transaction() as session:
        helpdesk = await make_helpdesk(
            session, weekdays=EVERY_DAY, places=2, valid_from=_today() - timedelta(days=1)
        )
        ada = await make_citizen(session, name="Ada Spostata")
        leo = await make_citizen(session, name="Leo Annullato", urgent=True)
        bookings = {}
        for citizen, hour in ((ada, 9), (leo, 10)):
            bookings[citizen.name] = await booking.book_slot(
                session=session, settings=settings, citizen_id=citizen.id, helpdesk_id=helpdesk.id,
                starts_at=datetime.combine(day, time(hour), tzinfo=ROME), actor="test",
            )  # fmt: skip
    first, second = bookings["Ada Spostata"], bookings["Leo Annullato"]
    token = await _coordinator(client, f"/schedules/helpdesks/{helpdesk.id}/closures")

    closed = await client.post(
        f"/schedules/helpdesks/{helpdesk.id}/closures",
        data={"csrf_token": token, "closure_day": day.isoformat(), "closure_reason": "Sciopero"},
    )
    assert closed.status_code == 303
    async with database.transaction() as session:
        closure_id = (await session.scalars(select(Closure.id))).one()
    here = f"/schedules/closures/{closure_id}"
    assert closed.headers["location"] == here + "?notice=closure_affects"
    page = (await client.get(closed.headers["location"])).text
    assert "Le prenotazioni qui sotto cadono nella chiusura" in page
    assert "Ada Spostata" in page
    assert "Leo Annullato" in page
    assert "Caso urgente" in page
    move_link = re.search(rf'href="(/agenda/bookings/{first.id}/move\?[^"]+)"', page)
    cancel_link = re.search(rf'href="(/agenda/bookings/{second.id}/cancel\?[^"]+)"', page)
    assert move_link
    assert cancel_link

    # Move Ada to the next day through the agenda's own move page.
    move_page = await client.get(move_link.group(1).replace("&amp;", "&"))
    assert move_page.status_code == 200
    offered = re.findall(r'name="starts_at" id="slot-\d+" value="([^"]+)"', move_page.text)
    assert offered
    closed_day = {datetime.fromisoformat(v).astimezone(ROME).date() for v in offered}
    assert day not in closed_day  # the closed day offers nothing
    target = next(v for v in offered if datetime.fromisoformat(v).astimezone(ROME).date() > day)
    moved = await client.post(
        f"/agenda/bookings/{first.id}/move",
        data={
            "csrf_token": csrf_from(move_page.text), "helpdesk_id": str(helpdesk.id),
            "starts_at": target, "back": here,
        },
    )  # fmt: skip
    assert moved.status_code == 303
    assert moved.headers["location"] == here + "?notice=moved"
    page = (await client.get(moved.headers["location"])).text
    assert "Prenotazione spostata." in page
    assert "Ada Spostata" not in page
    assert "Leo Annullato" in page

    # Cancel Leo; the closure's reason is offered as the cancellation's reason.
    cancel_page = await client.get(cancel_link.group(1).replace("&amp;", "&"))
    assert "Sciopero</textarea>" in cancel_page.text
    cancelled = await client.post(
        f"/agenda/bookings/{second.id}/cancel",
        data={"csrf_token": token, "reason": "Sciopero", "back": here},
    )
    assert cancelled.headers["location"] == here + "?notice=cancelled"
    page = (await client.get(cancelled.headers["location"])).text
    assert "Non resta nessuna prenotazione da spostare o annullare." in page

    async with database.transaction() as session:
        states = {
            b.id: (b.state, b.moved_from_id)
            for b in await session.scalars(select(Booking).order_by(Booking.id))
        }
        new_id = next(i for i, (_, moved_from) in states.items() if moved_from == first.id)
        messages = [
            (m.kind, m.citizen_id, m.payload["booking_id"])
            for m in await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind.in_(("booking_moved", "booking_cancelled")))
                .order_by(OutboxMessage.id)
            )
        ]
    assert states[first.id][0] == "cancelled_by_staff"
    assert states[second.id][0] == "cancelled_by_staff"
    assert states[new_id][0] == "booked"
    assert messages == [
        ("booking_moved", first.citizen_id, new_id),
        ("booking_cancelled", second.citizen_id, second.id),
    ]
