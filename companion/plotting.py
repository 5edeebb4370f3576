"""One plotting style for the whole course, and helpers that draw training histories."""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt

from ._checks import check_choice, check_positive_int
from .history import History

__all__ = ["plot_histories", "use_course_style"]

COURSE_STYLE = {
    "figure.figsize": (7.0, 4.2),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "legend.frameon": False,
    "lines.linewidth": 1.8,
}


def use_course_style() -> None:
    """Apply the course's matplotlib style (call once at the top of a chapter)."""
    plt.rcParams.update(COURSE_STYLE)


def plot_histories(
    histories: Mapping[str, History] | list[History],
    key: str = "loss",
    *,
    x: str = "step",
    ax=None,
    title: str | None = None,
    ylabel: str | None = None,
    logy: bool = False,
    smooth: int = 1,
):
    """Draw series ``key`` of several histories against the step (``x="step"``) or wall-clock (``x="seconds"``).

    ``smooth`` > 1 draws a running mean over that many points (mini-batch losses are noisy).
    """
    import numpy as np

    check_choice("x", x, ("step", "seconds"))
    smooth = check_positive_int("smooth", smooth)
    if isinstance(histories, History):
        histories = [histories]
    if isinstance(histories, Mapping):
        items = list(histories.items())
    elif isinstance(histories, (list, tuple)):
        items = [(h.name or f"run {i}", h) if isinstance(h, History) else (f"run {i}", h) for i, h in enumerate(histories)]
    else:
        raise TypeError(f"histories must be a History, a list of them or a dict name -> History, got {type(histories).__name__}")
    if not items:
        raise ValueError("histories is empty: nothing to draw")
    for label, history in items:
        if not isinstance(history, History):
            raise TypeError(f"histories[{label!r}] must be a History, got {type(history).__name__}")
        needed = {"key": key, **({"x": "seconds"} if x == "seconds" else {})}
        for argument, series in needed.items():
            if series not in history.keys():
                raise ValueError(f"{argument}={series!r}: history {label!r} has no such series (it has {history.keys()})")
    if ax is None:
        _, ax = plt.subplots()
    for label, history in items:
        steps, values = history.series(key)
        if x == "seconds":
            seconds_at, seconds = history.series("seconds")
            steps = np.interp(steps, seconds_at, seconds)
        if smooth > 1 and len(values) >= smooth:
            kernel = np.ones(smooth) / smooth
            values = np.convolve(values, kernel, mode="valid")
            steps = steps[smooth - 1 :]
        ax.plot(steps, values, label=label)
    ax.set_xlabel("optimizer step" if x == "step" else "wall-clock time (s)")
    ax.set_ylabel(ylabel or key.replace("_", " "))
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax
