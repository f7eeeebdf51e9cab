"""Students' copies: each lesson without its worked solutions.

A solution is a cell tagged `solution` (its markdown heading and its code); the copy drops
those cells with their outputs and keeps everything else, the exercises included. Each copy
is written atomically into the output folder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from convscope.core.files import write_text_atomically
from convscope.course.slides import is_solution_cell


def student_copy(notebook: dict) -> dict:
    """A copy of `notebook` (nbformat JSON) without its solution cells."""
    kept = copy.deepcopy(notebook)
    kept["cells"] = [cell for cell in kept["cells"] if not is_solution_cell(cell)]
    return kept


def write_student_copies(notebooks: list[Path], out: Path) -> list[Path]:
    """Write each notebook's students' copy into `out` under the same name.

    Returns:
        The paths written, in the order given.
    """
    written = []
    for path in notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        text = json.dumps(student_copy(notebook), indent=1, ensure_ascii=False) + "\n"
        written.append(write_text_atomically(Path(out) / path.name, text))
    return written
