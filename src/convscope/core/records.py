"""Results a notebook records, so that papermill runs and tests can read them back."""

from __future__ import annotations

import json
from pathlib import Path

METADATA_KEY = "convscope"


def record(name: str, value: float | int | str | bool) -> None:
    """Store `name: value` in an output's metadata for papermill runs and tests to read.

    Nothing shows in the notebook (the output's text is empty): the lesson's own sentences
    and printed numbers say what was measured; the record is for machines.

    Args:
        name: what was measured, e.g. `"heldout_accuracy"`.
        value: a JSON value; round floats before recording so stored outputs stay stable.
    """
    from IPython.display import display

    display(
        {"text/plain": ""},
        raw=True,
        metadata={METADATA_KEY: {name: value}},
    )


def read_records(notebook: str | Path) -> dict[str, object]:
    """Every value `record` stored in an executed notebook file, by name."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    found: dict[str, object] = {}
    for cell in cells:
        for output in cell.get("outputs", []):
            found.update(output.get("metadata", {}).get(METADATA_KEY, {}))
    return found
