"""/start, language, program description, privacy consent, erasure, and the help commands.

The privacy notice and the copy of one's data are `bot.handlers.privacy`."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot import texts
from bot.callbacks import Cb, encode, parse
from bot.handlers import conversation, privacy
from bot.replies import Edit, Reply, Send, Toast
from bot.turn import Turn, turn
from shared.citizens import service as citizens
from shared.i18n import N_, Translator, available_languages

LANGUAGE_NAMES = {"it": "🇮🇹 Italiano", "en": "🇬🇧 English"}


def _language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    LANGUAGE_NAMES.get(code, code), callback_data=encode(Cb.LANGUAGE, code)
                )
            ]
            for code in available_languages()
        ]
    )


@turn
async def on_start(turn_: Turn) -> list[Reply]:
    """Greet newcomers with the language choice; bring back returning citizens where they were."""
    if turn_.citizen is not None and turn_.citizen.consent_version is not None:
        return await conversation.resume(turn_)
    # Nothing is stored before consent: the language travels in the buttons' data.
    return [
        Send(
            "👋 Ciao! Questo è <b>Ripartire</b>, del Comune di Cernusco sul Naviglio.\n"
            "Hi! This is <b>Ripartire</b>, from the Municipality of Cernusco sul Naviglio.\n\n"
            "Scegli la lingua · Choose your language",
            _language_keyboard(),
        )
    ]


@turn
async def on_language(turn_: Turn) -> list[Reply]:
    """Language chosen: before consent show the program and the notice, after it just switch."""
    callback = parse(turn_.callback_data)
    language = callback.args[0] if callback and callback.args else ""
    if language not in available_languages():
        return [Toast("?")]
    t = Translator(language)
    if turn_.citizen is not None and turn_.citizen.consent_version is not None:
        await citizens.set_language(session=turn_.session, citizen=turn_.citizen, language=language)
        turn_.t = t
        return [Edit(t("Language changed: English.")), *await conversation.resume(turn_)]
    return [Edit(t(texts.PROGRAM)), privacy.consent_screen(t, turn_.settings)]


@turn
async def on_consent(turn_: Turn) -> list[Reply]:
    """Record the answer to the privacy notice; with consent, the questionnaire starts."""
    callback = parse(turn_.callback_data)
    if callback is None or len(callback.args) != 2 or callback.args[0] not in ("yes", "no"):
        return [Toast("?")]
    answer, language = callback.args
    t = Translator(language)
    if answer == "no":
        if turn_.citizen is None:
            await citizens.refuse_consent(session=turn_.session, now=turn_.now)
        return [
            Edit(
                t(
                    "All right: we have not kept anything about you.\n\n"
                    "You can still apply by phone or e-mail:\n{contacts}\n\n"
                    "If you change your mind, write /start.",
                    contacts=texts.contacts(t),
                )
            )
        ]
    turn_.citizen = await citizens.give_consent(
        session=turn_.session,
        telegram_user_id=turn_.user_id,
        chat_id=turn_.chat_id,
        language=language,
        now=turn_.now,
        found=citizens.Delivery(turn_.citizen),
    )
    turn_.t = t
    return [
        Edit(t("✅ Thank you. Let's start: you can go back at any time.")),
        *await conversation.begin(turn_),
    ]


@turn
async def on_help(turn_: Turn) -> list[Reply]:
    t = turn_.t
    return [
        Send(
            t(
                "<b>Need a person?</b> Call or write to the Ripartire team:\n{contacts}\n\n"
                "Commands: /start · /prenotazione · /sposta · /annulla · "
                "/privacy · /lingua · /miei_dati · /cancella",
                contacts=texts.contacts(t),
            )
        )
    ]


@turn
async def on_choose_language(turn_: Turn) -> list[Reply]:
    return [Send("Scegli la lingua · Choose your language", _language_keyboard())]


@turn
async def on_erase(turn_: Turn) -> list[Reply]:
    """Ask for confirmation before erasing everything about the citizen."""
    t = turn_.t
    if turn_.citizen is None:
        return [Send(t("We have no data about you."))]
    return [
        Send(
            t(
                "⚠️ This erases your answers and cancels your appointment, if you have one. "
                "It cannot be undone. Erase everything?"
            ),
            InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            t("Yes, erase my data"), callback_data=encode(Cb.ERASE_CONFIRM)
                        )
                    ],
                    [InlineKeyboardButton(t("No, keep it"), callback_data=encode(Cb.NOOP))],
                ]
            ),
        )
    ]


@turn
async def on_erase_confirmed(turn_: Turn) -> list[Reply]:
    t = turn_.t
    if turn_.citizen is None:
        return [Edit(t("We have no data about you."))]
    await citizens.erase(
        session=turn_.session, settings=turn_.settings, citizen=turn_.citizen, now=turn_.now
    )
    return [Edit(t("Done: your data has been erased. If you need us again, write /start."))]


@turn
async def on_noop(turn_: Turn) -> list[Reply]:
    return [Edit(turn_.t("OK, nothing changed."))]


@turn
async def on_unknown(turn_: Turn) -> list[Reply]:
    """Anything no other handler took: explain how to go on."""
    t = turn_.t
    if turn_.update.callback_query is not None:
        return [Toast(t("This button is no longer valid."), alert=True)]
    if turn_.citizen is None or turn_.citizen.consent_version is None:
        return [Send(t("Write /start to begin."))]
    return await conversation.resume(turn_)


@turn
async def on_edited(turn_: Turn) -> list[Reply]:
    return [Send(turn_.t(EDITED_MESSAGE))]


EDITED_MESSAGE = N_(
    "I don't read edited messages. To change an answer, send it again "
    "or use “Change an answer” in the summary."
)

PRIVATE = filters.ChatType.PRIVATE


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("start", on_start),
        CommandHandler("aiuto", on_help),
        CommandHandler("help", on_help),
        CommandHandler("lingua", on_choose_language),
        CommandHandler("cancella", on_erase),
        CallbackQueryHandler(on_language, pattern=rf"^{Cb.LANGUAGE}:"),
        CallbackQueryHandler(on_consent, pattern=rf"^{Cb.CONSENT}:"),
        CallbackQueryHandler(on_erase_confirmed, pattern=rf"^{Cb.ERASE_CONFIRM}$"),
        CallbackQueryHandler(on_noop, pattern=rf"^{Cb.NOOP}$"),
    ]


def fallback_handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    """Lowest priority: updates no other handler took."""
    return [
        MessageHandler(filters.UpdateType.EDITED_MESSAGE, on_edited),
        MessageHandler(filters.UpdateType.MESSAGE, on_unknown),
        CallbackQueryHandler(on_unknown),
    ]
