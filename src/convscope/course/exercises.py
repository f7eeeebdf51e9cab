"""Exercises that grade themselves, in nbgrader's conventions: the release and the grading.

In a lesson, an exercise is a question (markdown), the student's written answer (a markdown
cell graded by hand, worth 0 points: feedback, not marks), the student's code (an
autograded answer cell: the worked solution between `### BEGIN SOLUTION` and
`### END SOLUTION`) and a check (an autograder test cell worth its points: visible asserts a
student can run, and hidden ones between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`
kept for grading). The committed notebook is the instructor's: nbval executes its solutions
and checks, so every check is proven to pass on the worked solution.

`release` makes the students' copies with nbgrader (`generate_assignment`): each lesson an
assignment, every solution replaced by a stub, hidden tests and outputs removed. `grade`
autogrades a folder of submissions (`<folder>/<student>/<lesson>.ipynb`) against the lessons'
own checks, hidden tests restored, and writes a score table and each student's feedback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from convscope.core.errors import ConvscopeError
from convscope.core.files import write_text_atomically
from convscope.course.slides import is_widget_cell

# A lesson cell may run for minutes on a laptop (the photo net's sanity checks): nbgrader's
# default of 30 s a cell would fail a correct submission.
CELL_TIMEOUT = 900


def _with_own_commands(path: str) -> str:
    """`path` (a PATH) with this Python's command folder first: nbgrader runs the `alembic`
    command to open its gradebook, which a virtual environment that was never activated
    (`.venv/bin/python -m convscope`) does not put on PATH."""
    return os.pathsep.join([str(Path(sys.executable).parent), path])


def _nbgrader(command: str, assignment: str, course: Path, *options: str) -> None:
    """Run one nbgrader command in a process of its own, so that its kernels and event loops
    never meet the caller's, with `_with_own_commands` on PATH.

    Raises:
        ConvscopeError: the command failed; the message ends with nbgrader's own output.
    """
    env = {**os.environ, "PATH": _with_own_commands(os.environ.get("PATH", ""))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbgrader",
            command,
            assignment,
            f"--CourseDirectory.root={course}",
            f"--Execute.timeout={CELL_TIMEOUT}",
            "--force",
            *options,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ConvscopeError(
            f"nbgrader {command} {assignment} failed:\n{(done.stdout + done.stderr)[-3000:]}"
        )


def _prepare_source(notebooks: Sequence[Path], root: Path) -> list[str]:
    """Each lesson as an assignment in the course folder's `source/`. Returns the assignments'
    names."""
    names = []
    for path in notebooks:
        folder = root / "source" / path.stem
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copy(path, folder / path.name)
        names.append(path.stem)
    return names


def release(notebooks: Sequence[Path], out: Path, course: Path) -> list[Path]:
    """The students' copies of `notebooks`, written into `out` under the lessons' names.

    Args:
        course: nbgrader's course folder (its gradebook, `source/` and `release/`), made
            here; `grade` reads the same folder.

    Returns:
        The paths written, in the order given.
    """
    written = []
    for name, path in zip(_prepare_source(notebooks, course), notebooks):
        _nbgrader("generate_assignment", name, course)
        text = (course / "release" / name / path.name).read_text(encoding="utf-8")
        written.append(write_text_atomically(Path(out) / path.name, text))
    return written


@dataclass(frozen=True)
class Result:
    """One student's marks for one lesson: `exercises` maps each check's id to
    `(score, points)`; `failed` names the checks that did not pass, with their error."""

    student: str
    lesson: str
    exercises: dict[str, tuple[float, float]]
    failed: dict[str, str]

    @property
    def score(self) -> float:
        return sum(score for score, _ in self.exercises.values())

    @property
    def points(self) -> float:
        return sum(points for _, points in self.exercises.values())


def _submissions(folder: Path, lessons: dict[str, Path]) -> list[tuple[str, str]]:
    """(student, lesson) of every `<folder>/<student>/<lesson>.ipynb` that names a lesson."""
    found = []
    for student in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        for notebook in sorted(student.glob("*.ipynb")):
            if notebook.stem not in lessons:
                raise ConvscopeError(
                    f"submission {notebook} is not a lesson; the lessons are {', '.join(lessons)}"
                )
            found.append((student.name, notebook.stem))
    if not found:
        raise ConvscopeError(f"submissions folder {folder} holds no <student>/<lesson>.ipynb")
    return found


WIDGET_STAND_IN = "# a widget: not run when grading (it needs a browser, and grades nothing)"


def _without_widgets(notebook: dict) -> dict:
    """`notebook` with each lesson cell that shows a widget replaced by a comment. A widget
    grades nothing, and nbgrader's executor now and then waited forever after a widget cell
    (the kernel idle, its reply sent: jupyter/nbclient#312, seen when grading ran beside other
    tests even without Output-widget mirroring). The exercises' cells are never touched."""
    for cell in notebook["cells"]:
        if is_widget_cell(cell) and "nbgrader" not in cell.get("metadata", {}):
            cell["source"], cell["outputs"] = WIDGET_STAND_IN, []
    return notebook


