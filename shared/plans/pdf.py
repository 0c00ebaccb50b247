"""The plan as a printable A4 PDF, laid out from a `PlanDocument` (every text already translated).

Nothing here chooses words: headings, labels and values all come from the document, so
the renderer serves every language the document does. The fonts are Titillium Web
(`fonts/`, OFL), embedded as subsets: accents and € print on any machine.

Blocks are kept together by measuring them first (a short text's width, a long one's
lines from a dry run) and breaking the page before them, rather than with fpdf2's
`unbreakable()`, which deep-copies the whole document twice per block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, MethodReturnValue, XPos, YPos

from shared.plans.document import PlanDocument, SupportBlock

FONTS = Path(__file__).with_name("fonts")
FAMILY = "Titillium"
FONT_FILES = (
    ("", "TitilliumWeb-Regular.ttf"),
    ("B", "TitilliumWeb-Bold.ttf"),
    ("I", "TitilliumWeb-Italic.ttf"),
)

# Millimetres and points.
MARGIN = 18.0
TOP = 12.0
BODY_TOP = 30.0
BOTTOM = 20.0
LINE = 5.0
SMALL_LINE = 3.8
BODY = 10.0
SMALL = 7.5
LABEL_WIDTH = 46.0
SIGNATURE_SPACE = 14.0
GREY = 90
RULE_GREY = 170

# fpdf2 replaces its page-count alias in every text it prints, so the default "{nb}"
# would turn a "{nb}" typed into a plan into a number. Private-use characters are never
# typed; three of them reserve room for up to three digits.
TOTAL_PAGES = "\ue000\ue000\ue000"


class _PlanPDF(FPDF):
    """An A4 page with the program's header and the plan's footer on every page."""

    def __init__(self, document: PlanDocument) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.document = document
        for style, name in FONT_FILES:
            self.add_font(FAMILY, style, fname=FONTS / name)
        self.alias_nb_pages(TOTAL_PAGES, align=Align.L)
        self.set_margins(MARGIN, TOP, MARGIN)
        self.set_auto_page_break(auto=True, margin=BOTTOM)
        self.c_margin = 0
        self.set_draw_color(RULE_GREY)
        self.set_line_width(0.2)

    def header(self) -> None:
        document = self.document
        self.set_y(TOP)
        self.set_text_color(0)
        self.set_font(FAMILY, "B", 11)
        self.cell(self.epw / 2, 5, document.program, new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.set_font(FAMILY, "", 9)
        self.cell(self.epw / 2, 5, document.municipality, align=Align.R)
        self.ln(5.5)
        self.set_font(FAMILY, "", SMALL)
        self.set_text_color(GREY)
        partners = " · ".join(document.partners)
        if self.get_string_width(partners) <= self.epw:  # a cell: no line breaking per page
            self.cell(0, SMALL_LINE, partners, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            self.multi_cell(
                0, SMALL_LINE, partners, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
        self.ln(1.2)
        self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
        self.set_text_color(0)
        self.set_y(max(self.y + 4, BODY_TOP))

    def footer(self) -> None:
        self.set_y(-BOTTOM + 6)
        self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
        self.ln(1.5)
        self.set_font(FAMILY, "", SMALL)
        self.set_text_color(GREY)
        half = self.epw / 2
        self.cell(half, SMALL_LINE, self.document.version_line, new_x=XPos.RIGHT)
        self.cell(half, SMALL_LINE, f"{self.page_no()}/{TOTAL_PAGES}", align=Align.R)
        self.set_text_color(0)

    # --- measuring -----------------------------------------------------------------------

    def lines(self, text: str, width: float) -> int:
        """How many lines `text` takes in a column `width` wide, in the current font."""
        if not text:
            return 1
        if "\n" not in text and self.get_string_width(text) <= width:
            return 1
        broken = self.multi_cell(width, LINE, text, dry_run=True, output=MethodReturnValue.LINES)
        assert isinstance(broken, list)
        return max(len(broken), 1)

    def keep(self, height: float) -> None:
        """Start a new page unless `height` more millimetres fit on this one."""
        if self.will_page_break(height):
            self.add_page()

    # --- writing -------------------------------------------------------------------------

    def paragraph(
        self, text: str, *, style: str = "", size: float = BODY, height: float = LINE
    ) -> None:
        self.set_font(FAMILY, style, size)
        self.multi_cell(0, height, text, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str, *, following: float = 2 * LINE) -> None:
        """A section heading, never left alone at the foot of a page."""
        self.ln(3)
        self.keep(7 + following)
        self.set_font(FAMILY, "B", 12)
        self.cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.line(self.l_margin, self.y, self.w - self.r_margin, self.y)
        self.ln(1.5)

    def measured_rows(
        self, rows: Sequence[tuple[str, str]], bold_values: frozenset[str] = frozenset()
    ) -> list[tuple[str, str, float]]:
        """(label, value, height) of two-column rows."""
        value_width = self.epw - LABEL_WIDTH
        measured = []
        for label, value in rows:
            self.set_font(FAMILY, "B", BODY)
            label_lines = self.lines(label, LABEL_WIDTH - 2)
            self.set_font(FAMILY, "B" if label in bold_values else "", BODY)
            measured.append((label, value, LINE * max(label_lines, self.lines(value, value_width))))
        return measured

    def rows(
        self, rows: Sequence[tuple[str, str, float]], bold_values: frozenset[str] = frozenset()
    ) -> None:
        """Label and value side by side; a row is never split across two pages."""
        value_width = self.epw - LABEL_WIDTH
        for label, value, height in rows:
            self.keep(height)
            page, top = self.page, self.y
            self.set_font(FAMILY, "B", BODY)
            self.set_text_color(GREY)
            self.multi_cell(
                LABEL_WIDTH - 2, LINE, label, align=Align.L, new_x=XPos.RIGHT, new_y=YPos.TOP
            )
            self.set_text_color(0)
            self.set_font(FAMILY, "B" if label in bold_values else "", BODY)
            self.set_xy(self.l_margin + LABEL_WIDTH, top)
            self.multi_cell(
                value_width, LINE, value, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
            if self.page == page:  # a row taller than a page has already moved on
                self.set_y(top + height)

    def support(self, block: SupportBlock) -> None:
        """One support: its title, then its fields and details as two columns."""
        headings = self.document.headings
        fields = [
            (headings["state"], block.state),
            (headings["responsible"], block.responsible),
            (headings["period"], block.period),
        ]
        if block.amount is not None:
            fields.append((headings["amount"], block.amount))
        if block.fund is not None:
            fields.append((headings["fund"], block.fund))
        bold = frozenset({headings["amount"]})
        rows = self.measured_rows([(k, v) for k, v in fields if v] + list(block.rows), bold)
        title_height = 7.5
        whole = title_height + sum(height for _, _, height in rows) + 3
        # A block that fits on a page is kept whole; a longer one keeps its title with
        # its first rows.
        self.keep(whole if whole <= self.page_break_trigger - BODY_TOP else title_height + 3 * LINE)
        self.set_font(FAMILY, "B", 11)
        self.multi_cell(0, 6, block.title, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1.5)
        self.rows(rows, bold)
        self.ln(3)

    def signatures(self) -> None:
        """The signers side by side, each with a signature and a date line, on one page."""
        document = self.document
        headings = document.headings
        signers = document.signers
        if not signers:
            return
        width = self.epw / len(signers)
        text_width = width - 6
        self.set_font(FAMILY, "B", BODY)
        role_lines = max(self.lines(role, text_width) for role, _ in signers)
        self.set_font(FAMILY, "", BODY)
        name_lines = max(self.lines(name, text_width) for _, name in signers)
        block = LINE * (role_lines + name_lines) + SIGNATURE_SPACE + 2 * LINE + 6
        self.heading(headings["signatures"], following=block)
        top = self.y
        for column, (role, name) in enumerate(signers):
            left = self.l_margin + column * width
            self.set_xy(left, top)
            self.set_font(FAMILY, "B", BODY)
            self.multi_cell(text_width, LINE, role, align=Align.L, new_x=XPos.LEFT, new_y=YPos.NEXT)
            self.set_font(FAMILY, "", BODY)
            self.set_xy(left, top + LINE * role_lines)
            self.multi_cell(
                text_width, LINE, name or " ", align=Align.L, new_x=XPos.LEFT, new_y=YPos.NEXT
            )
            line_y = top + LINE * (role_lines + name_lines) + SIGNATURE_SPACE
            self.set_xy(left, line_y - LINE)
            self.set_font(FAMILY, "", SMALL)
            self.set_text_color(GREY)
            self.cell(text_width, LINE, headings["signature"])
            self.line(left, line_y, left + text_width, line_y)
            self.set_xy(left, line_y + 3)
            self.set_font(FAMILY, "", BODY)
            self.set_text_color(0)
            self.cell(text_width, LINE, f"{headings['date']} ____________________")
        self.set_xy(self.l_margin, top + block - 6)


def _write(pdf: _PlanPDF, document: PlanDocument) -> None:
    headings = document.headings
    pdf.add_page()
    pdf.paragraph(document.title, style="B", size=16, height=8)
    pdf.paragraph(f"{document.version_line} · {document.state}", size=BODY)
    pdf.ln(2)

    pdf.heading(headings["citizen"])
    pdf.paragraph(document.citizen_name, style="B", size=12, height=6)
    details = [d for d in (document.citizen_fiscal_code, document.case_reference) if d]
    pdf.paragraph(" · ".join(details))

    if document.summary:
        pdf.heading(headings["summary"])
        pdf.paragraph(document.summary)

    if document.objectives:
        pdf.heading(headings["objectives"])
        for number, (objective, expected) in enumerate(document.objectives, start=1):
            pdf.keep(2 * LINE)
            pdf.paragraph(f"{number}. {objective}", style="B")
            if expected:
                pdf.paragraph(f"{headings['expected']}: {expected}")
            pdf.ln(1.5)

    if document.commitments:
        pdf.heading(headings["commitments"])
        for what, by_when in document.commitments:
            pdf.keep(LINE)
            pdf.paragraph(f"• {what}" + (f" ({by_when})" if by_when else ""))

    if document.supports:
        pdf.heading(headings["supports"], following=7.5 + 3 * LINE)
        for block in document.supports:
            pdf.support(block)

    if document.team:
        pdf.heading(headings["team"])
        pdf.rows(pdf.measured_rows([(role, who) for who, role in document.team]))

    if document.review_on:
        pdf.heading(headings["review"], following=LINE)
        pdf.paragraph(document.review_on)

    pdf.set_font(FAMILY, "I", SMALL + 1)
    note_lines = math.ceil(pdf.get_string_width(document.privacy_note) / pdf.epw) + 1
    pdf.heading(headings["privacy"], following=note_lines * 4.2)
    pdf.paragraph(document.privacy_note, style="I", size=SMALL + 1, height=4.2)

    pdf.signatures()


def render_plan_pdf(document: PlanDocument, *, dated: date) -> bytes:
    """The plan as an A4 PDF to print and sign; `dated` (the plan's date) is its creation date.

    The same document and date give the same bytes: no clock is read.
    """
    pdf = _PlanPDF(document)
    pdf.set_title(f"{document.title} – {document.case_reference}")
    pdf.set_author(document.municipality)
    pdf.set_subject(document.program)
    pdf.set_creator(document.program)
    pdf.set_lang(document.language)
    pdf.set_creation_date(datetime(dated.year, dated.month, dated.day, tzinfo=UTC))
    _write(pdf, document)
    return bytes(pdf.output())
