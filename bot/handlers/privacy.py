"""The citizen's privacy from the bot: the notice (/privacy, a new version to accept) and a
copy of their data (/miei_dati). Erasure (/cancella) is in `bot.handlers.start`.

The notice is `shared.privacy.notice`: the consent screen shows its short version with
a button for the whole text; /privacy sends the whole text, in as many messages as
Telegram needs. When the version changes, `notice_gate` (the turn's gate, asked before
every handler) answers a citizen who accepted an older one with the new version's
short text and "I agree" / "I don't agree", whatever they sent, until they accept. What
they can still do meanwhile is what their rights need: read the notice (/privacy), get
their data (/miei_dati), erase it (/cancella), reach a person (/aiuto).

Declining the new version changes nothing stored: the bot handles nothing else for
them (no answers, no bookings) and says what they can do instead; their data stays
under the notice they accepted until its periods end, or until /cancella. Their next
message asks again.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot import texts
from bot.callbacks import Cb, encode, parse
from bot.handlers import conversation
from bot.replies import Document, Edit, Reply, Send, Toast
from bot.turn import Turn, turn
from shared.citizens import service as citizens
from shared.citizens import standing
from shared.i18n import N_, Translator, available_languages
from shared.privacy import my_data, notice
from shared.settings import Settings

CONSENT_QUESTION = N_("Do you agree that we keep your data for these purposes?")
NOTICE_BUTTON = N_("📄 Read the full notice")
FULL_NOTICE = N_("The full notice: the button below, or /privacy at any time.")
NOTICE_UPDATED = N_(
    "📄 <b>We have updated the privacy notice</b> (version {version}). Please read it: "
    "we can go on once you agree."
)
NO_DATA = N_(
    "We hold no data about you: nothing is kept before you accept the privacy notice. "
    "To begin, write /start."
)
DECLINED = N_(
    "All right. Until you accept the new notice I won't take new answers or bookings "
    "from you. What we already hold about you stays as the notice you accepted said, "
    "until its periods end.\n\n"
    "• To erase it now: /cancella\n"
    "• To get a copy of it: /miei_dati\n"
    "• To read the notice again and accept it: /privacy\n\n"
    "You can also reach the Ripartire team by phone or e-mail:\n{contacts}"
)
MY_DATA_OFFER = N_(
    "📦 <b>A copy of your data</b>\n"
    "You will receive two files: a PDF to read and a JSON file for other software. They "
    "hold everything the program keeps about you: your answers, your appointments, your "
    "case, interview and plan, and the messages we sent you.\n\n"
    "The files stay in this chat, and anyone who can open it can read them: delete them "
    "when you no longer need them.\n\n"
    "Send them now?"
)

# What a citizen who has yet to accept a new notice may still do: their rights.
_FREE_COMMANDS = frozenset({"privacy", "miei_dati", "cancella", "aiuto", "help"})
_FREE_BUTTONS = frozenset({Cb.NOTICE, Cb.RENEW, Cb.MY_DATA, Cb.ERASE_CONFIRM, Cb.NOOP})


def consent_keyboard(t: Translator) -> InlineKeyboardMarkup:
    """ "I agree" / the whole notice / "I don't agree", for someone not yet a citizen (the
    language travels in the data: nothing is stored before consent)."""
    language = t.language
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t("✅ I agree"), callback_data=encode(Cb.CONSENT, "yes", language)
                )
            ],
            [InlineKeyboardButton(t(NOTICE_BUTTON), callback_data=encode(Cb.NOTICE, language))],
            [
                InlineKeyboardButton(
                    t("❌ I don't agree"), callback_data=encode(Cb.CONSENT, "no", language)
                )
            ],
        ]
    )


def _renew_keyboard(t: Translator, *, with_notice: bool) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(t("✅ I agree"), callback_data=encode(Cb.RENEW, "yes"))]]
    if with_notice:
        rows.append(
            [InlineKeyboardButton(t(NOTICE_BUTTON), callback_data=encode(Cb.NOTICE, t.language))]
        )
    rows.append([InlineKeyboardButton(t("❌ I don't agree"), callback_data=encode(Cb.RENEW, "no"))])
    return InlineKeyboardMarkup(rows)


def consent_screen(t: Translator, settings: Settings) -> Send:
    """The notice's short version and the consent question (before the questionnaire)."""
    summary = notice.telegram_summary(notice.notice(t.language, settings=settings))
    return Send(f"{summary}\n\n{t(FULL_NOTICE)}\n\n{t(CONSENT_QUESTION)}", consent_keyboard(t))


def _renewal(turn_: Turn) -> Send:
    t = turn_.t
    summary = notice.telegram_summary(notice.notice(t.language, settings=turn_.settings))
    return Send(
        f"{t(NOTICE_UPDATED, version=notice.VERSION)}\n\n{summary}\n\n"
        f"{t(FULL_NOTICE)}\n\n{t(CONSENT_QUESTION)}",
        _renew_keyboard(t, with_notice=True),
    )


