r"""Experience replay: a fixed-size ring of transitions, sampled uniformly.

Each transition is :math:`(s_t, a_t, r_{t+1}, s_{t+1}, d_{t+1})` where :math:`d` is gymnasium's
``terminated`` flag, *not* ``terminated or truncated``: a time-limit truncation is not an end of the
task, so its target must still bootstrap from :math:`s_{t+1}`. Sampling mini-batches uniformly from the
last ``capacity`` transitions breaks the correlation between consecutive steps and reuses each
transition many times (Lin, 1992; Mnih et al., 2015). Tested for wrap-around, uniform sampling and
argument checks in ``tests/test_rl.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import check_positive_int

__all__ = ["Batch", "ReplayBuffer"]


class Batch(NamedTuple):
    """A mini-batch of transitions, as NumPy arrays with a leading batch axis."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray


class ReplayBuffer:
    """Fixed-size ring buffer over preallocated NumPy arrays; once full, new transitions overwrite the oldest.

    >>> buffer = ReplayBuffer(10_000, obs_shape=(4,), seed=0)
    >>> buffer.add(obs, action, reward, next_obs, terminated)
    >>> batch = buffer.sample(64)   # Batch(observations=(64, 4), actions=(64,), ...)
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], *, seed: int | None = None, rng=None):
        self.capacity = check_positive_int("capacity", capacity)
        try:
            self.obs_shape = tuple(int(d) for d in obs_shape)
        except TypeError:
            raise TypeError(f"obs_shape must be a tuple of integers, got {obs_shape!r}") from None
        if any(d < 1 for d in self.obs_shape):
            raise ValueError(f"Invalid obs_shape: {obs_shape!r} (every dimension must be >= 1)")
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.observations = np.zeros((self.capacity, *self.obs_shape), dtype=np.float32)
        self.next_observations = np.zeros_like(self.observations)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.position = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def _check_obs(self, name: str, value) -> np.ndarray:
        array = np.asarray(value, dtype=np.float32)
        if array.shape != self.obs_shape:
            raise ValueError(f"{name} has shape {array.shape}, expected {self.obs_shape}")
        return array

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        """Store one transition (``terminated`` only; pass ``False`` for a truncated episode's last step)."""
        i = self.position
        self.observations[i] = self._check_obs("obs", obs)
        self.next_observations[i] = self._check_obs("next_obs", next_obs)
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = float(terminated)
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly (with replacement) from the stored ones."""
        batch_size = check_positive_int("batch_size", batch_size)
        if batch_size > self.size:
            raise ValueError(
                f"Invalid batch_size: {batch_size} (the buffer holds only {self.size} transitions; "
                "collect more before sampling)"
            )
        idx = self.rng.integers(0, self.size, size=batch_size)
        return Batch(
            self.observations[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_observations[idx],
            self.terminated[idx],
        )
