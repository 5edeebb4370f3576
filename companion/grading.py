"""Grading the chapters' exercises with nbgrader: what runs while grading, and the grades table.

A chapter is a long notebook whose first part trains models for minutes; its exercises are graded
from small inputs. While grading, only what the exercises need should run:

* the setup cell (the first code cell),
* the cells tagged ``keep-when-grading`` (a chapter's imports and the cheap definitions its checks
  use),
* and everything from the ``## Exercises`` heading on.

Every other code cell before the exercises is replaced by a comment in the copy that is executed
(:func:`grading_view`); the student's notebook on disk is not changed. ``nbgrader_config.py`` runs
this as the first step of ``nbgrader autograde`` (:class:`SkipChapterWhileGrading`), and
:func:`unresolved_names` is the check that makes it safe: every name a graded cell reads must be
defined by a cell that still runs, or the grade would be a ``NameError``.

:func:`grades_table` turns nbgrader's gradebook into one row per student, notebook and graded cell,
with the message of the check that failed (what the student reads in the feedback).
"""

from __future__ import annotations

import ast
import builtins
import copy
import csv
import re
from pathlib import Path

__all__ = [
    "KEEP_TAG",
    "SkipChapterWhileGrading",
    "exercises_start",
    "grades_table",
    "grading_view",
    "names_defined",
    "names_read",
    "nbgrader_metadata",
    "python_source",
    "unresolved_names",
    "write_grades_csv",
    "export",
    "grade",
    "release",
]

KEEP_TAG = "keep-when-grading"
SKIPPED = "# (not run while grading: the chapter's own computation; the exercises below do not need it)"
_EXERCISES = re.compile(r"^## Exercises\s*$", re.M)


def nbgrader_metadata(cell) -> dict:
    """A cell's nbgrader metadata (empty for a cell nbgrader does not know)."""
    return cell.get("metadata", {}).get("nbgrader") or {}


def is_graded_check(cell) -> bool:
    """A locked, graded code cell: nbgrader's autograded test."""
    meta = nbgrader_metadata(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def exercises_start(notebook) -> int:
    """Index of the markdown cell that opens the ``## Exercises`` section."""
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and _EXERCISES.search(cell.source):
            return i
    raise ValueError("notebook has no '## Exercises' heading: nothing to grade")


def grading_view(notebook):
    """A copy of ``notebook`` whose chapter cells (before the exercises) are comments, except the
    setup cell and the cells tagged ``keep-when-grading``."""
    view = copy.deepcopy(notebook)
    start = exercises_start(view)
    code = [i for i, c in enumerate(view.cells[:start]) if c.cell_type == "code"]
    for i in code[1:]:  # code[0] is the setup cell
        cell = view.cells[i]
        if KEEP_TAG not in cell.get("metadata", {}).get("tags", []):
            cell.source, cell.outputs, cell.execution_count = SKIPPED, [], None
    return view


def python_source(source: str) -> str:
    """Cell source without IPython magics and shell escapes (which ``ast`` cannot parse)."""
    lines = source.split("\n")
    return "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
                     for line in lines)


def names_defined(source: str) -> set[str]:
    """Names a cell binds at its top level: assignments, imports, ``def``/``class``, loop and ``with`` targets."""
    defined: set[str] = set()

    def visit(node, top):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if top:
                defined.add(node.name)
            return  # a body's own names are local
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            defined.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
        for child in ast.iter_child_nodes(node):
            visit(child, top)

    visit(ast.parse(python_source(source)), True)
    return defined


def names_read(source: str) -> set[str]:
    """Names a cell reads that it does not bind itself anywhere (parameters and locals included)."""
    tree = ast.parse(python_source(source))
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound - set(dir(builtins))


