"""Every chapter's setup cell installs what the chapter imports, and nothing replaces Colab's frameworks.

A chapter's imports are its own ``import`` statements plus those of the ``companion`` modules it
imports (followed through ``companion``; optional imports left out, see ``companion_imports``). Each third-party module must come
from the package's own dependencies or the extras the setup cell names, directly or as a dependency
of one of them. The ``[all]`` extra holds every other extra.
"""

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

from companion.grading import python_source

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CHAPTERS = sorted(ROOT.glob("book/part*/[0-9][0-9]_*.ipynb"))
PROVIDED_BY_JUPYTER = {"IPython", "ipykernel"}  # every notebook runs in an IPython kernel


def name_of(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def imports(tree, *, top_level_only=False):
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


# Imports that run only when the caller already holds that framework's objects (a Keras tensor
# reaching an optimizer or a clipping function): the chapter that passes them imports the framework.
ONLY_FOR_THEIR_OWN_TENSORS = {"companion/optim/_ops.py": {"keras", "tensorflow"}, "companion/clipping.py": {"keras"},
                              "companion/optim/adafactor.py": {"keras"}}


def companion_imports(module: str) -> set:
    """Every import of the ``companion`` module ``module`` (relative ones resolved), at any depth,
    except optional ones: inside ``try`` blocks that catch ``ImportError``, under an
    ``if ... sys.modules`` test, or listed in ``ONLY_FOR_THEIR_OWN_TENSORS``."""
    parts = module.split(".")
    path = ROOT.joinpath(*parts).with_suffix(".py")
    if not path.is_file():
        path = ROOT.joinpath(*parts, "__init__.py")
    if not path.is_file():
        return set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    source = path.read_text(encoding="utf-8")
    skip = ONLY_FOR_THEIR_OWN_TENSORS.get(path.relative_to(ROOT).as_posix(), set())
    found = set()

    def visit(node):
        if isinstance(node, ast.If) and "sys.modules" in ast.get_source_segment(source, node.test):
            return
        if isinstance(node, ast.Try) and any("ImportError" in ast.dump(h) for h in node.handlers):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.update({base} | {f"{base}.{a.name}" for a in node.names})
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return {name for name in found if name.split(".")[0] not in skip}


def chapter_modules(path):
    """Top-level names of the third-party modules a chapter imports, itself or through companion."""
    nb = nbformat.read(path, as_version=4)
    todo = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            todo |= imports(ast.parse(python_source(cell.source)))
    seen, third = set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name.split(".")[0] == "companion":
            todo |= companion_imports(name)
        else:
            third.add(name.split(".")[0])
    return third - set(sys.stdlib_module_names) - PROVIDED_BY_JUPYTER


def setup_extras(path):
    nb = nbformat.read(path, as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    found = re.search(r"\[([a-z_,]+)\] @ git\+", setup.source)
    assert found, f"{path.name}: no extras in the setup cell"
    return found.group(1).split(",")


@lru_cache(maxsize=None)
def closure(distribution: str) -> frozenset:
    """``distribution`` and everything it requires, as installed here."""
    seen, todo = set(), [distribution]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [name_of(r) for r in requires if "extra ==" not in r]
    return frozenset(seen)


SELF = name_of(PYPROJECT["name"])


def requirements(extras):
    """The requirements of the base package and ``extras``, the package's own extras expanded."""
    declared = PYPROJECT["optional-dependencies"]
    found, todo = list(PYPROJECT["dependencies"]), list(extras)
    while todo:
        for requirement in declared[todo.pop()]:
            if name_of(requirement) == SELF:
                todo += re.search(r"\[([^\]]*)\]", requirement).group(1).split(",")
            else:
                found.append(requirement)
    return found


def covered(extras):
    return set().union(*(closure(name_of(r)) for r in requirements(extras)))


DISTRIBUTIONS = {module: [name_of(d) for d in dists] for module, dists in metadata.packages_distributions().items()}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_setup_cell_installs_what_the_chapter_imports(chapter):
    extras = setup_extras(chapter)
    have = covered(extras)
    missing = {}
    for module in sorted(chapter_modules(chapter)):
        dists = DISTRIBUTIONS.get(module)
        assert dists, f"{chapter.name} imports {module}, which no installed distribution provides"
        if not set(dists) & have:
            missing[module] = dists
    assert not missing, f"{chapter.name}: setup cell installs [{','.join(extras)}], which does not cover {missing}"


def test_all_extra_holds_every_other_extra():
    declared = PYPROJECT["optional-dependencies"]
    assert "all" in declared, "pyproject.toml has no [all] extra"
    everything = {name_of(r) for r in requirements([e for e in declared if e not in ("all", "test")])}
    assert everything == {name_of(r) for r in requirements(["all"])}


def test_no_extra_pins_a_framework_that_would_replace_colabs():
    """Lower bounds only: pip keeps an installed torch/TensorFlow/Keras that satisfies them."""
    for extra, requirements in PYPROJECT["optional-dependencies"].items():
        for requirement in requirements:
            if name_of(requirement) in {"torch", "tensorflow", "keras", "tf-keras", "jax"}:
                assert re.fullmatch(r"[\w.-]+>=[\d.]+", requirement.replace(" ", "")), (
                    f"[{extra}] {requirement}: frameworks take a lower bound only")
