"""The hyperparameters of DQN and the result of a run, shared by the PyTorch and Keras agents.

The defaults are those of the RL Baselines3 Zoo for CartPole-v1 (Raffin, 2020) with evaluation and
early stopping added; they solve CartPole-v1 (``python -m companion.bench dqn`` checks three seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .._checks import check_in_range, check_non_negative_int, check_positive, check_positive_int
from ..history import History

__all__ = ["DQNConfig", "DQNRun"]


@dataclass
class DQNConfig:
    """Hyperparameters of :func:`train_dqn`; the defaults solve CartPole-v1."""

    env_id: str = "CartPole-v1"
    seed: int = 0
    total_steps: int = 50_000  # environment steps
    learning_rate: float = 2.3e-3
    buffer_size: int = 100_000
    batch_size: int = 64
    gamma: float = 0.99
    hidden: tuple[int, ...] = (256, 256)
    learning_starts: int = 1_000  # random steps before the first update
    train_every: int = 256  # environment steps between training phases ...
    gradient_steps: int = 128  # ... of this many gradient steps
    target_update_every: int = 128  # gradient steps between target-network updates
    tau: float = 1.0  # 1: hard copy; < 1: Polyak averaging at every target update
    target_network: bool = True  # False: bootstrap from the online network itself (the naive way)
    double_dqn: bool = False
    epsilon_start: float = 1.0
    epsilon_end: float = 0.04
    exploration_fraction: float = 0.16  # of total_steps
    max_grad_norm: float = 10.0
    eval_every: int = 2_500  # environment steps between greedy evaluations (0: never)
    eval_episodes: int = 20
    solved_return: float = 475.0
    stop_when_solved: bool = True
    threads: int | None = 1  # small MLPs are fastest on one CPU thread
    device: str | None = None

    def __post_init__(self):
        for name in ("total_steps", "buffer_size", "batch_size", "train_every", "gradient_steps",
                     "target_update_every", "eval_episodes"):
            check_positive_int(name, getattr(self, name))
        check_positive("learning_rate", self.learning_rate)
        check_in_range("gamma", self.gamma, 0.0, 1.0, high_inclusive=True)
        check_in_range("tau", self.tau, 0.0, 1.0, high_inclusive=True)
        check_in_range("exploration_fraction", self.exploration_fraction, 0.0, 1.0, high_inclusive=True)
        check_positive("max_grad_norm", self.max_grad_norm)
        if self.tau == 0.0:
            raise ValueError("Invalid tau: 0.0 (the target network would never move)")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"Invalid batch_size: {self.batch_size} (larger than buffer_size={self.buffer_size})")
        if not isinstance(self.hidden, (tuple, list)):
            raise TypeError(f"hidden must be a tuple of layer widths such as (256, 256), got {self.hidden!r}")
        self.hidden = tuple(check_positive_int("hidden", h) for h in self.hidden)
        check_in_range("epsilon_start", self.epsilon_start, 0.0, 1.0, high_inclusive=True)
        check_in_range("epsilon_end", self.epsilon_end, 0.0, 1.0, high_inclusive=True)
        if not isinstance(self.env_id, str) or not self.env_id:
            raise TypeError(f"env_id must be the name of a gymnasium environment, got {self.env_id!r}")
        for name in ("seed", "learning_starts", "eval_every"):
            check_non_negative_int(name, getattr(self, name))
        for name in ("target_network", "double_dqn", "stop_when_solved"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if isinstance(self.solved_return, bool) or not isinstance(self.solved_return, (int, float)) \
                or not math.isfinite(self.solved_return):
            raise TypeError(f"solved_return must be a finite number, got {self.solved_return!r}")
        if self.threads is not None:
            check_positive_int("threads", self.threads)
        if self.device is not None and (not isinstance(self.device, str)
                                        or self.device.split(":")[0] not in ("cpu", "cuda", "mps")):
            raise ValueError(f"Invalid device: {self.device!r} (expected None, 'cpu', 'cuda', 'cuda:N' or 'mps')")


@dataclass
class DQNRun:
    """What ``train_dqn`` (PyTorch) and ``train_keras_dqn`` (Keras) return: the trained network, its
    history and the headline numbers. ``policy()`` is the greedy policy ``obs -> argmax_a Q(obs, a)``."""

    q_network: object
    history: History
    config: DQNConfig
    solved_at: int | None  # environment steps when a greedy evaluation first reached solved_return
    env_steps: int  # environment steps actually taken
    seconds: float
    greedy_policy: Callable = field(repr=False, default=None)  # q_network -> policy, of the run's framework

    def policy(self):
        """The greedy policy ``obs -> argmax_a Q(obs, a)`` of the trained network."""
        return self.greedy_policy(self.q_network)