def _command(turn_: Turn) -> str | None:
    """The command a message starts with ("/privacy@bot" → "privacy"), if any."""
    text = turn_.text
    words = text[1:].split(maxsplit=1) if text and text.startswith("/") else []
    return words[0].partition("@")[0].lower() if words else None


async def notice_gate(turn_: Turn) -> list[Reply] | None:
    """Before any handler: a citizen who accepted an older notice is asked to accept the
    new one, whatever they sent, except what their rights need (module docstring)."""
    if not standing.notice_to_accept(turn_.citizen):
        return None
    callback = parse(turn_.callback_data)
    if callback is not None and callback.kind in _FREE_BUTTONS:
        return None
    if _command(turn_) in _FREE_COMMANDS:
        return None
    return [_renewal(turn_)]


def _whole_notice(turn_: Turn, t: Translator) -> list[Reply]:
    """The whole notice, then what the citizen's consent says or asks."""
    found = notice.notice(t.language, settings=turn_.settings)
    replies: list[Reply] = [Send(text) for text in notice.telegram_messages(found)]
    citizen = turn_.citizen
    if citizen is None or citizen.consent_version is None:
        replies.append(Send(t(CONSENT_QUESTION), consent_keyboard(t)))
    elif standing.notice_to_accept(citizen):
        replies.append(Send(t(CONSENT_QUESTION), _renew_keyboard(t, with_notice=False)))
    elif citizen.consented_at is not None:
        day = citizen.consented_at.astimezone(turn_.settings.tz).strftime("%d/%m/%Y")
        replies.append(
            Send(
                t(
                    "You agreed on {day} (notice version {version}).",
                    day=day,
                    version=citizen.consent_version,
                )
            )
        )
    return replies


@turn
async def on_privacy(turn_: Turn) -> list[Reply]:
    """/privacy: the whole notice in the citizen's language (Telegram's before consent)."""
    return _whole_notice(turn_, turn_.t)


@turn
async def on_notice(turn_: Turn) -> list[Reply]:
    """The "Read the full notice" button: the whole notice in the language it names."""
    callback = parse(turn_.callback_data)
    language = callback.args[0] if callback and len(callback.args) == 1 else ""
    if language not in available_languages():
        return [Toast("?")]
    return _whole_notice(turn_, Translator(language))


@turn
async def on_renew(turn_: Turn) -> list[Reply]:
    """The answer to a new version of the notice: recorded if "I agree", else nothing."""
    t = turn_.t
    callback = parse(turn_.callback_data)
    if callback is None or callback.args not in (("yes",), ("no",)):
        return [Toast("?")]
    citizen = turn_.citizen
    if citizen is None or citizen.consent_version is None:
        return [Edit(t(NO_DATA))]
    if not standing.notice_to_accept(citizen):
        return [Toast(t("You have already accepted this notice."))]
    if callback.args == ("no",):
        return [Edit(t(DECLINED, contacts=texts.contacts(t)))]
    turn_.citizen = await citizens.give_consent(
        session=turn_.session,
        telegram_user_id=turn_.user_id,
        chat_id=turn_.chat_id,
        language=citizen.language,
        now=turn_.now,
        found=citizens.Delivery(citizen),
    )
    thanks = t(
        "✅ Thank you: you accepted version {version} of the notice.", version=notice.VERSION
    )
    return [Edit(thanks), *await conversation.resume(turn_)]


@turn
async def on_my_data(turn_: Turn) -> list[Reply]:
    """/miei_dati: what the copy holds, and a button to send it."""
    t = turn_.t
    if turn_.citizen is None:
        return [Send(t(NO_DATA))]
    return [
        Send(
            t(MY_DATA_OFFER),
            InlineKeyboardMarkup(
                [
                    [InlineKeyboardButton(t("📄 Send my data"), callback_data=encode(Cb.MY_DATA))],
                    [InlineKeyboardButton(t("No, not now"), callback_data=encode(Cb.NOOP))],
                ]
            ),
        )
    ]


@turn
async def on_my_data_confirmed(turn_: Turn) -> list[Reply]:
    """Send the copy: a PDF and a JSON file (the access is audited by the service)."""
    t = turn_.t
    if turn_.citizen is None:
        return [Edit(t(NO_DATA))]
    files = await my_data.export(
        session=turn_.session,
        settings=turn_.settings,
        citizen_id=turn_.citizen.id,
        now=turn_.now,
    )
    return [
        Edit(t("Here is your data: the PDF to read, the JSON file for other software.")),
        Document(files.pdf_name, files.pdf, t("Your data (PDF)")),
        Document(files.json_name, files.json, t("Your data (JSON)")),
    ]


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("privacy", on_privacy),
        CommandHandler("miei_dati", on_my_data),
        CallbackQueryHandler(on_notice, pattern=rf"^{Cb.NOTICE}:"),
        CallbackQueryHandler(on_renew, pattern=rf"^{Cb.RENEW}:"),
        CallbackQueryHandler(on_my_data_confirmed, pattern=rf"^{Cb.MY_DATA}$"),
    ]
