"""Domain errors of the intake; the front ends turn them into re-asks and messages."""

from __future__ import annotations


class IntakeError(Exception):
    """An intake operation was refused; the message is for logs, not for citizens."""


class InvalidAnswer(IntakeError):
    """The raw input does not fit the step; `reason` picks the re-ask text."""

    def __init__(self, step_key: str, reason: str) -> None:
        super().__init__(f"invalid answer for {step_key!r}: {reason}")
        self.step_key = step_key
        self.reason = reason


class UnknownStep(IntakeError):
    def __init__(self, step_key: str) -> None:
        super().__init__(f"no questionnaire step is called {step_key!r}")
        self.step_key = step_key


class UnknownCitizen(IntakeError):
    def __init__(self, citizen_id: int) -> None:
        super().__init__(f"no citizen with id {citizen_id}")
        self.citizen_id = citizen_id


class IntakeNotFound(IntakeError):
    def __init__(self, citizen_id: int) -> None:
        super().__init__(f"citizen {citizen_id} has no questionnaire")
        self.citizen_id = citizen_id


class WrongState(IntakeError):
    """The questionnaire is not in a state that allows this (e.g. answering after confirming)."""

    def __init__(self, state: str, action: str) -> None:
        super().__init__(f"cannot {action} a questionnaire in state {state!r}")
        self.state = state
        self.action = action


class NotCurrentStep(IntakeError):
    """An answer (or skip) for a step other than the one being asked: a stale button."""

    def __init__(self, step_key: str, current: str | None) -> None:
        super().__init__(f"step {step_key!r} is not being asked (current: {current!r})")
        self.step_key = step_key
        self.current = current


class StepNotOptional(IntakeError):
    def __init__(self, step_key: str) -> None:
        super().__init__(f"step {step_key!r} cannot be skipped")
        self.step_key = step_key


class StepNotAsked(IntakeError):
    """The step's condition is false for these answers, so it cannot be changed."""

    def __init__(self, step_key: str) -> None:
        super().__init__(f"step {step_key!r} does not apply to these answers")
        self.step_key = step_key


class CannotGoBack(IntakeError):
    """Already at the first question."""


class IncompleteAnswers(IntakeError):
    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__("unanswered steps: " + ", ".join(missing))
        self.missing = missing
