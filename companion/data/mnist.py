"""MNIST (LeCun et al., 1998) from the four canonical idx files, with NumPy only.

The files are fetched through :func:`companion.data.fetch` (seeded cache, writable cache, then the
mirror that torchvision uses) and verified against their canonical checksums.

idx format (big-endian): images start with ``>IIII`` = (2051, n, 28, 28) followed by ``n * 28 * 28``
``uint8`` pixels, row by row; labels start with ``>II`` = (2049, n) followed by ``n`` ``uint8``
labels.
"""

from __future__ import annotations

import gzip
import numbers
import struct
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .download import fetch

__all__ = [
    "MNIST_URL",
    "MNIST_FILES",
    "load_mnist",
    "mnist_paths",
    "read_idx_images",
    "read_idx_labels",
]

#: The MNIST mirror used by torchvision.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

#: ``split -> {"images"|"labels": (file name, sha256, md5)}``; md5s are the canonical ones.
MNIST_FILES = {
    "train": {
        "images": (
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        ),
        "labels": (
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "d53e105ee54ea40749a09fcbcd1e9432",
        ),
    },
    "test": {
        "images": (
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "9fb629c4189551a2d022fa330f9573f3",
        ),
        "labels": (
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    },
}

_SIZES = {"train": 60_000, "test": 10_000}
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049
_ROWS = _COLS = 28


def _check_split(split) -> str:
    if not isinstance(split, str) or split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _check_limit(limit, n_max: int) -> Optional[int]:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    limit = int(limit)
    if not 1 <= limit <= n_max:
        raise ValueError(f"limit must be between 1 and {n_max} for this split, got {limit}")
    return limit


def mnist_paths(split: str = "train", *, progress: bool = True) -> Tuple[Path, Path]:
    """Return the verified local paths ``(images, labels)`` of one split, fetching them if needed."""
    split = _check_split(split)
    paths = []
    for kind in ("images", "labels"):
        name, sha256, md5 = MNIST_FILES[split][kind]
        paths.append(fetch(f"mnist/{name}", MNIST_URL + name, sha256=sha256, md5=md5, progress=progress))
    return paths[0], paths[1]


def _read_exactly(f, buffer: memoryview, path: Path) -> None:
    view = buffer.cast("B")
    filled = 0
    while filled < len(view):
        n = f.readinto(view[filled:])
        if not n:
            raise ValueError(
                f"{path} is truncated: expected {len(view)} bytes of data, got {filled}"
            )
        filled += n


def _check_count(path: Path, n: int, expected_n: Optional[int], what: str) -> None:
    if expected_n is not None and n != expected_n:
        raise ValueError(f"{path}: the header announces {n} {what}, expected {expected_n}")


def read_idx_images(path, limit: Optional[int] = None, expected_n: Optional[int] = None) -> np.ndarray:
    """Read a gzipped idx3 image file into a ``uint8`` array of shape ``(n, rows, cols)``.

    ``limit`` reads only the first images; ``expected_n`` checks the count in the header.
    """
    path = Path(path)
    with gzip.open(path, "rb") as f:
        header = f.read(16)
        if len(header) != 16:
            raise ValueError(f"{path} is not an idx3 image file: header too short")
        magic, n, rows, cols = struct.unpack(">IIII", header)
        if magic != _IMAGES_MAGIC:
            raise ValueError(f"{path} is not an idx3 image file: magic {magic}, expected {_IMAGES_MAGIC}")
        if (rows, cols) != (_ROWS, _COLS):
            raise ValueError(f"{path}: images are {rows}x{cols}, expected {_ROWS}x{_COLS}")
        _check_count(path, n, expected_n, "images")
        count = n if limit is None else min(limit, n)
        images = np.empty((count, rows, cols), dtype=np.uint8)
        _read_exactly(f, memoryview(images), path)
        if limit is None and f.read(1):
            raise ValueError(f"{path} has data after the {n} images its header announces")
    return images


def read_idx_labels(path, limit: Optional[int] = None, expected_n: Optional[int] = None) -> np.ndarray:
    """Read a gzipped idx1 label file into a ``uint8`` array of shape ``(n,)``.

    ``limit`` reads only the first labels; ``expected_n`` checks the count in the header.
    """
    path = Path(path)
    with gzip.open(path, "rb") as f:
        header = f.read(8)
        if len(header) != 8:
            raise ValueError(f"{path} is not an idx1 label file: header too short")
        magic, n = struct.unpack(">II", header)
        if magic != _LABELS_MAGIC:
            raise ValueError(f"{path} is not an idx1 label file: magic {magic}, expected {_LABELS_MAGIC}")
        _check_count(path, n, expected_n, "labels")
        count = n if limit is None else min(limit, n)
        labels = np.empty((count,), dtype=np.uint8)
        _read_exactly(f, memoryview(labels), path)
        if limit is None and f.read(1):
            raise ValueError(f"{path} has data after the {n} labels its header announces")
    return labels


def load_mnist(
    split: str = "train",
    as_float: bool = True,
    limit: Optional[int] = None,
    *,
    progress: bool = True,
) -> Tuple[np.ndarray, np.ndarray]:
    """Load MNIST as NumPy arrays.

    Parameters
    ----------
    split:
        ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    as_float:
        ``True``: ``float32`` pixels in ``[0, 1]``; ``False``: the raw ``uint8`` pixels in
        ``[0, 255]``.
    limit:
        Load only the first ``limit`` examples (``1 <= limit <=`` size of the split), in file
        order; ``None`` loads them all.
    progress:
        Show a progress bar if the files have to be downloaded.

    Returns
    -------
    images, labels:
        ``images`` of shape ``(n, 28, 28)``, ``labels`` of shape ``(n,)`` and dtype ``int64``.

    Raises
    ------
    ValueError
        ``split`` or ``limit`` is invalid, or a file is corrupt (bad checksum or idx header).
    """
    split = _check_split(split)
    limit = _check_limit(limit, _SIZES[split])
    images_path, labels_path = mnist_paths(split, progress=progress)
    n = _SIZES[split]
    images = read_idx_images(images_path, limit, expected_n=n)
    labels = read_idx_labels(labels_path, limit, expected_n=n)
    labels = labels.astype(np.int64)
    if as_float:
        images = images.astype(np.float32)
        images /= np.float32(255.0)
    return images, labels
