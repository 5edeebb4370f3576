"""Shared test configuration.

When ``COMPANION_DATA_DIR`` is unset and a pre-seeded data folder ``shared/data`` lies next to the
repository (as on the course's CI machines), the tests read the data sets from there instead of
downloading them. Data files are never committed to the repository.
"""

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The book's own Sphinx extensions (course_links: where the course lives; course_pages: what a page
# shows) are what the tests check the notebooks and the site against.
sys.path.insert(0, str(REPO_ROOT / "book" / "_ext"))
SEEDED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

if not os.environ.get("COMPANION_DATA_DIR", "").strip() and SEEDED_DATA_DIR.is_dir():
    os.environ["COMPANION_DATA_DIR"] = str(SEEDED_DATA_DIR)
