"""The plan on Telegram: producer (the plan services) → outbox → dispatcher → Bot API, and
the "I've read it" button through the real PTB stack (SPEC J3, J5).

Each kind is rendered in the citizen's language from the data at send time; one that no
longer applies is withdrawn. The dispatcher's clock is fixed (the builders' December
2026), so the tests pass at any hour.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from telegram.ext import Application

from bot.delivery import OutboxDispatcher
from shared import money
from shared.booking import service as booking_service
from shared.booking.messages import MessageKind as BookingMessageKind
from shared.cases.access import StaffMember
from shared.citizens.models import Citizen
from shared.db import Database
from shared.outbox.models import MessageState, OutboxMessage
from shared.plans import acknowledgements
from shared.plans import messages as plan_messages
from shared.plans import service as plans
from shared.plans.form import CommitmentInput
from shared.plans.messages import MessageKind
from shared.plans.models import Plan, PlanAcknowledgement, SupportState
from shared.settings import Settings
from shared.staff.models import Role
from tests.bot.fake_telegram import Call, FakeTelegram
from tests.bot.fake_telegram import Citizen as TelegramUser
from tests.factories import make_helpdesk, rome
from tests.shared.cases.builders import NOW, make_staff, member
from tests.shared.plans.builders import (
    admitted_case,
    as_input,
    complete_input,
    emergency,
    job_search,
    make_fund,
    plan_with,
)

# Wednesday 9 December 2026, 08:00 in Cernusco: approved (and signed) that morning.
LATER = NOW + timedelta(days=2)
SOON_AFTER = LATER + timedelta(minutes=5)
FOLLOW_UP = rome(2026, 12, 15, 10)  # a Tuesday
REVIEW_NOTICE = rome(2027, 3, 6, 10)  # three days before the first review, 9 March 2027
HELPDESK_NAME = "Sportello Villa & Parco"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Story:
    case_id: int
    citizen_id: int
    plan_id: int
    chat_id: int
    worker: StaffMember
    boss: StaffMember


async def approved_plan(
    database: Database,
    settings: Settings,
    *,
    language: str = "it",
    appointment: datetime | None = None,
    commitments: tuple[CommitmentInput, ...] | None = None,
) -> Story:
    """An admitted citizen on Telegram whose plan was approved at `LATER`."""
    n = next(_numbers)
    async with database.transaction() as session:
        worker = member(await make_staff(session, f"giulia{n}"))
        boss = member(await make_staff(session, f"carla{n}", Role.COORDINATORE))
        fund = await make_fund(session, cents=5_000_00, name=f"Fondo {n}")
        telegram_id = 920_000 + n
        case = await admitted_case(session, settings, worker, telegram_id=telegram_id)
        citizen = await session.get(Citizen, case.citizen_id)
        assert citizen is not None
        citizen.language = language
        data = complete_input(emergency(fund_id=fund.id), job_search())
        if commitments is not None:
            data = dataclasses.replace(data, commitments=commitments)
        plan = await plan_with(session, settings, worker, case, data)
        await plans.submit_plan(session=session, case_id=case.id, staff=worker, now=LATER)
        await plans.approve_plan(session=session, case_id=case.id, staff=boss, now=LATER)
        if appointment is not None:
            helpdesk = await make_helpdesk(session, name=HELPDESK_NAME, places=5)
            await booking_service.book_slot(
                session=session, settings=settings, citizen_id=citizen.id,
                helpdesk_id=helpdesk.id, starts_at=appointment, actor="staff:test", now=LATER,
            )  # fmt: skip
        return Story(case.id, citizen.id, plan.id, telegram_id, worker, boss)


async def sign(database: Database, settings: Settings, story: Story) -> None:
    async with database.transaction() as session:
        await plans.record_signature(
            session=session, case_id=story.case_id, signed_on=LATER.date(), staff=story.worker,
            settings=settings, now=LATER,
        )  # fmt: skip


async def signed_plan(
    database: Database,
    settings: Settings,
    *,
    language: str = "it",
    commitments: tuple[CommitmentInput, ...] | None = None,
) -> Story:
    """The plan of `approved_plan`, signed at `LATER` too: the citizen's plan is active."""
    story = await approved_plan(database, settings, language=language, commitments=commitments)
    await sign(database, settings, story)
    return story


