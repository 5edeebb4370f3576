"""nbgrader's configuration for the course: each part of the book is an assignment.

The chapter notebooks in ``book/<part>/`` are nbgrader's source versions (their jupytext ``.py``
twins are ignored). From the repository root:

    make release                      # student versions of every part in release/<part>/
    make grade SUBMISSIONS=<folder>   # <folder>/<student>/<part>/<chapter>.ipynb -> grades.csv + feedback/

or nbgrader's own commands, part by part (``nbgrader generate_assignment part2_training``,
``nbgrader autograde part2_training``, ``nbgrader generate_feedback part2_training``). While
grading, a chapter's own computation is not re-run: only the setup cell, the cells tagged
``keep-when-grading`` and the exercises are executed (``companion.grading``), so a submission is
graded in seconds, not in the minutes its chapter takes.
"""

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    Execute,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from companion.grading import SkipChapterWhileGrading

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "book"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "__pycache__", "*.pyc", "*.py", "_ext", "runs", "feedback"]

# Grading runs the exercises (seconds); a cell may still train a small model in a student's answer.
c.Execute.timeout = 300
c.Execute.startup_timeout = 120
c.Autograde.autograde_preprocessors = [
    SkipChapterWhileGrading,
    Execute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