def unresolved_names(notebook) -> dict[str, set[str]]:
    """For each graded cell, the names it reads that no cell run before it while grading defines.

    Run it on the *released* notebook (solutions replaced by stubs): a name that only a solution
    defines is then reported too.
    """
    view = grading_view(notebook)
    defined: set[str] = set()
    missing = {}
    for cell in view.cells:
        if cell.cell_type != "code":
            continue
        if is_graded_check(cell):
            unknown = names_read(cell.source) - defined
            if unknown:
                missing[nbgrader_metadata(cell).get("grade_id", "?")] = unknown
        defined |= names_defined(cell.source)
    return missing


try:  # the preprocessor exists where nbgrader (and so nbconvert) is installed: the instructor's side
    from nbconvert.preprocessors import Preprocessor
except ImportError:  # pragma: no cover - companion without the grading extra
    Preprocessor = None

if Preprocessor is not None:

    class SkipChapterWhileGrading(Preprocessor):
        """nbgrader autograde step: execute :func:`grading_view` of the submission instead of all of it.

        A submission whose ``## Exercises`` heading was edited away is executed whole (slower, but
        graded like the others) rather than stopping the grading of everyone."""

        def preprocess(self, nb, resources):
            try:
                return grading_view(nb), resources
            except ValueError as error:
                self.log.warning("%s: %s; executing the whole notebook", resources.get("unique_key", "submission"), error)
                return nb, resources

else:  # pragma: no cover
    SkipChapterWhileGrading = None


def _failure(notebook, grade_id: str) -> str:
    """The error the graded cell ``grade_id`` raised in an autograded notebook ('' if it passed)."""
    for cell in notebook.cells:
        if nbgrader_metadata(cell).get("grade_id") == grade_id:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    value = str(output.get("evalue", "")).strip()
                    return f"{output.get('ename', 'Error')}: {value}" if value else output.get("ename", "Error")
    return ""


def grades_table(course_dir, db_url: str | None = None) -> list[dict]:
    """One row per student, assignment, notebook and graded cell of nbgrader's gradebook.

    Columns: student, assignment, notebook, exercise (the cell's ``grade_id``), score, max_score,
    needs_manual_grade, submitted (False: nbgrader counted a missing notebook as 0), feedback (the failed check's message, from the autograded notebook) and
    feedback_file (the HTML that ``nbgrader generate_feedback`` wrote, when it exists).
    """
    import nbformat
    from nbgrader.api import Gradebook

    course = Path(course_dir)
    url = db_url or f"sqlite:///{(course / 'gradebook.db').resolve()}"
    rows = []
    with Gradebook(url) as gradebook:
        for assignment in gradebook.assignments:
            for submission in gradebook.assignment_submissions(assignment.name):
                student = submission.student.id
                for notebook in submission.notebooks:
                    autograded = course / "autograded" / student / assignment.name / f"{notebook.name}.ipynb"
                    executed = nbformat.read(autograded, as_version=4) if autograded.is_file() else None
                    feedback = course / "feedback" / student / assignment.name / f"{notebook.name}.html"
                    for grade in sorted(notebook.grades, key=lambda g: g.name):
                        rows.append({
                            "student": student,
                            "assignment": assignment.name,
                            "notebook": notebook.name,
                            "exercise": grade.name,
                            "score": grade.score,
                            "max_score": grade.max_score,
                            "needs_manual_grade": bool(grade.needs_manual_grade),
                            "submitted": executed is not None,
                            "feedback": _failure(executed, grade.name) if executed is not None else "",
                            "feedback_file": str(feedback.relative_to(course)) if feedback.is_file() else "",
                        })
    return sorted(rows, key=lambda r: (r["student"], r["assignment"], r["notebook"], r["exercise"]))


def write_grades_csv(rows: list[dict], path) -> Path:
    """Write :func:`grades_table` rows to ``path`` (CSV, header included)."""
    if not rows:
        raise ValueError("rows is empty: no graded submission in the gradebook")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- the instructor's commands

_REPOSITORY = Path(__file__).resolve().parents[1]


