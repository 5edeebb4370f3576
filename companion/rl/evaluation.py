r"""Environments, the exploration schedule and greedy evaluation, shared by the PyTorch and Keras agents.

The exploration schedule is the linear decay of DQN (Mnih et al., 2015),

.. math:: \varepsilon_t = \max\bigl(\varepsilon_{\text{end}},\ \varepsilon_{\text{start}}
          + (\varepsilon_{\text{end}} - \varepsilon_{\text{start}})\, t / T\bigr),

and an evaluation runs a policy for whole episodes and returns the undiscounted return of each, which
for CartPole-v1 is the number of steps the pole stayed up (at most 500, "solved" at a mean of 475).
Checked in ``tests/test_rl.py`` (schedule end points, evaluation of fixed policies).
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from .._checks import check_in_range, check_positive_int

__all__ = ["check_discrete_actions", "epsilon_schedule", "evaluate", "make_env", "record_frames"]


def make_env(env_id: str = "CartPole-v1", *, render: bool = False):
    """A gymnasium environment; ``render=True`` draws RGB frames off-screen (no window, no display needed)."""
    if render:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws into memory, never opens a window
    import gymnasium as gym

    if env_id not in gym.registry:
        raise ValueError(f"Unknown env_id: {env_id!r} (not a registered gymnasium environment, e.g. 'CartPole-v1')")
    return gym.make(env_id, render_mode="rgb_array" if render else None)


def check_discrete_actions(env) -> int:
    """The number of actions of ``env``; raise unless it has finitely many (DQN picks one by its Q-value)."""
    import gymnasium as gym

    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"Invalid env_id: {env.spec.id if env.spec else env!r} has a {type(env.action_space).__name__} "
                         "action space; DQN needs finitely many actions (a Discrete space, such as CartPole's)")
    return int(env.action_space.n)


def epsilon_schedule(start: float = 1.0, end: float = 0.05, duration: int = 10_000) -> Callable[[int], float]:
    """Linear decay from ``start`` to ``end`` over ``duration`` steps, then constant ``end``."""
    start = check_in_range("start", start, 0.0, 1.0, high_inclusive=True)
    end = check_in_range("end", end, 0.0, 1.0, high_inclusive=True)
    duration = check_positive_int("duration", duration)
    slope = (end - start) / duration

    def epsilon(step: int) -> float:
        return max(start + slope * step, end) if start >= end else min(start + slope * step, end)

    return epsilon


def evaluate(policy: Callable[[np.ndarray], int], env, episodes: int = 20, *, seed: int = 10_000) -> np.ndarray:
    """Returns of ``episodes`` whole episodes of ``policy`` (observation -> action) in ``env``.

    Episode ``i`` starts from ``env.reset(seed=seed + i)``, so two evaluations with the same seed see the
    same initial states and a deterministic policy gets the same returns.
    """
    episodes = check_positive_int("episodes", episodes)
    returns = np.zeros(episodes)
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            returns[i] += reward
            done = terminated or truncated
    return returns


def record_frames(policy: Callable[[np.ndarray], int], env, *, max_steps: int = 500, every: int = 5, seed: int = 0):
    """RGB frames (every ``every``-th step) of one episode of ``policy`` in an ``env`` made with ``render=True``."""
    max_steps = check_positive_int("max_steps", max_steps)
    every = check_positive_int("every", every)
    if getattr(env, "render_mode", None) != "rgb_array":
        raise ValueError("env must be created with render_mode='rgb_array' (make_env(render=True))")
    obs, _ = env.reset(seed=seed)
    frames, steps = [env.render()], 0
    done = False
    while not done and steps < max_steps:
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        steps += 1
        done = terminated or truncated
        if steps % every == 0 or done:
            frames.append(env.render())
    return frames, steps
