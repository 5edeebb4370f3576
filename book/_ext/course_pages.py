"""What the online book shows of an exercise: the question and the visible checks, answers folded.

The chapter notebooks are written for nbgrader (solutions between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, hidden tests between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN
TESTS``). Before myst-nb reads (and executes) a notebook for the site, this extension

* drops the hidden tests, delimiters included, from every code cell: they are for grading, and a
  student who reads them knows what is checked;
* drops the solution delimiter lines from code cells (the solution itself stays, in a cell folded
  by its ``hide-input`` tag);
* leaves markdown model answers alone: they sit in a ``{dropdown}`` between HTML comments that carry
  the delimiters, so nbgrader finds them and the page shows a folded "Model answer".

The notebooks in the repository are not changed; ``make test`` runs them whole, hidden tests included.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SOLUTION_DELIMITERS = ("### BEGIN SOLUTION", "### END SOLUTION")


# What a reader must never find on a page: the frameworks' C++ start-up log, progress-bar frames,
# and paths of the machine that built the book (a printed warning carries one). book/conftest.py
# applies it to every cell nbval runs, tests/site to the built pages.
_REPOSITORY = str(Path(__file__).resolve().parents[2])
PAGE_NOISE = {
    "absl start-up log": re.compile(r"All log messages before absl::InitializeLog|^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]", re.M),
    "progress-bar frame": re.compile(r"\d{1,3}%\|[^|\n]*\| *\d"),
    "tqdm warning": re.compile(r"TqdmWarning|IProgress not found"),
    "path of the build machine": re.compile("|".join(re.escape(p) for p in (_REPOSITORY, "site-packages/", "/tmp/ipykernel_"))),
}


def noise_in(text: str) -> list[str]:
    """The kinds of noise found in ``text``, each with the first match."""
    return [f"{kind}: {m.group(0)[:120]!r}" for kind, pattern in PAGE_NOISE.items() if (m := pattern.search(text))]


def page_noise(outputs):
    """The kinds of noise found in a cell's outputs (stream outputs: stdout and stderr)."""
    found = []
    for output in outputs or []:
        if output.get("output_type") != "stream":
            continue
        text = output.get("text", "")
        found += noise_in("".join(text) if isinstance(text, list) else text)
    return found


def _marked(source: str, begin: str, end: str):
    """Each line of ``source`` with whether it lies between ``begin`` and ``end`` (None: a delimiter)."""
    inside = False
    for line in source.split("\n"):
        if begin in line or end in line:
            inside = begin in line
            yield line, None
        else:
            yield line, inside


def region_lines(source: str, begin: str = HIDDEN_BEGIN, end: str = HIDDEN_END) -> list[str]:
    """The lines of ``source`` between delimiter lines (hidden tests by default), delimiters excluded."""
    return [line for line, inside in _marked(source, begin, end) if inside]


def reader_view(source: str) -> str:
    """A code cell's source as the site shows it: no hidden tests, no solution delimiters."""
    kept = [line for line, inside in _marked(source, HIDDEN_BEGIN, HIDDEN_END)
            if inside is False and not any(d in line for d in SOLUTION_DELIMITERS)]
    return "\n".join(kept).rstrip()


# A figure the prose states is either measured, and then glued from the cell that measured it
# ({glue:text}`name`), or it is not measured: a value the code sets, a figure that follows by
# arithmetic from the setup (int8 is 4x smaller than float32), or a quoted constant. A sentence that
# glues a figure may state the bound its assert checks ("more than 3 times"); a quoted figure sits in
# a sentence with a citation ({cite}`key`) or a link to its source; any other is marked {fixed}`90%`
# (rendered as plain text). tests/test_notebooks_policy.py fails on the rest.
MEASURED_FIGURE = re.compile(
    r"(?<![\w.^_{\\])\d[\d,]*(?:\.\d+)?\s*(?:%|x\b|×|times\b|-fold\b|s\b|ms\b|seconds?\b|minutes?\b|points?\b|[KMG]B\b)"
)
_NOT_PROSE = re.compile(
    r"<!-- ### BEGIN SOLUTION -->.*?<!-- ### END SOLUTION -->"  # model answers: the student's own run
    r"|`[^`]*`"  # code, and the text of roles: {glue:text}`name` keeps its {glue:text} marker
    r"|\$\$.*?\$\$|\$[^$]*\$",  # mathematics
    re.S,
)
_SOURCED = ("{glue:", "{cite", "](http")


