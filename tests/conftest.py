"""Shared test configuration.

When ``COMPANION_DATA_DIR`` is unset and a pre-seeded data folder ``shared/data`` lies next to the
repository (as on the course's CI machines), the tests read the data sets from there instead of
downloading them. Data files are never committed to the repository.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SEEDED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

if not os.environ.get("COMPANION_DATA_DIR", "").strip() and SEEDED_DATA_DIR.is_dir():
    os.environ["COMPANION_DATA_DIR"] = str(SEEDED_DATA_DIR)
