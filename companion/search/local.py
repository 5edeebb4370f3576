r"""Tabu search (Glover, 1989) and iterated local search (Lourenço, Martin & Stützle, 2003) on a lattice.

Both are *neighbourhood* methods, at home where a point has a short list of neighbours: a permutation
and its swaps, a configuration and its one-setting changes. Here the box is discretized into a lattice of
``resolution`` points per coordinate, :math:`x = l + k \odot h` with integer :math:`k` and
:math:`h = (u - l) / (\text{resolution} - 1)`, and the neighbours of a point are the :math:`2d` points one
lattice step away along one coordinate. Values are cached: a point already seen costs no evaluation.

**Tabu search** always moves to the best neighbour that is not *tabu*, even when it is worse than where
it stands, which walks it out of a local minimum; the ``tenure`` points it visited last are tabu, so it
does not walk straight back. A tabu neighbour is allowed anyway when it beats the best value found so far
(the *aspiration* rule).

**Iterated local search** alternates a descent and a kick:

.. math:: x^\ast \leftarrow \text{LocalSearch}(x_0); \quad \text{repeat: }
          x' \leftarrow \text{LocalSearch}(\text{Perturb}(x^\ast)); \ \
          x^\ast \leftarrow x' \text{ if } f(x') \le f(x^\ast),

where the descent takes the first improving neighbour (in random order) until none improves, and the
kick moves ``kick_coordinates`` coordinates by up to ``kick_steps`` lattice steps each (reflected at the
edges of the box): strong enough to leave the basin, weak enough to keep most of what was found.

Checked in ``tests/test_search.py`` (neighbourhoods, tabu rule, cache, budget; both reach the lattice
minimum of a convex function exactly).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_positive_int
from .base import Evaluations, SearchResult, check_seed, check_stop, should_stop

__all__ = ["Lattice", "iterated_local_search", "tabu_search"]


class Lattice:
    """The points ``lower + k * step`` of the box, ``k`` in ``{0, ..., resolution - 1}^d``, with cached values."""

    def __init__(self, evaluations: Evaluations, resolution: int):
        self.evaluations = evaluations
        self.resolution = check_positive_int("resolution", resolution)
        if self.resolution < 3:
            raise ValueError(f"Invalid resolution: {resolution} (at least 3 points per coordinate)")
        self.step = evaluations.width / (self.resolution - 1)
        self.cache: dict[bytes, float] = {}

    def point(self, k: np.ndarray) -> np.ndarray:
        return self.evaluations.lower + k * self.step

    def value(self, k: np.ndarray) -> float | None:
        """``f`` at lattice point ``k``: from the cache, else evaluated; None once the budget is spent."""
        key = k.tobytes()
        if key not in self.cache:
            if not self.evaluations.remaining:
                return None
            self.cache[key] = self.evaluations.evaluate(self.point(k))
        return self.cache[key]

    def neighbours(self, k: np.ndarray) -> list[np.ndarray]:
        """The lattice points one step away from ``k`` along one coordinate (inside the box)."""
        result = []
        for j in range(k.size):
            for delta in (-1, 1):
                if 0 <= k[j] + delta < self.resolution:
                    n = k.copy()
                    n[j] += delta
                    result.append(n)
        return result

    def exhausted(self) -> bool:
        """True when every lattice point has been evaluated (a small lattice, a large budget)."""
        return len(self.cache) >= float(self.resolution) ** self.evaluations.dim

    def random_index(self, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(self.resolution, size=self.evaluations.dim)


def tabu_search(objective, bounds, budget: int, seed: int | None = 0, *, resolution: int = 101, tenure: int | None = None,
                stop=None) -> SearchResult:
    """Minimize ``objective`` over the lattice of ``bounds`` with at most ``budget`` evaluations.

    ``tenure`` (how many recent points are tabu) defaults to :math:`2d`, at least 7. When every neighbour
    is tabu and none aspires, or the walk has cycled among points it already knows for more than
    ``2 * tenure`` moves, the search restarts from a random lattice point. ``stop`` as in
    :func:`~companion.search.random_search`, checked after every move.
    """
    seed, stop = check_seed(seed), check_stop(stop)
    evaluations = Evaluations(objective, bounds, budget)
    lattice = Lattice(evaluations, resolution)
    tenure = max(7, 2 * evaluations.dim) if tenure is None else check_positive_int("tenure", tenure)
    rng = np.random.default_rng(seed)

    current = lattice.random_index(rng)
    best_value = lattice.value(current)
    recent: list[bytes] = [current.tobytes()]
    idle_moves = 0  # moves that cost no evaluation: bounded, so a walk among cached points cannot loop forever
    while evaluations.remaining and idle_moves <= 10 * evaluations.budget and not lattice.exhausted():
        if should_stop(stop, evaluations):
            return evaluations.result("tabu_search", seed, stopped_early=True)
        spent = evaluations.count
        scored = []
        for n in lattice.neighbours(current):
            value = lattice.value(n)
            if value is None:
                break
            if n.tobytes() not in recent or value < best_value:  # tabu, unless it aspires
                scored.append((value, n))
        if not evaluations.remaining:
            break
        if scored and idle_moves <= 2 * tenure:
            value, current = min(scored, key=lambda pair: pair[0])
        else:  # boxed in by the tabu list, or cycling among seen points for too long: restart somewhere new
            current = lattice.random_index(rng)
            value = lattice.value(current)
            if value is None:
                break
        best_value = min(best_value, value)
        recent = (recent + [current.tobytes()])[-tenure:]
        idle_moves = idle_moves + 1 if evaluations.count == spent else 0
    return evaluations.result("tabu_search", seed)


def _descend(lattice: Lattice, start: np.ndarray, value: float, rng: np.random.Generator):
    """First-improvement descent from ``start``: the local minimum reached and its value (None: budget spent)."""
    current = start
    improved = True
    while improved:
        improved = False
        neighbours = lattice.neighbours(current)
        for i in rng.permutation(len(neighbours)):
            candidate_value = lattice.value(neighbours[i])
            if candidate_value is None:
                return current, value
            if candidate_value < value:
                current, value, improved = neighbours[i], candidate_value, True
                break
    return current, value


def iterated_local_search(objective, bounds, budget: int, seed: int | None = 0, *, resolution: int = 101,
                          kick_coordinates: int | None = None, kick_steps: int | None = None, stop=None) -> SearchResult:
    """Minimize ``objective`` over the lattice of ``bounds`` with at most ``budget`` evaluations.

    The kick moves ``kick_coordinates`` coordinates (default: a third of them, at least 2 where there
    are 2) by a uniform number of steps in ``[-kick_steps, kick_steps]`` (default: a tenth of the
    lattice). ``stop`` as in :func:`~companion.search.random_search`, checked after every descent.
    """
    seed, stop = check_seed(seed), check_stop(stop)
    evaluations = Evaluations(objective, bounds, budget)
    lattice = Lattice(evaluations, resolution)
    d = evaluations.dim
    kick_coordinates = (min(d, max(2, round(d / 3))) if kick_coordinates is None
                        else check_positive_int("kick_coordinates", kick_coordinates))
    if kick_coordinates > d:
        raise ValueError(f"Invalid kick_coordinates: {kick_coordinates} (the search space has {d} dimensions)")
    kick_steps = (max(1, lattice.resolution // 10) if kick_steps is None
                  else check_positive_int("kick_steps", kick_steps))
    if kick_steps >= lattice.resolution:
        raise ValueError(f"Invalid kick_steps: {kick_steps} (must be below resolution={lattice.resolution})")
    rng = np.random.default_rng(seed)

    start = lattice.random_index(rng)
    home, home_value = _descend(lattice, start, lattice.value(start), rng)
    idle_kicks = 0  # kicks that found nothing new: bounded, so a fully explored region cannot loop forever
    while evaluations.remaining and idle_kicks <= 10 * evaluations.budget and not lattice.exhausted():
        if should_stop(stop, evaluations):
            return evaluations.result("iterated_local_search", seed, stopped_early=True)
        spent = evaluations.count
        kicked = home.copy()
        which = rng.choice(d, size=kick_coordinates, replace=False)
        top = lattice.resolution - 1  # a kick past the edge is reflected back, as annealing's steps are
        moved = np.abs(kicked[which] + rng.integers(-kick_steps, kick_steps + 1, size=kick_coordinates))
        kicked[which] = np.where(moved > top, 2 * top - moved, moved)
        kicked_value = lattice.value(kicked)
        if kicked_value is None:
            break
        local, local_value = _descend(lattice, kicked, kicked_value, rng)
        if local_value <= home_value:
            home, home_value = local, local_value
        idle_kicks = idle_kicks + 1 if evaluations.count == spent else 0
    return evaluations.result("iterated_local_search", seed)
