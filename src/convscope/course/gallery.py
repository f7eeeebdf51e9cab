"""The gallery of a batch of notebook runs: `build/index.html`, one card per run."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from convscope.core.files import write_text_atomically


@dataclass
class RunRecord:
    """What the gallery shows of one run (paths relative to the gallery's folder)."""

    notebook: str
    parameters: dict[str, object]
    status: str  # "ok" or "failed"
    seconds: float
    notebook_file: str
    html_file: str | None = None
    figure_file: str | None = None
    error: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def _card(record: RunRecord) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in record.parameters.items()) or "defaults"
    figure = (
        f'<img src="{html.escape(record.figure_file)}" alt="key figure">'
        if record.figure_file
        else "<p>(no figure)</p>"
    )
    link = record.html_file or record.notebook_file
    opened = f'<a href="{html.escape(link)}">open the run</a>' if link else "no notebook written"
    error = f'<p class="error">{html.escape(record.error)}</p>' if record.error else ""
    return (
        f'<div class="card {record.status}"><h2>{html.escape(record.notebook)}</h2>'
        f"<p>{html.escape(shown)}</p>{figure}"
        f"<p>{record.status}, {record.seconds:.1f} s · {opened}</p>{error}</div>"
    )


def write_gallery(records: list[RunRecord], out: Path) -> Path:
    """Write `out/index.html` for `records`; returns its path."""
    cards = "\n".join(_card(record) for record in records)
    failed = sum(record.status != "ok" for record in records)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>convscope runs</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 1em; }}
.card {{ border: 1px solid #ccc; padding: 0.5em; width: 30em; }}
.card img {{ max-width: 100%; }}
.failed {{ border-color: #c00; }} .error {{ color: #c00; white-space: pre-wrap; }}
</style></head><body>
<h1>convscope runs</h1>
<p>{len(records)} runs, {failed} failed.</p>
<div class="cards">
{cards}
</div></body></html>
"""
    return write_text_atomically(out / "index.html", page)
