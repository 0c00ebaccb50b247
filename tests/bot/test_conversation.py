"""The questionnaire on Telegram, through the real PTB stack and the intake engine's database."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from telegram.ext import Application

from bot.application import build_application
from shared.cases import service as cases
from shared.citizens.models import Citizen
from shared.db import Database
from shared.intake import questionnaire as q
from shared.intake import service as intake
from shared.intake.models import Intake, IntakeState
from shared.settings import Settings
from tests.bot.clock import MORNING
from tests.bot.fake_telegram import Call, FakeTelegram, buttons, texts
from tests.bot.fake_telegram import Citizen as TelegramUser

# A good answer to every step, the way the citizen gives it: a button or a message.
GOOD: dict[str, tuple[str, str]] = {
    "residence": ("press", "ans:residence:yes"),
    "situation": ("press", "ans:situation:job_loss"),
    "since": ("say", "03/2021"),
    "pandemic_related": ("press", "ans:pandemic_related:yes"),
    "household": ("say", "3 1"),
    "benefits": ("press", "done:benefits:1"),
    "needs": ("press", "done:needs:17"),
    "urgent": ("press", "ans:urgent:no"),
    "name": ("say", "Maria Rossi"),
    "phone": ("say", "331 693 8049"),
    "email": ("press", "skip:email"),
    "fiscal_code": ("press", "skip:fiscal_code"),
}
# The same answers as the engine takes them (None: skipped).
RAW: dict[str, str | None] = {
    "residence": "yes",
    "situation": "job_loss",
    "since": "03/2021",
    "pandemic_related": "yes",
    "household": "3 1",
    "benefits": "naspi",
    "needs": "economic_support job_search",
    "urgent": "no",
    "name": "Maria Rossi",
    "phone": "331 693 8049",
    "email": None,
    "fiscal_code": None,
}
KEYS = [s.key for s in q.QUESTIONNAIRE]

PHOTO = {"photo": [{"file_id": "p1", "file_unique_id": "p1u", "width": 90, "height": 90}]}
STICKER = {
    "sticker": {
        "file_id": "s1",
        "file_unique_id": "s1u",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
}
VOICE = {"voice": {"file_id": "v1", "file_unique_id": "v1u", "duration": 2}}
LOCATION = {"location": {"latitude": 45.52, "longitude": 9.33}}


# --- helpers -----------------------------------------------------------------------------


def markup(call: Call) -> dict[str, Any]:
    raw = call.params.get("reply_markup")
    found: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else (raw or {})
    return found


def sent(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.method == "sendMessage"]


def edits(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.method == "editMessageText"]


def toasts(calls: list[Call]) -> str:
    return " | ".join(c.text for c in calls if c.method == "answerCallbackQuery" and c.text)


def reask(key: str, reason: str, settings: Settings, lang: str = "it") -> str:
    return q.reask_text(q.step(key), reason, lang, settings=settings)


async def consented(
    app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    user_id: int,
    language: str = "it",
) -> tuple[TelegramUser, list[Call]]:
    user = TelegramUser(app, fake, user_id, language=language)
    calls = await user.press(f"consent:yes:{language}")
    return user, calls


async def give(user: TelegramUser, key: str) -> list[Call]:
    how, value = GOOD[key]
    return await (user.press(value) if how == "press" else user.say(value))


async def prepare(database: Database, settings: Settings, user_id: int, upto: str) -> None:
    """Answer every step before `upto` straight through the engine (fast set-up)."""
    async with database.transaction() as session:
        citizen = await session.scalar(select(Citizen).where(Citizen.telegram_user_id == user_id))
        assert citizen is not None
        # The bot's clock (`clock` fixture), which these tests leave where it is.
        now = MORNING
        for key in KEYS[: KEYS.index(upto)]:
            raw = RAW[key]
            if raw is None:
                await intake.skip_step(
                    session=session, citizen_id=citizen.id, step_key=key, now=now
                )
            else:
                await intake.record_answer(
                    session=session,
                    citizen_id=citizen.id,
                    step_key=key,
                    raw=raw,
                    now=now,
                    settings=settings,
                )


async def at_step(
    app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    settings: Settings,
    user_id: int,
    key: str,
) -> TelegramUser:
    user, _ = await consented(app, fake, user_id)
    await prepare(database, settings, user_id, key)
    return user


async def stored(database: Database, user_id: int) -> tuple[Citizen, Intake]:
    async with database.transaction(read_only=True) as session:
        citizen = await session.scalar(select(Citizen).where(Citizen.telegram_user_id == user_id))
        assert citizen is not None
        found = await intake.get_intake(session=session, citizen_id=citizen.id)
        assert found is not None
        return citizen, found


async def snapshot(database: Database, user_id: int) -> tuple[Any, ...]:
    _, found = await stored(database, user_id)
    return (
        found.state,
        found.current_step,
        dict(found.answers),
        list(found.history),
        found.updated_at,
        found.eligible,
    )


async def edit_answers(database: Database, user_id: int, **changes: Any) -> None:
    async with database.transaction() as session:
        citizen = await session.scalar(select(Citizen).where(Citizen.telegram_user_id == user_id))
        assert citizen is not None
        found = await intake.get_intake(session=session, citizen_id=citizen.id)
        assert found is not None
        found.answers = {**found.answers, **changes}


def no_apology(calls: list[Call]) -> None:
    assert "qualcosa è andato storto" not in texts(calls).lower()
    assert "something went wrong" not in texts(calls).lower()


# --- the whole questionnaire -------------------------------------------------------------


async def test_whole_questionnaire_to_an_eligible_outcome(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    maria, calls = await consented(bot_app, fake, 201)
    first = sent(calls)[-1]
    assert "1/12" in first.text
    assert "Sei residente a Cernusco sul Naviglio?" in first.text
    assert first.buttons == [("Sì", "ans:residence:yes"), ("No", "ans:residence:no")]

    calls = await maria.press("ans:residence:yes")
    (edit,) = edits(calls)
    assert "Sei residente" in edit.text and "Sì" in edit.text
    assert edit.buttons == []
    question = sent(calls)[-1]
    assert "2/12" in question.text and "Quale frase ti descrive meglio?" in question.text
    assert ("Ho perso il lavoro da dipendente", "ans:situation:job_loss") in question.buttons
    assert ("⬅️ Indietro", "back:situation") in question.buttons

    await maria.press("ans:situation:job_loss")
    calls = await maria.say("marzo 2021")
    assert "4/12" in texts(calls) and "pandemia" in texts(calls)
    await maria.press("ans:pandemic_related:not_sure")
    calls = await maria.say("3 e 1")
    assert "Puoi sceglierne più di uno" in texts(calls)
    assert ("⬜ Disoccupazione (NASpI)", "tog:benefits:0:naspi") in buttons(calls)
    await maria.press("tog:benefits:0:naspi")
    await maria.press("done:benefits:1")
    await maria.press("tog:needs:0:job_search")
    await maria.press("tog:needs:16:microcredit")
    await maria.press("done:needs:18")
    await maria.press("ans:urgent:yes")
    calls = await maria.say("  Maria   Rossi ")
    phone_question, share = sent(calls)[-2:]
    assert "10/12" in phone_question.text
    assert phone_question.buttons == [("⬅️ Indietro", "back:phone")]
    assert markup(share)["keyboard"][0][0]["request_contact"] is True
    calls = await maria.say("331 693 8049")
    assert any(markup(c).get("remove_keyboard") for c in sent(calls))
    assert "+39 331 693 8049" in texts(calls)
    calls = await maria.say("maria.rossi@example.com")
    assert ("⏭️ Salta", "skip:fiscal_code") in buttons(calls)
    calls = await maria.press("skip:fiscal_code")

    summary = sent(calls)[-1]
    for line in (
        "<b>Residenza</b>: Sì",
        "<b>Da quando</b>: marzo 2021",
        "<b>Causa: pandemia</b>: Non lo so",
        "<b>Famiglia</b>: persone in casa: 3, minorenni: 1",
        "<b>Aiuti ricevuti</b>: Disoccupazione (NASpI)",
        "<b>Di cosa hai bisogno</b>: Un piccolo prestito (microcredito), Cercare lavoro",
        "<b>Urgenza</b>: Sì",
        "<b>Nome e cognome</b>: Maria Rossi",
        "<b>Telefono</b>: +39 331 693 8049",
        "<b>E-mail</b>: maria.rossi@example.com",
        "<b>Codice fiscale</b>: non indicato",
    ):
        assert line in summary.text, line
    assert [data for _, data in summary.buttons] == ["ok", "chg", "restart"]
    assert (await snapshot(database, 201))[0] == IntakeState.SUMMARY

    calls = await maria.press("ok")
    no_apology(calls)
    assert "puoi partecipare a Ripartire" in texts(calls)
    # The booking conversation takes over: with no helpdesk open, it offers the waiting list.
    assert "wl" in [data for _, data in buttons(calls)]
    citizen, found = await stored(database, 201)
    assert found.state == IntakeState.COMPLETED
    assert found.eligible is True
    assert found.urgent is True
    assert found.answers == {
        "residence": "yes",
        "situation": "job_loss",
        "since": "2021-03",
        "pandemic_related": "not_sure",
        "household": {"members": 3, "minors": 1},
        "benefits": ["naspi"],
        "needs": ["microcredit", "job_search"],
        "urgent": "yes",
        "name": "Maria Rossi",
        "phone": "+393316938049",
        "email": "maria.rossi@example.com",
        "fiscal_code": None,
    }
    assert (citizen.name, citizen.phone, citizen.email, citizen.urgent) == (
        "Maria Rossi",
        "+393316938049",
        "maria.rossi@example.com",
        True,
    )
    # An old summary button changes nothing now.
    before = await snapshot(database, 201)
    calls = await maria.press("ok")
    assert "Hai già confermato" in toasts(calls)
    assert await snapshot(database, 201) == before


async def test_a_non_resident_is_told_at_once_and_leaves_name_and_phone_if_they_want(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    maria, _ = await consented(bot_app, fake, 202)
    calls = await maria.press("ans:residence:no")
    no_apology(calls)
    (told,) = sent(calls)
    # Right after the answer that decides it: why, kindly, the contacts, and the offer.
    assert "Ripartire è per chi è residente a Cernusco sul Naviglio." in told.text
    assert "331 693 8049" in told.text and "lavorint@cris.it" in told.text
    assert "Vuoi lasciarci nome e numero di telefono" in told.text
    assert "/12" not in told.text and "puoi partecipare" not in told.text
    assert told.buttons == [
        ("Sì, grazie", "ans:contact_offer:yes"),
        ("No, grazie", "ans:contact_offer:no"),
        ("⬅️ Indietro", "back:contact_offer"),
    ]
    calls = await maria.press("ans:contact_offer:yes")
    assert "2/3" in texts(calls) and "Come ti chiami?" in texts(calls)
    calls = await maria.say("Maria Rossi")
    assert "3/3" in texts(calls) and "telefono" in texts(calls)
    calls = await maria.say("331 693 8049")
    no_apology(calls)
    assert any(markup(c).get("remove_keyboard") for c in sent(calls))
    assert "ti chiamerà al numero che ci hai dato" in texts(calls)
    assert "lavorint@cris.it" in texts(calls)
    assert "e-mail" not in texts(calls) and "codice fiscale" not in texts(calls)
    # Nothing else was asked or kept; staff see the intake and its case, and can override.
    citizen, found = await stored(database, 202)
    assert (found.state, found.eligible) == (IntakeState.COMPLETED, False)
    assert found.answers == {
        "residence": "no",
        "contact_offer": "yes",
        "name": "Maria Rossi",
        "phone": "+393316938049",
    }
    assert (citizen.name, citizen.phone) == ("Maria Rossi", "+393316938049")
    async with database.transaction(read_only=True) as session:
        case = await cases.open_case_of(session=session, citizen_id=citizen.id)
        assert case is not None and case.eligible is False
    # Coming back later gives the same kind answer, not a new questionnaire.
    again = await maria.say("/start")
    assert "ti chiamerà" in texts(again)
    assert (await stored(database, 202))[1].state == IntakeState.COMPLETED


async def test_a_citizen_ruled_out_who_declines_is_asked_nothing_more(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    maria, _ = await consented(bot_app, fake, 222)
    await maria.press("ans:residence:no")
    calls = await maria.press("ans:contact_offer:no")
    no_apology(calls)
    (edit,) = edits(calls)
    assert "👉 <b>No, grazie</b>" in edit.text and edit.buttons == []
    (told,) = sent(calls)
    assert "non ti chiediamo altro" in told.text and "lavorint@cris.it" in told.text
    assert told.buttons == []
    citizen, found = await stored(database, 222)
    assert (found.state, found.eligible) == (IntakeState.COMPLETED, False)
    assert found.answers == {"residence": "no", "contact_offer": "no"}
    assert (citizen.name, citizen.phone) == (None, None)
    assert "non ti chiediamo altro" in texts(await maria.say("/start"))


@pytest.mark.parametrize(
    ("answers", "explanation"),
    [
        (["ans:residence:no"], "residente a Cernusco"),
        (["ans:residence:yes", "ans:situation:other"], "perso il lavoro"),
        (
            ["ans:residence:yes", "ans:situation:job_loss", "03/2021", "ans:pandemic_related:no"],
            "a causa della crisi per la pandemia",
        ),
    ],
    ids=["residence", "situation", "pandemic"],
)
async def test_any_answer_that_rules_out_is_told_at_once(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    answers: list[str],
    explanation: str,
) -> None:
    maria, _ = await consented(bot_app, fake, 223)
    for given in answers:
        calls = await (maria.press(given) if given.startswith("ans:") else maria.say(given))
    told = sent(calls)[-1]
    assert explanation in told.text
    assert "Vuoi lasciarci nome e numero" in told.text
    assert "Quante persone" not in texts(calls)
    # "Back" undoes a mistaken tap: the deciding question comes again.
    calls = await maria.press("back:contact_offer")
    deciding = answers[-1].split(":")[1]
    assert f"ans:{deciding}:" in " ".join(data for _, data in buttons(calls))
    _, found = await stored(database, 223)
    assert found.current_step == deciding


async def test_other_situation_is_explained_before_more_questions(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    maria, _ = await consented(bot_app, fake, 203)
    await maria.press("ans:residence:yes")
    calls = await maria.press("ans:situation:other")
    assert "perso il lavoro" in texts(calls) and "Quante persone" not in texts(calls)
    await maria.press("ans:contact_offer:no")
    _, found = await stored(database, 203)
    assert found.eligible is False
    assert found.answers == {"residence": "yes", "situation": "other", "contact_offer": "no"}


async def test_english_speaker_gets_english(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
) -> None:
    _, calls = await consented(bot_app, fake, 204, language="en")
    question = sent(calls)[-1]
    assert "Are you a resident of Cernusco sul Naviglio?" in question.text
    assert question.buttons == [
        ("Yes, I am", "ans:residence:yes"),
        ("No, I'm not", "ans:residence:no"),
    ]


# --- back, change, restart, pause ----------------------------------------------------------


async def test_go_back_one_step(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 205, "household")
    calls = await maria.press("back:household")
    (edit,) = edits(calls)
    assert "Quante persone" in edit.text and edit.buttons == []
    question = sent(calls)[-1]
    assert "4/12" in question.text and "pandemia" in question.text
    assert ("Non lo so", "ans:pandemic_related:not_sure") in question.buttons
    _, found = await stored(database, 205)
    assert found.current_step == "pandemic_related"
    assert "pandemic_related" not in found.answers
    assert found.answers["since"] == "2021-03"
    # Back again, then answer: the questionnaire goes on from there.
    await maria.press("back:pandemic_related")
    await maria.say("04/2021")
    calls = await maria.press("ans:pandemic_related:not_sure")
    assert "Quante persone" in sent(calls)[-1].text
    _, found = await stored(database, 205)
    assert (found.answers["since"], found.answers["pandemic_related"]) == ("2021-04", "not_sure")
    assert found.current_step == "household"
    # The first question has no "Back", and a forged one changes nothing.
    maria2, calls = await consented(bot_app, fake, 206)
    assert not [b for b in buttons(calls) if b[1].startswith("back")]
    before = await snapshot(database, 206)
    calls = await maria2.press("back:residence")
    assert "già la prima domanda" in toasts(calls)
    assert await snapshot(database, 206) == before


async def test_back_from_the_phone_step_removes_the_share_keyboard(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 207, "phone")
    calls = await maria.press("back:phone")
    assert any(markup(c).get("remove_keyboard") for c in sent(calls))
    assert "Come ti chiami?" in sent(calls)[-1].text
    _, found = await stored(database, 207)
    assert found.current_step == "name"


async def test_change_one_answer_from_the_summary(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 208, "fiscal_code")
    calls = await maria.press("skip:fiscal_code")
    assert "Le tue risposte" in texts(calls)
    calls = await maria.press("chg")
    listed = [data for _, data in buttons(calls)]
    assert listed == [f"chg:{key}" for key in KEYS] + ["sum"]
    calls = await maria.press("chg:household")
    question = sent(calls)[-1]
    assert "Quante persone" in question.text
    assert "La tua risposta ora: <b>persone in casa: 3, minorenni: 1</b>" in question.text
    assert ("⬅️ Indietro", "back:household") in question.buttons
    calls = await maria.say("4 2")
    assert "persone in casa: 4, minorenni: 2" in sent(calls)[-1].text
    _, found = await stored(database, 208)
    assert found.state == IntakeState.SUMMARY
    assert found.answers["household"] == {"members": 4, "minors": 2}
    # Changing a multiple choice starts from the answer given, and "Back" keeps it.
    calls = await maria.press("chg")
    calls = await maria.press("chg:needs")
    assert ("✅ Un aiuto economico urgente", "tog:needs:17:economic_support") in buttons(calls)
    calls = await maria.press("back:needs")
    assert "Le tue risposte" in sent(calls)[-1].text
    _, found = await stored(database, 208)
    assert found.state == IntakeState.SUMMARY
    assert found.answers["needs"] == ["economic_support", "job_search"]


async def test_changing_the_situation_asks_the_questions_that_now_apply(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 209, "fiscal_code")
    await maria.press("skip:fiscal_code")
    await maria.press("chg")
    await maria.press("chg:situation")
    # "Something else" rules the citizen out: told at once; "Back" undoes it.
    calls = await maria.press("ans:situation:other")
    assert "perso il lavoro" in sent(calls)[-1].text
    calls = await maria.press("back:contact_offer")
    assert "Quale frase ti descrive meglio?" in sent(calls)[-1].text
    calls = await maria.press("ans:situation:reduced_hours")
    assert "Da quando?" in sent(calls)[-1].text
    await maria.say("03/2021")
    calls = await maria.press("ans:pandemic_related:yes")
    assert "Le tue risposte" in sent(calls)[-1].text
    _, found = await stored(database, 209)
    assert found.answers["since"] == "2021-03"
    assert found.answers["situation"] == "reduced_hours"
    assert found.answers["name"] == "Maria Rossi"


async def test_restart_asks_first_then_starts_again(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 210, "fiscal_code")
    await maria.press("skip:fiscal_code")
    before = await snapshot(database, 210)
    calls = await maria.press("restart")
    assert "ricominciare dalla prima domanda" in texts(calls)
    assert [data for _, data in buttons(calls)] == ["restart:yes", "sum"]
    assert await snapshot(database, 210) == before
    calls = await maria.press("sum")
    assert "Le tue risposte" in texts(calls)
    assert await snapshot(database, 210) == before
    calls = await maria.press("restart:yes")
    assert "1/12" in sent(calls)[-1].text
    _, found = await stored(database, 210)
    assert (found.state, found.current_step, found.answers, found.history) == (
        IntakeState.IN_PROGRESS,
        "residence",
        {},
        [],
    )


async def test_start_again_later_resumes_where_the_citizen_stopped(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 211, "urgent")
    calls = await maria.say("/start")
    assert "8/12" in texts(calls) and "affitto" in texts(calls)
    assert ("Sì", "ans:urgent:yes") in buttons(calls)
    # An unknown command brings the current question back too.
    assert "affitto" in texts(await maria.say("/boh"))


async def test_an_expired_questionnaire_starts_again_with_an_explanation(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 212, "name")
    async with database.transaction() as session:
        later = MORNING + timedelta(days=bot_settings.intake_expiry_days + 1)
        expired = await intake.expire_stale(
            session=session,
            now=later,
            max_age=timedelta(days=bot_settings.intake_expiry_days),
            tz=bot_settings.tz,
        )
        assert len(expired) == 1
    calls = await maria.say("/start")
    assert "sono state cancellate" in texts(calls)
    assert "1/12" in texts(calls)
    _, found = await stored(database, 212)
    assert (found.state, found.answers) == (IntakeState.IN_PROGRESS, {})


async def test_a_new_process_continues_the_same_questionnaire(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria, _ = await consented(bot_app, fake, 213)
    for key in KEYS[: KEYS.index("household")]:
        await give(maria, key)
    await bot_app.shutdown()
    restarted = build_application(settings=bot_settings, database=database, request=fake)
    await restarted.initialize()
    try:
        again = TelegramUser(restarted, fake, 213)
        calls = await again.say("/start")
        assert "5/12" in texts(calls) and "Quante persone" in texts(calls)
        calls = await again.say("2 0")
        assert "Ricevi già qualche aiuto?" in texts(calls)
        _, found = await stored(database, 213)
        assert found.answers == {
            "residence": "yes",
            "situation": "job_loss",
            "since": "2021-03",
            "pandemic_related": "yes",
            "household": {"members": 2, "minors": 0},
        }
        assert found.current_step == "benefits"
    finally:
        await restarted.shutdown()
        await bot_app.initialize()


# --- bad input ---------------------------------------------------------------------------

LONG = "x" * 4096
EMOJI = "😀🙏"
RTL = "Maria\u202eRossi"
NON_TEXT = {"photo": PHOTO, "sticker": STICKER, "voice": VOICE, "location": LOCATION}
BUTTON_KEYS = [s.key for s in q.QUESTIONNAIRE if s.options]

# Per text step: (what the citizen writes, the reason the re-ask is for).
BAD_TEXT: dict[str, list[tuple[str, str, str]]] = {
    "since": [
        ("format", "marzo", "format"),
        ("month13", "13/2021", "format"),
        ("future", "12/2999", "future"),
        ("before_start", "01/2019", "before_start"),
    ],
    "household": [
        ("format", "tre persone", "format"),
        ("members_range", "25 1", "members_range"),
        ("minors_exceed", "2 2", "minors_exceed"),
    ],
    "name": [
        ("digits", "Maria 1234", "characters"),
        ("html", "<b>Maria</b>", "characters"),
        ("short", "M", "too_short"),
    ],
    "phone": [
        ("short", "123", "invalid"),
        ("words", "tre tre uno", "letters"),
        # phonenumbers would read the letters as a keypad's digits: +39 333 222 3334.
        ("vanity", "333-abc-defg", "letters"),
    ],
    "email": [("no_domain", "maria@", "invalid"), ("spaces", "maria rossi", "invalid")],
    "fiscal_code": [
        ("short", "RSSMRA85", "format"),
        ("check", "RSSMRA85D03F205X", "check_character"),
    ],
}
# Why emoji or a right-to-left override are refused, per text step.
SHAPE_REASON = {
    "since": "format",
    "household": "format",
    "name": "characters",
    "phone": "invalid",
    "email": "invalid",
    "fiscal_code": "format",
}
for _key in BUTTON_KEYS:
    BAD_TEXT[_key] = [("words", "forse domani", "unknown_option")]


def _cases() -> list[Any]:
    cases = []
    for key in KEYS:
        inputs = [
            *BAD_TEXT[key],
            ("emoji", EMOJI, SHAPE_REASON.get(key, "unknown_option")),
            ("4096", LONG, "too_long"),
            ("rtl", RTL, "letters" if key == "phone" else SHAPE_REASON.get(key, "unknown_option")),
        ]
        for kind, text, reason in inputs:
            cases.append(pytest.param(key, {"text": text}, reason, id=f"{key}-{kind}"))
        for kind, content in NON_TEXT.items():
            cases.append(pytest.param(key, content, "empty", id=f"{key}-{kind}"))
    return cases


@pytest.mark.parametrize(("key", "content", "reason"), _cases())
async def test_a_bad_answer_gets_the_reask_and_changes_nothing(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    key: str,
    content: dict[str, Any],
    reason: str,
) -> None:
    user_id = 300 + KEYS.index(key)
    maria = await at_step(bot_app, fake, database, bot_settings, user_id, key)
    before = await snapshot(database, user_id)
    assert before[1] == key
    calls = await maria.send(**content)
    no_apology(calls)
    step = q.step(key)
    # Multiple choices are made with the buttons only; button steps get the buttons again.
    if step.options:
        expected = reask(key, "empty", bot_settings)
        assert [b for b in buttons(calls) if b[1].split(":")[1:2] == [key]]
    else:
        expected = reask(key, reason, bot_settings)
    assert expected in texts(calls)
    assert await snapshot(database, user_id) == before


async def test_typed_labels_of_a_button_step_are_understood(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    maria, _ = await consented(bot_app, fake, 214)
    calls = await maria.say("sì")
    assert "Quale frase" in texts(calls)
    assert (await stored(database, 214))[1].answers == {"residence": "yes"}


# --- multiple choice ---------------------------------------------------------------------


async def test_toggles_edit_the_keyboard_and_done_stores_the_choice(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 215, "benefits")
    before = await snapshot(database, 215)
    calls = await maria.press("tog:benefits:0:naspi")
    (edit,) = edits(calls)
    assert "Ricevi già qualche aiuto?" in edit.text
    assert edit.buttons[:5] == [
        ("✅ Disoccupazione (NASpI)", "tog:benefits:1:naspi"),
        ("⬜ Assegno di inclusione o reddito di cittadinanza", "tog:benefits:1:inclusion"),
        ("⬜ Cassa integrazione", "tog:benefits:1:wage_guarantee"),
        ("⬜ Un altro aiuto", "tog:benefits:1:other"),
        ("⬜ Nessuno", "tog:benefits:1:none"),
    ]
    assert ("✔️ Fatto", "done:benefits:1") in edit.buttons
    assert not sent(calls)
    calls = await maria.press("tog:benefits:1:wage_guarantee")
    assert ("✔️ Fatto", "done:benefits:5") in buttons(calls)
    # Ticking "none" clears the others; ticking another clears "none".
    calls = await maria.press("tog:benefits:5:none")
    ticked = [label for label, _ in buttons(calls) if label.startswith("✅")]
    assert ticked == ["✅ Nessuno"]
    assert ("✔️ Fatto", "done:benefits:16") in buttons(calls)
    calls = await maria.press("tog:benefits:16:other")
    assert ("✔️ Fatto", "done:benefits:8") in buttons(calls)
    # Unticking the last one leaves nothing ticked.
    calls = await maria.press("tog:benefits:8:other")
    assert ("✔️ Fatto", "done:benefits:0") in buttons(calls)
    assert await snapshot(database, 215) == before
    # "Done" with nothing ticked, or a forged "none" with others, is refused.
    calls = await maria.press("done:benefits:0")
    assert reask("benefits", "empty", bot_settings) in toasts(calls)
    calls = await maria.press("done:benefits:17")
    assert reask("benefits", "exclusive", bot_settings) in toasts(calls)
    assert await snapshot(database, 215) == before
    calls = await maria.press("done:benefits:5")
    (edit,) = edits(calls)
    assert "Disoccupazione (NASpI), Cassa integrazione" in edit.text
    assert edit.buttons == []
    assert "Cosa ti aiuterebbe?" in sent(calls)[-1].text
    _, found = await stored(database, 215)
    assert found.answers["benefits"] == ["naspi", "wage_guarantee"]
    assert found.current_step == "needs"


# --- stale and forged buttons ------------------------------------------------------------


ANSWERED = "Hai già risposto a questa domanda"
OUT_OF_DATE = "non è più attivo"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("ans:residence:yes", ANSWERED),
        ("ans:residence:maybe", ANSWERED),
        ("tog:needs:999999:x", OUT_OF_DATE),
        ("done:needs:1", OUT_OF_DATE),
        ("skip:email", OUT_OF_DATE),
        ("back:since", ANSWERED),
        ("ans:household:yes", "non è valido"),
        ("ans:household", "non è valido"),
        ("tog:household:1:x", "non è valido"),
        ("done:household:1", "non è valido"),
        ("skip:household", "non si può saltare"),
        ("chg:household", OUT_OF_DATE),
        ("ok", OUT_OF_DATE),
        ("sum", OUT_OF_DATE),
        ("restart:now", "non è valido"),
        ("back:household:extra", "non è valido"),
        ("ans:residence:yes:extra", "non è valido"),
    ],
)
async def test_old_and_forged_buttons_change_nothing(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    data: str,
    expected: str,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 216, "household")
    before = await snapshot(database, 216)
    calls = await maria.press(data)
    no_apology(calls)
    assert expected in toasts(calls)
    if expected in (ANSWERED, OUT_OF_DATE):
        # The toast only: the current question is already the latest message.
        assert not sent(calls) and not edits(calls)
    assert await snapshot(database, 216) == before


@pytest.mark.parametrize(
    ("key", "data"),
    [
        ("residence", "ans:residence:maybe"),
        ("residence", "ans:residence:other"),
        ("situation", "ans:situation:yes"),
        ("needs", "ans:needs:economic_support"),
        ("needs", "tog:needs:999999:x"),
        ("needs", "tog:needs:1:x"),
        ("needs", "done:needs:abc"),
        ("needs", "done:needs:128"),
        ("name", "ans:name:yes"),
        ("name", "done:name:1"),
    ],
)
async def test_forged_buttons_of_the_current_step_are_refused(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    key: str,
    data: str,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 217, key)
    before = await snapshot(database, 217)
    calls = await maria.press(data)
    assert "non è valido" in toasts(calls)
    assert not sent(calls) and not edits(calls)
    assert await snapshot(database, 217) == before


async def test_buttons_before_consent_are_not_taken(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
) -> None:
    stranger = TelegramUser(bot_app, fake, 218)
    calls = await stranger.press("ans:residence:yes")
    assert "/start" in toasts(calls)
    assert "Scrivi /start" in texts(await stranger.send(**PHOTO))


# --- phone -------------------------------------------------------------------------------


async def test_only_the_citizens_own_contact_is_accepted(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 219, "phone")
    before = await snapshot(database, 219)
    other = {"phone_number": "+393331234567", "first_name": "Luca", "user_id": 999}
    calls = await maria.send(contact=other)
    assert "non è il tuo numero" in texts(calls)
    assert markup(sent(calls)[-1])["keyboard"][0][0]["request_contact"] is True
    no_user = {"phone_number": "+393331234567", "first_name": "Luca"}
    assert "non è il tuo numero" in texts(await maria.send(contact=no_user))
    assert await snapshot(database, 219) == before
    own = {"phone_number": "393316938049", "first_name": "Maria", "user_id": 219}
    calls = await maria.send(contact=own)
    assert any(markup(c).get("remove_keyboard") for c in sent(calls))
    assert "Numero salvato: +39 331 693 8049" in texts(calls)
    assert "e-mail" in sent(calls)[-1].text
    _, found = await stored(database, 219)
    assert found.answers["phone"] == "+393316938049"
    assert found.current_step == "email"


async def test_a_contact_in_another_step_is_not_an_answer(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 220, "name")
    before = await snapshot(database, 220)
    own = {"phone_number": "393316938049", "first_name": "Maria", "user_id": 220}
    calls = await maria.send(contact=own)
    assert reask("name", "empty", bot_settings) in texts(calls)
    assert await snapshot(database, 220) == before


# --- escaping ----------------------------------------------------------------------------


async def test_the_citizens_text_comes_back_escaped_in_the_summary(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    maria = await at_step(bot_app, fake, database, bot_settings, 221, "email")
    await maria.say("a&b@example.com")
    calls = await maria.press("skip:fiscal_code")
    assert "<b>E-mail</b>: a&amp;b@example.com" in sent(calls)[-1].text
    # The name validator refuses markup; a name stored another way (staff, an older
    # definition) is still shown literally.
    await edit_answers(database, 221, name="<b>Maria</b> & Co")
    calls = await maria.say("/start")
    summary = sent(calls)[-1].text
    assert "<b>Nome e cognome</b>: &lt;b&gt;Maria&lt;/b&gt; &amp; Co" in summary
    assert "<b>Maria</b>" not in summary


# --- typed "back", double taps -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "typed", "previous"),
    [
        ("household", "Indietro!", "pandemic_related"),
        ("name", "torna indietro", "urgent"),
        ("since", "⬅️ Indietro", "situation"),
        ("email", "ANNULLA.", "phone"),
        ("fiscal_code", "Back", "email"),
        ("benefits", "cancel", "household"),
    ],
)
async def test_typing_back_goes_back_and_is_not_an_answer(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    key: str,
    typed: str,
    previous: str,
) -> None:
    user_id = 230 + KEYS.index(key)
    maria = await at_step(bot_app, fake, database, bot_settings, user_id, key)
    calls = await maria.say(typed)
    no_apology(calls)
    assert q.question_text(q.step(previous), "it", settings=bot_settings) in texts(sent(calls))
    _, found = await stored(database, user_id)
    assert found.current_step == previous
    assert previous not in found.answers
    assert typed not in [str(answer) for answer in found.answers.values()]


async def test_typing_back_at_the_phone_or_first_step_or_while_changing(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    # The "share my number" keyboard goes with the phone question.
    maria = await at_step(bot_app, fake, database, bot_settings, 240, "phone")
    calls = await maria.say("annulla")
    assert any(markup(c).get("remove_keyboard") for c in sent(calls))
    assert "Come ti chiami?" in sent(calls)[-1].text
    # The first question has nowhere to go back to.
    first, _ = await consented(bot_app, fake, 241)
    before = await snapshot(database, 241)
    assert "già la prima domanda" in texts(await first.say("indietro"))
    assert await snapshot(database, 241) == before
    # While changing an answer from the summary, "back" cancels the change.
    changing = await at_step(bot_app, fake, database, bot_settings, 242, "fiscal_code")
    await changing.press("skip:fiscal_code")
    await changing.press("chg")
    await changing.press("chg:name")
    calls = await changing.say("Indietro")
    assert "Le tue risposte" in sent(calls)[-1].text
    _, found = await stored(database, 242)
    assert (found.state, found.answers["name"]) == (IntakeState.SUMMARY, "Maria Rossi")


async def test_an_english_speaker_types_back_in_english(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
) -> None:
    maria, _ = await consented(bot_app, fake, 243, language="en")
    await maria.press("ans:residence:yes")
    await maria.press("ans:situation:job_loss")
    calls = await maria.say("Go back")
    assert "Which of these describes you best?" in sent(calls)[-1].text
    assert (await stored(database, 243))[1].current_step == "situation"


@pytest.mark.parametrize(
    ("key", "data"),
    [
        ("email", "skip:email"),
        ("urgent", "ans:urgent:no"),
        ("needs", "done:needs:17"),
        ("household", "back:household"),
    ],
)
async def test_a_double_tap_is_answered_with_a_toast_only(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    key: str,
    data: str,
) -> None:
    user_id = 250 + KEYS.index(key)
    maria = await at_step(bot_app, fake, database, bot_settings, user_id, key)
    first = await maria.press(data)
    assert len(sent(first)) >= 1
    after_first = await snapshot(database, user_id)
    second = await maria.press(data)
    assert [c.method for c in second] == ["answerCallbackQuery"]
    assert toasts(second) in (
        "Hai già risposto a questa domanda.",
        "Questo pulsante non è più attivo: non è cambiato nulla. Rispondi all'ultima domanda, "
        "oppure scrivi /start per rivederla.",
    )
    assert await snapshot(database, user_id) == after_first
