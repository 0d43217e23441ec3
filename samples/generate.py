"""``python -m samples.generate OUT_DIR``: render the Norrbrook handbook into OUT_DIR.

Deterministic: the same sources give byte-identical files, so regenerating the samples before a
sync (as ``make run`` does) leaves the index untouched. Files in OUT_DIR that the generator did
not write are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from samples.render import render
from samples.source import CONTENT_DIR, load_sources

SAMPLES_DIR = Path(__file__).parent
ACCESS_RULES = SAMPLES_DIR / "access-rules.yaml"
DIRECTORY = SAMPLES_DIR / "directory.yaml"
FACTS = SAMPLES_DIR / "facts.yaml"


def generate(out_dir: Path, content_dir: Path = CONTENT_DIR) -> list[Path]:
    """Render every source; returns the written paths (sorted). Unchanged files are not
    rewritten, so their mtime stays put too."""
    written = []
    for doc in load_sources(content_dir):
        target = out_dir / doc.rel_path
        tmp = target.with_name(f".{target.name}.tmp")
        render(doc, tmp)
        if target.exists() and target.read_bytes() == tmp.read_bytes():
            tmp.unlink()
        else:
            tmp.replace(target)
        written.append(target)
    return sorted(written)


def main(
    out_dir: Annotated[Path, typer.Argument(help="Where to write the sample documents.")],
) -> None:
    """Generate the Norrbrook Instruments sample documents."""
    paths = generate(out_dir)
    console = Console()
    for path in paths:
        console.print(f"  {path.relative_to(out_dir)}")
    console.print(f"[green]{len(paths)} sample documents in {out_dir}[/green]")


if __name__ == "__main__":
    typer.run(main)
