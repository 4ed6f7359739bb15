"""The transcript as a PDF a person can print, sized for the card schemes (ReportLab).

A4 pages (within Visa's 8.64 x 14 inch maximum), text only, fonts subset: a case of 50
messages takes well under a megabyte. Files over `[export] pdf_max_pages` (Mastercard: 19
pages of documentation per chargeback) or `pdf_max_bytes` (Visa Resolve Online: 2 MB per
PDF) are cut into parts at page boundaries, each within both limits; page numbers run
across the parts.

Fonts: `[export] pdf_font` when set, else DejaVu Sans when installed (Debian:
fonts-dejavu-core), else Bitstream Vera, which ReportLab ships. A character the font has
no glyph for is printed as "?" and counted; the HTML transcript and the raw messages keep
the text exactly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from gateway.config import Settings
from gateway.export.document import local

DEJAVU_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF", "/usr/share/fonts/dejavu",
               "/usr/local/share/fonts", "/usr/share/fonts/truetype")
MAX_PARAGRAPH_CHARS = 3000


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    glyphs: frozenset[int]
    source: str


def fonts(settings: Settings) -> Fonts:
    """Register the transcript's fonts once per process; returns their names."""
    regular, bold = _font_files(settings)
    name, bold_name = f"DG-{regular.stem}", f"DG-{bold.stem}"
    registered = pdfmetrics.getRegisteredFontNames()
    if name not in registered:
        pdfmetrics.registerFont(TTFont(name, str(regular)))
    if bold_name not in registered:
        pdfmetrics.registerFont(TTFont(bold_name, str(bold)))
    glyphs = frozenset(pdfmetrics.getFont(name).face.charToGlyph)
    return Fonts(name, bold_name, glyphs, str(regular))


def _font_files(settings: Settings) -> tuple[Path, Path]:
    export = settings.export
    if export.pdf_font:
        return export.pdf_font, export.pdf_font_bold or export.pdf_font
    for folder in DEJAVU_DIRS:
        regular = Path(folder) / "DejaVuSans.ttf"
        if regular.is_file():
            bold = Path(folder) / "DejaVuSans-Bold.ttf"
            return regular, bold if bold.is_file() else regular
    shipped = Path(rl_config.__file__).resolve().parent / "fonts"
    return shipped / "Vera.ttf", shipped / "VeraBd.ttf"


@dataclass(frozen=True)
class Pdf:
    parts: tuple[tuple[str, bytes], ...]  # (file name, bytes)
    pages: int
    replaced: int  # characters the font could not show
    font: str


class _Writer:
    """Flowables for one transcript, with characters the font lacks replaced and counted."""

    def __init__(self, fonts_: Fonts) -> None:
        self.fonts = fonts_
        self.replaced = 0
        base = dict(fontName=fonts_.regular, fontSize=8.5, leading=11, splitLongWords=1)
        self.body = ParagraphStyle("body", **base)
        self.small = ParagraphStyle("small", **{**base, "fontSize": 7.5, "leading": 9.5, "textColor": colors.HexColor("#444444")})
        self.head = ParagraphStyle("head", **{**base, "fontName": fonts_.bold, "fontSize": 9, "leading": 12})
        self.h1 = ParagraphStyle("h1", **{**base, "fontName": fonts_.bold, "fontSize": 14, "leading": 18, "spaceAfter": 6})
        self.h2 = ParagraphStyle("h2", **{**base, "fontName": fonts_.bold, "fontSize": 11, "leading": 15,
                                          "spaceBefore": 10, "spaceAfter": 4})

    def clean(self, text) -> str:
        out = []
        for char in str(text if text is not None else ""):
            if char in "\n\t" or ord(char) in self.fonts.glyphs:
                out.append(char)
            else:
                self.replaced += 1
                out.append("?")
        return "".join(out)

    def para(self, text, style=None) -> Paragraph:
        return Paragraph(escape(self.clean(text)).replace("\n", "<br/>"), style or self.body)

    def text_block(self, text: str) -> list:
        """A long text as paragraphs (split at blank lines and every MAX_PARAGRAPH_CHARS)."""
        blocks = []
        for chunk in (text or "").replace("\r\n", "\n").split("\n\n"):
            while chunk:
                blocks.append(self.para(chunk[:MAX_PARAGRAPH_CHARS]))
                chunk = chunk[MAX_PARAGRAPH_CHARS:]
        return blocks

    def table(self, rows: list[list], widths: list[float], header: bool = False) -> Table:
        cells = [[self.para(c, self.small) if not isinstance(c, Paragraph) else c for c in row] for row in rows]
        table = Table(cells, colWidths=widths, repeatRows=1 if header else 0)
        style = [("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#bbbbbb")), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")))
        table.setStyle(TableStyle(style))
        return table


