"""Data sets of the course, downloaded once into a verified cache (NumPy only).

- :func:`fetch` returns the local path of a data file: from ``$COMPANION_DATA_DIR`` (a read-only,
  pre-seeded folder), from the writable cache ``$COMPANION_CACHE_DIR`` (default
  ``~/.cache/companion``), or downloaded into that cache and checksum-verified.
- :func:`load_mnist` returns MNIST as NumPy arrays.

Data files are never committed to the repository.
"""

from .download import CACHE_DIR_ENV, DATA_DIR_ENV, cache_dir, data_dir, fetch, file_hash
from .hymenoptera import HYMENOPTERA_CLASSES, hymenoptera_dir, load_hymenoptera
from .imdb import build_imdb_csv, imdb_csv_path, load_imdb
from .mnist import MNIST_FILES, MNIST_URL, load_mnist, mnist_paths

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "HYMENOPTERA_CLASSES",
    "MNIST_FILES",
    "MNIST_URL",
    "cache_dir",
    "data_dir",
    "fetch",
    "file_hash",
    "build_imdb_csv",
    "hymenoptera_dir",
    "imdb_csv_path",
    "load_hymenoptera",
    "load_imdb",
    "load_mnist",
    "mnist_paths",
]
