"""The older form of a worked solution: cells tagged `solution`, dropped from students' copies.

A lesson whose exercises are not yet in nbgrader's form (`course.exercises`) keeps its worked
solutions in cells tagged `solution` (a markdown heading and its code). `student_copy` drops
them, with their outputs, before nbgrader makes the release.
"""

from __future__ import annotations

import copy

from convscope.course.slides import is_solution_cell


def student_copy(notebook: dict) -> dict:
    """A copy of `notebook` (nbformat JSON) without its `solution`-tagged cells."""
    kept = copy.deepcopy(notebook)
    kept["cells"] = [cell for cell in kept["cells"] if not is_solution_cell(cell)]
    return kept
