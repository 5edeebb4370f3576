"""The authoring conventions of CONTRIBUTING.md, checked on every chapter notebook.

The notebooks checked are those that ``_toc.yml`` lists; the table of contents itself is always
checked (every notebook under ``book/`` is listed, every listed file exists). Running the notebooks
is nbval's job (``make test``); this file only reads them.
"""

import ast
import importlib.abc
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from course_links import colab_link, install_requirement, repository
from course_pages import unmarked_figures

import companion
from companion.grading import nbgrader_metadata

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
REPO_URL, BRANCH = repository()

SETUP_CELL = """\
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q {requirement}
    import companion"""

COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
MARKDOWN_ANSWER = re.compile(
    r"^<!-- ### BEGIN SOLUTION -->\n:::\{dropdown\} Model answer\n.+\n:::\n<!-- ### END SOLUTION -->$", re.M | re.S
)
HEAVY_MODULES = {"torch", "tensorflow", "keras", "tf_keras", "gymnasium", "jax"}


# --------------------------------------------------------------------------- table of contents


def toc_files(node):
    """Yield every ``file`` entry of a sphinx-external-toc tree (root, parts, chapters, sections)."""
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                yield node[key]
        for key in ("parts", "chapters", "sections", "subtrees", "entries"):
            for child in node.get(key) or []:
                yield from toc_files(child)
    elif isinstance(node, list):
        for child in node:
            yield from toc_files(child)


def resolve(entry):
    """Return the existing source file of a toc entry (extension optional), or None."""
    path = ROOT / entry
    if path.suffix in (".md", ".ipynb", ".rst") and path.is_file():
        return path
    for suffix in (".ipynb", ".md", ".rst"):
        if path.with_suffix(suffix).is_file():
            return path.with_suffix(suffix)
    return None


TOC_ENTRIES = list(toc_files(TOC))
TOC_NOTEBOOKS = [p for p in map(resolve, TOC_ENTRIES) if p is not None and p.suffix == ".ipynb"]


def rel(path):
    return path.relative_to(ROOT).as_posix()


def book_notebooks():
    return sorted(
        p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts
    )


def test_toc_has_no_duplicates():
    assert TOC_ENTRIES, "_toc.yml lists no file"
    duplicates = sorted({e for e in TOC_ENTRIES if TOC_ENTRIES.count(e) > 1})
    assert not duplicates, f"listed more than once in _toc.yml: {duplicates}"


def test_every_toc_entry_exists():
    missing = [entry for entry in TOC_ENTRIES if resolve(entry) is None]
    assert not missing, f"_toc.yml lists files that do not exist (.md or .ipynb): {missing}"


def test_every_notebook_is_in_the_toc():
    listed = {rel(p) for p in TOC_NOTEBOOKS}
    unlisted = [rel(p) for p in book_notebooks() if rel(p) not in listed]
    assert not unlisted, f"notebooks under book/ missing from _toc.yml: {unlisted}"


def test_every_chapter_source_has_its_notebook():
    sources = sorted(BOOK.glob("*/[0-9][0-9]_*.py"))
    orphans = [rel(p) for p in sources if not p.with_suffix(".ipynb").is_file()]
    assert not orphans, f"jupytext sources without their notebook (run `make notebooks`): {orphans}"


def test_config_repository_url_is_a_github_url():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPO_URL), REPO_URL


# --------------------------------------------------------------------------- companion


def test_import_companion_is_light():
    code = (
        "import json, sys, companion\n"
        "print(json.dumps({'version': companion.__version__, 'modules': sorted(sys.modules)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = sorted(m for m in report["modules"] if m.split(".")[0] in HEAVY_MODULES)
    assert heavy == [], f"`import companion` imports {heavy}"
    assert isinstance(report["version"], str) and report["version"]
    assert isinstance(companion.__version__, str)


# --------------------------------------------------------------------------- notebooks


def declared_extras():
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["project"]["optional-dependencies"])


def expected_setup_cell(extras="torch"):
    return SETUP_CELL.format(requirement=install_requirement(REPO_URL, BRANCH, extras))


def setup_cell_extras(source):
    """The extras a setup cell installs (``dl-optimization-companion[torch,search]`` -> ``"torch,search"``)."""
    import re

    found = re.search(r'"dl-optimization-companion\[([a-z_,]+)\] @', source)
    return found.group(1) if found else "torch"


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def nbgrader(cell):
    """A cell's nbgrader metadata, None when it has none."""
    return nbgrader_metadata(cell) or None


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


class _FakeIPython:
    """Stands in for ``get_ipython()``: records magics instead of running them."""

    def __init__(self, on_pip=None):
        self.calls = []
        self.on_pip = on_pip

    def run_line_magic(self, name, line, *args, **kwargs):
        self.calls.append((name, line))
        if name == "pip" and self.on_pip is not None:
            self.on_pip()