def _story(view: dict, w: _Writer, width: float) -> list:
    o, d, tz = view["o"], view["d"], view["o"]["timezone"]
    at = lambda value: local(datetime.fromisoformat(value), tz) if value else "-"  # noqa: E731
    story = [w.para(f"Dispute case {o['reference']}: {o['subject']}", w.h1),
             w.para(f"Exported {at(o['exported_at'])} by {o['provider']['name']} ({o['software']}). Times in {tz}."
                    + (" Redacted export: the parties' e-mail addresses are hidden." if view["redacted"] else ""),
                    w.small),
             w.para("Summary", w.h2)]
    facts = [["Dispute type", o["dispute_label"] + (f" (usually filed as {o['reason_codes']})" if o["reason_codes"] else "")],
             ["State", o["state"].replace("_", " ") + (f" ({d['closed_reason'].replace('_', ' ')})" if d["closed_reason"] else "")
              + (f". Note: {d['closing_note']}" if d["closing_note"] else "")],
             ["Customer", f"{o['customer']['name']} <{o['customer']['address']}>"],
             ["Merchant", f"{o['merchant']['name']} ({o['merchant']['id']}) <{o['merchant']['address']}>"],
             ["Transaction", f"{o['transaction']['reference']}, {(o['transaction']['date'] or '')[:10]}, "
                             f"{o['transaction']['currency']} {o['transaction']['amount']}"],
             ["Case opened", at(d["opened"])],
             ["Merchant first told", at(d["merchant_first_told"]) + (f" ({d['merchant_first_told_how']})"
                                                                     if d["merchant_first_told_how"] else "")],
             ["First merchant answer", at(d["first_merchant_answer"]) if d["first_merchant_answer"] else "none"],
             ["Reminders to the merchant", "; ".join(at(x) for x in d["merchant_reminders"]) or "none"],
             ["Escalated to staff", f"{at(d['escalated'])} ({(d['escalation_reason'] or '').replace('_', ' ')})"
              if d["escalated"] else "no"],
             ["Closed", at(d["closed"]) if d["closed"] else "open"]]
    story.append(w.table(facts, [45 * mm, width - 45 * mm]))
    story.append(w.para("Evidence found in the correspondence", w.h2))
    labels = view["kind_labels"]
    rows = [["What", "Value", "From", "Where"]] + [
        [labels[e["kind"]] + (f" ({e['qualifier']})" if e["qualifier"] else ""),
         e["value"] + (f" ({e['carrier']})" if e["carrier"] and e["kind"] != "carrier" else ""),
         f"{e['party_role']}, {at(e['at'])}",
         ("message text" if e["source"] == "text" else f"attachment {e['source']}")
         + (f", message #{e['seq']}" if e["seq"] else "")] for e in view["evidence"]]
    story.append(w.table(rows, [35 * mm, 45 * mm, 40 * mm, width - 120 * mm], header=True)
                 if view["evidence"] else w.para("None recognised."))
    story.append(Spacer(1, 4))
    story.append(w.para("Still missing for this dispute type: " + ("; ".join(view["missing_labels"]) or "nothing") + "."))
    story.append(w.para("Transcript", w.h2))
    story += _entries(view, w, at)
    story.append(w.para("Delivery ledger", w.h2))
    rows = [["#", "Sent", "To", "What", "Status", "Smarthost's answer / bounces"]] + [
        [str(r["seq"]), at(r["sent_at"] or r["created_at"]), f"{r['role']} {r['recipient']}", r["kind"].replace("_", " "),
         f"{r['status']} ({r['attempts']})", (r["smtp_answer"] or "") + "".join(
             f"; bounce {b['kind']} {b['status'] or ''} {b['diagnostic'] or ''}" for b in r["bounces"])]
        for r in view["ledger"]]
    story.append(w.table(rows, [8 * mm, 27 * mm, 42 * mm, 30 * mm, 18 * mm, width - 125 * mm], header=True))
    story.append(w.para("Case history (SHA-256 hash chain)", w.h2))
    story.append(w.para(f"Each event's hash covers the one before it: {view['chain']['rule']}.", w.small))
    story.append(w.para(f"Head: {view['chain']['head']}", w.small))
    rows = [["#", "When", "Event", "SHA-256"]] + [[str(e["seq"]), at(e["at"]), e["text"], e["hash"]]
                                                   for e in view["events"]]
    story.append(w.table(rows, [9 * mm, 30 * mm, width - 99 * mm, 60 * mm], header=True))
    return story


