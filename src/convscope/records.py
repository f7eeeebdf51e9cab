"""Results a notebook records, so that papermill runs and tests can read them back."""

from __future__ import annotations

import json
from pathlib import Path

METADATA_KEY = "convscope"


def record(name: str, value: float | int | str | bool) -> None:
    """Show `name = value` in the notebook and store it in the output's metadata.

    Args:
        name: what was measured, e.g. `"heldout_accuracy"`.
        value: a JSON value; round floats before recording so stored outputs stay stable.
    """
    from IPython.display import display

    display(
        {"text/plain": f"{name} = {value!r}"},
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
