"""A training history: what a loop records, in a form the plotting helpers accept."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

__all__ = ["History"]


class History:
    """Named series of measurements, each point tagged with the step at which it was taken.

    >>> h = History(); h.log(step=1, loss=2.3); h.log(step=2, loss=1.9, val_accuracy=0.8)
    >>> steps, losses = h.series("loss")
    """

    def __init__(self, name: str | None = None):
        self.name = name
        self._points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.meta: dict = {}

    def log(self, step: float, **values: float) -> None:
        """Record ``values`` (name=value) at ``step``."""
        if not values:
            raise ValueError("log() needs at least one name=value measurement")
        for key, value in values.items():
            self._points[key].append((float(step), float(value)))

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The steps and values recorded for ``key``, as two arrays."""
        if key not in self._points:
            raise KeyError(f"no series {key!r} in this history (it has {sorted(self._points)})")
        steps, values = zip(*self._points[key])
        return np.asarray(steps), np.asarray(values)

    def last(self, key: str) -> float:
        """The most recent value of ``key``."""
        return self.series(key)[1][-1]

    def keys(self) -> list[str]:
        return sorted(self._points)

    def __contains__(self, key: str) -> bool:
        return key in self._points

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in sorted(self._points.items()))
        return f"History({self.name!r}; {sizes})"