class _BlockCompanion(importlib.abc.MetaPathFinder):
    """A meta-path finder that makes ``import companion`` fail, as on a fresh Colab runtime."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "companion" or fullname.startswith("companion."):
            raise ImportError(f"No module named {fullname!r} (simulated)")
        return None


def run_setup_cell(source, monkeypatch, companion_missing):
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(source)
    if companion_missing:
        blocker = _BlockCompanion()
        for name in [m for m in sys.modules if m == "companion" or m.startswith("companion.")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setattr(sys, "meta_path", [blocker] + sys.meta_path)
        # "Installing" makes the package importable again, so the cell's second import works.
        shell = _FakeIPython(on_pip=lambda: sys.meta_path.remove(blocker))
    else:
        shell = _FakeIPython()
    namespace = {"get_ipython": lambda: shell, "__name__": "__main__"}
    exec(compile(python, "<setup cell>", "exec"), namespace)
    assert "companion" in namespace, "the setup cell does not leave `companion` imported"
    return shell.calls


@pytest.fixture(scope="class", params=TOC_NOTEBOOKS, ids=rel)
def notebook(request):
    path = request.param
    return path, nbformat.read(path, as_version=nbformat.NO_CONVERT)


class TestChapterNotebook:
    # No chapter written yet: no notebook tests at all (the toc tests above still run).
    __test__ = bool(TOC_NOTEBOOKS)

    def test_valid_nbformat_4(self, notebook):
        path, nb = notebook
        assert nb.nbformat == 4, f"{rel(path)} is nbformat {nb.nbformat}"
        nbformat.validate(nb)

    def test_python3_kernel(self, notebook):
        path, nb = notebook
        kernelspec = nb.metadata.get("kernelspec", {})
        assert kernelspec.get("name") == "python3", f"{rel(path)}: kernelspec {kernelspec}"
        assert kernelspec.get("language", "python") == "python"

    def test_outputs_are_stripped(self, notebook):
        path, nb = notebook
        dirty = [
            i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
        ]
        assert not dirty, f"{rel(path)}: cells {dirty} have outputs or execution counts (run `make notebooks`)"

    def test_title_and_colab_badge(self, notebook):
        path, nb = notebook
        first = nb.cells[0]
        assert first.cell_type == "markdown", f"{rel(path)}: the first cell must be markdown (title + badge)"
        assert re.match(r"# \S", first.source), f"{rel(path)}: the first cell must start with a `# ` title"
        link = colab_link(REPO_URL, BRANCH, rel(path))
        badge = f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({link})"
        assert badge in first.source, f"{rel(path)}: the first cell lacks the Colab badge\n  {badge}"

    def test_first_code_cell_is_the_setup_cell(self, notebook):
        path, nb = notebook
        cells = code_cells(nb)
        assert cells, f"{rel(path)} has no code cell"
        extras = setup_cell_extras(cells[0].source)
        unknown = set(extras.split(",")) - declared_extras()
        assert not unknown, f"{rel(path)}: the setup cell installs extras that pyproject.toml does not declare: {unknown}"
        assert cells[0].source.strip() == expected_setup_cell(extras), (
            f"{rel(path)}: the first code cell must be exactly\n{expected_setup_cell(extras)}"
        )
        assert "hide-input" in tags(cells[0]), f"{rel(path)}: the setup cell must be folded in the book (tag hide-input)"

    def test_setup_cell_installs_only_when_companion_is_missing(self, notebook, monkeypatch):
        path, nb = notebook
        source = code_cells(nb)[0].source
        assert run_setup_cell(source, monkeypatch, companion_missing=False) == []
        calls = run_setup_cell(source, monkeypatch, companion_missing=True)
        assert len(calls) == 1 and calls[0][0] == "pip", calls
        assert f"git+{REPO_URL}@" in calls[0][1], calls

    def test_paired_jupytext_source_matches(self, notebook):
        import jupytext

        path, nb = notebook
        source = path.with_suffix(".py")
        assert source.is_file(), f"{rel(path)} has no paired jupytext source {rel(source)}"
        text_nb = jupytext.read(source)
        assert text_nb.metadata.get("jupytext", {}).get("text_representation", {}).get(
            "format_name", "percent"
        ) == "percent", f"{rel(source)} is not in py:percent format"

        def summary(notebook):
            return [
                (c.cell_type, c.source.strip(), sorted(tags(c)), nbgrader(c))
                for c in notebook.cells
            ]

        mine, theirs = summary(jupytext.reads(nbformat.writes(nb), fmt="ipynb")), summary(text_nb)
        assert len(mine) == len(theirs), (
            f"{rel(path)} has {len(mine)} cells, {rel(source)} {len(theirs)}: run `make notebooks`"
        )
        for i, (a, b) in enumerate(zip(mine, theirs)):
            assert a == b, f"cell {i} differs between {rel(path)} and {rel(source)}: run `make notebooks`"

    def test_prose_figures_are_glued_marked_or_cited(self, notebook):
        """A measured figure in the prose is glued from the run; a set or quoted one is marked or cited
        (the rule and its markers: book/_ext/course_pages.py, MEASURED_FIGURE)."""
        path, nb = notebook
        found = [(figure, c.source.split("\n")[0][:60]) for c in nb.cells if c.cell_type == "markdown"
                 for figure in unmarked_figures(c.source)]
        assert not found, (
            f"{rel(path)}: figures neither glued ({{glue:text}}), marked ({{fixed}}) nor cited:\n  "
            + "\n  ".join(f"{figure!r} in the cell starting {start!r}" for figure, start in found)
        )

    def test_exercises_section(self, notebook):
        path, nb = notebook
        starts = [
            i for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and re.search(r"^## Exercises\s*$", c.source, re.M)
        ]
        assert starts, f"{rel(path)} has no `## Exercises` section"
        text = "\n".join(c.source for c in nb.cells[starts[0]:] if c.cell_type == "markdown")
        kinds = re.findall(r"^### Exercise \d+\s*(?:—|\()\s*(Implement it|Derive it|Investigate)\b", text, re.M)
        assert len(kinds) >= 4, f"{rel(path)}: {len(kinds)} exercises, at least four expected"
        assert kinds.count("Implement it") >= 2, f"{rel(path)}: fewer than two *Implement it* exercises"
        assert "Derive it" in kinds, f"{rel(path)}: no *Derive it* exercise"
        assert "Investigate" in kinds, f"{rel(path)}: no *Investigate* exercise"

    def test_nbgrader_solution_and_graded_cells(self, notebook):
        path, nb = notebook
        solutions = [
            c for c in code_cells(nb)
            if (nbgrader(c) or {}).get("solution") is True
            and all(m in c.source for m in SOLUTION_MARKERS)
            and tags(c) & {"hide-input", "hide-cell"}
        ]
        assert solutions, (
            f"{rel(path)}: no nbgrader solution code cell (solution: true, ### BEGIN/END SOLUTION, "
            "tagged hide-input or hide-cell)"
        )
        graded = [
            c for c in code_cells(nb)
            if (nbgrader(c) or {}).get("grade") is True
            and (nbgrader(c) or {}).get("locked") is True
            and re.search(r"^\s*assert\b", c.source, re.M)
        ]
        assert graded, f"{rel(path)}: no graded, locked nbgrader cell with asserts"

    def test_nbgrader_metadata_is_consistent(self, notebook):
        path, nb = notebook
        seen = {}
        for i, cell in enumerate(nb.cells):
            meta = nbgrader(cell)
            if meta is None:
                continue
            where = f"{rel(path)} cell {i}"
            assert meta.get("schema_version") == 3, f"{where}: nbgrader schema_version must be 3"
            grade_id = meta.get("grade_id")
            assert grade_id, f"{where}: nbgrader cell without grade_id"
            assert grade_id not in seen, f"{where}: grade_id {grade_id!r} already used by cell {seen[grade_id]}"
            seen[grade_id] = i
            if meta.get("solution"):
                for marker in SOLUTION_MARKERS:
                    assert marker in cell.source, f"{where}: solution cell without `{marker}`"
                if cell.cell_type == "markdown":
                    # Folded in the book, found by nbgrader (it matches its delimiters as substrings).
                    assert re.search(MARKDOWN_ANSWER, cell.source), (
                        f"{where}: write a model answer as\n<!-- ### BEGIN SOLUTION -->\n:::{{dropdown}} Model answer\n"
                        "...\n:::\n<!-- ### END SOLUTION -->"
                    )
            if cell.cell_type == "markdown":
                assert not re.search(r"^#+ .*(BEGIN|END) (SOLUTION|HIDDEN TESTS)", cell.source, re.M), (
                    f"{where}: a delimiter written as a heading would show in the book and its table of contents"
                )
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                assert meta.get("locked") is True, f"{where}: graded test cell must be locked"
                assert re.search(r"^\s*assert\b", cell.source, re.M), f"{where}: graded cell without assert"
                # A failed check is the student's feedback: a bare AssertionError does not help.
                silent = [node.lineno for node in ast.walk(ast.parse(cell.source))
                          if isinstance(node, ast.Assert) and node.msg is None]
                assert not silent, f"{where}: asserts without a message (lines {silent}) in a graded cell"