async def approve(database: Database, story: Story) -> None:
    async with database.transaction() as session:
        await plans.approve_plan(
            session=session, case_id=story.case_id, staff=story.boss, now=LATER
        )


async def raise_the_amount(database: Database, settings: Settings, story: Story) -> None:
    """A material change: the plan goes back to the coordinators, at the same version."""
    async with database.transaction() as session:
        rows = await plans.get_plan(session=session, case_id=story.case_id, staff=story.worker)
        money_row = rows.supports[0]
        higher = (
            emergency(
                fund_id=money_row.fund_id, monthly="400", id=money_row.id,
                state=SupportState(money_row.state),
            ),
            *as_input(rows).supports[1:],
        )  # fmt: skip
        result = await plans.save_plan(
            session=session, case_id=story.case_id, data=as_input(rows, supports=higher),
            staff=story.worker, settings=settings, now=LATER,
        )  # fmt: skip
        assert result.sent_back


async def close(database: Database, story: Story) -> None:
    closure = plans.parse_closure(
        outcome="dropped_out", income="same", debts="same", urgent_expenses="same", notes=""
    )
    async with database.transaction() as session:
        await plans.close_plan(
            session=session, case_id=story.case_id, closure=closure, staff=story.worker, now=LATER
        )


def dispatcher(
    app: Application,  # type: ignore[type-arg]
    database: Database,
    settings: Settings,
    at: datetime,
) -> OutboxDispatcher:
    moment = at.astimezone(UTC)
    clock: Callable[[], datetime] = lambda: moment  # noqa: E731
    return OutboxDispatcher(
        bot=app.bot, database=database, settings=settings, worker="w1", clock=clock,
        per_chat_interval=0.0,
    )  # fmt: skip


def to_chat(fake: FakeTelegram, story: Story) -> list[Call]:
    return [c for c in fake.sent("sendMessage") if c.params.get("chat_id") == story.chat_id]


async def deliver(
    app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    settings: Settings,
    story: Story,
    at: datetime = SOON_AFTER,
) -> list[Call]:
    """What reaches the citizen's chat in one round of the dispatcher at `at`."""
    before = len(to_chat(fake, story))
    await dispatcher(app, database, settings, at).run_once()
    return to_chat(fake, story)[before:]


async def plan_messages_of(database: Database, story: Story) -> list[OutboxMessage]:
    async with database.transaction(read_only=True) as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.citizen_id == story.citizen_id,
                OutboxMessage.kind.in_([k.value for k in MessageKind]),
            )
            .order_by(OutboxMessage.id)
        )
        return list(rows.all())


async def acknowledgements_of(database: Database, story: Story) -> list[PlanAcknowledgement]:
    async with database.transaction(read_only=True) as session:
        return await acknowledgements.acknowledgements_of(session=session, plan_id=story.plan_id)


async def current_hash(database: Database, story: Story) -> str:
    async with database.transaction(read_only=True) as session:
        plan = await session.get(Plan, story.plan_id)
        assert plan is not None
        return (await plan_messages.plan_summary(session=session, plan=plan)).content_hash()


def euros(cents: int, language: str) -> str:
    return money.format_euros(cents, language)


# --- approved: come and sign -------------------------------------------------------------

INVITATION = {
    "it": [
        "📝 <b>Il tuo piano Ripartire è pronto.</b>",
        "manca solo la tua firma",
        "Vieni a firmarlo al tuo appuntamento",
        "martedì 15 dicembre",
        "Porta con te un documento d'identità.",
    ],
    "en": [
        "📝 <b>Your Ripartire plan is ready.</b>",
        "now it only needs your signature",
        "Come and sign it at your appointment",
        "Tuesday 15 December",
        "Please bring an identity document.",
    ],
}


