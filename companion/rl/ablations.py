r"""DQN ablations: train variants of :class:`~companion.rl.DQNConfig` over several seeds, return learning curves.

One definition of the ablations, shared by the chapter "What makes DQN work" and by
``python -m companion.bench dqn --ablations``. Each ablation is a change to the defaults:

* ``target_network=False``: the target :math:`y = r + \gamma (1-d) \max_{a'} Q_\theta(s', a')` is computed
  with the network being trained (no frozen copy :math:`\theta^-`);
* ``buffer_size=64``: the buffer holds one batch, so every mini-batch is (a resampling of) the last 64
  transitions: on-line, correlated updates, essentially no replay;
* ``buffer_size=2_000``: replay over a short memory only;
* ``learning_rate`` divided by 10;
* ``epsilon_start=epsilon_end=0``: no exploration, every action greedy from the first step (the data come
  from the greedy policy only; Q-learning's convergence needs every action tried in every state, Watkins
  and Dayan, 1992);
* ``double_dqn=True`` (an addition rather than a removal; van Hasselt et al., 2016).

A learning curve is the *training-episode* return (the :math:`\varepsilon`-greedy episodes the agent
plays while it learns, so no extra evaluation episodes are paid for) averaged over a sliding window of
environment steps,

.. math:: G(t) = \operatorname{mean}\{\, R_k : t - w < T_k \le t \,\},

where episode :math:`k` ended at step :math:`T_k` with return :math:`R_k`. With :math:`w \ge 500` (the
longest CartPole-v1 episode) every window holds at least one finished episode. Mnih et al. (2015),
Extended Data Table 3, report the same kind of ablation on Atari. Tested in ``tests/test_rl_ablations.py``
(the windowed mean on a hand-made history, shapes, repeatability, argument checks, the plot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from .._checks import check_positive_int
from ..history import History
from .config import DQNConfig

__all__ = ["ABLATIONS", "ABLATION_SETTING", "AblationCurves", "learning_curve", "plot_ablation", "run_ablation"]

_DEFAULT_LR = DQNConfig.learning_rate

ABLATIONS: dict[str, dict] = {
    "no target network": dict(target_network=False),
    "no replay (buffer = one batch)": dict(buffer_size=64),
    "buffer 2,000": dict(buffer_size=2_000),
    "learning rate 2.3e-4": dict(learning_rate=_DEFAULT_LR / 10),  # ten times below the default
    "no exploration (ε = 0)": dict(epsilon_start=0.0, epsilon_end=0.0),  # greedy from the first step
    "Double DQN": dict(double_dqn=True),
}
"""Label -> changes to :class:`DQNConfig` (applied on top of the base configuration)."""

ABLATION_SETTING: dict = dict(
    total_steps=10_000,
    hidden=(64, 64),
    learning_starts=500,
    train_every=16,
    gradient_steps=8,
    target_update_every=250,
    exploration_fraction=0.2,
    eval_every=0,
    stop_when_solved=False,
    device="cpu",
)
"""The cheaper setting shared by every variant of the chapter, the full DQN included: 10,000 environment
steps instead of 50,000, a 64-64 network instead of 256-256, no greedy evaluations (the curve is made of
training episodes) and no early stop. The ratio of one gradient step per two environment steps is the
default's, taken in chunks of 8 every 16 steps instead of 128 every 256, with the target network copied
every 250 gradient steps (500 environment steps), so that a short run still sees many target updates. The
runs stay on the CPU even where a GPU is present: a 64-64 network is faster there, and the chapter's
claims are checked on exactly these runs."""


@dataclass
class AblationCurves:
    """Learning curves of one DQN variant: ``returns[i, j]`` is seed ``seeds[i]`` at ``steps[j]``."""

    label: str
    steps: np.ndarray
    returns: np.ndarray
    seeds: tuple[int, ...]
    cpu_seconds: float
    histories: list[History] = field(default_factory=list, repr=False)
    networks: list = field(default_factory=list, repr=False)  # the trained Q-networks (last weights)

    def mean(self) -> np.ndarray:
        """The mean over seeds at every step."""
        return self.returns.mean(axis=0)

    def final(self) -> np.ndarray:
        """Each seed's value at the last step."""
        return self.returns[:, -1]


