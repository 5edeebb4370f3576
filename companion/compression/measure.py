"""Measuring a model the way Part III compares them: parameters, size on disk, CPU latency, memory.

Every compression chapter reports a compressed model *against the original in the same run*, with
the same yardsticks:

- :func:`count_parameters` — all parameters, or only those that receive gradients;
- :func:`model_size` — bytes of ``torch.save(module.state_dict())`` and of the same bytes after
  ``gzip -9`` (the measure of the TensorFlow Model Optimization guide: pruned zeros compress);
- :func:`gzipped_size` — the same for any file or byte string (a Keras ``.h5``, a ``.tflite``);
- :func:`measure_latency` — median and quartiles of many timed calls, after warm-up;
- :func:`optimizer_state_bytes` — the memory an optimizer keeps per parameter (Adam: two moments).

Checked in ``tests/test_compression_measure.py`` against hand-computed sizes and counts.
"""

from __future__ import annotations

import gzip
import io
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable

from .._checks import check_non_negative_int, check_positive_int

__all__ = [
    "Latency",
    "ModelSize",
    "count_parameters",
    "gzipped_size",
    "measure_latency",
    "model_size",
    "optimizer_state_bytes",
]


@dataclass(frozen=True)
class ModelSize:
    """Serialized size of a model in bytes, raw and after ``gzip -9``."""

    bytes: int
    gzipped_bytes: int

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6

    def __str__(self) -> str:
        return f"{self.bytes / 1e6:.3f} MB ({self.gzipped_bytes / 1e6:.3f} MB gzipped)"


@dataclass(frozen=True)
class Latency:
    """Wall-clock time of one call in milliseconds: median and the quartiles of ``repeats`` calls."""

    median_ms: float
    p25_ms: float
    p75_ms: float
    repeats: int

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (IQR {self.p25_ms:.3f}-{self.p75_ms:.3f}, {self.repeats} calls)"


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of scalar parameters of a ``torch.nn.Module`` or a Keras model.

    ``trainable_only=True`` counts only what an optimizer would update: tensors with
    ``requires_grad`` in PyTorch, ``trainable_weights`` in Keras.
    """
    if hasattr(model, "parameters") and callable(model.parameters):
        return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    if hasattr(model, "trainable_weights") and hasattr(model, "weights"):
        import numpy as np

        weights = model.trainable_weights if trainable_only else model.weights
        return int(sum(int(np.prod(w.shape)) for w in weights))
    raise TypeError(f"model must be a torch.nn.Module or a Keras model, got {type(model).__name__}")


def gzipped_size(data) -> int:
    """Bytes of ``data`` (a byte string or the path of a file) after ``gzip`` at level 9."""
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as f:
            data = f.read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes or a file path, got {type(data).__name__}")
    # mtime=0: the header carries no timestamp, so the size is the same run to run.
    return len(gzip.compress(bytes(data), compresslevel=9, mtime=0))


def _serialize(module) -> bytes:
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()


def model_size(module) -> ModelSize:
    """Size of ``torch.save(module.state_dict())``, raw and gzipped.

    Works for quantized modules too (their packed int8 weights are part of the state dict). Masks left
    by ``torch.nn.utils.prune`` (``weight_orig`` + ``weight_mask``) double the size: call
    ``prune.remove`` first, as a deployed model would.
    """
    raw = _serialize(module)
    return ModelSize(bytes=len(raw), gzipped_bytes=gzipped_size(raw))


def measure_latency(fn: Callable, *args, repeats: int = 50, warmup: int = 5, **kwargs) -> Latency:
    """Time ``fn(*args, **kwargs)``: ``warmup`` untimed calls, then the median of ``repeats`` timed ones.

    The median (not the mean) and the interquartile range resist the outliers that a shared CPU
    produces. Wrap model calls in ``torch.no_grad()`` yourself, and fix the thread count
    (``torch.set_num_threads``) so that two measurements compare like with like.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    repeats = check_positive_int("repeats", repeats)
    warmup = check_non_negative_int("warmup", warmup)
    for _ in range(warmup):
        fn(*args, **kwargs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append((time.perf_counter() - start) * 1e3)
    if repeats == 1:
        return Latency(times[0], times[0], times[0], 1)
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return Latency(median_ms=median, p25_ms=q1, p75_ms=q3, repeats=repeats)


def optimizer_state_bytes(optimizer) -> int:
    """Bytes of the tensors an optimizer keeps in its state: a ``torch.optim`` optimizer's per-parameter
    state (Adam: ``exp_avg``, ``exp_avg_sq``, ``step``) or the transformation state of a
    :class:`~companion.optim.torch_adapter.ReferenceOptimizer` (Adam: ``mu``, ``nu``, the step count).

    The state is created lazily, at the first ``step()``: measure after one step.
    """
    import torch

    from ..optim._tree import tree_leaves
    from ..optim.torch_adapter import ReferenceOptimizer

    if isinstance(optimizer, ReferenceOptimizer):
        tensors = tree_leaves(optimizer.state_dict()["transformation_state"])
    elif isinstance(optimizer, torch.optim.Optimizer):
        tensors = [value for state in optimizer.state.values() for value in state.values()]
    else:
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))
