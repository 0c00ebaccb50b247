"""What staff type in the case search box, and the name index it is matched against.

One box takes a name, a phone number, a fiscal code or a booking code. The text is read
every way it can be (`ANDREA` is a name and could be a booking code) and a case matches
if any reading does:

- name, ignoring case, accents and punctuation ("nicolo d'amico" and "Nicolò Damico" are
  the same): one word finds the names with a word starting with it ("ross" finds
  "Rossi"); with several words, the first is a whole word of the name and the last the
  start of another, in either order ("maria ross" and "rossi maria" find "Maria Rossi"),
  and any word between starts a word too. Words with digits are never a name.
- phone: normalised to E.164 exactly like the questionnaire's validator (Italian unless
  it has a prefix), then compared with the stored number;
- fiscal code and booking code: spaces removed, upper case, compared exactly.

Names are matched in `case_name_prefix` by equality, so an index answers: it holds every
prefix of every word ("ross") and, for every two words, the whole first word followed by
each prefix of the second ("maria ross"). So a full name, the most usual search, is one
index lookup however common its first name and surname are.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.booking.places import CODE_ALPHABET, CODE_LENGTH
from shared.cases.models import Case, CaseNamePrefix
from shared.intake.errors import InvalidAnswer
from shared.intake.validators import validate_phone

MIN_PREFIX = 2
MAX_TERM = 20
# Long names (five words and more) pair only their first words: the index stays small.
MAX_PAIRED_WORDS = 5
MAX_QUERY = 100
_FISCAL_CODE = re.compile(r"(?=.*[A-Z])(?=.*\d)[A-Z0-9]{16}")
_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Lower case without accents: "Nicolò" → "nicolo"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_words(name: str) -> list[str]:
    """The words a name is searched by, in order: "D'Amico-Rossi" → d, amico, rossi, damicorossi.

    Words with digits are left out: names have none, and digits are read as a phone
    number or a code.
    """
    folded = fold(name)
    words = _WORD.findall(folded.replace("_", " "))
    words += ["".join(_WORD.findall(chunk)) for chunk in folded.split()]
    return list(dict.fromkeys(w for w in words if w and not any(c.isdigit() for c in w)))


def name_terms(name: str) -> set[str]:
    """What a name is found by: every prefix (2–20 characters) of every word, and for every
    two words (of the first few) the first one whole, a space and each prefix of the other.
    """
    words = [word for word in name_words(name) if len(word) >= MIN_PREFIX]
    terms = {word[:length] for word in words for length in range(MIN_PREFIX, len(word) + 1)}
    paired = words[:MAX_PAIRED_WORDS]
    for first in paired:
        for second in paired:
            if first != second:
                terms |= {
                    f"{first} {second[:length]}"[:MAX_TERM] for length in range(1, len(second) + 1)
                }
    return {term[:MAX_TERM] for term in terms}


async def index_names(*, session: AsyncSession, citizen_id: int, name: str | None) -> None:
    """Make the citizen's cases findable by their current name (and no longer by an old one)."""
    owned = (
        await session.execute(select(Case.id, Case.opened_at).where(Case.citizen_id == citizen_id))
    ).all()
    if not owned:
        return
    await session.execute(
        delete(CaseNamePrefix).where(CaseNamePrefix.case_id.in_([row.id for row in owned]))
    )
    terms = sorted(name_terms(name or ""))
    if terms:
        await session.execute(
            insert(CaseNamePrefix),
            [
                {"case_id": row.id, "prefix": term, "opened_at": row.opened_at}
                for row in owned
                for term in terms
            ],
        )


async def index_new_case(*, session: AsyncSession, case: Case, name: str | None) -> None:
    """Make a citizen's first case findable by their name (nothing indexed to replace)."""
    terms = sorted(name_terms(name or ""))
    if terms:
        await session.execute(
            insert(CaseNamePrefix),
            [{"case_id": case.id, "prefix": term, "opened_at": case.opened_at} for term in terms],
        )


@dataclass(frozen=True, slots=True)
class Search:
    """The readings of a search text; a case matches when any of them does."""

    # Name words as typed (folded), in order.
    words: tuple[str, ...] = ()
    phone: str | None = None
    fiscal_code: str | None = None
    booking_code: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.words or self.phone or self.fiscal_code or self.booking_code)

    def name_terms(self) -> tuple[str, tuple[str, ...]] | None:
        """The name index term that leads the search, and the terms each match must also have.

        One word: its prefix. Several: the first word whole with the start of the last
        ("maria ross"); the words between are checked as prefixes.
        """
        if not self.words:
            return None
        if len(self.words) == 1:
            return self.words[0][:MAX_TERM], ()
        first, *between, last = self.words
        return f"{first} {last}"[:MAX_TERM], tuple(word[:MAX_TERM] for word in between)


def parse_search(text: str) -> Search:
    """Every way `text` can be read: name words, phone, fiscal code, booking code."""
    text = text.strip()[:MAX_QUERY]
    compact = "".join(text.split()).upper()
    phone = None
    if sum(c.isdigit() for c in text) >= 6:
        try:
            phone = validate_phone(text)
        except InvalidAnswer:
            phone = None
    return Search(
        words=_query_words(text),
        phone=phone,
        fiscal_code=compact if _FISCAL_CODE.fullmatch(compact) else None,
        booking_code=(
            compact if len(compact) == CODE_LENGTH and set(compact) <= set(CODE_ALPHABET) else None
        ),
    )


def _query_words(text: str) -> tuple[str, ...]:
    """The name words typed, in order, once each; punctuation joins ("d'amico" → "damico").

    A lone word needs two characters; with others, the last (being typed) may have one.
    """
    joined = ["".join(_WORD.findall(chunk)) for chunk in fold(text).split()]
    words = list(dict.fromkeys(w for w in joined if w and not any(c.isdigit() for c in w)))
    if len(words) == 1:
        return tuple(words) if len(words[0]) >= MIN_PREFIX else ()
    *firsts, last = words or [""]
    kept = [word for word in firsts if len(word) >= MIN_PREFIX]
    return tuple([*kept, last] if kept else [last] if len(last) >= MIN_PREFIX else [])
