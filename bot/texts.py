"""Texts shared by several handlers (msgids in English; translations in shared/i18n)."""

from __future__ import annotations

from shared.i18n import N_, Translator

CONTACTS = N_(
    "📞 331 693 8049 · 349 152 8955\n"
    "✉️ lavorint@cris.it\n"
    "Social policy office, Municipality of Cernusco sul Naviglio."
)

PROGRAM = N_(
    "<b>Ripartire</b> helps people in Cernusco sul Naviglio who lost their job, or had to "
    "close their own business, because of the pandemic crisis.\n\n"
    "1️⃣ You answer a few questions here (about 3 minutes).\n"
    "2️⃣ You book an interview at a helpdesk.\n"
    "3️⃣ Together we build your personal plan: emergency money, help with microcredit, "
    "psychological support, benefits, job search, training internships."
)


def contacts(t: Translator) -> str:
    return t(CONTACTS)
