"""``python -m companion.bench dqn``: does DQN solve CartPole-v1, how fast, with PyTorch and with Keras.

Each seed trains :func:`~companion.rl.dqn.train_dqn` with the default :class:`~companion.rl.DQNConfig`
(at most 50,000 environment steps, stopping at the first periodic greedy evaluation whose mean return
over 20 episodes reaches 475), then re-evaluates the kept weights on 20 fresh episodes. The Keras agent
gets 100,000 steps. ``ablations=True`` also trains, for every seed and at these full-length defaults, every
variant of :data:`companion.rl.ablations.ABLATIONS` (the table the chapter "What makes DQN work" runs in a
cheaper setting): without the target network, without replay (a buffer of one batch), with a small buffer,
with a ten times smaller learning rate, without exploration (ε = 0), and with Double DQN.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..rl.ablations import ABLATIONS
from ..rl.config import DQNConfig
from ..rl.evaluation import evaluate, make_env

__all__ = ["ABLATIONS", "bench_dqn", "main"]


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
    from ..rl.dqn import train_dqn

    results: dict = {"torch": [], "keras": [], "ablations": {}}
    for seed in seeds:
        r = _measure(train_dqn, DQNConfig(seed=seed))
        results["torch"].append(r)
        report(_line("PyTorch DQN", r))
    if keras:
        from ..rl.keras_dqn import train_keras_dqn

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench dqn", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras agent")
    parser.add_argument("--ablations", action="store_true",
                        help="also train the ablations of the chapter 'What makes DQN work' (no target network, no replay, ...)")
    args = parser.parse_args(argv)
    print("DQN on CartPole-v1 (solved: greedy mean return >= 475 over 20 episodes):", flush=True)
    r = bench_dqn(tuple(args.seeds), keras=not args.no_keras, ablations=args.ablations,
                  report=lambda line: print(line, flush=True))
    runs = r["torch"] + r["keras"]
    return 0 if all(x["solved_at"] and x["fresh_eval_return"] >= 475 for x in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
