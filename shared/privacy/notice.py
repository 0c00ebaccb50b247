"""The privacy notice (informativa, GDPR art. 13) the citizen reads and accepts (SPEC J8).

The text is in the repository, one Markdown file per language in `notice/` (Italian
`it.md`, English `en.md`; a language without one reads the Italian). It is layered, as
the European data protection board advises for screens: the first section is the short
version (who, why, Telegram, how long, rights) shown with the consent question; the
whole notice is `/privacy`. Placeholders are filled from the settings, so the notice
always says the periods the retention actually applies: `{controller}`, `{dpo}` (the
data protection officer's contact, or where to find it), `{intake_expiry_days}`,
`{retention_never_booked_days}`, `{retention_closed_case_days}`, `{retention_audit_days}`
and `{version}`. `notice/defaults/` holds both texts as they read with the default
settings, for people reading the repository (docs/privacy.md links to them); write them
again with `python -m shared.privacy.notice`.

`VERSION` names the text that consents record (`Citizen.consent_version`, the audit
event `citizen.consent`). Change it whenever the text changes: every citizen who
accepted another version is asked, at their next message, to read and accept the new
one (`shared.citizens.standing.notice_to_accept`). `TEXTS_DIGEST` is the texts' hash
for that version: a test fails when the files change and it does not, so a new text
can't go out under an old version unnoticed. A change of a setting the notice quotes
changes what it says too: change the version with it.

Markdown here is a small subset: `#` the title, `##` the sections, paragraphs,
`- ` list items and `**bold**`. Telegram gets it as HTML, in messages of at most
`TELEGRAM_LIMIT` characters, each starting at a section.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from shared.i18n import DEFAULT_LANGUAGE, N_, Translator, normalise_language

if TYPE_CHECKING:
    from shared.settings import Settings

VERSION = "2026-12"
# The name the rest of the code base has always imported (shared.citizens.service).
PRIVACY_NOTICE_VERSION = VERSION
TEXTS_DIGEST = "f0c592b648681294365035debb67b850c0a77ab39d1e5c6521c180f63b0b98ad"

TEXTS = Path(__file__).with_name("notice")
DEFAULTS = TEXTS / "defaults"
# Telegram's limit for a message's text.
TELEGRAM_LIMIT = 4096

DPO_CONTACT = N_("Data protection officer (DPO): {contact}.")
DPO_UNSET = N_(
    "The contact of the data protection officer (DPO) is published on the controller's "
    "website, in its privacy section."
)


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    # Markdown: paragraphs and lists, separated by blank lines.
    body: str


@dataclass(frozen=True, slots=True)
class Notice:
    """The notice in one language, its placeholders filled in."""

    language: str
    version: str
    title: str
    # The lines under the title (program, version, article).
    preamble: str
    sections: tuple[Section, ...]

    @property
    def summary(self) -> Section:
        """The short version, shown with the consent question."""
        return self.sections[0]


@cache
def languages() -> tuple[str, ...]:
    """The languages the notice is written in (Italian first)."""
    found = sorted(path.stem for path in TEXTS.glob("*.md"))
    return tuple(sorted(found, key=lambda language: (language != DEFAULT_LANGUAGE, language)))


def texts_digest() -> str:
    """SHA-256 of every language's text, to compare with `TEXTS_DIGEST`."""
    digest = hashlib.sha256()
    for language in languages():
        digest.update(language.encode() + b"\0" + _template(language).encode() + b"\0")
    return digest.hexdigest()


@cache
def _template(language: str) -> str:
    return (TEXTS / f"{language}.md").read_text(encoding="utf-8")


def _values(language: str, settings: Settings) -> dict[str, object]:
    t = Translator(language)
    contact = settings.privacy_dpo_contact
    return {
        "version": VERSION,
        "controller": settings.privacy_controller,
        "dpo": t(DPO_CONTACT, contact=contact) if contact else t(DPO_UNSET),
        "intake_expiry_days": settings.intake_expiry_days,
        "retention_never_booked_days": settings.retention_never_booked_days,
        "retention_closed_case_days": settings.retention_closed_case_days,
        "retention_audit_days": settings.retention_audit_days,
    }


def markdown(language: str, *, settings: Settings) -> str:
    """The notice as Markdown, in `language` (Italian when it has none)."""
    chosen = normalise_language(language)
    if chosen not in languages():
        chosen = DEFAULT_LANGUAGE
    return _template(chosen).format(**_values(chosen, settings))


