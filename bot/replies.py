"""What a handler asks the bot to say; kept in the update's transaction, sent after it
commits (`to_row`/`from_row`: kept as JSON until sent, see `shared.inbox`)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

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


# --- kept in the database until sent (`shared.inbox`, issue 15) --------------------------

_KEYBOARDS: dict[str, type[Keyboard]] = {
    "inline": InlineKeyboardMarkup,
    "reply": ReplyKeyboardMarkup,
    "remove": ReplyKeyboardRemove,
}


def _keyboard_row(keyboard: Keyboard | None) -> dict[str, Any] | None:
    if keyboard is None:
        return None
    kind = next(name for name, cls in _KEYBOARDS.items() if isinstance(keyboard, cls))
    return {"kind": kind, "markup": keyboard.to_dict()}


def _keyboard(row: dict[str, Any] | None) -> Keyboard | None:
    if row is None:
        return None
    found = _KEYBOARDS[row["kind"]].de_json(row["markup"], None)
    assert found is not None
    return found


def to_row(reply: Reply) -> dict[str, Any]:
    """The reply as JSON, to keep it until it is sent."""
    match reply:
        case Send(text, keyboard):
            return {"kind": "send", "text": text, "keyboard": _keyboard_row(keyboard)}
        case Edit(text, keyboard):
            return {"kind": "edit", "text": text, "keyboard": _keyboard_row(keyboard)}
        case Document(filename, data, caption):
            encoded = base64.b64encode(data).decode()
            return {"kind": "document", "filename": filename, "data": encoded, "caption": caption}
        case Toast(text, alert):
            return {"kind": "toast", "text": text, "alert": alert}


def from_row(row: dict[str, Any]) -> Reply:
    """The reply `to_row` kept."""
    match row["kind"]:
        case "send":
            return Send(row["text"], _keyboard(row["keyboard"]))
        case "edit":
            keyboard = _keyboard(row["keyboard"])
            assert keyboard is None or isinstance(keyboard, InlineKeyboardMarkup)
            return Edit(row["text"], keyboard)
        case "document":
            return Document(row["filename"], base64.b64decode(row["data"]), row["caption"])
        case "toast":
            return Toast(row["text"], row["alert"])
    raise ValueError(f"unknown kind of reply: {row['kind']!r}")
