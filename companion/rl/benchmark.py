"""``python -m companion.bench dqn``: does DQN solve CartPole-v1, how fast, with PyTorch and with Keras.

Each seed trains :func:`~companion.rl.dqn.train_dqn` with the default :class:`~companion.rl.DQNConfig`
(at most 50,000 environment steps, stopping at the first periodic greedy evaluation whose mean return
over 20 episodes reaches 475), then re-evaluates the kept weights on 20 fresh episodes. The Keras agent
gets 100,000 steps. ``ablations=True`` also trains, for every seed and at these full-length defaults, every
variant of :data:`companion.rl.ablations.ABLATIONS` (the table the chapter "What makes DQN work" runs in a
cheaper setting): without the target network, without replay (a buffer of one batch), with a small buffer,
with a ten times smaller learning rate, and with Double DQN.
"""

from __future__ import annotations

import time

from .ablations import ABLATIONS
from .config import DQNConfig
from .evaluation import evaluate, make_env

__all__ = ["ABLATIONS", "bench_dqn"]


def _measure(train, config: DQNConfig) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    run = train(config, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    fresh = evaluate(run.policy(), make_env(config.env_id), episodes=20, seed=0)
    return {
        "seed": config.seed,
        "solved_at": run.solved_at,
        "env_steps": run.env_steps,
        "best_eval_return": run.history.meta["best_eval_return"],
        "fresh_eval_return": float(fresh.mean()),
        "wall_s": wall,
        "cpu_s": cpu,
    }


def bench_dqn(seeds=(0, 1, 2), *, keras: bool = True, keras_steps: int = 100_000, ablations: bool = False, report=print) -> dict:
    """Train and evaluate; ``report`` receives one line per finished run. Returns every measurement."""
    from .dqn import train_dqn

    results: dict = {"torch": [], "keras": [], "ablations": {}}
    for seed in seeds:
        r = _measure(train_dqn, DQNConfig(seed=seed))
        results["torch"].append(r)
        report(_line("PyTorch DQN", r))
    if keras:
        from .keras_dqn import train_keras_dqn

        r = _measure(train_keras_dqn, DQNConfig(seed=seeds[0], total_steps=keras_steps))
        results["keras"].append(r)
        report(_line("Keras DQN", r))
    if ablations:
        for label, change in ABLATIONS.items():
            for seed in seeds:
                r = _measure(train_dqn, DQNConfig(seed=seed, **change))
                results["ablations"].setdefault(label, []).append(r)
                report(_line(label, r))
    return results


def _line(label: str, r: dict) -> str:
    solved = f"solved at {r['solved_at']:>6,} steps" if r["solved_at"] else f"not solved in {r['env_steps']:,} steps"
    return (
        f"  {label:<32} seed {r['seed']}: {solved}; best greedy mean {r['best_eval_return']:5.1f}, "
        f"fresh episodes {r['fresh_eval_return']:5.1f}; {r['cpu_s']:6.1f} s CPU, {r['wall_s']:6.1f} s wall"
    )