def parts(book_dir=None) -> list[str]:
    """The assignments: the book's part folders that hold chapter notebooks."""
    book = Path(book_dir) if book_dir else _REPOSITORY / "book"
    return sorted(p.name for p in book.glob("part*") if p.is_dir() and any(p.glob("[0-9][0-9]_*.ipynb")))


def _nbgrader(*args, course_dir=None):
    """Run ``nbgrader`` with the course's configuration (from the repository root) on ``course_dir``."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # alembic, jupyter
    command = [sys.executable, "-m", "nbgrader", *args]
    if course_dir is not None:
        command.append(f"--CourseDirectory.root={Path(course_dir).resolve()}")
    result = subprocess.run(command, cwd=_REPOSITORY, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def _course(course_dir):
    """A course folder whose ``book`` is the repository's (linked), for nbgrader to work in."""
    course = Path(course_dir).resolve()
    course.mkdir(parents=True, exist_ok=True)
    book = course / "book"
    if course != _REPOSITORY and not book.exists():
        book.symlink_to(_REPOSITORY / "book", target_is_directory=True)
    return course


def release(course_dir=None, assignments=None) -> Path:
    """Student versions of ``assignments`` (default: every part) in ``<course_dir>/release/``."""
    course = _course(course_dir or _REPOSITORY)
    for part in assignments or parts():
        _nbgrader("generate_assignment", part, "--create", "--force", course_dir=course)
    return course / "release"


def grade(submissions, course_dir=None, out=None) -> Path:
    """Autograde ``submissions`` (``<student>/<part>/<chapter>.ipynb``), write feedback and a CSV of grades."""
    submissions = Path(submissions).resolve()
    found = sorted({p.parent.name for p in submissions.glob("*/*/*.ipynb")})
    if not found:
        raise ValueError(f"submissions={submissions}: no <student>/<part>/<chapter>.ipynb inside")
    unknown = set(found) - set(parts())
    if unknown:
        raise ValueError(f"submissions={submissions}: unknown parts {sorted(unknown)} (the parts are {parts()})")
    course = _course(course_dir or _REPOSITORY)
    for part in found:
        _nbgrader("generate_assignment", part, "--create", "--force", course_dir=course)  # the gradebook's copy
        _nbgrader("autograde", part, "--create", "--force",
                  f"--CourseDirectory.submitted_directory={submissions}", course_dir=course)
        _nbgrader("generate_feedback", part, "--force", course_dir=course)
    return write_grades_csv(grades_table(course), out or course / "grades.csv")


def export(course_dir=None, out=None) -> Path:
    """Write ``grades.csv`` from the gradebook as it stands (after manual grading, say), re-running nothing."""
    course = Path(course_dir or _REPOSITORY).resolve()
    return write_grades_csv(grades_table(course), out or course / "grades.csv")


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m companion.grading", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("release", help="student versions of every part in <course>/release/")
    r.add_argument("--course", default=None, help="course folder (default: the repository)")
    r.add_argument("parts", nargs="*", help="parts to release (default: all)")
    g = commands.add_parser("grade", help="autograde a folder of submissions, write feedback and grades.csv")
    g.add_argument("submissions", help="folder of <student>/<part>/<chapter>.ipynb")
    g.add_argument("--course", default=None, help="course folder (default: the repository)")
    g.add_argument("--out", default=None, help="CSV file (default: <course>/grades.csv)")
    e = commands.add_parser("export", help="grades.csv from the gradebook as it stands (after manual grading)")
    e.add_argument("--course", default=None, help="course folder (default: the repository)")
    e.add_argument("--out", default=None, help="CSV file (default: <course>/grades.csv)")
    args = parser.parse_args(argv)
    if args.command == "release":
        print(f"Student versions in {release(args.course, args.parts or None)}")
    elif args.command == "grade":
        print(f"Grades in {grade(args.submissions, args.course, args.out)}")
    else:
        print(f"Grades in {export(args.course, args.out)}")


if __name__ == "__main__":
    main()
