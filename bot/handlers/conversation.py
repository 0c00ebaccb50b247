"""The pre-screening questionnaire on Telegram: renders the steps of the intake engine.

The state lives in the database (`shared/intake/service.py`): each update loads the
citizen's intake, asks the engine to act on it and renders where it now stands. Nothing is
kept in process memory, so a restart or a second instance loses nothing.

Callback data is untrusted; the engine accepts an answer only for the step being asked, and
this module checks that a button fits that step (its kind, its option, its selection):

- `ans:<step>:<option>`: a yes/no or single-choice answer;
- `tog:<step>:<mask>:<option>`: toggle one option of a multiple choice. `mask` is the
  current selection (bit i = the i-th option), so toggling only edits the keyboard and
  writes nothing; `done:<step>:<mask>` records the selection;
- `skip:<step>`; `back:<step>` (the step is named so that an old "Back" button can't move
  the questionnaire; a bare `back` goes back from the step being asked);
- `ok` confirms the summary, `chg` lists the answers, `chg:<step>` changes one, `sum`
  shows the summary again, `restart` asks before `restart:yes` starts again.

A button of a step that is no longer the one asked (a double tap, an old message) gets a
toast and nothing else: the question it would have led to is already in the chat. Typing
the usual words for "back" ("indietro", "annulla", "back"…) does what the Back button does.

An answer that rules the citizen out is followed at once by the reasons, the contacts and
the offer to leave a name and phone for a case worker (`questionnaire.CONTACT_OFFER`).
"""

from __future__ import annotations

import html

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot import texts
from bot.callbacks import Callback, Cb, encode, parse
from bot.handlers import booking
from bot.replies import Edit, Reply, Send, Toast
from bot.turn import Turn, turn
from shared.i18n import N_, Translator
from shared.intake import questionnaire as q
from shared.intake import service as intake
from shared.intake.errors import (
    CannotGoBack,
    IntakeError,
    InvalidAnswer,
    StepNotAsked,
    StepNotOptional,
    UnknownCitizen,
    UnknownStep,
)
from shared.intake.models import UNFINISHED, Intake, IntakeState
from shared.intake.questionnaire import QUESTIONNAIRE, AnswerType, Step
from shared.intake.validators import asks_to_go_back

BUTTON_ANSWERS = (AnswerType.YES_NO, AnswerType.CHOICE)
BUTTON_STEPS = (*BUTTON_ANSWERS, AnswerType.MULTI_CHOICE)


def _e(text: str) -> str:
    """Text that is not ours to format (answers, settings) made safe for HTML."""
    return html.escape(text, quote=False)


def _button(label: str, kind: Cb, *args: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=encode(kind, *args))


# --- what the citizen sees ---------------------------------------------------------------


def _changing(found: Intake, step: Step) -> bool:
    """The step is asked again from the summary: it still has its old answer."""
    return step.key in found.answers


def _question_text(turn_: Turn, found: Intake, step: Step) -> str:
    t = turn_.t
    text = _e(q.question_text(step, t, settings=turn_.settings))
    if step is q.CONTACT_OFFER:
        # Not a question about them: no number, and why it is asked comes first.
        reasons = q.assess(found.answers, turn_.settings).reasons
        return (
            _not_for_you(turn_, reasons)
            + "\n\n"
            + t(TALK_TO_A_PERSON, contacts=texts.contacts(t))
            + f"\n\n<b>{text}</b>"
        )
    # The step being asked is always among the steps asked.
    asked = [s.key for s in q.asked_steps(found.answers) if s is not q.CONTACT_OFFER]
    text = f"<i>{asked.index(step.key) + 1}/{len(asked)}</i>\n" + text
    if _changing(found, step):
        now = q.labels(step.key, found.answers[step.key], t)
        text += "\n\n" + t("Your answer now: {answer}", answer=f"<b>{_e(now)}</b>")
    return text


def _selection(found: Intake, step: Step) -> int:
    """The mask of the options chosen before (when changing an answer), else nothing."""
    chosen = found.answers.get(step.key)
    if not isinstance(chosen, list):
        return 0
    return sum(1 << i for i, option in enumerate(step.options) if option.key in chosen)


