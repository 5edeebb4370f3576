"""The instructor's path: nbgrader releases every part without answers, grades from small inputs.

`companion.grading` runs nbgrader with the course's `nbgrader_config.py` in a temporary course
folder; nothing is written into the repository.
"""

import copy
import re
from pathlib import Path

import nbformat
import pytest
from course_pages import region_lines

from companion import grading
from companion.exercises import expect_error
from companion.grading import nbgrader_metadata as meta

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(ROOT.glob("book/part*/[0-9][0-9]_*.ipynb"))
SOLUTION_TEXT = re.compile(r"BEGIN SOLUTION|END SOLUTION|HIDDEN TESTS")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    return grading.release(course)


def released_notebook(released, chapter):
    path = released / chapter.parent.name / chapter.name
    assert path.is_file(), f"{chapter.relative_to(ROOT)} was not released"
    return nbformat.read(path, as_version=4)


def test_release_holds_every_chapter_and_no_source_file(released):
    files = sorted(p.relative_to(released).as_posix() for p in released.rglob("*") if p.is_file())
    assert files == sorted(f"{c.parent.name}/{c.name}" for c in CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_release_has_no_solution_and_no_hidden_test(released, chapter):
    source = nbformat.read(chapter, as_version=4)
    student = released_notebook(released, chapter)
    text = "\n".join(c.source for c in student.cells)
    assert not SOLUTION_TEXT.search(text), f"{chapter.name}: delimiters left in the release"
    released_lines = {line.strip() for line in text.split("\n")}
    # Lines that the chapter also shows outside any answer or hidden test may be in the release.
    public = set(re.sub(r"### BEGIN (SOLUTION|HIDDEN TESTS).*?### END (SOLUTION|HIDDEN TESTS)", "",
                        "\n".join(c.source for c in source.cells), flags=re.S).split("\n"))
    public = {line.strip() for line in public}
    for cell in source.cells:
        if meta(cell).get("solution"):
            for line in region_lines(cell.source, "BEGIN SOLUTION", "END SOLUTION"):
                if len(line.strip()) > 20 and not line.strip().startswith(("#", ":::")) and line.strip() not in public:
                    assert line.strip() not in released_lines, f"{chapter.name}: solution line released: {line.strip()}"
        for line in region_lines(cell.source):
            if len(line.strip()) > 20 and not line.strip().startswith("#") and line.strip() not in public:
                assert line.strip() not in released_lines, f"{chapter.name}: hidden test released: {line.strip()}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_release_keeps_the_chapter_before_its_exercises(released, chapter):
    """Up to the exercises the student's notebook is the chapter nbval runs: it executes as the chapter does."""
    source = nbformat.read(chapter, as_version=4)
    student = released_notebook(released, chapter)
    start = grading.exercises_start(source)
    assert grading.exercises_start(student) == start
    assert [(c.cell_type, c.source) for c in student.cells[:start]] == [(c.cell_type, c.source) for c in source.cells[:start]]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_graded_cells_need_only_what_runs_while_grading(released, chapter):
    """In the student's version, with the chapter's computation skipped, every graded cell's names exist."""
    student = released_notebook(released, chapter)
    assert grading.unresolved_names(student) == {}
    source = nbformat.read(chapter, as_version=4)
    graded = [c for c in source.cells if grading.is_graded_check(c)]
    assert len(graded) >= 1, f"{chapter.name}: no autograded check"


def test_instructors_guide_lists_every_exercise():
    guide = (ROOT / "book" / "instructors.md").read_text(encoding="utf-8").lower()
    for chapter in CHAPTERS:
        nb = nbformat.read(chapter, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for kind, title in re.findall(r"^### Exercise \d+\s*(?:—|\()\s*([A-Za-z ]+?)\)?\s*:\s*(.+)$", cell.source, re.M):
                entry = f"{title.strip().lower()} ({kind.split()[0].lower()})"
                assert entry in guide, f"book/instructors.md does not list {chapter.stem}'s exercise: {entry}"


# --------------------------------------------------------------------------- small notebooks


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    for kind, source, extra in cells:
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source)
        cell.metadata.update(extra)
        nb.cells.append(cell)
    return nb


GRADED = {"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "ex1-check", "points": 1}}
SOLUTION = {"nbgrader": {"grade": False, "solution": True, "locked": False, "grade_id": "ex1-solution"}}


def small_chapter(keep_tag=True):
    return notebook(
        ("code", "%pip install something", {}),
        ("code", "import numpy as np", {"tags": [grading.KEEP_TAG]} if keep_tag else {}),
        ("code", "model = train_for_minutes()", {}),
        ("markdown", "## Exercises", {}),
        ("code", "def double(x):\n    return 2 * x", SOLUTION),
        ("code", "assert np.allclose(double(np.ones(2)), 2)", GRADED),
    )


def test_grading_view_keeps_setup_tagged_cells_and_exercises():
    nb = small_chapter()
    view = grading.grading_view(nb)
    assert [c.source for c in view.cells] == [
        "%pip install something", "import numpy as np", grading.SKIPPED, "## Exercises",
        "def double(x):\n    return 2 * x", "assert np.allclose(double(np.ones(2)), 2)",
    ]
    assert nb.cells[2].source == "model = train_for_minutes()"  # the notebook itself is untouched


def test_unresolved_names_finds_what_grading_would_not_define():
    assert grading.unresolved_names(small_chapter()) == {}
    assert grading.unresolved_names(small_chapter(keep_tag=False)) == {"ex1-check": {"np"}}
    stubbed = small_chapter()
    stubbed.cells[4].source = "# YOUR CODE HERE\nraise NotImplementedError()"  # a solution that defined `double`
    assert grading.unresolved_names(stubbed) == {"ex1-check": {"double"}}


def test_names_defined_and_read():
    source = "import numpy as np\nfrom a import b as c\nfor i in range(3):\n    total = i\ndef f(x):\n    y = x\n    return y + z\n"
    assert grading.names_defined(source) == {"np", "c", "i", "total", "f"}
    assert grading.names_read(source) == {"z"}


def test_a_submission_without_its_exercises_heading_is_executed_whole():
    nb = small_chapter()
    nb.cells[3].source = "## My answers"  # the student renamed the heading
    view, _ = grading.SkipChapterWhileGrading().preprocess(nb, {})
    assert [c.source for c in view.cells] == [c.source for c in nb.cells]


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="Exercises"):
        grading.exercises_start(notebook(("code", "x = 1", {})))
    with pytest.raises(ValueError, match="submissions"):
        grading.grade(tmp_path)
    (tmp_path / "ann" / "part9_unknown").mkdir(parents=True)
    (tmp_path / "ann" / "part9_unknown" / "01_x.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="unknown parts"):
        grading.grade(tmp_path)
    with pytest.raises(ValueError, match="rows"):
        grading.write_grades_csv([], tmp_path / "g.csv")


# --------------------------------------------------------------------------- grading submissions

CHAPTER = ROOT / "book" / "part2_training" / "05_gradient_clipping.ipynb"
WRONG = "def clip_global_norm(grads, max_norm):\n    return [g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads]\n"


def test_autograde_stub_reference_and_wrong_answers(released, tmp_path):
    """A stub gets 0, the reference solution full marks, a wrong answer the check's explanation."""
    course = released.parent
    student = released_notebook(released, CHAPTER)
    reference = {meta(c)["grade_id"]: c.source for c in nbformat.read(CHAPTER, as_version=4).cells if meta(c).get("solution")}

    def filled(answers):
        nb = copy.deepcopy(student)
        for cell in nb.cells:
            if meta(cell).get("solution") and meta(cell)["grade_id"] in answers:
                cell.source = answers[meta(cell)["grade_id"]]
        return nb

    submissions = tmp_path / "submitted"
    for name, nb in [("stub", student), ("reference", filled(reference)), ("wrong", filled({"clip-ex1-solution": WRONG}))]:
        folder = submissions / name / "part2_training"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / CHAPTER.name)
    csv_path = grading.grade(submissions, course, tmp_path / "grades.csv")
    rows = {(r["student"], r["exercise"]): r for r in grading.grades_table(course) if r["notebook"] == CHAPTER.stem}
    assert csv_path.read_text().startswith("student,assignment,notebook,exercise,score,max_score")
    assert grading.export(course, tmp_path / "again.csv").read_text() == csv_path.read_text()  # nothing re-run

    assert rows[("reference", "clip-ex1-check")]["score"] == rows[("reference", "clip-ex1-check")]["max_score"] == 1
    assert rows[("reference", "clip-ex1-check")]["feedback"] == ""
    assert rows[("reference", "clip-ex4-answer")]["needs_manual_grade"] is True  # a written answer: read by a person
    assert rows[("stub", "clip-ex1-check")]["score"] == 0
    assert rows[("stub", "clip-ex1-check")]["feedback"].startswith("NotImplementedError")
    wrong = rows[("wrong", "clip-ex1-check")]
    assert wrong["score"] == 0 and wrong["feedback"].startswith("AssertionError: the clipped gradients differ")
    assert wrong["feedback_file"] and (course / wrong["feedback_file"]).is_file()


def test_expect_error_explains_each_way_a_bad_input_check_can_fail():
    def strict(decay):
        if not 0 <= decay < 1:
            raise ValueError(f"Invalid decay: {decay} (must be in [0, 1))")
        return decay

    raised = expect_error(lambda: strict(1.5), ValueError, "decay", when="strict(1.5)")
    assert isinstance(raised, ValueError)
    expect_error(lambda: strict("x"), (ValueError, TypeError))  # '<=' between str and int: a TypeError
    with pytest.raises(AssertionError, match=r"strict\(0.5\) should raise ValueError naming `decay`, but raised nothing"):
        expect_error(lambda: strict(0.5), ValueError, "decay", when="strict(0.5)")
    with pytest.raises(AssertionError, match="message must name `momentum`"):
        expect_error(lambda: strict(2.0), ValueError, "momentum")
    with pytest.raises(AssertionError, match="should raise ValueError, but raised ZeroDivisionError"):
        expect_error(lambda: 1 / 0, ValueError)
    with pytest.raises(AssertionError, match="must name `x`"):
        expect_error(lambda: strict(3), ValueError, "x")  # 'x' inside a word does not count
    with pytest.raises(TypeError, match="error must be"):
        expect_error(lambda: None, "ValueError")
