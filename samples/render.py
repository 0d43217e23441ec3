"""Render a :class:`~samples.source.SourceDoc` into one file format, reproducibly.

Every renderer pins the timestamps its format embeds (PDF creation date, Office core
properties, ZIP entry times, e-mail boundary), so generating twice gives identical bytes and a
re-sync of regenerated samples finds nothing changed.
"""

from __future__ import annotations

import html
import io
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from samples.source import Node, SourceDoc

FIXED_TIME = datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC)
_ZIP_TIME = (2026, 1, 15, 9, 0, 0)


def render(doc: SourceDoc, out: Path) -> None:
    suffix = Path(doc.output).suffix.lower()
    renderer = _RENDERERS.get(suffix)
    if renderer is None:
        raise ValueError(f"{doc.rel_path}: no renderer for {suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    renderer(doc, out)


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(doc: SourceDoc, out: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_TIME)
    pdf.set_title(_latin1(doc.title))
    pdf.set_author("Norrbrook Instruments")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    sizes = {1: 18, 2: 14, 3: 12}
    for node in doc.nodes:
        if node.kind == "pagebreak":
            pdf.add_page()
        elif node.kind == "heading":
            pdf.ln(4)
            pdf.start_section(_latin1(node.text), level=node.level - 1)
            pdf.set_font("Helvetica", "B", sizes.get(node.level, 12))
            pdf.multi_cell(0, 9, _latin1(node.text), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        elif node.kind == "table":
            pdf.set_font("Helvetica", "", 10)
            with pdf.table() as table:
                for row in node.rows:
                    cells = table.row()
                    for cell in row:
                        cells.cell(_latin1(cell))
            pdf.ln(3)
        else:
            pdf.set_font("Helvetica", "", 11)
            prefix = "- " if node.kind in ("bullet", "numbered") else ""
            pdf.multi_cell(0, 5, _latin1(prefix + node.text), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    pdf.output(str(out))


def render_docx(doc: SourceDoc, out: Path) -> None:
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = doc.title
    props.author = "Norrbrook Instruments"
    props.created = props.modified = props.last_printed = FIXED_TIME.replace(tzinfo=None)
    props.revision = 1
    for node in doc.nodes:
        if node.kind == "heading":
            document.add_heading(node.text, level=min(node.level, 9))
        elif node.kind == "bullet":
            document.add_paragraph(node.text, style="List Bullet")
        elif node.kind == "numbered":
            document.add_paragraph(node.text, style="List Number")
        elif node.kind == "table":
            table = document.add_table(rows=len(node.rows), cols=len(node.rows[0]))
            table.style = "Table Grid"
            for r, row in enumerate(node.rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
        elif node.kind == "para":
            document.add_paragraph(node.text)
    buffer = io.BytesIO()
    document.save(buffer)
    _write_zip_fixed(buffer.getvalue(), out)


def render_pptx(doc: SourceDoc, out: Path) -> None:
    from pptx import Presentation

    prs = Presentation()
    props = prs.core_properties
    props.title = doc.title
    props.author = "Norrbrook Instruments"
    props.created = props.modified = props.last_printed = FIXED_TIME.replace(tzinfo=None)
    props.revision = 1
    slides = _split_slides(doc.nodes)
    for index, (title, body) in enumerate(slides):
        layout = prs.slide_layouts[0 if index == 0 else 1]
        slide = prs.slides.add_slide(layout)
        slide.shapes.title.text = title
        placeholder = slide.placeholders[1]
        frame = placeholder.text_frame
        lines = [n.text for n in body if n.text]
        frame.text = lines[0] if lines else ""
        for line in lines[1:]:
            frame.add_paragraph().text = line
    buffer = io.BytesIO()
    prs.save(buffer)
    _write_zip_fixed(buffer.getvalue(), out)


def _split_slides(nodes: list[Node]) -> list[tuple[str, list[Node]]]:
    slides: list[tuple[str, list[Node]]] = []
    for node in nodes:
        if node.kind == "heading":
            slides.append((node.text, []))
        elif slides:
            slides[-1][1].append(node)
    return slides


def render_xlsx(doc: SourceDoc, out: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.title = doc.title
    wb.properties.creator = "Norrbrook Instruments"
    wb.properties.created = wb.properties.modified = FIXED_TIME.replace(tzinfo=None)
    sheet = None
    for node in doc.nodes:
        if node.kind == "heading":
            sheet = wb.create_sheet(node.text[:31])
        elif node.kind == "table" and sheet is not None:
            for r, row in enumerate(node.rows, start=1):
                for c, cell in enumerate(row, start=1):
                    sheet.cell(row=r, column=c, value=cell)
                    if r == 1:
                        sheet.cell(row=r, column=c).font = Font(bold=True)
    buffer = io.BytesIO()
    wb.save(buffer)
    _write_zip_fixed(buffer.getvalue(), out, fix_core_xml=True)


def render_html(doc: SourceDoc, out: Path) -> None:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>{esc(doc.title)}</title></head>',
        "<body>",
    ]
    open_list: str | None = None
    for node in doc.nodes:
        tag = {"bullet": "ul", "numbered": "ol"}.get(node.kind)
        if open_list and tag != open_list:
            parts.append(f"</{open_list}>")
            open_list = None
        if tag and open_list is None:
            parts.append(f"<{tag}>")
            open_list = tag
        if tag:
            parts.append(f"<li>{esc(node.text)}</li>")
        elif node.kind == "heading":
            parts.append(f"<h{node.level}>{esc(node.text)}</h{node.level}>")
        elif node.kind == "para":
            parts.append(f"<p>{esc(node.text)}</p>")
        elif node.kind == "table":
            head, *rows = node.rows
            parts.append("<table>")
            parts.append("<tr>" + "".join(f"<th>{esc(c)}</th>" for c in head) + "</tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
            parts.append("</table>")
    if open_list:
        parts.append(f"</{open_list}>")
    parts += ["</body>", "</html>", ""]
    out.write_text("\n".join(parts), encoding="utf-8")


def render_md(doc: SourceDoc, out: Path) -> None:
    lines: list[str] = []
    number = 0
    for node in doc.nodes:
        number = number + 1 if node.kind == "numbered" else 0
        if node.kind == "heading":
            lines += ["#" * node.level + " " + node.text, ""]
        elif node.kind == "para":
            lines += [node.text, ""]
        elif node.kind == "bullet":
            lines.append(f"- {node.text}")
        elif node.kind == "numbered":
            lines.append(f"{number}. {node.text}")
        elif node.kind == "table":
            head, *rows = node.rows
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "|".join("---" for _ in head) + "|")
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
    out.write_text(_blank_after_lists(lines), encoding="utf-8")


def _blank_after_lists(lines: list[str]) -> str:
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        is_item = line.startswith("- ") or (line[:1].isdigit() and ". " in line[:4])
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        nxt_item = nxt.startswith("- ") or (nxt[:1].isdigit() and ". " in nxt[:4])
        if is_item and not nxt_item:
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render_eml(doc: SourceDoc, out: Path) -> None:
    meta = doc.meta
    msg = EmailMessage()
    msg["From"] = meta["from"]
    msg["To"] = meta["to"]
    msg["Subject"] = doc.title
    msg["Date"] = meta["date"]
    msg["Message-ID"] = f"<{Path(doc.output).stem}@norrbrook.example>"
    body = "\n\n".join(n.text for n in doc.nodes if n.text)
    msg.set_content(body + "\n")
    attachment = meta.get("attachment")
    if attachment:
        msg.add_attachment(
            "Bergvik workshop, floor 1: 30 hot desks in rows A to C; kitchen by the east door.\n",
            filename=str(attachment),
        )
        msg.set_boundary("norrbrook-sample-boundary")
    out.write_bytes(bytes(msg))


def _write_zip_fixed(data: bytes, out: Path, *, fix_core_xml: bool = False) -> None:
    """Rewrite an OOXML package with fixed entry times (the libraries stamp 'now')."""
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            payload = src.read(item.filename)
            if fix_core_xml and item.filename == "docProps/core.xml":
                payload = _pin_core_dates(payload, stamp)
            info = zipfile.ZipInfo(item.filename, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, payload)


def _pin_core_dates(payload: bytes, stamp: str) -> bytes:
    import re

    text = payload.decode("utf-8")
    for tag in ("dcterms:created", "dcterms:modified"):
        text = re.sub(
            rf"(<{tag}[^>]*>)[^<]*(</{tag}>)", lambda m: f"{m.group(1)}{stamp}{m.group(2)}", text
        )
    return text.encode("utf-8")


_RENDERERS: dict[str, Callable[[SourceDoc, Path], None]] = {
    ".pdf": render_pdf,
    ".docx": render_docx,
    ".pptx": render_pptx,
    ".xlsx": render_xlsx,
    ".html": render_html,
    ".md": render_md,
    ".eml": render_eml,
}