def _keyboard(
    t: Translator, found: Intake, step: Step, mask: int | None = None
) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    if step.answer is AnswerType.YES_NO:
        rows.append([_button(t(o.label), Cb.ANSWER, step.key, o.key) for o in step.options])
    elif step.answer is AnswerType.CHOICE:
        rows += [[_button(t(o.label), Cb.ANSWER, step.key, o.key)] for o in step.options]
    elif step.answer is AnswerType.MULTI_CHOICE:
        mask = _selection(found, step) if mask is None else mask
        for i, option in enumerate(step.options):
            box = "✅" if mask & (1 << i) else "⬜"
            label = f"{box} {t(option.label)}"
            rows.append([_button(label, Cb.TOGGLE, step.key, mask, option.key)])
        rows.append([_button(t("✔️ Done"), Cb.DONE, step.key, mask)])
    if step.optional:
        rows.append([_button(t("⏭️ Skip"), Cb.SKIP, step.key)])
    if step.key != QUESTIONNAIRE[0].key or _changing(found, step):
        rows.append([_button(t("⬅️ Back"), Cb.BACK, step.key)])
    return InlineKeyboardMarkup(rows) if rows else None


def _share_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [[KeyboardButton(t("📱 Share my number"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def _ask(turn_: Turn, found: Intake, step: Step) -> list[Reply]:
    """The question of `step` with its buttons."""
    t = turn_.t
    question = Send(_question_text(turn_, found, step), _keyboard(t, found, step))
    if step.answer is not AnswerType.PHONE:
        return [question]
    # A message has one keyboard: "Back" stays on the question, "share" comes below it.
    return [question, Send(t(SHARE_HINT), _share_keyboard(t))]


def _summary_text(turn_: Turn, found: Intake) -> str:
    t = turn_.t
    rows = q.summary(found.answers, t)
    lines = "\n".join(f"<b>{_e(title)}</b>: {_e(answer)}" for title, answer in rows)
    return (
        t("📋 <b>Your answers</b>")
        + "\n\n"
        + lines
        + "\n\n"
        + t("Is everything right? Confirm, or change an answer.")
    )


def _summary(turn_: Turn, found: Intake) -> tuple[str, InlineKeyboardMarkup]:
    t = turn_.t
    keyboard = InlineKeyboardMarkup(
        [
            [_button(t("✅ Confirm"), Cb.CONFIRM)],
            [_button(t("✏️ Change an answer"), Cb.CHANGE)],
            [_button(t("🔄 Start again"), Cb.RESTART)],
        ]
    )
    return _summary_text(turn_, found), keyboard


def _not_for_you(turn_: Turn, reasons: tuple[q.Reason, ...]) -> str:
    """Thanks, and why Ripartire doesn't seem to fit: kind, in the rules' own words."""
    t = turn_.t
    text = t("Thank you for your answers. 🙏") + "\n\n"
    if not reasons:
        return text + t("From what you told us, Ripartire doesn't seem to fit your situation.")
    text += t("From what you told us, Ripartire doesn't seem to fit your situation:") + "\n"
    return text + "\n".join(
        "• " + _e(reason.text(t, settings=turn_.settings)) for reason in reasons
    )


def _ineligible(turn_: Turn, reasons: tuple[q.Reason, ...]) -> Send:
    """The outcome of a questionnaire confirmed from the summary as not eligible."""
    t = turn_.t
    text = _not_for_you(turn_, reasons)
    text += "\n\n" + t(
        "The program's staff will still read your answers and can review this outcome. "
        "If you think something is wrong, or you would like advice, talk to a person:\n"
        "{contacts}",
        contacts=texts.contacts(t),
    )
    return Send(text)


async def _where(turn_: Turn, found: Intake | None) -> list[Reply]:
    """Whatever comes now for this questionnaire: a question, the summary, or the outcome."""
    t = turn_.t
    if found is None:
        return await begin(turn_)
    if found.state == IntakeState.EXPIRED:
        return [Send(t(EXPIRED)), *await begin(turn_)]
    if found.state == IntakeState.COMPLETED:
        if found.eligible:
            return await booking.after_intake(turn_, intake=found)
        offer = found.answers.get(q.CONTACT_OFFER.key)
        if offer is not None:
            closing = WILL_CALL if offer == "yes" else NOTHING_MORE
            return [Send(t(closing, contacts=texts.contacts(t)))]
        return [_ineligible(turn_, q.assess(found.answers, turn_.settings).reasons)]
    step = intake.current_step(found)
    if step is not None:
        return _ask(turn_, found, step)
    text, keyboard = _summary(turn_, found)
    return [Send(text, keyboard)]


async def _load(turn_: Turn, *, for_update: bool = False) -> Intake | None:
    """The citizen's intake, locked (`for_update`) when this update may change it.

    The engine is then handed this row (`intake=`) instead of reading it a second time.
    """
    assert turn_.citizen is not None
    return await intake.get_intake(
        session=turn_.session, citizen_id=turn_.citizen.id, for_update=for_update
    )


def _leaving_phone(turn_: Turn, before: Step | None, after: Intake, text: str) -> list[Reply]:
    """Take the "share my number" keyboard away once the phone step is no longer asked."""
    if before is None or before.answer is not AnswerType.PHONE:
        return []
    now = intake.current_step(after)
    if now is not None and now.answer is AnswerType.PHONE:
        return []
    return [Send(text, ReplyKeyboardRemove())]


# --- entry points used by other handlers -------------------------------------------------


async def begin(turn_: Turn) -> list[Reply]:
    """Right after consent: start the questionnaire and ask the first question."""
    assert turn_.citizen is not None
    started = await intake.start_intake(
        session=turn_.session, citizen_id=turn_.citizen.id, now=turn_.now
    )
    return await _where(turn_, started)


async def resume(turn_: Turn) -> list[Reply]:
    """For a consented citizen at any time: bring them back where they stopped."""
    return await _where(turn_, await _load(turn_))


# --- replies to refused or stale input ---------------------------------------------------


def _notice(turn_: Turn, text: str, *, alert: bool = False) -> Reply:
    """A toast for a button, a message for anything else."""
    if turn_.update.callback_query is not None:
        return Toast(text, alert=alert)
    return Send(text)


def _refused(turn_: Turn) -> list[Reply]:
    """Forged or garbled button data: nothing changes."""
    return [Toast(turn_.t("This button is not valid."), alert=True)]


async def _stale(turn_: Turn, found: Intake | None, step_key: str | None = None) -> list[Reply]:
    """Input for a question that is no longer asked (`step_key`, when a button names it).

    A button gets a toast only: a double tap, or a tap on an older message, must not send
    the current question again. A message gets a notice and where things are.
    """
    t = turn_.t
    if found is not None and found.state == IntakeState.COMPLETED:
        return [_notice(turn_, t("You have already confirmed your answers."), alert=True)]
    if turn_.update.callback_query is not None:
        if found is not None and step_key is not None and step_key in found.answers:
            return [Toast(t("You have already answered this question."))]
        return [Toast(t(OLD_BUTTON))]
    notice = Send(t("This question is not the current one: here is where you are."))
    return [notice, *await _where(turn_, found)]


def _reask(turn_: Turn, found: Intake, step: Step, reason: str) -> list[Reply]:
    """The step's own re-ask for `reason`, with what is needed to answer again."""
    t = turn_.t
    plain = q.reask_text(step, reason, t, settings=turn_.settings)
    if turn_.update.callback_query is not None:
        return [Toast(plain, alert=True)]
    reask = _e(plain)
    if step.answer in BUTTON_STEPS:
        text = reask + "\n\n" + _question_text(turn_, found, step)
        return [Send(text, _keyboard(t, found, step))]
    if step.answer is AnswerType.PHONE:
        return [Send(reask, _share_keyboard(t))]
    return [Send(reask, _keyboard(t, found, step))]


async def _failed(turn_: Turn, exc: IntakeError, found: Intake | None) -> list[Reply]:
    """Every refusal of the engine as a friendly reply; nothing was changed.

    `found` is the intake as this update read it (the engine refused without changing it).
    """
    t = turn_.t
    if isinstance(exc, InvalidAnswer) and found is not None:
        step = intake.current_step(found)
        if step is not None and step.key == exc.step_key:
            return _reask(turn_, found, step, exc.reason)
    if isinstance(exc, CannotGoBack):
        return [_notice(turn_, t("This is already the first question."))]
    if isinstance(exc, StepNotOptional):
        return [_notice(turn_, t("This question can't be skipped."), alert=True)]
    if isinstance(exc, StepNotAsked):
        return [_notice(turn_, t("That question doesn't apply to your answers."), alert=True)]
    if isinstance(exc, UnknownStep):
        return _refused(turn_)
    if isinstance(exc, UnknownCitizen):
        return [_notice(turn_, t("Write /start to begin."), alert=True)]
    # NotCurrentStep, WrongState, IntakeNotFound, IncompleteAnswers: out of date.
    return await _stale(turn_, found, getattr(exc, "step_key", None))


# --- handlers ----------------------------------------------------------------------------


def _consented(turn_: Turn) -> bool:
    return turn_.citizen is not None and turn_.citizen.consent_version is not None


def _not_started(turn_: Turn) -> list[Reply]:
    return [_notice(turn_, turn_.t("Write /start to begin."), alert=True)]


def _callback(turn_: Turn, kind: Cb) -> Callback | None:
    found = parse(turn_.callback_data)
    return found if found is not None and found.kind is kind else None


async def _asked(
    turn_: Turn, step_key: str, *, for_update: bool
) -> tuple[Intake | None, Step | None]:
    """The intake, and the step being asked if it is `step_key`."""
    found = await _load(turn_, for_update=for_update)
    step = intake.current_step(found) if found is not None else None
    return found, step if step is not None and step.key == step_key else None


def _answered(turn_: Turn, found: Intake, step: Step, answer: str) -> Edit:
    """The question message, without its buttons, showing the answer given."""
    return Edit(_question_text(turn_, found, step) + f"\n\n👉 <b>{_e(answer)}</b>")


@turn
async def on_message(turn_: Turn) -> list[Reply]:
    """A message of any kind (not a command): the answer to the step being asked."""
    if not _consented(turn_):
        return _not_started(turn_)
    found = await _load(turn_, for_update=True)
    step = intake.current_step(found) if found is not None else None
    if found is None or step is None:
        return await _where(turn_, found)
    message = turn_.update.message
    assert message is not None
    if step.answer is AnswerType.PHONE and message.contact is not None:
        return await _shared_contact(turn_, found, step, message)
    raw = message.text
    if raw is not None and asks_to_go_back(raw):
        return await _back(turn_, found, step)
    # Multiple choices are made with the buttons only: their typed form is internal.
    if raw is None or step.answer is AnswerType.MULTI_CHOICE:
        return _reask(turn_, found, step, "empty")
    return await _record(turn_, found, step, raw)


async def _shared_contact(turn_: Turn, found: Intake, step: Step, message: Message) -> list[Reply]:
    contact = message.contact
    assert contact is not None
    if contact.user_id != turn_.user_id:
        return [Send(turn_.t(NOT_YOUR_CONTACT), _share_keyboard(turn_.t))]
    return await _record(turn_, found, step, contact.phone_number)


async def _record(turn_: Turn, found: Intake, step: Step, raw: str) -> list[Reply]:
    assert turn_.citizen is not None
    try:
        updated = await intake.record_answer(
            session=turn_.session,
            citizen_id=turn_.citizen.id,
            step_key=step.key,
            raw=raw,
            now=turn_.now,
            settings=turn_.settings,
            intake=found,
        )
    except IntakeError as exc:
        return await _failed(turn_, exc, found)
    leaving: list[Reply] = []
    if step.answer is AnswerType.PHONE:
        saved = q.labels(step.key, updated.answers.get(step.key), turn_.t)
        ack = turn_.t("✅ Number saved: {phone}", phone=_e(saved))
        leaving = _leaving_phone(turn_, step, updated, ack)
    return [*leaving, *await _where(turn_, updated)]


@turn
async def on_answer(turn_: Turn) -> list[Reply]:
    """`ans:<step>:<option>`: a button of a yes/no or single-choice question."""
    if not _consented(turn_):
        return _not_started(turn_)
    callback = _callback(turn_, Cb.ANSWER)
    if callback is None or len(callback.args) != 2:
        return _refused(turn_)
    step_key, option = callback.args
    found, step = await _asked(turn_, step_key, for_update=True)
    if step is None or found is None:
        return await _stale(turn_, found, step_key)
    if step.answer not in BUTTON_ANSWERS or option not in step.option_keys:
        return _refused(turn_)
    return await _record_button(turn_, found, step, option, q.option_label(step, option, turn_.t))


async def _record_button(
    turn_: Turn, found: Intake, step: Step, raw: str, shown: str
) -> list[Reply]:
    assert turn_.citizen is not None
    answered = _answered(turn_, found, step, shown)
    try:
        updated = await intake.record_answer(
            session=turn_.session,
            citizen_id=turn_.citizen.id,
            step_key=step.key,
            raw=raw,
            now=turn_.now,
            settings=turn_.settings,
            intake=found,
        )
    except IntakeError as exc:
        return await _failed(turn_, exc, found)
    return [answered, *await _where(turn_, updated)]


def _mask(callback: Callback, step: Step) -> int | None:
    """The selection carried by a multi-choice button, if it is one this step can have."""
    mask = callback.int_arg(1)
    if mask is None or mask >= 1 << len(step.options):
        return None
    return mask


MultiChoice = tuple[Intake, Step, int, str]


async def _multi_choice(
    turn_: Turn, kind: Cb, arity: int, *, for_update: bool
) -> MultiChoice | list[Reply]:
    """Intake, step, selection and last argument of a `tog`/`done` button, or its refusal."""
    callback = _callback(turn_, kind)
    if callback is None or len(callback.args) != arity:
        return _refused(turn_)
    found, step = await _asked(turn_, callback.args[0], for_update=for_update)
    if step is None or found is None:
        return await _stale(turn_, found, callback.args[0])
    mask = _mask(callback, step) if step.answer is AnswerType.MULTI_CHOICE else None
    if mask is None:
        return _refused(turn_)
    return found, step, mask, callback.args[-1]


@turn
async def on_toggle(turn_: Turn) -> list[Reply]:
    """`tog:<step>:<mask>:<option>`: tick or untick one option; only the keyboard changes."""
    if not _consented(turn_):
        return _not_started(turn_)
    checked = await _multi_choice(turn_, Cb.TOGGLE, 3, for_update=False)
    if isinstance(checked, list):
        return checked
    found, step, mask, option_key = checked
    if option_key not in step.option_keys:
        return _refused(turn_)
    index = step.option_keys.index(option_key)
    bit = 1 << index
    mask ^= bit
    if mask & bit:
        # An exclusive option ("none") clears the others; any other option clears it.
        exclusive = sum(1 << i for i, o in enumerate(step.options) if o.exclusive)
        mask = bit if step.options[index].exclusive else mask & ~exclusive
    keyboard = _keyboard(turn_.t, found, step, mask)
    return [Edit(_question_text(turn_, found, step), keyboard)]


@turn
async def on_done(turn_: Turn) -> list[Reply]:
    """`done:<step>:<mask>`: record the options ticked."""
    if not _consented(turn_):
        return _not_started(turn_)
    checked = await _multi_choice(turn_, Cb.DONE, 2, for_update=True)
    if isinstance(checked, list):
        return checked
    found, step, mask, _ = checked
    chosen = [option for i, option in enumerate(step.options) if mask & (1 << i)]
    shown = ", ".join(turn_.t(option.label) for option in chosen)
    raw = " ".join(option.key for option in chosen)
    return await _record_button(turn_, found, step, raw, shown)


@turn
async def on_skip(turn_: Turn) -> list[Reply]:
    """`skip:<step>`: leave an optional question unanswered."""
    if not _consented(turn_):
        return _not_started(turn_)
    assert turn_.citizen is not None
    callback = _callback(turn_, Cb.SKIP)
    if callback is None or len(callback.args) != 1:
        return _refused(turn_)
    found, step = await _asked(turn_, callback.args[0], for_update=True)
    if step is None or found is None:
        return await _stale(turn_, found, callback.args[0])
    answered = _answered(turn_, found, step, turn_.t("Skipped"))
    try:
        updated = await intake.skip_step(
            session=turn_.session,
            citizen_id=turn_.citizen.id,
            step_key=step.key,
            now=turn_.now,
            intake=found,
        )
    except IntakeError as exc:
        return await _failed(turn_, exc, found)
    return [answered, *await _where(turn_, updated)]


@turn
async def on_back(turn_: Turn) -> list[Reply]:
    """`back:<step>`: ask the previous question again (while changing: keep the old answer)."""
    if not _consented(turn_):
        return _not_started(turn_)
    assert turn_.citizen is not None
    callback = _callback(turn_, Cb.BACK)
    if callback is None or len(callback.args) > 1:
        return _refused(turn_)
    found = await _load(turn_, for_update=True)
    step = intake.current_step(found) if found is not None else None
    if found is None or (callback.args and (step is None or step.key != callback.args[0])):
        return await _stale(turn_, found, callback.args[0] if callback.args else None)
    return await _back(turn_, found, step)


async def _back(turn_: Turn, found: Intake, step: Step | None) -> list[Reply]:
    """Go back from `step` (the Back button, or a message saying "back")."""
    assert turn_.citizen is not None
    # After a button, its question stays in the chat without the buttons.
    pressed = turn_.update.callback_query is not None
    shown = [Edit(_question_text(turn_, found, step))] if step is not None and pressed else []
    try:
        updated = await intake.go_back(
            session=turn_.session, citizen_id=turn_.citizen.id, now=turn_.now, intake=found
        )
    except IntakeError as exc:
        return await _failed(turn_, exc, found)
    leaving = _leaving_phone(turn_, step, updated, turn_.t("⬅️ OK, one step back."))
    return [*shown, *leaving, *await _where(turn_, updated)]


async def _in_summary(turn_: Turn, *, for_update: bool = False) -> Intake | list[Reply]:
    """The intake if it is waiting in the summary, else the replies for an old button."""
    found = await _load(turn_, for_update=for_update)
    if found is None or found.state != IntakeState.SUMMARY:
        return await _stale(turn_, found)
    return found


@turn
async def on_confirm(turn_: Turn) -> list[Reply]:
    """`ok`: close the questionnaire and tell the outcome."""
    if not _consented(turn_):
        return _not_started(turn_)
    assert turn_.citizen is not None
    found = await _in_summary(turn_, for_update=True)
    if isinstance(found, list):
        return found
    shown = Edit(_summary_text(turn_, found))
    try:
        outcome = await intake.confirm(
            session=turn_.session,
            citizen_id=turn_.citizen.id,
            now=turn_.now,
            settings=turn_.settings,
            intake=found,
        )
    except IntakeError as exc:
        return await _failed(turn_, exc, found)
    if not outcome.eligibility.eligible:
        return [shown, _ineligible(turn_, outcome.eligibility.reasons)]
    good_news = Send(turn_.t(ELIGIBLE))
    return [shown, good_news, *await booking.after_intake(turn_, intake=outcome.intake)]


@turn
async def on_change(turn_: Turn) -> list[Reply]:
    """`chg`: list the answers to change; `chg:<step>`: ask that step again."""
    if not _consented(turn_):
        return _not_started(turn_)
    assert turn_.citizen is not None
    t = turn_.t
    callback = _callback(turn_, Cb.CHANGE)
    if callback is None or len(callback.args) > 1:
        return _refused(turn_)
    found = await _in_summary(turn_, for_update=bool(callback.args))
    if isinstance(found, list):
        return found
    if not callback.args:
        rows = [
            [_button(t(s.title), Cb.CHANGE, s.key)]
            for s in QUESTIONNAIRE
            if s.key in found.answers and s.applies(found.answers)
        ]
        rows.append([_button(t("↩️ Back to the summary"), Cb.SUMMARY)])
        return [Edit(t("✏️ Which answer do you want to change?"), InlineKeyboardMarkup(rows))]
    try:
        step = q.step(callback.args[0])
        updated = await intake.change_answer(
            session=turn_.session,
            citizen_id=turn_.citizen.id,
            step_key=step.key,
            now=turn_.now,
            intake=found,
        )
    except IntakeError as exc:
        return await _failed(turn_, exc, found)
    title = f"<b>{_e(t(step.title))}</b>"
    return [Edit(t("✏️ Changing: {title}", title=title)), *await _where(turn_, updated)]


@turn
async def on_summary(turn_: Turn) -> list[Reply]:
    """`sum`: the summary again, with its buttons."""
    if not _consented(turn_):
        return _not_started(turn_)
    found = await _in_summary(turn_)
    if isinstance(found, list):
        return found
    text, keyboard = _summary(turn_, found)
    return [Edit(text, keyboard)]


@turn
async def on_restart(turn_: Turn) -> list[Reply]:
    """`restart`: ask whether to throw the answers away; `restart:yes`: start again."""
    if not _consented(turn_):
        return _not_started(turn_)
    assert turn_.citizen is not None
    t = turn_.t
    callback = _callback(turn_, Cb.RESTART)
    if callback is None or callback.args not in ((), ("yes",)):
        return _refused(turn_)
    found = await _load(turn_)
    if found is None or found.state not in UNFINISHED:
        return await _stale(turn_, found)
    if not callback.args:
        keyboard = InlineKeyboardMarkup(
            [
                [_button(t("Yes, start again"), Cb.RESTART, "yes")],
                [_button(t("No, keep my answers"), Cb.SUMMARY)],
            ]
        )
        return [Edit(t(RESTART_QUESTION), keyboard)]
    started = await intake.start_intake(
        session=turn_.session, citizen_id=turn_.citizen.id, now=turn_.now
    )
    return [Edit(t("🔄 OK, let's start again.")), *await _where(turn_, started)]


TALK_TO_A_PERSON = N_(
    "If you think something is wrong, or you would like advice, you can talk to a person:\n"
    "{contacts}"
)
WILL_CALL = N_(
    "Thank you: a case worker will look at your situation and call you at the number you "
    "gave us. If you need to talk to someone sooner:\n{contacts}"
)
NOTHING_MORE = N_(
    "All right: we won't ask you anything else. If you change your mind, or would like "
    "advice, you can reach us here:\n{contacts}"
)
OLD_BUTTON = N_(
    "This button is out of date: nothing changed. Answer the latest question, or write "
    "/start to see it again."
)
SHARE_HINT = N_("Tap “📱 Share my number” below, or write your number.")
NOT_YOUR_CONTACT = N_(
    "That is not your own number. Tap “📱 Share my number” to share yours, or write it."
)
EXPIRED = N_(
    "Your earlier answers were deleted because the questionnaire was left unfinished "
    "for a long time. Let's start again."
)
ELIGIBLE = N_(
    "🎉 Thank you! From your answers you can take part in Ripartire. Now let's choose when we meet."
)
RESTART_QUESTION = N_(
    "🔄 Start again from the first question? The answers you gave so far will be deleted."
)


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        MessageHandler(filters.UpdateType.MESSAGE & ~filters.COMMAND, on_message),
        CallbackQueryHandler(on_answer, pattern=rf"^{Cb.ANSWER}:"),
        CallbackQueryHandler(on_toggle, pattern=rf"^{Cb.TOGGLE}:"),
        CallbackQueryHandler(on_done, pattern=rf"^{Cb.DONE}:"),
        CallbackQueryHandler(on_skip, pattern=rf"^{Cb.SKIP}:"),
        CallbackQueryHandler(on_back, pattern=rf"^{Cb.BACK}(:|$)"),
        CallbackQueryHandler(on_confirm, pattern=rf"^{Cb.CONFIRM}$"),
        CallbackQueryHandler(on_change, pattern=rf"^{Cb.CHANGE}(:|$)"),
        CallbackQueryHandler(on_summary, pattern=rf"^{Cb.SUMMARY}$"),
        CallbackQueryHandler(on_restart, pattern=rf"^{Cb.RESTART}(:|$)"),
    ]
