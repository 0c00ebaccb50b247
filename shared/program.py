"""The program's own facts: who runs it, who funds it (SPEC section 0), what to bring.

Printed on the plan, offered as the responsible organisation of a support, given to the
password check as words anyone would guess. Names are proper names: not translated.
"""

from __future__ import annotations

from shared.i18n import N_

MUNICIPALITY = "Comune di Cernusco sul Naviglio"
PROGRAM = "Ripartire"

# (key, name): the municipality's social-policy office and the three partners, the
# default providers of the plan's supports.
ORGANISATIONS: tuple[tuple[str, str], ...] = (
    ("comune", "Comune di Cernusco sul Naviglio – Ufficio Politiche sociali"),
    ("csl", "CS&L Consorzio sociale"),
    ("farsi_prossimo", "Associazione Farsi Prossimo Cernusco"),
    ("cardinal_martini", "Fondazione Centro per la Famiglia Cardinal Martini ONLUS"),
)
FUNDERS: tuple[str, ...] = ("Fondazione Cariplo", "Banco dell'energia onlus")


def organisation_name(key: str) -> str:
    """The name of organisation `key` (the key itself for one no longer listed)."""
    return dict(ORGANISATIONS).get(key, key)


# What a citizen brings to the interview (SPEC J2): msgids, translated where shown (the
# booking card on Telegram, its calendar file, the staff intake's result page).
WHAT_TO_BRING: tuple[str, ...] = (
    N_("an identity document"),
    N_("your fiscal code or health card (tessera sanitaria)"),
    N_("your ISEE, if you have one"),
    N_("the dismissal letter, or the closure of your VAT number"),
)
