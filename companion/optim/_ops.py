"""Element-wise operations that work on NumPy arrays, torch tensors and Keras/TF tensors.

The reference optimizers are written once; these helpers pick the library
of each leaf. For torch tensors they use fused kernels (``torch.lerp``,
``addcmul``) so the adapter stays close to ``torch.optim`` in speed. None of
them modifies its inputs: every update stays a pure function.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

# Inside the torch adapter's step (and only there) the transformations may work in place:
# the moving averages overwrite the old state's buffers (the adapter drops the old state, like JAX's
# buffer donation), and an array made during this step that nobody else holds may be rescaled in place.
# The numbers are the same either way; only memory traffic changes.
_reuse_state_buffers = contextvars.ContextVar("reuse_state_buffers", default=False)
_fresh_arrays = contextvars.ContextVar("fresh_arrays", default=None)


@contextlib.contextmanager
def reusing_state_buffers():
    """Let this update reuse the state's torch tensors and its own temporaries (the caller drops the old state)."""
    reuse, fresh = _reuse_state_buffers.set(True), _fresh_arrays.set([])  # the list keeps them alive
    try:
        yield
    finally:
        _reuse_state_buffers.reset(reuse)
        _fresh_arrays.reset(fresh)


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


def sign(x):
    kind = _library(x)
    if kind == "torch":
        return x.sign()
    if kind == "numpy":
        return np.sign(x)
    return _keras_ops().sign(x)


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


def trust_ratio(weights, update):
    r"""LAMB's layer-wise ratio :math:`\lVert w \rVert / \lVert u \rVert`, 1 when either norm is 0 (a 0-d array)."""
    kind = _library(weights)
    if kind == "torch":
        import torch

        w_norm, u_norm = torch.linalg.vector_norm(weights), torch.linalg.vector_norm(update)
        return torch.where((w_norm > 0) & (u_norm > 0), w_norm / torch.where(u_norm > 0, u_norm, 1.0), 1.0)
    if kind == "numpy":
        w_norm, u_norm = np.sqrt(np.sum(np.square(weights))), np.sqrt(np.sum(np.square(update)))
        return np.where((w_norm > 0) & (u_norm > 0), w_norm / np.where(u_norm > 0, u_norm, 1.0), 1.0)
    ops = _keras_ops()
    w_norm, u_norm = ops.sqrt(ops.sum(ops.square(weights))), ops.sqrt(ops.sum(ops.square(update)))
    both = ops.logical_and(ops.greater(w_norm, 0), ops.greater(u_norm, 0))
    return ops.where(both, w_norm / ops.where(ops.greater(u_norm, 0), u_norm, 1.0), 1.0)


def schedule_value(schedule, count):
    """``schedule(count)``; inside a compiled Keras/TensorFlow step, where ``count`` is symbolic, the Python
    schedule runs through ``tf.numpy_function`` at every step (a float64 0-d tensor)."""
    if _library(count) != "keras":
        return schedule(count)
    import tensorflow as tf

    if tf.executing_eagerly():
        return schedule(count)
    value = tf.numpy_function(lambda c: np.asarray(schedule(c), dtype=np.float64), [count], tf.float64,
                              stateful=False)
    value.set_shape(())
    return value


def cast_like(value, x):
    """``value`` (a number or a 0-d tensor) in ``x``'s dtype, where the library needs it (Keras/TF)."""
    if _library(x) == "keras" and not isinstance(value, (int, float)):
        return _keras_ops().cast(value, x.dtype)
    return value


def in_place_allowed() -> bool:
    """True inside the torch adapter's step, where temporaries may be overwritten (see above)."""
    return _fresh_arrays.get() is not None


def divide_reusing(numerator, denominator):
    """``numerator / denominator``, written into ``denominator``'s buffer for torch tensors.

    Only for a ``denominator`` that the caller has just created and will not use again.
    """
    if _library(denominator) == "torch":
        import torch

        result = torch.div(numerator, denominator, out=denominator)
        fresh = _fresh_arrays.get()
        if fresh is not None:
            fresh.append(result)
        return result
    return numerator / denominator


def scale_array(x, factor):
    """``factor * x``; in place when ``x`` is a temporary made during this adapter step (see above)."""
    fresh = _fresh_arrays.get()
    if fresh is not None and _library(x) == "torch" and any(x is f for f in fresh):
        return x.mul_(factor)
    return factor * x


def moving_average(average, value, decay):
    r"""Exponential moving average :math:`d\,a + (1-d)\,v`, written as :math:`a + (1-d)(v - a)`."""
    if _library(average) == "torch":
        import torch

        if _reuse_state_buffers.get():
            return average.lerp_(value, 1.0 - decay)
        return torch.lerp(average, value, 1.0 - decay)
    return average + (1.0 - decay) * (value - average)


def moving_average_of_squares(average, value, decay):
    r"""Exponential moving average of squares :math:`d\,a + (1-d)\,v^2`."""
    if _library(average) == "torch":
        fresh = average.mul_(decay) if _reuse_state_buffers.get() else average.mul(decay)
        return fresh.addcmul_(value, value, value=1.0 - decay)
    return decay * average + (1.0 - decay) * value * value


def all_finite(leaves) -> bool | None:
    """Whether every value of every array in ``leaves`` is finite; None when they are symbolic (a Keras graph).

    One read-only reduction per array: NaN and inf propagate into the sum (half-precision arrays are
    summed in float32). A sum that is not finite is checked element by element before the answer is
    no, since large but finite values (a mixed-precision gradient) can overflow a sum.
    """
    if not leaves:
        return True
    kind = _library(leaves[0])
    if kind == "torch":
        import torch

        half = (torch.float16, torch.bfloat16)
        sums = torch.stack([x.sum(dtype=torch.float32) if x.dtype in half else x.sum() for x in leaves])
        return bool(torch.isfinite(sums).all()) or all(bool(torch.isfinite(x).all()) for x in leaves)
    if kind == "numpy":
        with np.errstate(over="ignore", invalid="ignore"):
            return all(bool(np.isfinite(np.sum(x))) or bool(np.isfinite(x).all()) for x in leaves)
    try:
        return all(bool(np.isfinite(np.asarray(x)).all()) for x in leaves)
    except Exception:  # symbolic tensor: cannot be inspected here
        return None