@pytest.mark.parametrize("language", ["it", "en"])
async def test_the_approval_invites_the_citizen_to_sign_at_their_appointment(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    language: str,
) -> None:
    story = await approved_plan(database, bot_settings, language=language, appointment=FOLLOW_UP)
    [message] = await deliver(bot_app, fake, database, bot_settings, story)
    for expected in INVITATION[language]:
        assert expected in message.text
    assert "<b>10:00</b>" in message.text
    assert "Sportello Villa &amp; Parco" in message.text
    assert "Via Roma 1, Cernusco sul Naviglio" in message.text
    assert message.buttons == []
    # Once: the next rounds find nothing for this citizen.
    assert await deliver(bot_app, fake, database, bot_settings, story) == []
    [queued] = await plan_messages_of(database, story)
    assert (queued.kind, queued.state) == (MessageKind.PLAN_APPROVED, MessageState.SENT)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("it", "Per scegliere il giorno scrivi /prenotazione, oppure contattaci:"),
        ("en", "To choose a day, write /prenotazione, or get in touch with us:"),
    ],
)
async def test_without_an_appointment_the_invitation_says_how_to_book_one(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    language: str,
    expected: str,
) -> None:
    story = await approved_plan(database, bot_settings, language=language)
    [message] = await deliver(bot_app, fake, database, bot_settings, story)
    assert expected in message.text
    assert "331 693 8049" in message.text
    assert "Vieni a firmarlo al tuo appuntamento" not in message.text
    assert "Come and sign it at your appointment" not in message.text


# --- active: the summary and "I've read it" -----------------------------------------------

SUMMARY = {
    "it": [
        "✅ <b>Il tuo piano Ripartire è partito.</b> Grazie per averlo firmato!",
        "<b>Cosa farai tu</b>\n• Aggiornare il curriculum — entro mercoledì 20 gennaio 2027",
        "<b>Come ti aiutiamo noi</b>\n• <b>Supporto economico d'emergenza</b>\n   "
        f"{euros(900_00, 'it')} in tutto · 4 gennaio 2027 – 31 marzo 2027 · "
        "con Associazione Farsi Prossimo Cernusco",
        "• <b>Supporto nella ricerca attiva del lavoro</b>\n   "
        "4 gennaio 2027 – 31 marzo 2027 · con CS&amp;L Consorzio sociale",
        "La prossima verifica del tuo piano è <b>martedì 9 marzo 2027</b>",
        "Non è una firma.",
    ],
    "en": [
        "✅ <b>Your Ripartire plan has started.</b> Thank you for signing it!",
        "<b>What you'll do</b>\n• Aggiornare il curriculum — by Wednesday 20 January 2027",
        "<b>How we'll help you</b>\n• <b>Emergency economic support</b>\n   "
        f"{euros(900_00, 'en')} in total · 4 January 2027 – 31 March 2027 · "
        "with Associazione Farsi Prossimo Cernusco",
        "• <b>Support in active job search</b>\n   "
        "4 January 2027 – 31 March 2027 · with CS&amp;L Consorzio sociale",
        "The next review of your plan is on <b>Tuesday 9 March 2027</b>",
        "It isn't a signature.",
    ],
}
READ_BUTTON = {"it": "✅ Ho letto", "en": "✅ I've read it"}
THANKS = {
    "it": "🙏 Grazie! Abbiamo preso nota che hai letto il tuo piano (versione 1).",
    "en": "🙏 Thank you! We've noted that you read your plan (version 1).",
}
ALREADY = {
    "it": "Ci avevi già detto di averlo letto: grazie! 🙏",
    "en": "You had already told us you read it: thank you! 🙏",
}


@pytest.mark.parametrize("language", ["it", "en"])
async def test_the_signed_plan_arrives_as_a_summary_and_the_tap_is_recorded_once(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    language: str,
) -> None:
    story = await signed_plan(database, bot_settings, language=language)
    # The invitation no longer applies (the plan is signed): only the summary goes.
    [summary] = await deliver(bot_app, fake, database, bot_settings, story)
    for expected in SUMMARY[language]:
        assert expected in summary.text
    # What the staff keep for themselves stays with them.
    for internal in ("Ha perso il lavoro", "Immobiliare Naviglio", "Fondo", "Un contratto"):
        assert internal not in summary.text
    content_hash = await current_hash(database, story)
    data = f"pr:{story.plan_id}:1:{content_hash[:16]}"
    assert summary.buttons == [(READ_BUTTON[language], data)]
    assert len(data.encode()) <= 64
    kinds = {m.kind: m.state for m in await plan_messages_of(database, story)}
    assert kinds["plan_approved"] == MessageState.CANCELLED  # withdrawn, not failed
    assert kinds["plan_active"] == MessageState.SENT

    user = TelegramUser(bot_app, fake, story.chat_id, language=language)
    replies = await user.press(data)
    assert THANKS[language] in [c.text for c in replies]
    [recorded] = await acknowledgements_of(database, story)
    assert (recorded.version, recorded.content_hash) == (1, content_hash)
    # A second tap records nothing new and says so kindly.
    replies = await user.press(data)
    assert ALREADY[language] in [c.text for c in replies]
    assert len(await acknowledgements_of(database, story)) == 1


