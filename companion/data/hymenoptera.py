"""The ants-versus-bees photographs of the PyTorch transfer-learning tutorial, as NumPy arrays.

``hymenoptera_data.zip`` holds JPEG photographs (mostly from ImageNet's *ant* and *bee* classes) in
``train/{ants,bees}`` (124 + 121 files) and ``val/{ants,bees}`` (70 + 83 files). The zip is fetched
through :func:`companion.data.fetch` (seeded cache, writable cache, then the canonical URL) and
checked against its sha256; it is then extracted once into the writable cache: into a temporary
folder first, the per-folder file counts are verified, and only then is the folder moved into place
with :func:`os.replace`, so an interrupted extraction never leaves a half-filled folder behind.

One file is not a photograph: ``train/ants/imageNotFound.gif`` is a web placeholder ("We're sorry,
this image could not be found"), labelled *ant*. :func:`load_hymenoptera` drops it by default
(``drop_placeholders=True``), so the training split has 244 images.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Tuple

import numpy as np

from .download import cache_dir, fetch

__all__ = [
    "HYMENOPTERA_CLASSES",
    "HYMENOPTERA_COUNTS",
    "HYMENOPTERA_PLACEHOLDERS",
    "HYMENOPTERA_SHA256",
    "HYMENOPTERA_URL",
    "hymenoptera_dir",
    "load_hymenoptera",
]

HYMENOPTERA_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
HYMENOPTERA_SHA256 = "ab392b78926c6fc98741bd27bbbf97a5ffd7e34145ee8a041c7d97f7fcede77a"
#: Class names in label order: ``ants`` is 0, ``bees`` is 1.
HYMENOPTERA_CLASSES = ("ants", "bees")
#: Files per ``(split, class)`` folder in the archive.
HYMENOPTERA_COUNTS = {
    ("train", "ants"): 124,
    ("train", "bees"): 121,
    ("val", "ants"): 70,
    ("val", "bees"): 83,
}
#: Files that are not photographs of their class (relative to the data folder).
HYMENOPTERA_PLACEHOLDERS = ("train/ants/imageNotFound.gif",)

_FOLDER = "hymenoptera_data"


def _counts(root: Path) -> dict:
    return {
        key: sum(1 for p in (root / key[0] / key[1]).iterdir() if p.is_file())
        if (root / key[0] / key[1]).is_dir()
        else 0
        for key in HYMENOPTERA_COUNTS
    }


def hymenoptera_dir(*, progress: bool = True) -> Path:
    """Return the extracted data folder (with ``train/`` and ``val/``), fetching and extracting it if needed.

    The folder lives in the writable cache (:func:`companion.data.cache_dir`), never in the read-only
    seeded folder. Its file counts are checked against :data:`HYMENOPTERA_COUNTS`.
    """
    target = cache_dir() / _FOLDER
    if target.is_dir() and _counts(target) == HYMENOPTERA_COUNTS:
        return target
    archive = fetch(f"{_FOLDER}.zip", HYMENOPTERA_URL, sha256=HYMENOPTERA_SHA256, progress=progress)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_FOLDER}.", suffix=".part", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():  # refuse paths that would escape the folder
                if member.startswith("/") or ".." in Path(member).parts:
                    raise ValueError(f"{archive}: unsafe path {member!r} in the archive")
            zf.extractall(tmp)
        extracted = tmp / _FOLDER
        found = _counts(extracted)
        if found != HYMENOPTERA_COUNTS:
            raise ValueError(f"{archive}: file counts {found} differ from the expected {HYMENOPTERA_COUNTS}")
        if target.exists():  # an incomplete folder from an older version: replace it
            shutil.rmtree(target)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_hymenoptera(
    split: str = "train",
    image_size: int = 224,
    *,
    drop_placeholders: bool = True,
    progress: bool = True,
) -> Tuple[np.ndarray, np.ndarray, list]:
    """Load one split as ``uint8`` images of shape ``(n, image_size, image_size, 3)``.

    Each photograph is resized so that its shorter side is ``image_size``, then center-cropped to a
    square (the evaluation transform of the ImageNet models), and converted to RGB.

    Returns
    -------
    images, labels, paths:
        ``images`` ``uint8`` in ``[0, 255]``; ``labels`` ``int64`` (0 = ants, 1 = bees); ``paths`` the
        source files, in the same (sorted) order.

    Raises
    ------
    ValueError
        ``split`` is not ``"train"`` or ``"val"``, or ``image_size`` is not a positive integer.
    """
    from .images import _check_image_size, load_image_folder

    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    image_size = _check_image_size(image_size)
    root = hymenoptera_dir(progress=progress) / split
    exclude = [Path(p).name for p in HYMENOPTERA_PLACEHOLDERS if p.startswith(split + "/")] if drop_placeholders else []
    return load_image_folder(root, image_size, class_names=HYMENOPTERA_CLASSES, exclude=exclude)
