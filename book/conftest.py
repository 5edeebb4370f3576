"""pytest settings for running the chapter notebooks with nbval (``make test``, ``make test-one``).

nbval waits for a cell's outputs with a fixed 5-second timeout once the cell has finished
(nbval issue #136); on a busy 2-core CI machine that can fail a cell that did nothing wrong.
``--nbval-output-timeout`` raises it. The time a cell may *run* is ``--nbval-cell-timeout``.

When ``COMPANION_DATA_DIR`` is unset and a pre-seeded data folder ``shared/data`` lies next to the
repository, the notebooks' kernels read the data sets from there (the kernels inherit the variable).
"""

import os
import sys
from pathlib import Path

import pytest

DEFAULT_OUTPUT_TIMEOUT = 120.0  # seconds

_SEEDED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("COMPANION_DATA_DIR", "").strip() and _SEEDED_DATA_DIR.is_dir():
    os.environ["COMPANION_DATA_DIR"] = str(_SEEDED_DATA_DIR)
# Progress bars' frames are not content (companion/progress.py); the kernels inherit the setting.
os.environ.setdefault("COMPANION_PROGRESS", "0")


def pytest_addoption(parser):
    parser.addoption(
        "--nbval-output-timeout",
        type=float,
        default=DEFAULT_OUTPUT_TIMEOUT,
        help="Seconds nbval waits for each output message of a finished cell "
        f"(nbval's built-in value is 5; default here {DEFAULT_OUTPUT_TIMEOUT:g}).",
    )


def pytest_collection_modifyitems(config, items):
    timeout = config.getoption("--nbval-output-timeout")
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval.plugin.IPyNbCell
            item.output_timeout = timeout


# What a reader must never find on a page (book/_ext/course_pages.py): every notebook cell that nbval
# runs is checked, so a page with such output fails ``make test`` as well as the build.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))
from course_pages import page_noise  # noqa: E402


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    noise = page_noise(getattr(item, "test_outputs", None))
    if noise:
        raise AssertionError(f"{item.nodeid}: the cell's output would show on the page:\n  " + "\n  ".join(noise))
    return result