def _failures(notebook: dict) -> dict[str, str]:
    """Check id -> the last line of its error, for every check cell that raised."""
    failed = {}
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade") or cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = ": ".join(filter(None, (output.get("ename"), output.get("evalue"))))
                failed[meta["grade_id"]] = message
    return failed


def grade(submissions: Path, notebooks: Sequence[Path], course: Path, out: Path) -> list[Result]:
    """Autograde every submission against the lessons' checks, hidden tests included.

    Args:
        submissions: `<student>/<lesson>.ipynb` files, e.g. collected from a hub.
        notebooks: the lessons (the instructor's notebooks, with their checks).
        course: nbgrader's course folder (made here if `release` did not).
        out: written here: `scores.csv` (a row per student and lesson, a column per check)
            and `feedback/<student>.md` (each lesson's marks, each failed check named with
            its error), beside nbgrader's HTML feedback in `feedback/<student>/<lesson>/`.

    Returns:
        One `Result` per submission.
    """
    lessons = {path.stem: Path(path) for path in notebooks}
    found = _submissions(submissions, lessons)
    results = _autograded(submissions, found, lessons, course)
    _write_report(results, course, out)
    return results


def _autograded(submissions: Path, found, lessons: dict[str, Path], course: Path) -> list[Result]:
    for name in sorted({lesson for _, lesson in found}):
        _prepare_source([lessons[name]], course)
        _nbgrader("generate_assignment", name, course)
    results = []
    for student, lesson in found:
        target = course / "submitted" / student / lesson
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        submitted = json.loads((Path(submissions) / student / f"{lesson}.ipynb").read_text("utf-8"))
        text = json.dumps(_without_widgets(submitted), indent=1, ensure_ascii=False)
        write_text_atomically(target / f"{lesson}.ipynb", text)
        _nbgrader("autograde", lesson, course, f"--student={student}")
        _nbgrader("generate_feedback", lesson, course, f"--student={student}")
        graded = json.loads(
            (course / "autograded" / student / lesson / f"{lesson}.ipynb").read_text("utf-8")
        )
        results.append(Result(student, lesson, _marks(course, lesson, student), _failures(graded)))
    return results


def _marks(course: Path, lesson: str, student: str) -> dict[str, tuple[float, float]]:
    """Check id -> (score, points) from nbgrader's gradebook, in the notebook's order."""
    before = os.environ.get("PATH", "")
    os.environ["PATH"] = _with_own_commands(before)  # the gradebook runs `alembic` on opening
    try:
        return _grades(course, lesson, student)
    finally:
        os.environ["PATH"] = before


def _grades(course: Path, lesson: str, student: str) -> dict[str, tuple[float, float]]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(lesson, lesson, student)
        except MissingEntry as error:
            raise ConvscopeError(f"no grades for {student}'s {lesson}") from error
        return {
            grade.name: (float(grade.score), float(grade.max_score))
            for grade in notebook.grades
            if grade.max_score > 0
        }


def _write_report(results: list[Result], course: Path, out: Path) -> None:
    out = Path(out)
    checks = sorted({check for result in results for check in result.exercises})
    rows = [["student", "lesson", *checks, "score", "points"]]
    for r in results:
        marks = [r.exercises.get(check, ("", ""))[0] for check in checks]
        rows.append([r.student, r.lesson, *marks, r.score, r.points])
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows(rows)
    write_text_atomically(out / "scores.csv", table.getvalue())
    for student in sorted({r.student for r in results}):
        text = [f"# Feedback for {student}", ""]
        for r in (r for r in results if r.student == student):
            text.append(f"## {r.lesson}: {r.score:g} of {r.points:g} points")
            for check, (score, points) in r.exercises.items():
                verdict = "passed" if check not in r.failed else f"failed: {r.failed[check]}"
                text.append(f"- {check}: {score:g} of {points:g} ({verdict})")
            text.append("")
        write_text_atomically(out / "feedback" / f"{student}.md", "\n".join(text))
        html = course / "feedback" / student
        if html.is_dir():
            shutil.copytree(html, out / "feedback" / student, dirs_exist_ok=True)
