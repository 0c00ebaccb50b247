"""Password hashing (Argon2id via pwdlib) and strength checks (zxcvbn)."""

from __future__ import annotations

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

_hasher = PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Whether the password matches, and a fresh hash when the stored one is outdated."""
    valid, updated = _hasher.verify_and_update(password, password_hash)
    return bool(valid), updated


def check_strength(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Refuse passwords that are short or easy to guess, saying why."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(N_("The password must have at least 10 characters."))
    if len(password) > MAX_LENGTH:
        raise WeakPassword(N_("The password must have at most 128 characters."))
    if zxcvbn(password, user_inputs=list(user_inputs))["score"] < MIN_SCORE:
        raise WeakPassword(
            N_("The password is too easy to guess: add more unrelated words or characters.")
        )
