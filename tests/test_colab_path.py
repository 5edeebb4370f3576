"""The reader's first cell, walked offline: a fresh environment that has the frameworks (as Colab
does) but not the course runs a chapter's setup cell, which installs the course from git.

The repository's last commit is served as a local bare clone at the ref the setup cells name
(``repository.branch``), and the cell's URL is rewritten to it; pip runs with no index, so nothing
is downloaded and nothing but the course package may be installed. Then ``companion`` must import
from the fresh environment, and the chapter's import cell must run there.
"""

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest
from course_links import repository

ROOT = Path(__file__).resolve().parents[1]
URL, REF = repository()
CHAPTER = ROOT / "book" / "part1_optimizers" / "02_momentum.ipynb"


def run(*command, **options):
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **options)
    assert result.returncode == 0, f"{' '.join(map(str, command))}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory):
    """A venv without the course whose only packages are the frameworks of this environment."""
    base = tmp_path_factory.mktemp("colab")
    run(getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(base / "venv"))
    python = base / "venv" / "bin" / "python"
    farm = base / "preinstalled"  # this environment's packages, minus the course
    farm.mkdir()
    for entry in sorted(os.scandir(sysconfig.get_paths()["purelib"]), key=lambda e: e.name):
        if "companion" not in entry.name.lower() and not entry.name.endswith(".pth"):
            (farm / entry.name).symlink_to(entry.path)
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (base / "venv" / purelib.split(str(base / "venv") + "/")[1] / "preinstalled.pth").write_text(str(farm) + "\n")
    missing = subprocess.run([python, "-c", "import companion"], capture_output=True, text=True, cwd=base)
    assert missing.returncode != 0, "the fresh environment must start without the course"
    return python


@pytest.fixture(scope="module")
def served_repository(tmp_path_factory):
    bare = tmp_path_factory.mktemp("git") / "course.git"
    run("git", "clone", "--quiet", "--bare", str(ROOT), str(bare))
    run("git", "-C", str(bare), "update-ref", f"refs/heads/{REF}", "HEAD")
    return f"git+file://localhost{bare}"


def test_setup_cell_installs_the_course_in_a_fresh_environment(fresh_python, served_repository, tmp_path):
    notebook = nbformat.read(CHAPTER, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    setup = code[0].source
    assert f"git+{URL}@{REF}" in setup
    setup = setup.replace(f"git+{URL}", served_repository)
    imports = next(c.source for c in code if "keep-when-grading" in c.metadata.get("tags", []))
    script = textwrap.dedent(f"""
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        for source in ({setup!r}, {imports!r}):
            shell.run_cell(source).raise_error()
        import companion, importlib.metadata as md
        print(companion.__file__)
        print(md.version("dl-optimization-companion"))
    """)
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", MPLBACKEND="Agg")
    env.pop("PYTHONPATH", None)
    result = run(fresh_python, "-c", script, cwd=tmp_path, env=env)
    location, version = result.stdout.strip().splitlines()[-2:]
    assert location.startswith(str(fresh_python.parents[1])), f"companion imported from {location}, not the fresh environment"
    import companion

    assert version == companion.__version__
    # Installing the course replaced none of the frameworks the environment had.
    listed = run(fresh_python, "-m", "pip", "list", "--format=freeze", env=env).stdout
    installed_here = run(fresh_python, "-c", "import sysconfig, os; print(sorted(os.listdir(sysconfig.get_paths()['purelib'])))").stdout
    assert "torch" not in installed_here and "numpy" not in installed_here, installed_here
    assert "dl-optimization-companion==" in listed or "dl_optimization_companion" in installed_here
