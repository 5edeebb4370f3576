"""The built site as a reader gets it: answers folded, hidden tests absent, the right Colab link.

Run on a built site: ``make check-book`` runs it on its quick build (no execution) and
``make test-site SITE=_build/html`` on the executed book, where each page's outputs are also
checked for noise (the frameworks' C++ start-up log, progress-bar frames, paths of the build
machine). ``COURSE_SITE`` names the folder; without it this file fails rather than pass unseen.
"""

import html
import os
import re
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from course_links import colab_link, repository
from course_pages import noise_in, region_lines

ROOT = Path(__file__).resolve().parents[2]
REPO_URL, BRANCH = repository()
CHAPTERS = sorted(p.relative_to(ROOT) for p in (ROOT / "book").glob("part*/[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def site():
    folder = os.environ.get("COURSE_SITE", "")
    assert folder, "set COURSE_SITE to a built site (make check-book or make test-site do)"
    site = Path(folder)
    assert (site / "index.html").is_file(), f"COURSE_SITE={folder}: no index.html (build the book first)"
    return site


def parse(path):
    """(visible, folded, stderr): the text a reader sees before clicking anything, the text inside
    folded blocks (``<details>`` without its ``<summary>``), and the text of stderr outputs."""
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    for tag in soup(["script", "style"]):
        tag.decompose()
    stderr = [node.get_text(" ") for node in soup.select(".stderr")]
    folded = []
    for details in soup.find_all("details"):
        if details.find_parent("details") is None:
            summaries = [s.get_text(" ") for s in details.find_all("summary")]
            text = details.get_text(" ")
            for summary in summaries:
                text = text.replace(summary, " ", 1)
            folded.append(text)
    for details in soup.find_all("details"):
        for child in list(details.children):
            if getattr(child, "name", None) != "summary":
                child.extract()
    return soup.get_text(" "), " ".join(folded), stderr


def squash(text):
    """Text without white space, with Sphinx's typographic quotes and dashes made plain again."""
    text = html.unescape(text).translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"',
                                                        "\u2013": "--", "\u2014": "---"}))
    return re.sub(r"\s+", "", text)


def solution_cells(notebook):
    return [c for c in notebook.cells if (c.get("metadata", {}).get("nbgrader") or {}).get("solution")]


def hidden_lines(notebook):
    """The non-trivial lines of every hidden-test region."""
    return [line.strip() for cell in notebook.cells for line in region_lines(cell.source)
            if len(line.strip()) > 25 and not line.strip().startswith("#")]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=str)
def test_chapter_page(site, chapter):
    page_path = site / chapter.with_suffix(".html")
    assert page_path.is_file(), f"{page_path} was not built"
    raw = page_path.read_text(encoding="utf-8")
    visible, folded, stderr = parse(page_path)
    visible, folded = squash(visible), squash(folded)
    notebook = nbformat.read(ROOT / chapter, as_version=4)

    for marker in ("BEGINSOLUTION", "ENDSOLUTION", "HIDDENTESTS"):
        assert marker not in visible and marker not in folded, f"{chapter}: '{marker}' shows on the page"

    for line in hidden_lines(notebook):
        assert squash(line) not in squash(raw), f"{chapter}: a hidden test is on the page: {line}"

    solutions = solution_cells(notebook)
    assert solutions, f"{chapter}: no solution cell to check"
    for cell in solutions:
        body = [l for l in cell.source.split("\n") if l.strip() and "SOLUTION" not in l and not l.startswith(":::")]
        if cell.cell_type == "markdown":  # the answer's longest stretch of plain words (math and markup render otherwise)
            probe = max((part for line in body for part in re.split(r"\$[^$]*\$|`[^`]*`|[$*_\\{}\[\]()]", line)), key=len)
        else:
            probe = max(body, key=len)  # the longest line of the solution, as the reader would see it
        target = squash(probe)
        assert target not in visible, f"{chapter}: a solution is visible before a click: {probe!r}"
        assert target in folded, f"{chapter}: a solution is missing from the page's folded blocks: {probe!r}"

    answers = sum(c.cell_type == "markdown" for c in solutions)
    assert raw.count("sd-dropdown") >= answers, f"{chapter}: {answers} model answers but fewer dropdowns"

    colab = colab_link(REPO_URL, BRANCH, chapter.as_posix())
    assert colab in raw, f"{chapter}: the page's Colab link is not {colab}"

    noise = [found for text in stderr for found in noise_in(text)]
    assert not noise, f"{chapter}: the page shows noise from the build:\n  " + "\n  ".join(noise)