def unmarked_figures(markdown: str) -> list[str]:
    """Figures in ``markdown`` that look measured (a number with %, x, times, s, points, MB, ...) and
    are neither marked ``{fixed}`` nor in a sentence that glues a figure or cites its source."""
    found = []
    for sentence in re.split(r"(?<=[.!?:;])\s+", _NOT_PROSE.sub(" ", markdown)):
        if not any(marker in sentence for marker in _SOURCED):
            found += [" ".join(m.group(0).split()) for m in MEASURED_FIGURE.finditer(sentence)]
    return found


def _fixed_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{fixed}`90%``: a figure that is set, not measured; shown as plain text."""
    from docutils import nodes

    return [nodes.Text(text)], []


def benchmark_markdown(results: dict | None) -> list[str]:
    """The Results page's benchmark table (MyST lines) from ``make bench``'s ``_build/results.json``."""
    if not results:
        return ["No benchmark results in this build: in a clone of the repository, `make bench` measures them",
                "(up to 45 minutes on a 2-core CPU) and a following `make book` shows them here."]
    device = "a CUDA GPU" if results.get("cuda") else "no GPU"
    lines = [f"Measured on {results['date']}: {results['machine']}, {results['cpus']} CPU cores, {device}, "
             f"PyTorch {results['torch']}.", "",
             "| Benchmark | What it measures | Targets | Minutes |", "|---|---|---|---|"]
    for record in results["benchmarks"]:
        verdict = "met" if record["passed"] else f"**missed** (exit code {record['exit_code']})"
        lines.append(f"| `{record['name']}` | {record['what']} | {verdict} | {record['minutes']:.1f} |")
    return lines


def _load_results(srcdir) -> dict | None:
    import json

    path = Path(srcdir) / "_build" / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _benchmarks_directive():
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class CourseBenchmarks(SphinxDirective):
        """``{course-benchmarks}``: the last ``make bench`` results as a table, each printout folded."""

        def run(self):
            self.env.note_dependency(str(Path(self.env.srcdir) / "_build" / "results.json"))
            import html

            results = _load_results(self.env.srcdir)
            container = nodes.container()
            self.state.nested_parse(StringList(benchmark_markdown(results), source="results.json"),
                                    self.content_offset, container)
            for record in (results or {}).get("benchmarks", []):  # each one's printout, folded
                summary = f"<details><summary><code>{html.escape(record['name'])}</code>: what it printed</summary>"
                container += nodes.raw("", summary, format="html")
                container += nodes.literal_block(record["output"], record["output"].rstrip("\n"))
                container += nodes.raw("", "</details>", format="html")
            return container.children

    return CourseBenchmarks


def _on_source_read(app, docname, source):
    if not app.env.doc2path(docname).endswith(".ipynb"):
        return
    notebook = nbformat.reads(source[0], as_version=4)
    changed = False
    for cell in notebook.cells:
        if cell.cell_type == "code":
            view = reader_view(cell.source)
            changed |= view != cell.source.rstrip()
            cell.source = view
    if changed:
        source[0] = nbformat.writes(notebook)


# MathJax from the site itself, so that the equations render with no network (a classroom, a
# laptop on a train): MathJax 2.7 as packaged on PyPI by jupyter-server-mathjax, copied into
# _static/mathjax. Without that package the site keeps Sphinx's default, MathJax 3 from a CDN.
MATHJAX_CLASSES = "tex2jax_process|mathjax_process|math|output_area"


def _mathjax_files():
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def _serve_mathjax(app, config):
    if _mathjax_files() is None:
        return
    config.mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
    config.mathjax2_config = {
        "tex2jax": {
            "inlineMath": [["\\(", "\\)"]],
            "displayMath": [["\\[", "\\]"]],
            "processRefs": False,
            "processEnvironments": False,
            "processClass": MATHJAX_CLASSES,
            "ignoreClass": "tex2jax_ignore|mathjax_ignore",
        },
        # the fonts that jupyter-server-mathjax ships (as Jupyter's classic notebook used them)
        "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web", "webFont": "STIX-Web", "imageFont": None},
        "messageStyle": "none",
    }


def _copy_mathjax(app, exception):
    files = _mathjax_files()
    if exception is None and files is not None and app.builder.format == "html":
        import shutil

        shutil.copytree(files, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """Each script once: sphinx-thebe may register its inline configuration twice in one build, and
    the second copy's ``const THEBE_JS_URL`` is a SyntaxError in the reader's console."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        name = getattr(script, "filename", script) or ""  # an inline script's file name may be None or ''
        key = (str(name), tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"][:] = kept  # in place: the list is the builder's own


def setup(app):
    app.add_role("fixed", _fixed_role)
    app.add_directive("course-benchmarks", _benchmarks_directive())
    app.connect("source-read", _on_source_read)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=400)  # before a handler that returns a template
    app.connect("config-inited", _serve_mathjax)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
