r"""Batch image augmentations for small grey-scale (or multi-channel) images, NumPy or PyTorch.

Each augmentation maps a batch of images to a batch of the same shape and leaves the labels alone:
a digit rotated by a few degrees, moved by a pixel or two, or sprinkled with a little noise is still
the same digit (Simard et al., 2003, "Best practices for convolutional neural networks applied to
visual document analysis"; Shorten and Khoshgoftaar, 2019, survey the many others).

Rotations and shifts are one affine resampling with bilinear interpolation and zero padding. The
output pixel at position :math:`p` reads the input at

.. math:: p_{in} = c + R_\alpha^{-1}(p - c - \Delta),

with :math:`c` the image centre, :math:`R_\alpha` the rotation by :math:`\alpha` (counter-clockwise
as displayed) and :math:`\Delta` the shift in pixels (rows, columns). Gaussian noise adds :math:`\sigma\,\varepsilon`,
:math:`\varepsilon \sim \mathcal N(0, 1)` per pixel.

Images are ``(N, H, W)`` or ``(N, C, H, W)`` arrays or tensors; outputs have the input's type, dtype
and device. Random parameters come from a ``numpy.random.Generator`` (or an integer seed), so the
same seed gives the same batch on every run and every device.

Tested against ``scipy.ndimage.rotate`` and ``scipy.ndimage.shift`` (order 1, ``mode="grid-constant"``)
in ``tests/test_augment.py``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import check_in_range, check_non_negative

__all__ = [
    "AugmentedImages",
    "Augmenter",
    "add_gaussian_noise",
    "flip",
    "random_flip",
    "random_rotation",
    "random_shift",
    "rotate",
    "shift",
]


# --------------------------------------------------------------------------- helpers


def _as_generator(generator) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        raise TypeError("generator must be a numpy.random.Generator or an integer seed, got None")
    if isinstance(generator, bool) or not isinstance(generator, numbers.Integral) or generator < 0:
        raise TypeError(f"generator must be a numpy.random.Generator or an integer seed >= 0, got {generator!r}")
    return np.random.default_rng(int(generator))


def _is_torch(images) -> bool:
    return type(images).__module__.startswith("torch")


def _check_images(images):
    """Return ``images`` as a float (N, C, H, W) torch tensor, plus what is needed to convert back."""
    import torch

    is_torch = _is_torch(images)
    if not is_torch and not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a NumPy array or a torch tensor, got {type(images).__name__}")
    if images.ndim not in (3, 4) or any(int(s) == 0 for s in images.shape):
        raise ValueError(
            f"Invalid images: shape {tuple(images.shape)} (expected a non-empty (N, H, W) or (N, C, H, W) batch)"
        )
    tensor = images if is_torch else torch.from_numpy(np.ascontiguousarray(images))
    if not tensor.dtype.is_floating_point:
        raise TypeError(f"images must hold floats, got dtype {images.dtype}")
    squeeze = tensor.ndim == 3
    return (tensor.unsqueeze(1) if squeeze else tensor), is_torch, squeeze


def _back(tensor, is_torch: bool, squeeze: bool):
    if squeeze:
        tensor = tensor.squeeze(1)
    return tensor if is_torch else tensor.numpy()


def _per_image(name: str, values, n: int, width: int | None = None) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    shape = (n,) if width is None else (n, width)
    if values.shape != shape:
        raise ValueError(f"Invalid {name}: shape {values.shape} (expected {shape}, one per image)")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"Invalid {name}: values must be finite")
    return values


# --------------------------------------------------------------------------- deterministic transforms


def _affine(images, angles_deg: np.ndarray, shifts: np.ndarray):
    """Rotate image i by ``angles_deg[i]`` and shift it by ``shifts[i] = (rows, cols)`` pixels."""
    import torch
    import torch.nn.functional as F

    x, is_torch, squeeze = _check_images(images)
    n, _, height, width = x.shape
    angles = _per_image("angles", angles_deg, n)
    shifts = _per_image("shifts", shifts, n, 2)
    if np.all(angles == 0) and np.all(shifts == 0):
        return _back(x.clone(), is_torch, squeeze)  # exactly the identity, no interpolation error
    # affine_grid works in normalised coordinates u = 2 c / (W - 1) - 1 (align_corners=True: the
    # corner pixels' centres are at -1 and 1). The output at u reads the input at theta @ (u, 1).
    # Scale to pixels, rotate about the centre, shift, scale back.
    a = np.deg2rad(angles)
    cos, sin = np.cos(a), np.sin(a)
    sx, sy = (width - 1) / 2, (height - 1) / 2  # pixels per normalised unit
    theta = np.zeros((n, 2, 3))
    # In (col, row) pixel coordinates with rows pointing down, a counter-clockwise rotation as
    # displayed maps the output offset (dc, dr) to the input offset (cos dc - sin dr, sin dc + cos dr).
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * sy / sx
    theta[:, 1, 0] = sin * sx / sy
    theta[:, 1, 1] = cos
    dr, dc = shifts[:, 0], shifts[:, 1]
    theta[:, 0, 2] = -(cos * dc - sin * dr) / sx
    theta[:, 1, 2] = -(sin * dc + cos * dr) / sy
    theta = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return _back(out, is_torch, squeeze)


def rotate(images, angles_deg):
    """Rotate each image about its centre by its angle in degrees (counter-clockwise as displayed).

    Bilinear interpolation, zeros outside; matches ``scipy.ndimage.rotate(image, angle, reshape=False,
    order=1, mode="grid-constant")``.
    """
    n = images.shape[0] if hasattr(images, "shape") and len(images.shape) else 0
    return _affine(images, angles_deg, np.zeros((n, 2)))


def shift(images, shifts):
    """Shift each image by ``shifts[i] = (rows, cols)`` pixels (down and right are positive).

    Fractional shifts interpolate bilinearly; matches ``scipy.ndimage.shift(image, shift, order=1,
    mode="grid-constant")``.
    """
    n = images.shape[0] if hasattr(images, "shape") and len(images.shape) else 0
    return _affine(images, np.zeros(n), shifts)


def flip(images, horizontal: bool = True):
    """Mirror every image left-right (``horizontal=True``) or top-bottom."""
    x, is_torch, squeeze = _check_images(images)
    return _back(x.flip(-1 if horizontal else -2), is_torch, squeeze)


# --------------------------------------------------------------------------- random transforms


def random_rotation(images, max_degrees: float, generator):
    r"""Rotate each image by an angle drawn uniformly from :math:`[-\alpha_{max}, \alpha_{max}]` degrees."""
    max_degrees = check_in_range("max_degrees", max_degrees, 0.0, 180.0, high_inclusive=True)
    rng = _as_generator(generator)
    x, _, _ = _check_images(images)
    return rotate(images, rng.uniform(-max_degrees, max_degrees, size=x.shape[0]))


def random_shift(images, max_pixels: float, generator):
    """Shift each image by (rows, cols) drawn uniformly from ``[-max_pixels, max_pixels]`` (fractional)."""
    max_pixels = check_non_negative("max_pixels", max_pixels)
    rng = _as_generator(generator)
    x, _, _ = _check_images(images)
    if max_pixels >= min(x.shape[-2:]):
        raise ValueError(f"Invalid max_pixels: {max_pixels} (must be smaller than the image, {tuple(x.shape[-2:])})")
    return shift(images, rng.uniform(-max_pixels, max_pixels, size=(x.shape[0], 2)))


def random_flip(images, p: float, generator, horizontal: bool = True):
    """Mirror each image with probability ``p`` (left-right by default). Wrong for digits and text."""
    p = check_in_range("p", p, 0.0, 1.0, high_inclusive=True)
    rng = _as_generator(generator)
    x, is_torch, squeeze = _check_images(images)
    chosen = rng.random(x.shape[0]) < p
    out = x.clone()
    if chosen.any():
        import torch

        index = torch.as_tensor(np.flatnonzero(chosen), device=x.device)
        out[index] = x[index].flip(-1 if horizontal else -2)
    return _back(out, is_torch, squeeze)


def add_gaussian_noise(images, std: float, generator, clip: tuple[float, float] | None = None):
    r"""Add :math:`\sigma\,\varepsilon`, :math:`\varepsilon \sim \mathcal N(0, 1)`, to every pixel; optionally clip."""
    import torch

    std = check_non_negative("std", std)
    rng = _as_generator(generator)
    if clip is not None and (len(clip) != 2 or not clip[0] < clip[1]):
        raise ValueError(f"Invalid clip: {clip!r} (expected (low, high) with low < high)")
    x, is_torch, squeeze = _check_images(images)
    out = x.clone()
    if std > 0:
        noise = rng.standard_normal(size=tuple(x.shape)).astype(np.float32)
        out = out + std * torch.as_tensor(noise, dtype=x.dtype, device=x.device)
    if clip is not None:
        out = out.clamp(clip[0], clip[1])
    return _back(out, is_torch, squeeze)


class Augmenter:
    """Random rotation, shift, (optional) flip and noise, applied to a batch in that order.

    ``Augmenter(max_degrees=10, max_shift=2, seed=0)(images, labels)`` returns the augmented images
    and the labels unchanged (image ``i`` stays at index ``i``). Every strength 0 is the identity.
    """

    def __init__(
        self,
        max_degrees: float = 0.0,
        max_shift: float = 0.0,
        flip_p: float = 0.0,
        noise_std: float = 0.0,
        clip: tuple[float, float] | None = None,
        seed: int = 0,
    ):
        self.max_degrees = check_in_range("max_degrees", max_degrees, 0.0, 180.0, high_inclusive=True)
        self.max_shift = check_non_negative("max_shift", max_shift)
        self.flip_p = check_in_range("flip_p", flip_p, 0.0, 1.0, high_inclusive=True)
        self.noise_std = check_non_negative("noise_std", noise_std)
        self.clip = clip
        self.rng = _as_generator(seed)

    def __call__(self, images, labels=None):
        x, _, _ = _check_images(images)
        n = x.shape[0]
        if labels is not None and len(labels) != n:
            raise ValueError(f"Invalid labels: {len(labels)} labels for {n} images")
        angles = self.rng.uniform(-self.max_degrees, self.max_degrees, size=n)
        shifts = self.rng.uniform(-self.max_shift, self.max_shift, size=(n, 2))
        out = _affine(images, angles, shifts)
        if self.flip_p > 0:
            out = random_flip(out, self.flip_p, self.rng)
        if self.noise_std > 0 or self.clip is not None:
            out = add_gaussian_noise(out, self.noise_std, self.rng, clip=self.clip)
        return out if labels is None else (out, labels)

    def __repr__(self) -> str:
        return (
            f"Augmenter(max_degrees={self.max_degrees}, max_shift={self.max_shift}, "
            f"flip_p={self.flip_p}, noise_std={self.noise_std}, clip={self.clip})"
        )


class AugmentedImages:
    """A map-style data set for ``torch.utils.data.DataLoader``: image ``i``, rotated and shifted at random
    when it is read, and its label.

    ``images`` is an ``(N, H, W)`` or ``(N, C, H, W)`` array, ``labels`` an array of ``N`` labels. Item ``i``
    draws its angle (up to ``max_degrees``) and shift (up to ``max_shift`` pixels) from a generator seeded
    with ``(seed, i)``: the same image gets the same draw in every worker process and every run, so
    loaders with different numbers of workers produce the same batches. Items are ``(float32 array,
    int)``, which the ``DataLoader`` collates into tensors. The work happens per item, on the CPU: the
    kind of loader that worker processes speed up.
    """

    def __init__(self, images, labels, *, max_degrees: float = 15.0, max_shift: float = 2.0, seed: int = 0):
        images = np.asarray(images)
        _check_images(images)
        if len(labels) != len(images):
            raise ValueError(f"Invalid labels: {len(labels)} labels for {len(images)} images")
        self.images, self.labels = images, np.asarray(labels)
        self.max_degrees = check_in_range("max_degrees", max_degrees, 0.0, 180.0, high_inclusive=True)
        self.max_shift = check_non_negative("max_shift", max_shift)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        generator = np.random.default_rng((self.seed, int(i) % len(self)))
        angle = generator.uniform(-self.max_degrees, self.max_degrees, size=1)
        shift = generator.uniform(-self.max_shift, self.max_shift, size=(1, 2))
        image = _affine(self.images[i : i + 1] if i >= 0 else self.images[[i]], angle, shift)[0]
        return image.astype(np.float32), int(self.labels[i])


# --------------------------------------------------------------------------- training with augmentation