def notice(language: str, *, settings: Settings) -> Notice:
    """The notice in `language` (Italian when it has none), as sections."""
    chosen = normalise_language(language)
    if chosen not in languages():
        chosen = DEFAULT_LANGUAGE
    text = markdown(chosen, settings=settings)
    head, *parts = re.split(r"^## ", text, flags=re.MULTILINE)
    title, _, preamble = head.strip().partition("\n")
    sections = []
    for part in parts:
        heading, _, body = part.partition("\n")
        sections.append(Section(heading.strip(), body.strip()))
    return Notice(
        chosen, VERSION, title.removeprefix("# ").strip(), preamble.strip(), tuple(sections)
    )


# --- Telegram ----------------------------------------------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _inline(text: str) -> str:
    return _BOLD.sub(r"<b>\1</b>", html.escape(text, quote=False))


def _paragraphs(body: str) -> list[str]:
    """The body's paragraphs and lists as Telegram HTML, one string per block."""
    blocks = []
    for block in re.split(r"\n\s*\n", body.strip()):
        lines = [line.strip() for line in block.splitlines()]
        if not lines[0].startswith("- "):
            blocks.append(_inline(" ".join(lines)))
            continue
        items: list[str] = []
        for line in lines:
            if line.startswith("- "):
                items.append(line[2:])
            else:  # a list item's next line
                items[-1] += " " + line
        blocks.append("\n".join(f"• {_inline(item)}" for item in items))
    return blocks


def _section_html(section: Section) -> list[str]:
    """The section's blocks, its heading (bold) on the first."""
    blocks = _paragraphs(section.body)
    heading = f"<b>{_inline(section.heading)}</b>"
    return [f"{heading}\n{blocks[0]}" if blocks else heading, *blocks[1:]]


def telegram_summary(found: Notice) -> str:
    """The title and the short version, as Telegram HTML (for the consent screen)."""
    return f"<b>{_inline(found.title)}</b>\n\n" + "\n\n".join(_section_html(found.summary))


def telegram_messages(found: Notice, *, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The whole notice as Telegram HTML messages of at most `limit` characters each.

    Sections are packed in order; a message breaks between sections, and a section
    longer than a message between its paragraphs (a paragraph longer than a message,
    which no text here is, between words).
    """
    head = f"<b>{_inline(found.title)}</b>\n{_inline(found.preamble)}"
    groups = [[head], *(_section_html(section) for section in found.sections)]
    messages: list[str] = []
    current = ""
    for group in groups:
        whole = "\n\n".join(group)
        if current and len(current) + 2 + len(whole) <= limit:
            current += "\n\n" + whole
            continue
        if current:
            messages.append(current)
            current = ""
        for block in group:
            for piece in _cut(block, limit):
                if current and len(current) + 2 + len(piece) <= limit:
                    current += "\n\n" + piece
                else:
                    if current:
                        messages.append(current)
                    current = piece
    if current:
        messages.append(current)
    return messages


def _cut(block: str, limit: int) -> list[str]:
    """`block` in pieces of at most `limit` characters, broken at spaces where possible."""
    pieces = []
    while len(block) > limit:
        at = block.rfind(" ", 0, limit)
        at = at if at > 0 else limit
        pieces.append(block[:at])
        block = block[at:].lstrip()
    return [*pieces, block]


def write_defaults(*, settings: Settings) -> list[Path]:
    """Write `notice/defaults/<language>.md`: the texts as they read with `settings`."""
    DEFAULTS.mkdir(exist_ok=True)
    written = []
    for language in languages():
        path = DEFAULTS / f"{language}.md"
        path.write_text(defaults_text(language, settings=settings), encoding="utf-8")
        written.append(path)
    return written


def defaults_text(language: str, *, settings: Settings) -> str:
    """What `notice/defaults/<language>.md` holds: a note, then the filled-in notice."""
    return (
        f"<!-- Generated from ../{language}.md with the default settings by "
        "`python -m shared.privacy.notice`: edit that file, not this one. -->\n\n"
        + markdown(language, settings=settings)
    )


def default_settings() -> Settings:
    """The settings as shipped (every field its default), without reading the environment."""
    from shared.settings import Settings

    return Settings.model_construct()


if __name__ == "__main__":
    for written in write_defaults(settings=default_settings()):
        print(written)
