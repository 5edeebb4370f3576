"""Element-wise operations that work on NumPy arrays, torch tensors and Keras/TF tensors.

The reference optimizers are written once; these helpers pick the library
of each leaf. For torch tensors they use fused kernels (``torch.lerp``,
``addcmul``) so the adapter stays close to ``torch.optim`` in speed. None of
them modifies its inputs: every update stays a pure function.
"""

from __future__ import annotations

import numpy as np


def _library(x) -> str:
    module = type(x).__module__
    if module.startswith("torch"):
        return "torch"
    if isinstance(x, (np.ndarray, np.generic, float, int)):
        return "numpy"
    return "keras"


def _keras_ops():
    from keras import ops  # imported only when a Keras/TF tensor reaches us

    return ops


def zeros_like(x):
    kind = _library(x)
    if kind == "torch":
        import torch

        return torch.zeros_like(x, memory_format=torch.preserve_format)
    if kind == "numpy":
        return np.zeros_like(x)
    return _keras_ops().zeros_like(x)


def full_like(x, value):
    kind = _library(x)
    if kind == "torch":
        import torch

        return torch.full_like(x, value, memory_format=torch.preserve_format)
    if kind == "numpy":
        return np.full_like(x, value)
    return _keras_ops().full_like(x, value)


def sqrt(x):
    kind = _library(x)
    if kind == "torch":
        return x.sqrt()
    if kind == "numpy":
        return np.sqrt(x)
    return _keras_ops().sqrt(x)


def maximum(a, b):
    kind = _library(a)
    if kind == "torch":
        import torch

        return torch.maximum(a, b)
    if kind == "numpy":
        return np.maximum(a, b)
    return _keras_ops().maximum(a, b)


def clip(x, low, high):
    kind = _library(x)
    if kind == "torch":
        return x.clamp(low, high)
    if kind == "numpy":
        return np.clip(x, low, high)
    return _keras_ops().clip(x, low, high)


def moving_average(average, value, decay):
    r"""Exponential moving average :math:`d\,a + (1-d)\,v`, written as :math:`a + (1-d)(v - a)`."""
    if _library(average) == "torch":
        import torch

        return torch.lerp(average, value, 1.0 - decay)
    return average + (1.0 - decay) * (value - average)


def moving_average_of_squares(average, value, decay):
    r"""Exponential moving average of squares :math:`d\,a + (1-d)\,v^2`."""
    if _library(average) == "torch":
        return average.mul(decay).addcmul_(value, value, value=1.0 - decay)
    return decay * average + (1.0 - decay) * value * value


def all_finite(x) -> bool | None:
    """True/False for eager arrays; None when the value is symbolic (inside a traced Keras graph)."""
    kind = _library(x)
    if kind == "torch":
        import torch

        return bool(torch.isfinite(x).all())
    if kind == "numpy":
        return bool(np.isfinite(x).all())
    try:
        return bool(np.isfinite(np.asarray(x)).all())
    except Exception:  # symbolic tensor: cannot be inspected here
        return None
