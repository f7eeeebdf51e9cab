"""Values a notebook records for machines (papermill runs and the tests), beside it.

`record` writes nothing into the notebook: a lesson's own sentences and printed numbers say
what was measured, and a bookkeeping call leaves no empty output behind. When the notebook is
executed by `convscope run` (or a test), `$CONVSCOPE_RECORDS` names a file beside the executed
notebook, and each record is appended to it as one JSON line; otherwise `record` does nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RECORDS_VARIABLE = "CONVSCOPE_RECORDS"


def records_path(notebook: str | Path) -> Path:
    """The file that holds the records of the executed notebook `notebook`."""
    return Path(notebook).with_suffix(".records.jsonl")


def record(name: str, value: float | int | str | bool | list) -> None:
    """Append `name: value` to the file `$CONVSCOPE_RECORDS` names, if it names one.

    Args:
        name: what was measured, e.g. `"heldout_accuracy"`.
        value: a JSON value; round floats before recording so the value is stable.
    """
    target = os.environ.get(RECORDS_VARIABLE)
    if target:
        with open(target, "a", encoding="utf-8") as lines:
            lines.write(json.dumps({name: value}) + "\n")


def read_records(notebook: str | Path) -> dict[str, object]:
    """Every value `record` stored while the notebook `notebook` was executed, by name (the
    last one where a name was recorded twice); `{}` when nothing was recorded."""
    path = records_path(notebook)
    found: dict[str, object] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            found.update(json.loads(line))
    return found
