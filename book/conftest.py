"""pytest settings for running the chapter notebooks with nbval (``make test``, ``make test-one``).

nbval waits for a cell's outputs with a fixed 5-second timeout once the cell has finished
(nbval issue #136); on a busy 2-core CI machine that can fail a cell that did nothing wrong.
``--nbval-output-timeout`` raises it. The time a cell may *run* is ``--nbval-cell-timeout``.

When ``COMPANION_DATA_DIR`` is unset and a pre-seeded data folder ``shared/data`` lies next to the
repository, the notebooks' kernels read the data sets from there (the kernels inherit the variable).
"""

import os
from pathlib import Path

DEFAULT_OUTPUT_TIMEOUT = 120.0  # seconds

_SEEDED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("COMPANION_DATA_DIR", "").strip() and _SEEDED_DATA_DIR.is_dir():
    os.environ["COMPANION_DATA_DIR"] = str(_SEEDED_DATA_DIR)


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
