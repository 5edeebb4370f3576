r"""Timing code honestly: warm-up excluded, the device synchronized, the median of repeats.

A single ``time.perf_counter()`` around one call measures the wrong thing three ways: the first calls
pay for one-time work (memory allocation, kernel selection, compilation); on a GPU the call returns
as soon as the work is *queued*, before it is done; and one measurement carries the noise of
everything else the machine was doing. :func:`time_it` runs ``warmup`` calls first, synchronizes
CUDA around every timed call, and reports the median and the interquartile range of ``repeats``
calls:

.. math:: \tilde t = \operatorname{median}(t_1, \dots, t_n), \qquad
    \mathrm{IQR} = Q_3(t) - Q_1(t).

The median ignores the occasional call that the operating system interrupted; the IQR says how far
to trust it. Compare two variants by the ratio of their medians measured in the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._checks import check_non_negative_int, check_positive_int

__all__ = ["Timing", "describe_device", "synchronize", "time_it"]


@dataclass(frozen=True)
class Timing:
    """Seconds per call of ``repeats`` timed calls: ``median``, quartiles ``q1``/``q3`` and every ``times``."""

    times: tuple

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def q1(self) -> float:
        return float(np.percentile(self.times, 25))

    @property
    def q3(self) -> float:
        return float(np.percentile(self.times, 75))

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def __str__(self) -> str:
        return f"{self.median * 1e3:.3g} ms (IQR {self.iqr * 1e3:.2g} ms, {len(self.times)} calls)"


def describe_device(device: str = "cpu") -> str:
    """The hardware behind ``device`` in words: ``"NVIDIA H100 GPU"``, ``"AMD EPYC CPU (2 cores)"``."""
    import os
    import platform

    if str(device).startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(torch.device(device))} GPU"
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name} CPU ({os.cpu_count()} cores)"


def synchronize(device=None) -> None:
    """Wait for the CUDA work queued on ``device`` (default: the current GPU); nothing to do on the CPU."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")):
        torch.cuda.synchronize(device)


def time_it(fn, *, repeats: int = 20, warmup: int = 3, device=None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` calls each timed on its own.

    ``device``: where ``fn`` queues its work (``"cuda"``, ``"cuda:1"``; ``None``: the current GPU, if any);
    the clock starts and stops only after that work is done. Returns a :class:`Timing`.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    repeats = check_positive_int("repeats", repeats)
    warmup = check_non_negative_int("warmup", warmup)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return Timing(tuple(times))