async def test_a_tap_on_a_summary_of_a_plan_that_changed_is_refused_kindly(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    story = await signed_plan(database, bot_settings)
    [summary] = await deliver(bot_app, fake, database, bot_settings, story)
    [(_label, old_button)] = summary.buttons
    user = TelegramUser(bot_app, fake, story.chat_id)

    # Back with the coordinators: nothing to read yet; the new summary will come.
    await raise_the_amount(database, bot_settings, story)
    replies = await user.press(old_button)
    assert "Il tuo piano è cambiato dopo quel messaggio, quindi non abbiamo segnato nulla." in (
        replies[0].text
    )
    assert "ti mandiamo qui il suo riepilogo" in replies[0].text

    # Approved and signed again: the tap on the old summary gets the current one.
    await approve(database, story)
    await sign(database, bot_settings, story)
    replies = await user.press(old_button)
    [current] = [c for c in replies if c.method == "sendMessage"]
    assert current.text.startswith("📝 Il tuo piano è cambiato dopo quel messaggio")
    assert f"{euros(1_200_00, 'it')} in tutto" in current.text
    new_hash = await current_hash(database, story)
    assert current.buttons == [("✅ Ho letto", f"pr:{story.plan_id}:2:{new_hash[:16]}")]
    assert await acknowledgements_of(database, story) == []

    # That one counts, for version 2.
    await user.press(current.buttons[0][1])
    [recorded] = await acknowledgements_of(database, story)
    assert (recorded.version, recorded.content_hash) == (2, new_hash)

    await close(database, story)
    replies = await user.press(current.buttons[0][1])
    assert "Questo piano è stato chiuso: non c'è più niente da confermare." in replies[0].text
    assert len(await acknowledgements_of(database, story)) == 1


async def test_a_forged_tap_gets_the_answer_any_unknown_button_gets(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    story = await approved_plan(database, bot_settings)
    other = await approved_plan(database, bot_settings)
    await sign(database, bot_settings, story)
    content_hash = await current_hash(database, story)
    button = f"pr:{story.plan_id}:1:{content_hash[:16]}"
    intruder = TelegramUser(bot_app, fake, other.chat_id)
    stranger = TelegramUser(bot_app, fake, 999_999_001)  # never wrote to the bot
    owner = TelegramUser(bot_app, fake, story.chat_id)
    for user, data in [
        (intruder, button),
        (stranger, button),
        (owner, f"pr:{story.plan_id}:1:{'z' * 16}"),  # not a hash: no handler of ours
        (owner, f"pr:{2**40}:1:{content_hash[:16]}"),
    ]:
        replies = await user.press(data)
        [answer] = [c for c in replies if c.method == "answerCallbackQuery"]
        assert answer.params["text"] == "Questo pulsante non è più valido."
        assert [c for c in replies if c.method == "sendMessage"] == []
    assert await acknowledgements_of(database, story) == []


async def test_a_long_plan_fits_in_one_telegram_message(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    many = tuple(
        CommitmentInput(None, f"{n}. " + "Partecipare al laboratorio <CV> " * 14, date(2027, 2, n))
        for n in range(1, 13)
    )
    story = await signed_plan(database, bot_settings, commitments=many)
    [summary] = await deliver(bot_app, fake, database, bot_settings, story)
    assert len(summary.text) < 4096
    assert "8. Partecipare al laboratorio &lt;CV&gt;" in summary.text
    assert "9. Partecipare" not in summary.text
    assert "… e il resto lo trovi nella tua copia del piano." in summary.text


# --- the review, the closure ---------------------------------------------------------------

REVIEW = {
    "it": [
        "📅 <b>Si avvicina la verifica del tuo piano:</b> è <b>martedì 9 marzo</b>",
        "Ti contatteremo noi per fissare l'orario.",
        "scrivi /prenotazione",
    ],
    "en": [
        "📅 <b>Your plan's review is coming up:</b> it's on <b>Tuesday 9 March</b>",
        "We'll get in touch to agree on the time.",
        "write /prenotazione",
    ],
}


@pytest.mark.parametrize("language", ["it", "en"])
async def test_the_review_reminder_goes_three_days_before(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    language: str,
) -> None:
    story = await signed_plan(database, bot_settings, language=language)
    await deliver(bot_app, fake, database, bot_settings, story)  # the summary
    assert (
        await deliver(
            bot_app, fake, database, bot_settings, story, REVIEW_NOTICE - timedelta(minutes=1)
        )
        == []
    )
    [reminder] = await deliver(bot_app, fake, database, bot_settings, story, REVIEW_NOTICE)
    for expected in REVIEW[language]:
        assert expected in reminder.text
    assert "331 693 8049" in reminder.text
    assert (
        await deliver(
            bot_app, fake, database, bot_settings, story, REVIEW_NOTICE + timedelta(days=1)
        )
        == []
    )


CLOSED = {
    "it": "🌱 <b>Il tuo piano Ripartire ora è chiuso.</b> Grazie per il percorso fatto insieme",
    "en": "🌱 <b>Your Ripartire plan is now closed.</b> Thank you for the path we walked together",
}


@pytest.mark.parametrize("language", ["it", "en"])
async def test_the_closure_is_told_kindly_and_the_review_reminder_never_goes(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
    language: str,
) -> None:
    story = await signed_plan(database, bot_settings, language=language)
    await deliver(bot_app, fake, database, bot_settings, story)  # the summary
    await close(database, story)
    [closed] = await deliver(bot_app, fake, database, bot_settings, story)
    assert CLOSED[language] in closed.text
    assert "331 693 8049" in closed.text
    assert closed.buttons == []
    assert await deliver(bot_app, fake, database, bot_settings, story, REVIEW_NOTICE) == []


# --- withdrawn when stale ------------------------------------------------------------------


async def test_messages_about_a_version_that_is_no_longer_current_are_withdrawn(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    story = await signed_plan(database, bot_settings)
    # Before anything went out, a material change sent the plan back to the coordinators.
    await raise_the_amount(database, bot_settings, story)
    assert await deliver(bot_app, fake, database, bot_settings, story) == []
    queued = await plan_messages_of(database, story)
    withdrawn = {m.kind: m for m in queued if m.kind != MessageKind.PLAN_REVIEW_DUE}
    assert {k: m.state for k, m in withdrawn.items()} == {
        "plan_approved": MessageState.CANCELLED,
        "plan_active": MessageState.CANCELLED,
    }
    assert "submitted" in str(withdrawn["plan_approved"].last_error)

    # Approved again (version 2): that invitation goes, saying the plan was updated.
    await approve(database, story)
    [invitation] = await deliver(bot_app, fake, database, bot_settings, story)
    assert "Il tuo piano Ripartire è stato aggiornato</b> (versione 2)" in invitation.text


async def test_a_review_reminder_for_a_date_that_moved_is_withdrawn(
    bot_app: Application,  # type: ignore[type-arg]
    fake: FakeTelegram,
    database: Database,
    bot_settings: Settings,
) -> None:
    story = await signed_plan(database, bot_settings)
    await deliver(bot_app, fake, database, bot_settings, story)
    # A date changed by a path that didn't queue again (the reminder can't know how).
    async with database.transaction() as session:
        plan = await session.get(Plan, story.plan_id)
        assert plan is not None
        plan.next_review_on = date(2027, 3, 20)
    assert await deliver(bot_app, fake, database, bot_settings, story, REVIEW_NOTICE) == []
    [review] = [m for m in await plan_messages_of(database, story) if m.kind == "plan_review_due"]
    assert review.state == MessageState.CANCELLED


def test_the_plans_message_kinds_are_their_own() -> None:
    plan_kinds = {k.value for k in MessageKind}
    assert plan_kinds.isdisjoint(k.value for k in BookingMessageKind)
    assert all(kind.startswith("plan_") for kind in plan_kinds)
