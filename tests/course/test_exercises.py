"""Exercises that grade themselves: three kinds of submission through `make grade`'s code.

The worked solutions earn every point, an untouched students' copy earns none (and grading
does not crash), and a submission wrong in one exercise loses exactly that exercise's point,
named in its feedback. The checks' hidden tests decide: the wrong answer passes the visible
ones.
"""

from __future__ import annotations

import csv
import json

import pytest

from convscope.__main__ import main
from convscope.course.runner import select_notebooks

LESSON = select_notebooks(["01"])[0]


def _wrong_in_exercise_2(notebook: dict) -> dict:
    """The worked solutions with one wrong answer: σ = 3 said to approach the identity (a name
    the visible check accepts; only the hidden one knows better)."""
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "exercise-2-code":
            source = "".join(cell["source"])
            assert '"large": "box"' in source
            cell["source"] = source.replace('"large": "box"', '"large": "identity"')
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    course, release, out = root / "course", root / "release", root / "grades"
    assert main(["student", "01", "--out", str(release), "--course", str(course)]) == 0
    worked = json.loads(LESSON.read_text(encoding="utf-8"))
    submissions = {
        "ada": worked,  # the instructor's notebook: the worked solutions
        "ben": json.loads((release / LESSON.name).read_text(encoding="utf-8")),  # untouched
        "cleo": _wrong_in_exercise_2(json.loads(LESSON.read_text(encoding="utf-8"))),
    }
    for student, notebook in submissions.items():
        (root / "in" / student).mkdir(parents=True)
        (root / "in" / student / LESSON.name).write_text(json.dumps(notebook), encoding="utf-8")
    command = ["grade", str(root / "in"), "01", "--out", str(out), "--course", str(course)]
    assert main(command) == 0
    return out


def test_the_score_table_gives_full_none_and_partial_marks(graded):
    rows = list(csv.DictReader((graded / "scores.csv").open(encoding="utf-8")))
    checks = ["exercise-1-check", "exercise-2-check", "exercise-3-check"]
    table = {row["student"]: [float(row[c]) for c in checks] for row in rows}
    assert table == {"ada": [1, 1, 1], "ben": [0, 0, 0], "cleo": [1, 0, 1]}
    assert {row["student"]: (float(row["score"]), float(row["points"])) for row in rows} == {
        "ada": (3, 3),
        "ben": (0, 3),
        "cleo": (2, 3),
    }
    assert {row["lesson"] for row in rows} == {LESSON.stem}


def test_feedback_names_the_exercise_that_failed(graded):
    cleo = (graded / "feedback" / "cleo.md").read_text(encoding="utf-8")
    assert f"## {LESSON.stem}: 2 of 3 points" in cleo
    assert "- exercise-2-check: 0 of 1 (failed: AssertionError" in cleo
    assert "- exercise-1-check: 1 of 1 (passed)" in cleo
    ada = (graded / "feedback" / "ada.md").read_text(encoding="utf-8")
    assert "failed" not in ada and "3 of 3 points" in ada
    ben = (graded / "feedback" / "ben.md").read_text(encoding="utf-8")
    assert ben.count("failed: ") == 3
    # nbgrader's own page per student and lesson, beside ours
    assert (graded / "feedback" / "cleo" / LESSON.stem / f"{LESSON.stem}.html").is_file()


def test_a_submission_that_is_not_a_lesson_is_named(tmp_path, capsys):
    (tmp_path / "in" / "dan").mkdir(parents=True)
    (tmp_path / "in" / "dan" / "homework.ipynb").write_text("{}")
    command = ["grade", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--course"]
    assert main([*command, str(tmp_path / "course")]) == 2
    assert "homework.ipynb is not a lesson; the lessons are 01_designer_filters" in (
        capsys.readouterr().err
    )
