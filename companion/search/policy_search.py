r"""Neuroevolution: search the weights of a CartPole policy with a gradient-free method.

The policy is a small network :math:`\pi_w(s) = \arg\max_a (W_2 \tanh(W_1 s + b_1) + b_2)_a`, or with
``hidden=()`` the linear :math:`\arg\max_a (W s + b)_a`; its weights :math:`w` are one flat vector. The
objective is the negative mean return of the greedy policy over a few episodes from fixed start states,

.. math:: f(w) = -\frac{1}{K} \sum_{k=1}^{K} R(\pi_w;\ s_0^{(k)}),

a black box with no gradient at all: a return is a count of steps. Any method of
:mod:`companion.search` minimizes it. Every weight vector that reaches 475 on its training episodes is
evaluated the way DQN is in Part IV, on 20 greedy episodes from other start states
(:func:`companion.rl.evaluate`); the search stops at the first whose mean there reaches 475 (the
``stop`` rule is checked after each generation, so a generation may finish first). Environment steps are
counted for training and for those evaluations separately (DQN's ``solved_at`` counts training steps).
Checked in ``tests/test_search.py`` (the flat vector's layout, the counts, a solved run).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._checks import check_positive, check_positive_int
from .base import SearchResult, check_seed

__all__ = ["EvolutionRun", "MLPPolicy", "evolve_policy"]


class MLPPolicy:
    """A greedy policy whose weights are one flat vector (tanh hidden layers, argmax over action scores)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...] = ()):
        self.obs_dim = check_positive_int("obs_dim", obs_dim)
        self.n_actions = check_positive_int("n_actions", n_actions)
        self.hidden = tuple(check_positive_int("hidden", h) for h in hidden)
        sizes = (self.obs_dim, *self.hidden, self.n_actions)
        self.shapes = [(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self.n_params = sum(n_in * n_out + n_out for n_in, n_out in self.shapes)

    def layers(self, params: np.ndarray):
        params = np.asarray(params, dtype=float)
        if params.shape != (self.n_params,):
            raise ValueError(f"Invalid params: expected shape ({self.n_params},), got {params.shape}")
        layers, start = [], 0
        for n_in, n_out in self.shapes:
            weight = params[start: start + n_in * n_out].reshape(n_in, n_out)
            start += n_in * n_out
            layers.append((weight, params[start: start + n_out]))
            start += n_out
        return layers

    def act(self, layers, obs: np.ndarray) -> int:
        h = np.asarray(obs, dtype=float)
        for i, (weight, bias) in enumerate(layers):
            h = h @ weight + bias
            if i < len(layers) - 1:
                h = np.tanh(h)
        return int(np.argmax(h))

    def policy(self, params: np.ndarray):
        """The greedy policy ``obs -> action`` of these weights, for :func:`companion.rl.evaluate`."""
        layers = self.layers(params)
        return lambda obs: self.act(layers, obs)


@dataclass
class EvolutionRun:
    """What :func:`evolve_policy` returns."""

    result: SearchResult  # the search itself: every weight vector tried, with its objective value
    params: np.ndarray  # the first weights that solved the task (or the best found)
    solved_at: int | None  # training environment steps when the 20-episode evaluation first reached 475
    env_steps: int  # training environment steps in all
    eval_env_steps: int  # environment steps spent on the 20-episode evaluations
    eval_return: float  # mean return of the last 20-episode evaluation of the kept weights
    seconds: float


def evolve_policy(method: str = "cma_es", *, env_id: str = "CartPole-v1", hidden: tuple[int, ...] = (),
                  budget: int = 2_000, seed: int = 0, train_episodes: int = 3, eval_episodes: int = 20,
                  solved_return: float = 475.0, weight_bound: float = 1.0, **options) -> EvolutionRun:
    """Search the weights of an :class:`MLPPolicy` with ``method`` (a name of :data:`companion.search.METHODS`).

    ``budget`` counts weight vectors tried (each costs ``train_episodes`` episodes); every weight lies in
    ``[-weight_bound, weight_bound]``. ``options`` go to the method.
    """
    from ..rl.evaluation import check_discrete_actions, evaluate, make_env
    from . import minimize

    seed = check_seed(seed)
    train_episodes = check_positive_int("train_episodes", train_episodes)
    eval_episodes = check_positive_int("eval_episodes", eval_episodes)
    solved_return = check_positive("solved_return", solved_return)
    weight_bound = check_positive("weight_bound", weight_bound)
    env, eval_env = make_env(env_id), make_env(env_id)
    policy = MLPPolicy(env.observation_space.shape[0], check_discrete_actions(env), hidden)
    # fixed start states (a deterministic f), never those of the 20-episode evaluation (seeds 10,000 to 10,019)
    train_seeds = [100_000 + 1_000 * (seed or 0) + k for k in range(train_episodes)]
    counts = {"train": 0, "eval": 0}
    solved: dict = {}

    def objective(w: np.ndarray) -> float:
        returns = evaluate(policy.policy(w), env, train_episodes, seed=train_seeds[0])
        counts["train"] += int(returns.sum())
        if returns.mean() >= solved_return and not solved:  # looks solved: test it on other start states
            test = evaluate(policy.policy(w), eval_env, eval_episodes)
            counts["eval"] += int(test.sum())
            if test.mean() >= solved_return:
                solved.update(at=counts["train"], params=w.copy(), value=float(test.mean()))
        return -float(returns.mean())

    def stop(best_w: np.ndarray, best_value: float, n: int) -> bool:
        return bool(solved)

    try:
        start = time.perf_counter()
        result = minimize(objective, [(-weight_bound, weight_bound)] * policy.n_params, method=method,
                          budget=budget, seed=seed, stop=stop, **options)
        seconds = time.perf_counter() - start
        if solved:
            return EvolutionRun(result, solved["params"], solved["at"], counts["train"], counts["eval"],
                                solved["value"], seconds)
        final = evaluate(policy.policy(result.x), eval_env, eval_episodes)
        return EvolutionRun(result, result.x, None, counts["train"], counts["eval"], float(final.mean()), seconds)
    finally:
        env.close()
        eval_env.close()