def _entries(view: dict, w: _Writer, at) -> list:
    story = []
    for e in view["entries"]:
        if e["type"] == "event":
            story.append(w.para(f"{at(e['at'])} · {e['text']}", w.small))
            continue
        if e["type"] == "message":
            head = f"#{e['seq']} · {at(e['at'])} · from the {e['role']}" + \
                   (f" ({e['kind'].replace('_', ' ')})" if e["kind"] != "human" else "") + \
                   (" · HELD, not relayed" if e["held"] else "")
            meta = [f"From: {e['from']}", f"To: {e['to']}", f"Subject: {e['subject']}",
                    f"Sender check: {e['sender_check'].replace('_', ' ')}"]
            if e["attachments"]:
                meta.append("Attachments: " + ", ".join(e["attachments"]))
            meta += [f"Relayed to {r['recipient']}: {r['status']} {at(r['sent_at']) if r['sent_at'] else ''}"
                     for r in e["relayed"]]
        else:
            head = f"{at(e['at'])} · the gateway to the {e['role']}: {e['label']}"
            meta = [f"Subject: {e['subject']}"] + [
                f"To {r['recipient']}: {r['status']} {at(r['sent_at']) if r['sent_at'] else ''}"
                + "".join(f"; bounced: {b}" for b in r["bounces"]) for r in e["deliveries"]]
        story.append(KeepTogether([Spacer(1, 5), w.para(head, w.head), w.para("\n".join(meta), w.small)]))
        story += w.text_block(e["text"])
    return story


def _canvas_class(footer: str, font: str):
    class NumberedCanvas(pdf_canvas.Canvas):
        """Writes "page i of n" once the number of pages is known."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):  # noqa: N802 - ReportLab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont(font, 7)
                self.setFillColor(colors.HexColor("#555555"))
                self.drawString(15 * mm, 8 * mm, footer)
                self.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas


def render(view: dict, settings: Settings) -> Pdf:
    """The transcript PDF, cut into parts when over the configured limits."""
    registered = fonts(settings)
    writer = _Writer(registered)
    out = io.BytesIO()
    o = view["o"]
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                            bottomMargin=15 * mm, title=f"Case {o['reference']}: transcript",
                            author=o["provider"]["name"], subject=o["subject"], creator=o["software"],
                            pageCompression=1)
    story = _story(view, writer, doc.width)
    footer = writer.clean(f"Case {o['reference']} · transcript · exported {o['exported_at'][:10]}")
    doc.build(story, canvasmaker=_canvas_class(footer, registered.regular))
    data = out.getvalue()
    parts, pages = split(data, max_pages=settings.export.pdf_max_pages, max_bytes=settings.export.pdf_max_bytes)
    return Pdf(parts, pages, writer.replaced, registered.source)


def split(data: bytes, *, max_pages: int, max_bytes: int) -> tuple[tuple[tuple[str, bytes], ...], int]:
    """(file name, bytes) parts of at most `max_pages` pages and `max_bytes` each (a single
    page over `max_bytes` stays one part), and the page count."""
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(io.BytesIO(data))
    total = len(reader.pages)
    if total <= max_pages and len(data) <= max_bytes:
        return (("transcript.pdf", data),), total

    def cut(start: int, end: int) -> list[bytes]:
        writer = PdfWriter()
        for index in range(start, end):
            writer.add_page(reader.pages[index])
        writer.add_metadata({k: v for k, v in (reader.metadata or {}).items() if isinstance(v, str)})
        buffer = io.BytesIO()
        writer.write(buffer)
        chunk = buffer.getvalue()
        if len(chunk) > max_bytes and end - start > 1:
            middle = (start + end) // 2
            return cut(start, middle) + cut(middle, end)
        return [chunk]

    chunks = []
    for start in range(0, total, max_pages):
        chunks += cut(start, min(total, start + max_pages))
    # "transcript1.pdf": within Mastercom's 16 characters, letters and digits, for up to 9 parts
    return tuple((f"transcript{n}.pdf", chunk) for n, chunk in enumerate(chunks, start=1)), total
