"""Walk-in intake in a real browser: the questionnaire filled by staff, then a booking."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect
from sqlalchemy import select

from shared.booking.models import Booking
from shared.citizens.models import Citizen
from shared.db import Database
from tests.dashboard.browser.conftest import HELPDESK, Scene, click_label_of, open_menu, sign_in

NAME = "Carla Fumagalli"


async def _answer(page: Page, question: str, answer: str) -> None:
    """Pick an answer (radio or checkbox) of one question, by the labels people read."""
    group = page.get_by_role("group", name=question, exact=True)
    await group.get_by_text(answer, exact=True).check()


async def test_walk_in_intake_then_booking(page: Page, scene: Scene, database: Database) -> None:
    await sign_in(page, "operatore")
    await open_menu(page, "Telefono e sportello")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Accoglienza al telefono e allo sportello"
    )

    await _answer(page, "Come ci ha contattato la persona?", "Di persona allo sportello")
    await _answer(page, "Residenza", "Sì")
    await _answer(page, "Situazione", "Ho perso il lavoro da dipendente")
    await page.get_by_label("Da quando", exact=True).fill("05/2020")
    await _answer(page, "Causa: pandemia", "Sì")
    await page.get_by_label("Persone nel nucleo familiare").fill("2")
    await page.get_by_label("di cui minorenni").fill("0")
    await _answer(page, "Aiuti ricevuti", "Disoccupazione (NASpI)")
    await _answer(page, "Di cosa hai bisogno", "Cercare lavoro")
    await _answer(page, "Urgenza", "No")
    await page.get_by_label("Nome e cognome").fill(NAME)
    await page.get_by_role("textbox", name="Telefono", exact=True).fill("347 555 0199")
    # Forgot the privacy consent: the form comes back with the message and the answers.
    await page.get_by_role("button", name="Registra e verifica l'idoneità").click()

    consent = page.get_by_label("La persona ha ricevuto l'informativa sulla privacy")
    await expect(consent).to_have_accessible_description(re.compile("informativa sulla privacy"))
    await expect(page.get_by_label("Nome e cognome")).to_have_value(NAME)
    await expect(page.get_by_label("Da quando", exact=True)).to_have_value("05/2020")
    await expect(
        page.get_by_role("group", name="Aiuti ricevuti").get_by_label("Disoccupazione (NASpI)")
    ).to_be_checked()
    await page.get_by_text("La persona ha ricevuto l'informativa sulla privacy").check()
    await page.get_by_role("button", name="Registra e verifica l'idoneità").click()

    # Eligible: book the first free time offered.
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Accoglienza di {NAME}")
    await expect(page.get_by_role("status").first).to_contain_text("Idoneo.")
    free = page.get_by_role("group", name="Orari liberi")
    first = free.get_by_role("radio").first
    await click_label_of(page, first)
    await expect(first).to_be_checked()
    await page.get_by_role("button", name="Prenota questo orario").click()

    booked = page.get_by_role("region", name="Colloquio prenotato")
    await expect(booked).to_contain_text(HELPDESK)
    async with database.transaction() as session:
        citizen = (await session.scalars(select(Citizen).where(Citizen.name == NAME))).one()
        made = (
            await session.scalars(select(Booking).where(Booking.citizen_id == citizen.id))
        ).one()
    assert citizen.channel == "walk_in"
    await expect(booked).to_contain_text(made.code)
