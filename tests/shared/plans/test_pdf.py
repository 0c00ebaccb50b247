"""The printable plan: A4 pages with embedded fonts whose text reads back as the plan says."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, date, datetime

import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, PdfObject, StreamObject
from sqlalchemy.ext.asyncio import AsyncSession

from shared import program
from shared.i18n import Translator
from shared.plans import catalog
from shared.plans import service as plans
from shared.plans.catalog import Kind
from shared.plans.document import PlanDocument, SupportBlock, build_document
from shared.plans.pdf import render_plan_pdf
from shared.settings import Settings
from tests.shared.cases.builders import make_staff, member
from tests.shared.plans.builders import (
    admitted_case,
    complete_input,
    emergency,
    job_search,
    make_fund,
    plan_with,
)

DATED = date(2026, 12, 7)
ROLES = ("Il cittadino", "L'operatore del caso", "Il coordinatore")
HEADINGS = {
    "citizen": "Cittadino", "summary": "Situazione", "objectives": "Obiettivi e risultati attesi",
    "commitments": "Gli impegni del cittadino", "supports": "Sostegni",
    "team": "Équipe del piano", "review": "Prima verifica", "privacy": "Dati personali",
    "signatures": "Firme", "responsible": "Responsabile", "period": "Periodo",
    "amount": "Importo", "fund": "Fondo", "state": "Stato",
    "version": "Versione {version} del {date}", "by": "entro il {date}", "signature": "Firma",
    "date": "Data", "expected": "Risultato atteso",
}  # fmt: skip
PRIVACY = (
    "I dati personali di questo piano sono trattati dal Comune di Cernusco sul Naviglio e dai "
    "suoi partner solo per il programma Ripartire, come spiega l'informativa ricevuta. Sono "
    "conservati per il tempo previsto dalla legge, poi cancellati o resi anonimi: il "
    "cittadino può chiedere di vederli, correggerli o cancellarli."
)
# (title, amount, fund) of the program's six interventions.
SUPPORTS = (
    ("Sostegno economico di emergenza", "1.234,50 €", "Doniamo Energia"),
    ("Accompagnamento all'accesso al microcredito", None, None),
    ("Supporto psicologico", None, None),
    ("Accesso a benefici specifici", None, None),
    ("Accompagnamento nella ricerca attiva del lavoro", None, None),
    ("Tirocinio formativo", "2.400,00 €", "Fondo tirocini Cariplo"),
)


def _document(summary: str = "") -> PlanDocument:
    blocks = tuple(
        SupportBlock(
            title=title,
            state="Proposto",
            responsible="Associazione Farsi Prossimo Cernusco",
            period="4 gennaio 2027 – 31 marzo 2027",
            amount=amount,
            fund=fund,
            rows=(
                ("Per che cosa", "Affitto e utenze: è già in ritardo di due mensilità"),
                ("Pagato a", "Direttamente al proprietario di casa"),
                ("Note", "Più avanti si valuterà la proroga; la figlia frequenterà l'asilo"),
            ),
        )
        for title, amount, fund in SUPPORTS
    )
    return PlanDocument(
        language="it",
        title="Piano di intervento individualizzato",
        program=program.PROGRAM,
        municipality=program.MUNICIPALITY,
        partners=tuple(name for key, name in program.ORGANISATIONS if key != "comune"),
        funders=program.FUNDERS,
        version_line="Versione 2 del 7 dicembre 2026",
        state="Approvato, da firmare",
        citizen_name="Maria Rossi",
        citizen_fiscal_code="RSSMRA80A41F205X",
        case_reference="Caso 42",
        summary=summary
        or "Ha perso il lavoro di magazziniera nel 2021: è sola con la figlia, e l'affitto "
        "di casa è arretrato di due mesi. Sarà seguita dal Centro per l'impiego; più avanti "
        "potrà contare sulla sorella. Caratteri da non perdere: è à ù ò ì é.",
        objectives=(
            ("Trovare un lavoro stabile", "Un contratto entro sei mesi"),
            ("Rientrare dell'affitto arretrato", "Nessuna mensilità arretrata a giugno"),
        ),
        commitments=(
            ("Aggiornare il curriculum", "entro il 20 gennaio 2027"),
            ("Presentarsi ai colloqui del Centro per l'impiego", ""),
        ),
        supports=blocks,
        team=(("Giulia Bianchi, Comune di Cernusco sul Naviglio", "Operatrice del caso"),),
        review_on="15 marzo 2027",
        privacy_note=PRIVACY,
        signers=tuple(zip(ROLES, ("Maria Rossi", "Giulia Bianchi", ""), strict=True)),
        headings=HEADINGS,
    )


def _read(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def _flat(text: str) -> str:
    """Text with every run of spaces, line breaks and no-break spaces as one space."""
    return " ".join(text.replace("\xa0", " ").split())


def _pages(reader: PdfReader) -> list[str]:
    return [_flat(page.extract_text()) for page in reader.pages]


def _dict(value: object) -> DictionaryObject:
    """A PDF dictionary, through its indirect reference if need be."""
    found = value.get_object() if isinstance(value, PdfObject) else value
    assert isinstance(found, DictionaryObject)
    return found


def _fonts(reader: PdfReader) -> dict[str, DictionaryObject]:
    """Base font name → its descriptor, over every page."""
    found = {}
    for page in reader.pages:
        for ref in _dict(_dict(page["/Resources"])["/Font"]).values():
            font = _dict(ref)
            descendant = _dict(font["/DescendantFonts"][0])  # type: ignore[index]
            found[str(font["/BaseFont"])] = _dict(descendant["/FontDescriptor"])
    return found


def test_the_plan_prints_on_a4_with_everything_it_says_and_embedded_fonts() -> None:
    reader = _read(render_plan_pdf(_document(), dated=DATED))
    text = " ".join(_pages(reader))

    assert "Maria Rossi" in text
    assert "RSSMRA80A41F205X" in text
    assert "Caratteri da non perdere: è à ù ò ì é." in text
    for title, _amount, _fund in SUPPORTS:
        assert title in text
    assert "Importo 1.234,50 €" in text
    assert "Importo 2.400,00 €" in text
    assert "Fondo Doniamo Energia" in text
    assert text.count("Responsabile Associazione Farsi Prossimo Cernusco") == 6
    assert "Periodo 4 gennaio 2027 – 31 marzo 2027" in text
    assert "Per che cosa Affitto e utenze: è già in ritardo di due mensilità" in text
    assert "Risultato atteso: Un contratto entro sei mesi" in text
    assert "Aggiornare il curriculum (entro il 20 gennaio 2027)" in text
    assert "Prima verifica 15 marzo 2027" in text
    assert _flat(PRIVACY) in text
    for role in ROLES:
        assert role in text
    assert text.count("Firma") == 3
    assert len(re.findall(r"Data _{10,}", text)) == 3

    # The header on every page: program, municipality, the three partners.
    pages = _pages(reader)
    total = len(pages)
    for number, page in enumerate(pages, start=1):
        assert page.startswith(f"{program.PROGRAM} {program.MUNICIPALITY}")
        for key, name in program.ORGANISATIONS[1:]:
            assert name in page, key
        assert f"Versione 2 del 7 dicembre 2026 {number}/{total}" in page

    for sheet in reader.pages:
        assert float(sheet.mediabox.width) == pytest.approx(595.28, abs=1)
        assert float(sheet.mediabox.height) == pytest.approx(841.89, abs=1)

    fonts = _fonts(reader)
    # Subsets ("ABCDEF+" before the font's name) of the three faces, each with its file.
    assert {name.split("+")[-1] for name in fonts} == {
        "TitilliumWeb",
        "TitilliumWebBold",
        "TitilliumWebItalic",
    }
    for name, descriptor in fonts.items():
        assert "/FontFile2" in descriptor, f"{name} is not embedded"
        embedded = descriptor["/FontFile2"].get_object()
        assert isinstance(embedded, StreamObject)
        assert len(embedded.get_data()) > 1000

    assert reader.metadata is not None
    assert reader.metadata.title == "Piano di intervento individualizzato – Caso 42"
    assert reader.metadata.author == program.MUNICIPALITY
    assert reader.metadata.creation_date == datetime(2026, 12, 7, tzinfo=UTC)
    assert str(_dict(reader.trailer["/Root"])["/Lang"]) == "it"


def test_the_same_plan_and_date_give_the_same_bytes() -> None:
    document = _document()
    assert render_plan_pdf(document, dated=DATED) == render_plan_pdf(document, dated=DATED)


def test_a_long_plan_runs_over_several_pages_with_the_signatures_together() -> None:
    long_summary = " ".join(
        f"Paragrafo {n}: la situazione è descritta con cura, perché ogni dettaglio conta "
        "per capire che cosa servirà nei prossimi mesi e chi se ne occuperà."
        for n in range(1, 161)
    )
    reader = _read(render_plan_pdf(_document(long_summary), dated=DATED))
    pages = _pages(reader)

    assert len(pages) >= 4
    text = " ".join(pages)
    assert "Paragrafo 1:" in text
    assert "Paragrafo 160:" in text
    signed = [n for n, page in enumerate(pages) if "Firme" in page]
    assert len(signed) == 1
    last = pages[signed[0]]
    for role in ROLES:
        assert role in last
    assert len(re.findall(r"Data _{10,}", last)) == 3
    assert last.count("Firma") == 3


def test_the_signature_block_moves_to_the_next_page_rather_than_split() -> None:
    moved = 0
    # One more line of situation each time: the block starts 5 mm lower on its page, so
    # over a page's worth of lines some starts fall too close to the foot to fit it.
    for lines in range(0, 56, 3):
        summary = "\n".join(f"Riga {n} della situazione" for n in range(1, lines + 2))
        pages = _pages(_read(render_plan_pdf(_document(summary), dated=DATED)))
        signed = [n for n, page in enumerate(pages) if "Firme" in page]
        assert len(signed) == 1, lines
        page = pages[signed[0]]
        assert all(role in page for role in ROLES), lines
        assert len(re.findall(r"Data _{10,}", page)) == 3, lines
        body = page.split(program.ORGANISATIONS[-1][1], 1)[1].strip()
        moved += body.startswith("Firme")
    assert moved, "no layout in the sweep put the block at the top of a new page"


def test_a_typed_page_count_alias_prints_as_typed() -> None:
    document = dataclasses.replace(_document(), summary="Scritto così: {nb} e {nb}.")
    text = " ".join(_pages(_read(render_plan_pdf(document, dated=DATED))))
    assert "Scritto così: {nb} e {nb}." in text


async def test_a_stored_plan_prints_through_build_document(
    session: AsyncSession, settings: Settings
) -> None:
    worker = member(await make_staff(session, "giulia"))
    case = await admitted_case(session, settings, worker)
    fund = await make_fund(session, cents=5_000_00)
    data = complete_input(emergency(fund_id=fund.id), job_search())
    await plan_with(session, settings, worker, case, data)
    rows = await plans.get_plan(session=session, case_id=case.id, staff=worker)
    t = Translator("it")
    document = build_document(
        rows=rows,
        citizen_name="Maria Rossi",
        citizen_fiscal_code=None,
        case_id=case.id,
        staff_names={},
        fund_names={fund.id: fund.name},
        case_worker="Giulia Bianchi",
        dated=date(2026, 12, 7),
        t=t,
    )

    text = " ".join(_pages(_read(render_plan_pdf(document, dated=DATED))))

    assert "Maria Rossi" in text
    assert t("Case {n}", n=case.id) in text
    assert "Ha perso il lavoro di magazziniera nel 2021" in text
    assert "Trovare un lavoro stabile" in text
    assert "Aggiornare il curriculum" in text
    for kind in (Kind.EMERGENCY_SUPPORT, Kind.JOB_SEARCH):
        assert t(catalog.intervention(kind).label) in text
    # 300 € a month for three months, from the fund, in Italian format.
    assert "900,00 €" in text
    assert "300,00 €" in text
    assert "Doniamo Energia" in text
    assert "Associazione Farsi Prossimo Cernusco" in text
    assert "7 dicembre 2026" in text
    assert _flat(document.privacy_note) in text
    roles = [role for role, _name in document.signers]
    # Not "Al cittadino", the support's "paid to" option, which once shared the msgid.
    assert roles == ["Cittadino", "Operatore", "Coordinatore"]
    for role in roles:
        assert role in text
    assert "Giulia Bianchi" in text
    assert len(re.findall(rf"{t('Date')} _{{10,}}", text)) == 3
