"""Folders of images (``root/<class>/<image>``) read into NumPy arrays, as the vision chapters need them.

Only Pillow is imported, inside :func:`load_image_folder`; no framework.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder"]

#: File endings read by :func:`load_image_folder` (those of ``keras.utils.image_dataset_from_directory``).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def _check_image_size(image_size) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral):
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    if image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    return int(image_size)


def _load_image(path: Path, image_size: int) -> np.ndarray:
    """Decode one file to RGB, resize its shorter side to ``image_size``, center-crop a square."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")  # grayscale, palette (GIF) and CMYK files become RGB
        width, height = image.size
        scale = image_size / min(width, height)
        new_w, new_h = max(image_size, round(width * scale)), max(image_size, round(height * scale))
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
        left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
        image = image.crop((left, top, left + image_size, top + image_size))
        return np.asarray(image, dtype=np.uint8)


def load_image_folder(root, image_size: int = 224, *, class_names=None, exclude=()):
    """Read ``root/<class>/<image>`` into ``uint8`` arrays, one class per sub-folder.

    Parameters
    ----------
    root:
        Folder with one sub-folder per class.
    image_size:
        Side of the square output: each image's shorter side is resized to it, then center-cropped.
    class_names:
        Sub-folders to read, in label order; default: every sub-folder, sorted by name.
    exclude:
        File names to skip (e.g. a known placeholder image).

    Returns
    -------
    images, labels, paths:
        ``(n, image_size, image_size, 3)`` ``uint8``, ``(n,)`` ``int64`` labels, and the file paths.
    """
    image_size = _check_image_size(image_size)
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root must be an existing folder, got {str(root)!r}")
    if class_names is None:
        class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    class_names = list(class_names)
    if not class_names:
        raise ValueError(f"root {str(root)!r} has no class sub-folders")
    exclude = set(exclude)
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            raise ValueError(f"class_names: {name!r} is not a sub-folder of {str(root)!r}")
        files = sorted(
            p for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.name not in exclude
        )
        paths += files
        labels += [label] * len(files)
    images = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        images[i] = _load_image(path, image_size)
    return images, np.asarray(labels, dtype=np.int64), paths
