"""What a handler asks the bot to say; sent only after the update's transaction commits."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove

Keyboard = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


@dataclass(frozen=True)
class Send:
    """A new message (HTML parse mode: escape anything the citizen wrote)."""

    text: str
    keyboard: Keyboard | None = None


@dataclass(frozen=True)
class Edit:
    """Replace the text (and buttons) of the message whose button was pressed."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True)
class Document:
    filename: str
    data: bytes
    caption: str | None = None


@dataclass(frozen=True)
class Toast:
    """The small notice Telegram shows when a button is pressed."""

    text: str
    alert: bool = False


Reply = Send | Edit | Document | Toast
