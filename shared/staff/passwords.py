"""Password hashing (Argon2id via pwdlib) and strength checks (zxcvbn)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from zxcvbn import zxcvbn

from shared.i18n import N_
from shared.staff.errors import WeakPassword

# The messages below spell these numbers out: change both together.
MIN_LENGTH = 10
MAX_LENGTH = 128
# zxcvbn's 0-4 scale: 3 is "safely unguessable: moderate protection from offline attacks".
MIN_SCORE = 3

# What someone guessing a staff password tries first, after the person's own names: the
# programme, its town and its partners and funders, all printed on every leaflet.
PROGRAMME_NAMES = (
    "Ripartire",
    "sportello",
    "Cernusco sul Naviglio",
    "CS&L Consorzio sociale",
    "Associazione Farsi Prossimo Cernusco",
    "Fondazione Centro per la Famiglia Cardinal Martini ONLUS",
    "Fondazione Cariplo",
    "Banco dell'energia",
)
# Shorter pieces ("la", "di") are in zxcvbn's own dictionaries already; as user inputs
# they would only make unrelated passwords look guessable.
_MIN_WORD = 3
# A text of up to this many words may be a person's name, turned round or shortened.
_NAME_WORDS = 3
_SEPARATORS = re.compile(r"[^0-9a-z]+")

_hasher = PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Whether the password matches, and a fresh hash when the stored one is outdated."""
    valid, updated = _hasher.verify_and_update(password, password_hash)
    return bool(valid), updated


def _forms(text: str) -> list[str]:
    """The ways a name turns up in a password: whole, word by word, run together.

    zxcvbn matches each user input only as one whole token, so `Giulia Ferri` alone does not
    make `giuliaferri1234` guessable; its pieces and their joins do.
    """
    folded = unicodedata.normalize("NFKD", text.strip().lower())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    words = [w for w in _SEPARATORS.split(plain) if w]
    forms = [plain, *plain.split(), *words]
    # Every run of two or more neighbouring words: `farsiprossimo`, `cardinalmartini`.
    forms += [
        "".join(words[start:end])
        for start in range(len(words))
        for end in range(start + 2, len(words) + 1)
    ]
    if 1 < len(words) <= _NAME_WORDS:
        # `ferrigiulia`, `mrossi`.
        forms.append("".join(reversed(words)))
        forms.append("".join(w[0] for w in words[:-1]) + words[-1])
    return forms


def _unique_forms(texts: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        for form in _forms(text):
            if len(form) >= _MIN_WORD:
                seen.setdefault(form, None)
    return list(seen)


_PROGRAMME_FORMS = _unique_forms(PROGRAMME_NAMES)


def guessable_words(personal: Iterable[str]) -> list[str]:
    """zxcvbn's user inputs: the person's names first (most likely tried), then the programme's."""
    own = _unique_forms(personal)
    return own + [form for form in _PROGRAMME_FORMS if form not in own]


def check_strength(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Refuse passwords that are short or easy to guess, saying why.

    `user_inputs` are the account's own words (username, display name); the programme's
    names are always added.
    """
    if len(password) < MIN_LENGTH:
        raise WeakPassword(N_("The password must have at least 10 characters."))
    if len(password) > MAX_LENGTH:
        raise WeakPassword(N_("The password must have at most 128 characters."))
    result = zxcvbn(password, user_inputs=guessable_words(user_inputs))
    if result["score"] >= MIN_SCORE:
        return
    if any(match.get("dictionary_name") == "user_inputs" for match in result["sequence"]):
        raise WeakPassword(
            N_(
                "The password is too easy to guess: avoid names, the username and the "
                "programme's own words (Ripartire, Cernusco, sportello, the partners' names)."
            )
        )
    raise WeakPassword(
        N_("The password is too easy to guess: add more unrelated words or characters.")
    )
