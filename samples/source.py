"""Read the handbook sources in ``samples/content`` (front matter + a small Markdown subset).

Supported: ``#``..``###`` headings, paragraphs, ``- `` bullets, ``1. `` numbered items, tables as
consecutive ``| a | b |`` lines (first row = header), and ``<!-- pagebreak -->`` (PDF only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

CONTENT_DIR = Path(__file__).parent / "content"
_NUMBERED = re.compile(r"^\d+\.\s+")


@dataclass(frozen=True)
class Node:
    kind: Literal["heading", "para", "bullet", "numbered", "table", "pagebreak"]
    text: str = ""
    level: int = 0
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass
class SourceDoc:
    folder: str
    """Output folder relative to the generated root (``hr/confidential``)."""
    meta: dict[str, Any]
    nodes: list[Node] = field(default_factory=list)

    @property
    def output(self) -> str:
        return str(self.meta["output"])

    @property
    def rel_path(self) -> str:
        return f"{self.folder}/{self.output}"

    @property
    def title(self) -> str:
        return str(self.meta["title"])


def load_sources(content_dir: Path = CONTENT_DIR) -> list[SourceDoc]:
    docs = []
    for path in sorted(content_dir.rglob("*.md")):
        folder = path.parent.relative_to(content_dir).as_posix()
        docs.append(parse_source(path.read_text(encoding="utf-8"), folder))
    return docs


def parse_source(text: str, folder: str) -> SourceDoc:
    _, front, body = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    return SourceDoc(folder=folder, meta=meta, nodes=parse_body(body))


def parse_body(body: str) -> list[Node]:
    nodes: list[Node] = []
    para: list[str] = []
    table: list[tuple[str, ...]] = []

    def flush() -> None:
        if para:
            nodes.append(Node("para", " ".join(para)))
            para.clear()
        if table:
            nodes.append(Node("table", rows=tuple(table)))
            table.clear()

    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("|"):
            if para:
                flush()
            table.append(tuple(cell.strip() for cell in line.strip("|").split("|")))
            continue
        if table:
            flush()
        if not line:
            flush()
        elif line == "<!-- pagebreak -->":
            flush()
            nodes.append(Node("pagebreak"))
        elif line.startswith("#"):
            flush()
            hashes = len(line) - len(line.lstrip("#"))
            nodes.append(Node("heading", line[hashes:].strip(), level=hashes))
        elif line.startswith("- "):
            flush()
            nodes.append(Node("bullet", line[2:].strip()))
        elif _NUMBERED.match(line):
            flush()
            nodes.append(Node("numbered", _NUMBERED.sub("", line)))
        else:
            para.append(line)
    flush()
    return nodes
