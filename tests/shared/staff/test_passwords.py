"""Password strength: what an attacker would try first is refused, whoever sets it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from shared.staff import service as staff
from shared.staff import sessions
from shared.staff.errors import WeakPassword
from shared.staff.models import Role, StaffSession
from shared.staff.passwords import check_strength

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)

# (username, display name, password): each was accepted before the programme's words and
# the parts of the user's own names were given to zxcvbn.
GUESSABLE = [
    ("giulia.ferri", "Giulia Ferri", "giuliaferri1234"),
    ("m.rossi", "Mario Rossi", "mrossi12345"),
    ("anna.verdi", "Anna Verdi", "annaverdi1234"),
    ("a.verdi", "Anna Verdi", "verdianna1234"),
    ("luca", "Luca", "cernusco2020"),
    ("luca", "Luca", "Cernusco.2020"),
    ("luca", "Luca", "c3rnusc0-2020"),
    ("luca", "Luca", "ripartire2021"),
    ("luca", "Luca", "naviglio2021"),
    ("luca", "Luca", "sportello2020"),
    ("luca", "Luca", "consorzio2020"),
    ("luca", "Luca", "farsiprossimo1"),
    ("luca", "Luca", "Cariplo2021!"),
    ("luca", "Luca", "bancodellenergia1"),
]


@pytest.mark.parametrize(("username", "display_name", "password"), GUESSABLE)
def test_names_and_the_programmes_words_are_guessable(
    username: str, display_name: str, password: str
) -> None:
    with pytest.raises(WeakPassword, match="too easy to guess"):
        check_strength(password, user_inputs=(username, display_name))


@pytest.mark.parametrize(
    "password",
    [
        PASSWORD,
        "violet tractor under seven moons",
        "tramonto viola sul naviglio 42",
        "sportello-demo-coordinatore",
    ],
)
def test_unrelated_words_still_pass(password: str) -> None:
    check_strength(password, user_inputs=("giulia.ferri", "Giulia Ferri"))


def test_a_guess_built_on_names_says_so() -> None:
    with pytest.raises(WeakPassword, match="names, the username"):
        check_strength("giuliaferri1234", user_inputs=("giulia.ferri", "Giulia Ferri"))


async def test_add_user_refuses_the_username_with_digits(session: AsyncSession) -> None:
    with pytest.raises(WeakPassword):
        await staff.add_user(
            session=session, username="giulia.ferri", display_name="Giulia Ferri",
            password="giuliaferri1234", role=Role.OPERATORE,
        )  # fmt: skip


async def test_reset_password_refuses_the_programmes_words(session: AsyncSession) -> None:
    admin = await staff.add_user(
        session=session, username="anna", password=PASSWORD, role=Role.ADMIN
    )
    worker = await staff.add_user(
        session=session, username="marco", password=PASSWORD, role=Role.OPERATORE
    )
    with pytest.raises(WeakPassword):
        await staff.reset_password(
            session=session, user_id=worker.id, password="ripartire2021", by_user_id=admin.id,
            actor="staff:anna", now=NOW,
        )  # fmt: skip


async def test_own_password_change_refuses_the_programmes_words(session: AsyncSession) -> None:
    user = await staff.add_user(
        session=session, username="marco", password=PASSWORD, role=Role.OPERATORE
    )
    keep = StaffSession(
        token_hash="hash", user_id=user.id, csrf_token="x", created_at=NOW, last_seen_at=NOW
    )
    session.add(keep)
    await session.flush()
    with pytest.raises(WeakPassword):
        await sessions.change_password(
            session=session, user=user, current_password=PASSWORD,
            new_password="cernusco2020", keep=keep, now=NOW,
        )  # fmt: skip