def learning_curve(history: History, total_steps: int, *, every: int = 500, window: int = 1_000,
                   key: str = "episode_return") -> tuple[np.ndarray, np.ndarray]:
    """Steps ``every, 2 every, ..., total_steps`` and, at each, the mean return of the episodes that ended in
    the last ``window`` steps (NaN where none did: only possible when ``window`` < 500 on CartPole)."""
    total_steps = check_positive_int("total_steps", total_steps)
    every = check_positive_int("every", every)
    window = check_positive_int("window", window)
    if every > total_steps:
        raise ValueError(f"Invalid every: {every} (larger than total_steps={total_steps})")
    ends, values = history.series(key)
    grid = np.arange(every, total_steps + 1, every)
    curve = np.full(len(grid), np.nan)
    for j, t in enumerate(grid):
        inside = (ends > t - window) & (ends <= t)
        if inside.any():
            curve[j] = values[inside].mean()
    return grid, curve


def run_ablation(label: str, change: dict | None = None, seeds=(0, 1, 2), *, base: dict | None = None,
                 every: int = 500, window: int = 1_000, report=None) -> AblationCurves:
    """Train ``DQNConfig(**base, **change, seed=s)`` for every seed in ``seeds`` and return the curves.

    ``base`` defaults to :data:`ABLATION_SETTING`; pass ``{"stop_when_solved": False}`` for chapter 2's
    full-length defaults (an early stop would leave the rest of the curve NaN). ``report``, if given,
    receives one line per finished run (cells that train for long should show progress).
    """
    from .dqn import train_dqn

    change = dict(change or {})
    base = dict(ABLATION_SETTING if base is None else base)
    if not isinstance(seeds, (tuple, list)) or not seeds:
        raise ValueError(f"Invalid seeds: {seeds!r} (a non-empty tuple or list of integers)")
    if "seed" in change or "seed" in base:
        raise ValueError("Invalid change: the seed is set by seeds, not by change or base")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"Invalid seeds: {seeds!r} (every seed must be an integer >= 0)")
    config = DQNConfig(**{**base, **change})
    curves, histories, networks, cpu = [], [], [], time.process_time()
    for seed in seeds:
        start = time.process_time()
        run = train_dqn(replace(config, seed=int(seed)), progress=False,
                        name=f"{label}, seed {seed}")
        steps, curve = learning_curve(run.history, config.total_steps, every=every, window=window)
        curves.append(curve)
        histories.append(run.history)
        networks.append(run.q_network)
        if report is not None:
            report(f"{label:<32} seed {seed}: final return {curve[-1]:5.1f}, best {np.nanmax(curve):5.1f}; "
                   f"{time.process_time() - start:5.1f} s CPU")
    return AblationCurves(label, steps, np.array(curves), tuple(seeds), time.process_time() - cpu, histories, networks)


def plot_ablation(curves_list, *, ax=None, colors=None, solved: float | None = 475.0):
    """Draw each :class:`AblationCurves`: every seed as a faint line, the mean over seeds as a bold one.

    ``solved`` draws the "solved" line of CartPole-v1 (``None``: no line). Returns the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    if isinstance(curves_list, AblationCurves):
        curves_list = [curves_list]
    for i, curves in enumerate(curves_list):
        if not isinstance(curves, AblationCurves):
            raise TypeError(f"curves_list must hold AblationCurves, got {type(curves).__name__}")
        color = colors[i] if colors is not None else f"C{i}"
        for seed_curve in curves.returns:
            ax.plot(curves.steps, seed_curve, color=color, alpha=0.25, lw=0.9)
        ax.plot(curves.steps, curves.mean(), color=color, lw=2.2,
                label=f"{curves.label} (mean of {len(curves.seeds)} seeds)")
    if solved is not None:
        ax.axhline(solved, color="tab:green", ls="--", lw=1.2, label=f"solved ({solved:g})")
        ax.set_ylim(0, 1.1 * solved)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("training-episode return (steps)")
    return ax
