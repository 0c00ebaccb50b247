"""The pre-screening (SPEC J6): where citizens stop in the questionnaire, and why the
candidates it ruled out were ruled out.

Counted over the questionnaires started in the period (`Intake.started_at`; starting
again from the beginning counts as a new start), from one GROUP BY of where each stands.

Drop-off per question. A questionnaire in progress stands at the question it is asking
(`Intake.current_step`); one in the summary has answered every question asked; a
completed one went to the end. So, in the questionnaire's order (the offer to be called
comes where the contacts are asked, as the summary shows it):

- stopped at a question: the questionnaires in progress asking it now;
- reached a question: those that did not stop at an earlier one. A question not asked to
  someone who went past it still counts them: the two asked only when the situation is
  not "something else" ("since", "caused by the pandemic"), the questions after an
  answer that rules the citizen out (they are offered a call instead), and that offer
  for everyone else. "Reached" reads "got this far", not "was asked".

Questionnaires left unfinished for `intake_expiry_days` are wiped by the expiry sweep,
which keeps no answer and not the question they stood at (`intake.service.expire_stale`),
and a citizen's erasure deletes theirs (SPEC J8). Before either, what is counted here
is added to an anonymous tally (`shared.intake.tally`, by the day the questionnaire was
started, no citizen), which this adds back: an abandoned questionnaire stays at the
question it stopped at, an erased one in its counts and its reasons, so the figures are
the same before and after. `expired` counts the abandoned ones (wiped by the sweep, or
erased unfinished); those wiped before the tally existed are not placed at a question.

Ruled out by reason: the completed questionnaires the eligibility rules refused, by the
rule (`questionnaire.ELIGIBILITY_RULES`) each failed, decided by `questionnaire.assess`
on the three answers the rules read. A questionnaire run by staff asks every question and
may fail more than one rule: it counts under each. A coordinator's later decision to
admit does not change these counts (they are about the questionnaire).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, and_, case, cast, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from shared.figures.period import Period
from shared.intake.models import Intake, IntakeState, ScreeningTally, TallyKind
from shared.intake.questionnaire import (
    CONTACT_OFFER,
    CONTACT_STEPS,
    ELIGIBILITY_RULES,
    QUESTIONNAIRE,
    assess,
)
from shared.intake.tally import RULE_STEPS
from shared.intake.tally import SUMMARY as SUMMARY
from shared.settings import Settings

# The questionnaire's questions in the order people meet them, then the summary.
POSITIONS: tuple[str, ...] = (
    *(
        key
        for s in QUESTIONNAIRE
        for key in ((CONTACT_OFFER.key, s.key) if s.key == CONTACT_STEPS[0] else (s.key,))
    ),
    SUMMARY,
)
REASONS = tuple(rule.reason for rule in ELIGIBILITY_RULES)


@dataclass(frozen=True, slots=True)
class QuestionDropOff:
    # A step key, or SUMMARY.
    position: str
    reached: int
    stopped: int

    @property
    def stopped_share(self) -> float | None:
        return self.stopped / self.reached if self.reached else None


@dataclass(frozen=True, slots=True)
class Screening:
    started: int
    completed: int
    # Still open (in progress or in the summary).
    unfinished: int
    # Abandoned: wiped by the expiry sweep, or erased with their citizen unfinished.
    expired: int
    # Stopped at a question the questionnaire no longer has (it changed since).
    unplaced: int
    questions: tuple[QuestionDropOff, ...]
    ruled_out: int
    # (rule's reason, how many failed it), in the rules' order.
    reasons: tuple[tuple[str, int], ...]


async def screening(
    *,
    session: AsyncSession,
    settings: Settings,
    period: Period,
    helpdesk_id: int | None = None,
    now: datetime,
) -> Screening:
    """Drop-off per question and ruled-out candidates by reason; one statement.

    Not about a helpdesk (none is chosen during the questionnaire): `helpdesk_id` is
    accepted for the common signature and ignored.
    """
    del helpdesk_id, now
    refused = and_(Intake.state == IntakeState.COMPLETED.value, Intake.eligible.is_(False))
    answers = [
        case((refused, Intake.answers[key].as_string()), else_=None).label(key)
        for key in RULE_STEPS
    ]
    questionnaires = (
        select(literal("intake").label("source"), Intake.state.label("state"),
               Intake.current_step.label("current_step"), refused.label("refused"), *answers,
               func.count().label("n"))
        .where(period.within(Intake.started_at, settings.tz))
        .group_by(Intake.state, Intake.current_step, refused, *answers)
    )  # fmt: skip
    # The tally's rows as (source, kind, key): what was wiped or erased in the period.
    tallied = (
        select(literal("tally"), ScreeningTally.kind, ScreeningTally.key, cast(null(), Boolean),
               *(cast(null(), String) for _ in RULE_STEPS), func.sum(ScreeningTally.n))
        .where(ScreeningTally.day >= period.first, ScreeningTally.day <= period.last)
        .group_by(ScreeningTally.kind, ScreeningTally.key)
    )  # fmt: skip
    rows: list[Any] = list((await session.execute(union_all(questionnaires, tallied))).all())

    stopped = dict.fromkeys(POSITIONS, 0)
    totals = dict.fromkeys(IntakeState, 0)
    erased = dict.fromkeys(IntakeState, 0)
    # Open ones at a question the questionnaire no longer has; abandoned ones the tally
    # placed at a question it has, and at one it no longer has.
    unplaced_open = placed_by_tally = unplaced_tally = 0
    reasons = dict.fromkeys(REASONS, 0)
    ruled_out = 0
    for row in rows:
        values = row._mapping
        n = int(values["n"])
        where = values["current_step"]
        if values["source"] == "tally":
            kind = TallyKind(values["state"])
            if kind is TallyKind.STOPPED:
                if where in stopped:
                    stopped[where] += n
                    placed_by_tally += n
                else:
                    unplaced_tally += n
            elif kind is TallyKind.ERASED:
                erased[IntakeState(where)] += n
            elif kind is TallyKind.RULED_OUT:
                ruled_out += n
            elif where in reasons:
                reasons[where] += n
            continue
        state = IntakeState(values["state"])
        totals[state] += n
        if state is IntakeState.SUMMARY:
            stopped[SUMMARY] += n
        elif state is IntakeState.IN_PROGRESS:
            if where in stopped and where != SUMMARY:
                stopped[where] += n
            else:
                unplaced_open += n
        elif values["refused"]:
            ruled_out += n
            given = {key: values[key] for key in RULE_STEPS if values[key] is not None}
            for reason in assess(given, settings).reason_keys:
                reasons[reason] += n

    completed = totals[IntakeState.COMPLETED] + erased[IntakeState.COMPLETED]
    unfinished = totals[IntakeState.IN_PROGRESS] + totals[IntakeState.SUMMARY]
    abandoned = totals[IntakeState.EXPIRED] + sum(
        erased[state] for state in IntakeState if state is not IntakeState.COMPLETED
    )
    # Every question counts those who went past it: the completed ones, the open ones at
    # a question the questionnaire has, and the abandoned ones the tally placed.
    placed = completed + unfinished - unplaced_open + placed_by_tally
    questions = []
    reached = placed
    for position in POSITIONS:
        questions.append(QuestionDropOff(position, reached, stopped[position]))
        reached -= stopped[position]
    return Screening(
        started=sum(totals.values()) + sum(erased.values()),
        completed=completed,
        unfinished=unfinished,
        expired=abandoned,
        unplaced=unplaced_open + unplaced_tally,
        questions=tuple(questions),
        ruled_out=ruled_out,
        reasons=tuple(reasons.items()),
    )
