r"""Deep Q-Network (DQN) in PyTorch, one readable page in the spirit of CleanRL's ``dqn.py``.

A Q-network :math:`Q_\theta(s, \cdot)` is regressed on the one-step Q-learning target (Watkins & Dayan,
1992), computed with a slowly moving copy :math:`\theta^-` (the *target network*) on mini-batches drawn
uniformly from an *experience-replay buffer* (Lin, 1992; Mnih et al., 2015):

.. math::
    y = r + \gamma\,(1 - d)\,\max_{a'} Q_{\theta^-}(s', a'), \qquad
    L(\theta) = \operatorname{Huber}\bigl(Q_\theta(s, a) - y\bigr),

where :math:`d` is gymnasium's ``terminated`` flag (a time-limit *truncation* still bootstraps).
Double DQN (van Hasselt et al., 2016) picks :math:`a'` with the online network and values it with the
target one: :math:`y = r + \gamma (1-d)\, Q_{\theta^-}(s', \arg\max_{a'} Q_\theta(s', a'))`.
The target network follows the online one by hard copies (``tau=1``) or Polyak averaging
:math:`\theta^- \leftarrow \tau\theta + (1-\tau)\theta^-`.

The defaults of :class:`DQNConfig` are those of the RL Baselines3 Zoo for CartPole-v1 (Adam at
2.3e-3, batches of 64, a 256-256 network, 128 gradient steps every 256 environment steps, exploration
decayed to 0.04 over 16% of 50,000 steps, gamma 0.99). Tested in ``tests/test_rl.py``: targets on
hand-made batches (terminated versus truncated, Double DQN), the target-network update, a smoke run;
the benchmark ``python -m companion.bench dqn`` checks that three seeds solve CartPole-v1.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_in_range, check_positive_int
from ..reproducibility import pick_device
from ..history import History
from .config import DQNConfig, DQNRun
from .evaluation import check_discrete_actions, epsilon_schedule, evaluate, make_env
from .replay import Batch, ReplayBuffer

__all__ = ["DQNConfig", "DQNRun", "q_network", "soft_update", "td_target", "train_dqn"]


def q_network(obs_dim: int, n_actions: int, hidden=(256, 256)) -> nn.Sequential:
    """An MLP ``obs -> Q(obs, a) for every a``: one output per action, no activation on the last layer."""
    if isinstance(hidden, (int, np.integer)) or not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be a tuple of layer widths such as (256, 256), got {hidden!r}")
    sizes = [check_positive_int("obs_dim", obs_dim), *(check_positive_int("hidden", h) for h in hidden)]
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], check_positive_int("n_actions", n_actions)))
    return nn.Sequential(*layers)


def greedy_policy(q: nn.Module):
    """``obs -> argmax_a Q(obs, a)`` as a plain Python int (for ``env.step``)."""
    device = next(q.parameters()).device

    def policy(obs) -> int:
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device).unsqueeze(0)
            return int(q(x).argmax(dim=1).item())

    return policy


def td_target(rewards, terminated, next_q_target, gamma: float, next_q_online=None):
    r"""One-step targets :math:`y = r + \gamma (1-d) \max_{a'} Q^-(s', a')` for a batch.

    ``next_q_target`` (and, for Double DQN, ``next_q_online``) hold :math:`Q(s', \cdot)` with shape
    ``(batch, n_actions)``; ``terminated`` is 1 only where the episode *ended* (not where it was cut by a
    time limit).
    """
    check_in_range("gamma", gamma, 0.0, 1.0, high_inclusive=True)
    if next_q_target.dim() != 2 or len(next_q_target) != len(rewards) or len(terminated) != len(rewards):
        raise ValueError(f"Invalid next_q_target: shape {tuple(next_q_target.shape)} for {len(rewards)} rewards and "
                         f"{len(terminated)} terminated flags (expected (batch, n_actions) and batch-long vectors)")
    if next_q_online is None:
        next_value = next_q_target.max(dim=1).values
    else:  # Double DQN: the online network chooses, the target network evaluates
        next_value = next_q_target.gather(1, next_q_online.argmax(dim=1, keepdim=True)).squeeze(1)
    return rewards + gamma * (1.0 - terminated) * next_value


@torch.no_grad()
def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    r""":math:`\theta^- \leftarrow \tau\,\theta + (1-\tau)\,\theta^-` (``tau=1`` is a hard copy)."""
    tau = check_in_range("tau", tau, 0.0, 1.0, high_inclusive=True)
    targets, onlines = list(target.parameters()), list(online.parameters())
    if [t.shape for t in targets] != [o.shape for o in onlines]:
        raise ValueError("target and online must be the same architecture (their parameters' shapes differ)")
    for t, o in zip(targets, onlines):
        t.lerp_(o, tau)


def train_dqn(config: DQNConfig | None = None, *, progress: bool = True, name: str | None = None) -> DQNRun:
    """Train a DQN agent on ``config.env_id`` and return a :class:`DQNRun`.

    Every ``eval_every`` environment steps the greedy policy plays ``eval_episodes`` episodes; the
    weights of the best evaluation are kept (the first that reaches ``solved_return``, after which
    training stops when ``stop_when_solved``). Seeding the environment, NumPy and torch makes runs
    repeat exactly on the CPU.
    """
    cfg = config or DQNConfig()
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train_dqn(cfg, progress=progress, name=name)
    finally:  # the caller's thread count comes back, also when training fails
        torch.set_num_threads(previous_threads)


def _train_dqn(cfg: DQNConfig, *, progress: bool, name: str | None) -> DQNRun:
    from ..progress import progress_bar

    device = cfg.device or pick_device()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env, eval_env = make_env(cfg.env_id), make_env(cfg.env_id)
    obs_dim, n_actions = env.observation_space.shape[0], check_discrete_actions(env)

    q = q_network(obs_dim, n_actions, cfg.hidden).to(device)
    target = copy.deepcopy(q) if cfg.target_network else q
    optimizer = torch.optim.Adam(q.parameters(), lr=cfg.learning_rate)
    buffer = ReplayBuffer(cfg.buffer_size, env.observation_space.shape, rng=rng)
    epsilon = epsilon_schedule(cfg.epsilon_start, cfg.epsilon_end, max(1, int(cfg.exploration_fraction * cfg.total_steps)))
    act = greedy_policy(q)
    history = History(name or f"DQN seed {cfg.seed}")
    history.meta["config"] = asdict(cfg)

    def gradient_step(batch: Batch) -> float:
        obs, actions, rewards, next_obs, terminated = (torch.as_tensor(a, device=device) for a in batch)
        with torch.no_grad():
            next_q_online = q(next_obs) if cfg.double_dqn else None
            y = td_target(rewards, terminated, target(next_obs), cfg.gamma, next_q_online)
        q_taken = q(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q_taken, y)  # Huber: gradients bounded by 1 for large TD errors
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(q.parameters(), cfg.max_grad_norm)
        optimizer.step()
        return loss.item()

    best_return, best_state, solved_at, updates = -np.inf, None, None, 0
    obs, _ = env.reset(seed=cfg.seed)
    episode_return, start = 0.0, time.perf_counter()
    bar = progress_bar(cfg.total_steps, history.name, enabled=progress)
    for step in range(1, cfg.total_steps + 1):
        # 1. Act epsilon-greedily and store the transition (terminated, not truncated, stops bootstrapping).
        eps = epsilon(step)
        action = int(rng.integers(n_actions)) if rng.random() < eps else act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        obs, episode_return = next_obs, episode_return + reward
        if terminated or truncated:
            history.log(step, episode_return=episode_return, epsilon=eps)
            obs, _ = env.reset()
            episode_return = 0.0

        # 2. Learn from uniformly sampled past transitions; move the target network now and then.
        if step > cfg.learning_starts and step % cfg.train_every == 0 and len(buffer) >= cfg.batch_size:
            losses = []
            for _ in range(cfg.gradient_steps):
                losses.append(gradient_step(buffer.sample(cfg.batch_size)))
                updates += 1
                if cfg.target_network and updates % cfg.target_update_every == 0:
                    soft_update(target, q, cfg.tau)
            history.log(step, loss=float(np.mean(losses)), seconds=time.perf_counter() - start)

        # 3. Evaluate the greedy policy; keep the best weights.
        if cfg.eval_every and step % cfg.eval_every == 0:
            mean_return = float(evaluate(act, eval_env, cfg.eval_episodes, seed=10_000 + cfg.seed).mean())
            history.log(step, eval_return=mean_return)
            if mean_return > best_return:
                best_return, best_state = mean_return, copy.deepcopy(q.state_dict())
            bar.set_postfix(eval_return=f"{mean_return:.0f}", refresh=False)
            if mean_return >= cfg.solved_return and solved_at is None:
                solved_at = step
                if cfg.stop_when_solved:
                    bar.update(step - bar.n)
                    break
        if step % 500 == 0:
            bar.update(step - bar.n)
    bar.close()
    env.close(), eval_env.close()
    if best_state is not None:
        q.load_state_dict(best_state)
    seconds = time.perf_counter() - start
    history.meta.update(solved_at=solved_at, best_eval_return=best_return, seconds=seconds)
    return DQNRun(q.eval(), history, cfg, solved_at, step, seconds, greedy_policy=greedy_policy)
