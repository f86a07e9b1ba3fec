"""A small PDF writer (fpdf2) shared by the termly report, item records and subject-access exports.

Text is set in DejaVu Sans (shipped inside matplotlib), so any script a parent
writes in prints as written; nothing is fetched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import matplotlib
from fpdf import FPDF

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
INK = (33, 37, 41)
MUTED = (90, 98, 106)


class Document:
    """Title, headings, key/value rows, paragraphs and PNG images, A4 portrait."""

    def __init__(self, title: str, *, subtitle: str | None = None) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=UTC))  # stable bytes for the same content
        self.pdf.add_font("DejaVu", "", str(FONT / "DejaVuSans.ttf"))
        self.pdf.add_font("DejaVu", "B", str(FONT / "DejaVuSans-Bold.ttf"))
        self.pdf.set_title(title)
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.add_page()
        self.pdf.set_font("DejaVu", "B", 16)
        self.pdf.set_text_color(*INK)
        self.pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
        if subtitle:
            self.pdf.set_font("DejaVu", "", 10)
            self.pdf.set_text_color(*MUTED)
            self.pdf.multi_cell(0, 5, subtitle, new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(3)

    def heading(self, text: str) -> None:
        self.pdf.ln(2)
        self.pdf.set_font("DejaVu", "B", 12)
        self.pdf.set_text_color(*INK)
        self.pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")

    def rows(self, pairs: list[tuple[str, str]]) -> None:
        """Two columns: a bold label and its value (wrapped)."""
        width = self.pdf.epw
        for label, value in pairs:
            self.pdf.set_font("DejaVu", "B", 9)
            self.pdf.set_text_color(*MUTED)
            y = self.pdf.get_y()
            self.pdf.multi_cell(width * 0.3, 5, label, new_x="RIGHT", new_y="TOP")
            self.pdf.set_font("DejaVu", "", 9)
            self.pdf.set_text_color(*INK)
            self.pdf.multi_cell(width * 0.7, 5, value or "-", new_x="LMARGIN", new_y="NEXT")
            self.pdf.set_y(max(self.pdf.get_y(), y + 5))

    def paragraph(self, text: str, *, muted: bool = False) -> None:
        self.pdf.set_font("DejaVu", "", 9)
        self.pdf.set_text_color(*(MUTED if muted else INK))
        self.pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1)

    def table(self, header: list[str], body: list[list[str]]) -> None:
        self.pdf.set_font("DejaVu", "", 8)
        self.pdf.set_text_color(*INK)
        with self.pdf.table(text_align="LEFT", line_height=4.5) as table:
            row = table.row()
            for cell in header:
                row.cell(cell)
            for values in body:
                row = table.row()
                for cell in values:
                    row.cell(cell)
        self.pdf.ln(2)

    def image(self, png: bytes) -> None:
        import io

        self.pdf.image(io.BytesIO(png), w=self.pdf.epw)
        self.pdf.ln(2)

    def output(self) -> bytes:
        return bytes(self.pdf.output())
