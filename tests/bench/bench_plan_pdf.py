"""The printable plan: `render_plan_pdf` of a plan with six interventions, against bare fpdf2.

The call under test lays out a `PlanDocument` (every text already in Italian) as the
A4 PDF a citizen signs: header and footer on every page, headings, two-column support
blocks measured to stay whole, signature blocks kept together, three faces of Titillium
Web embedded as subsets. Its floor, measured in the same run, is the least any fpdf2
rendering of the same text costs: one A4 document, the same regular face, and one plain
`multi_cell` per string of the document, written out.

No database is used: the numbers are the same job on every backend.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date

import fpdf
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from pypdf import PdfReader

from shared import program
from shared.plans.document import PlanDocument, SupportBlock
from shared.plans.pdf import FAMILY, FONT_FILES, FONTS, _PlanPDF, _write, render_plan_pdf
from tests.bench._support import Databases, Options, Stats, table, timed_sync, verdict

TITLE = "Printable plan (PDF)"

# Target.
MAX_TARGET_OVER_FLOOR = 2.0

DATED = date(2026, 12, 7)
HEADINGS = {
    "citizen": "Cittadino", "summary": "Situazione", "objectives": "Obiettivi e risultati attesi",
    "commitments": "Gli impegni del cittadino", "supports": "Sostegni",
    "team": "Équipe del piano", "review": "Prima verifica", "privacy": "Dati personali",
    "signatures": "Firme", "responsible": "Responsabile", "period": "Periodo",
    "amount": "Importo", "fund": "Fondo", "state": "Stato",
    "version": "Versione {version} del {date}", "by": "entro il {date}", "signature": "Firma",
    "date": "Data", "expected": "Risultato atteso",
}  # fmt: skip
PERIOD = "4 gennaio 2027 – 30 giugno 2027"
# The program's six interventions, with details as the catalog prints them.
SUPPORTS = (
    SupportBlock(
        "Sostegno economico di emergenza", "Approvato", "Associazione Farsi Prossimo Cernusco",
        PERIOD, "1.234,50 €", "Doniamo Energia",
        (("Forma del sostegno", "Mensile"), ("Importo mensile (€)", "411,50 €"),
         ("Numero di mesi", "3"), ("Per che cosa", "Affitto, Utenze"),
         ("Pagato a", "Direttamente al proprietario di casa"),
         ("Beneficiario", "Immobiliare Naviglio S.r.l.")),
    ),
    SupportBlock(
        "Accompagnamento all'accesso al microcredito", "Proposto", "CS&L Consorzio sociale",
        PERIOD, None, None,
        (("Importo richiesto (€)", "3.000,00 €"), ("Finalità", "Acquisto di un'auto usata "
          "per raggiungere il lavoro a turni, perché i mezzi pubblici non coprono la notte"),
         ("Istituto", "Banca di Credito Cooperativo")),
    ),
    SupportBlock(
        "Supporto psicologico", "Proposto",
        "Fondazione Centro per la Famiglia Cardinal Martini ONLUS", PERIOD, None, None,
        (("Incontri previsti", "10"), ("Frequenza", "Ogni due settimane"),
         ("Note", "Colloqui individuali; più avanti anche con la figlia, se lo vorrà")),
    ),
    SupportBlock(
        "Accesso a benefici specifici", "Proposto", "Giulia Bianchi", PERIOD, None, None,
        (("Benefici", "Assegno unico universale, Bonus sociale luce e gas"),
         ("Documenti da preparare", "ISEE 2027, contratto d'affitto, buste paga"),),
    ),
    SupportBlock(
        "Accompagnamento nella ricerca attiva del lavoro", "Proposto",
        "CS&L Consorzio sociale", PERIOD, None, None,
        (("Attività", "Curriculum, Orientamento, Preparazione ai colloqui"),
         ("Iscrizione al Centro per l'impiego", "Sì"), ("Settori", "Logistica, vendita")),
    ),
    SupportBlock(
        "Tirocinio formativo", "Proposto", "CS&L Consorzio sociale", PERIOD, "2.400,00 €",
        "Fondo tirocini", (("Ente ospitante", "Cooperativa Il Naviglio"),
         ("Ore settimanali", "20"), ("Indennità mensile (€)", "400,00 €"),
         ("Mesi", "6"), ("Tutor", "Luca Verdi")),
    ),
)  # fmt: skip
SUMMARY = (
    "Ha perso il lavoro di magazziniera nel 2021, quando la ditta ha chiuso il deposito di "
    "Cernusco; da allora ha lavorato solo con contratti brevi. Vive in affitto con la figlia "
    "di 9 anni, che frequenta la scuola primaria: l'affitto è arretrato di due mensilità e "
    "il proprietario ha scritto per chiedere il pagamento entro gennaio. È seguita dai "
    "servizi sociali del Comune dal 2024; non ha debiti oltre all'affitto. Può contare "
    "sulla sorella per la figlia nei pomeriggi, non di più. Cerca un lavoro stabile, anche "
    "a turni, in zona o raggiungibile con i mezzi; ha la patente ma non l'auto."
)


def plan() -> PlanDocument:
    """A plan of six supports as `build_document` makes it, in Italian."""
    return PlanDocument(
        language="it",
        title="Piano di intervento individualizzato",
        program=program.PROGRAM,
        municipality=program.MUNICIPALITY,
        partners=tuple(name for key, name in program.ORGANISATIONS if key != "comune"),
        funders=program.FUNDERS,
        version_line="Versione 3 del 7 dicembre 2026",
        state="Approvato, da firmare",
        citizen_name="Maria Rossi",
        citizen_fiscal_code="RSSMRA80A41F205X",
        case_reference="Caso 1042",
        summary=SUMMARY,
        objectives=(
            ("Trovare un lavoro stabile", "Un contratto di almeno sei mesi entro giugno"),
            ("Rientrare dell'affitto arretrato", "Nessuna mensilità arretrata a marzo"),
            ("Sostenere la figlia nel cambiamento", "La figlia prosegue la scuola serena"),
        ),
        commitments=(
            ("Aggiornare il curriculum con l'orientatore", "entro il 20 gennaio 2027"),
            ("Presentarsi a ogni colloquio proposto", ""),
            ("Consegnare l'ISEE 2027", "entro il 31 gennaio 2027"),
            ("Avvisare l'operatrice di ogni cambiamento di lavoro o di casa", ""),
        ),
        supports=SUPPORTS,
        team=(
            ("Giulia Bianchi, Comune di Cernusco sul Naviglio", "Operatrice del caso"),
            ("Luca Verdi, CS&L Consorzio sociale", "Orientatore"),
            ("Anna Neri, Associazione Farsi Prossimo Cernusco", "Volontaria"),
        ),
        review_on="15 marzo 2027",
        privacy_note=(
            "I dati personali di questo piano sono trattati dal Comune di Cernusco sul "
            "Naviglio e dai suoi partner solo per realizzare il programma Ripartire, come "
            "spiegato nell'informativa ricevuta. Sono conservati per il tempo previsto dalla "
            "legge, poi cancellati o resi anonimi; il cittadino può chiedere di vederli, "
            "correggerli o cancellarli."
        ),
        signers=(
            ("Cittadino", "Maria Rossi"),
            ("Operatore", "Giulia Bianchi"),
            ("Coordinatore", ""),
        ),
        headings=HEADINGS,
    )


def texts(document: PlanDocument) -> list[str]:
    """Every string the plan prints, once each, in reading order."""
    found = [document.program, document.municipality, *document.partners, document.title,
             document.version_line, document.state, document.citizen_name,
             document.citizen_fiscal_code or "", document.case_reference, document.summary]  # fmt: skip
    found += [text for pair in document.objectives for text in pair]
    found += [text for pair in document.commitments for text in pair]
    for block in document.supports:
        found += [block.title, block.state, block.responsible, block.period]
        found += [block.amount or "", block.fund or ""]
        found += [text for pair in block.rows for text in pair]
    found += [text for pair in document.team for text in pair]
    found += [document.review_on or "", document.privacy_note]
    found += [text for pair in document.signers for text in pair]
    found += list(document.headings.values())
    return [text for text in found if text]


# --- the floor and the phases ----------------------------------------------------------


def floor(strings: list[str]) -> bytes:
    """The same text in a bare fpdf2 document: one face, one plain multi_cell per string."""
    pdf = FPDF(format="A4")
    pdf.add_font(FAMILY, "", fname=FONTS / FONT_FILES[0][1])
    pdf.add_page()
    pdf.set_font(FAMILY, "", 10)
    for text in strings:
        pdf.multi_cell(0, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def target_phases(document: PlanDocument) -> tuple[float, float, float]:
    """Seconds of one render split into fonts (the FPDF with its three faces), layout, output."""
    gc.collect()
    start = time.perf_counter()
    pdf = _PlanPDF(document)
    fonts = time.perf_counter()
    _write(pdf, document)
    laid_out = time.perf_counter()
    pdf.output()
    return fonts - start, laid_out - fonts, time.perf_counter() - laid_out


def floor_phases(strings: list[str]) -> tuple[float, float, float]:
    gc.collect()
    start = time.perf_counter()
    pdf = FPDF(format="A4")
    pdf.add_font(FAMILY, "", fname=FONTS / FONT_FILES[0][1])
    fonts = time.perf_counter()
    pdf.add_page()
    pdf.set_font(FAMILY, "", 10)
    for text in strings:
        pdf.multi_cell(0, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    laid_out = time.perf_counter()
    pdf.output()
    return fonts - start, laid_out - fonts, time.perf_counter() - laid_out


def check(document: PlanDocument, strings: list[str]) -> tuple[int, int, int, int]:
    """Pages and bytes of the plan and of the floor, after checking what each prints."""
    rendered = render_plan_pdf(document, dated=DATED)
    if rendered != render_plan_pdf(document, dated=DATED):
        raise AssertionError("two renders of the same plan differ")
    plan_pdf = PdfReader(io.BytesIO(rendered))
    text = " ".join(" ".join(p.extract_text().split()) for p in plan_pdf.pages)
    text = text.replace("\xa0", " ")
    for needed in [document.citizen_name, *(b.title for b in document.supports), "2.400,00 €"]:
        if needed not in text:
            raise AssertionError(f"the plan's PDF does not read back {needed!r}")
    bare = floor(strings)
    floor_pdf = PdfReader(io.BytesIO(bare))
    return len(plan_pdf.pages), len(rendered), len(floor_pdf.pages), len(bare)


def _profile(document: PlanDocument) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        render_plan_pdf(document, dated=DATED)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(14)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start : start + 15])


# --- the benchmark -------------------------------------------------------------------


async def run(databases: Databases, options: Options) -> None:
    document = plan()
    strings = texts(document)
    pages, size, floor_pages, floor_size = check(document, strings)
    print(
        f"fpdf2 {fpdf.__version__}; a plan of {len(document.supports)} supports, "
        f"{len(strings)} strings, {sum(len(s) for s in strings):,} characters "
        f"(no database: the same on every backend)"
    )
    print(
        f"  render_plan_pdf: {pages} pages, {size:,} bytes; floor: {floor_pages} pages, "
        f"{floor_size:,} bytes\n"
    )

    calls: list[tuple[str, Callable[[], object]]] = [
        ("target", lambda: render_plan_pdf(document, dated=DATED)),
        ("floor", lambda: floor(strings)),
    ]
    samples: dict[str, list[float]] = defaultdict(list)
    for repetition in range(options.warmup + options.repetitions):
        keep = repetition >= options.warmup
        shift = repetition % len(calls)  # who goes first rotates
        for name, call in calls[shift:] + calls[:shift]:
            seconds = timed_sync(call)
            if keep:
                samples[name].append(seconds)
        # The phases, apart: the clock calls between them must not touch the target.
        for name, split in (
            ("target", target_phases(document)),
            ("floor", floor_phases(strings)),
        ):
            if keep:
                for phase, seconds in zip(("fonts", "layout", "output"), split, strict=True):
                    samples[f"{name} {phase}"].append(seconds)
    stats = {name: Stats.of(seconds) for name, seconds in samples.items()}

    target, floor_ = stats["target"], stats["floor"]
    print("milliseconds per PDF, median and p90 of", target.samples, "timed runs")
    rows = [
        [name, f"{s.median:.1f}", f"{s.p90:.1f}"]
        for name, s in (("render_plan_pdf", target), ("floor (bare fpdf2)", floor_))
    ]
    print(table(["call", "p50", "p90"], rows))
    print()
    print("where the time goes (medians, ms; timed apart, split by phase):")
    rows = [
        [who]
        + [f"{stats[f'{name} {phase}'].median:.1f}" for phase in ("fonts", "layout", "output")]
        for who, name in (("render_plan_pdf", "target"), ("floor", "floor"))
    ]
    print(table(["", "FPDF + add_font", "layout", "output (subsets, write)"], rows))
    print()
    ratio = target.median / floor_.median
    print(
        f"render_plan_pdf / floor: {ratio:5.2f}  (target <= {MAX_TARGET_OVER_FLOOR:g})"
        f"  {verdict(ratio <= MAX_TARGET_OVER_FLOOR)}"
    )
    if options.profile:
        print()
        print("cProfile of 10 renders (by own time):")
        print(_profile(document))
