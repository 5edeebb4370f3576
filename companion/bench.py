"""Benchmarks that print the figures the course states. Run ``python -m companion.bench --help``.

``optim``: time per ``step()`` of Adam through :class:`~companion.optim.torch_adapter.ReferenceOptimizer`
against ``torch.optim.Adam`` (foreach implementation) on a model of about 10 million parameters, in the
same process, interleaved, as a ratio. The course's target is a ratio of at most 1.5.

``dqn``: DQN on CartPole-v1 for three seeds (PyTorch, at most 50,000 environment steps each) and one
Keras run (at most 100,000 steps): environment steps to solve, CPU and wall-clock seconds (see
:mod:`companion.rl.benchmark`). Exit 1 unless every run solves it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def bench_optim(parameters: int = 10_000_000, repeats: int = 30, warmup: int = 5, device: str | None = None) -> dict:
    """Median seconds per Adam step of the adapter and of ``torch.optim.Adam(foreach=True)``."""
    import torch

    from .optim import adam
    from .optim.torch_adapter import ReferenceOptimizer
    from .reproducibility import pick_device

    device = device or pick_device()
    torch.manual_seed(0)
    width = max(1, int((parameters / 2) ** 0.5))  # two square-ish layers hold ~`parameters` weights

    def make_model():
        model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width))
        model.to(device)
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-3
        return model

    ours_model, torch_model = make_model(), make_model()
    count = sum(p.numel() for p in ours_model.parameters())
    ours = ReferenceOptimizer(ours_model.parameters(), adam(1e-3))
    theirs = torch.optim.Adam(torch_model.parameters(), lr=1e-3, foreach=True)

    def seconds(opt) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(warmup):
        seconds(ours), seconds(theirs)
    times_ours, times_torch = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        times_ours.append(seconds(ours))
        times_torch.append(seconds(theirs))
    result = {
        "device": device,
        "parameters": count,
        "threads": torch.get_num_threads(),
        "reference_ms": 1e3 * statistics.median(times_ours),
        "torch_ms": 1e3 * statistics.median(times_torch),
    }
    result["ratio"] = result["reference_ms"] / result["torch_ms"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p_optim = sub.add_parser("optim", help="Adam step time: reference adapter vs torch.optim.Adam (foreach)")
    p_optim.add_argument("--parameters", type=int, default=10_000_000)
    p_optim.add_argument("--repeats", type=int, default=30)
    p_optim.add_argument("--device", choices=["cpu", "cuda"], default=None)
    p_optim.add_argument("--target", type=float, default=1.5, help="largest acceptable ratio (exit 1 above it)")
    p_dqn = sub.add_parser("dqn", help="DQN on CartPole-v1: steps and seconds to solve, 3 seeds, PyTorch and Keras")
    p_dqn.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p_dqn.add_argument("--no-keras", action="store_true", help="skip the Keras agent")
    p_dqn.add_argument("--ablations", action="store_true", help="also train the ablations of book/part4_applications/03_dqn_ablations (no target network, no replay, ...)")
    args = parser.parse_args(argv)

    if args.benchmark == "optim":
        r = bench_optim(args.parameters, args.repeats, device=args.device)
        print(f"Adam step on {r['parameters']:,} parameters ({r['device']}, {r['threads']} threads), median of {args.repeats}:")
        print(f"  companion ReferenceOptimizer(adam): {r['reference_ms']:8.2f} ms")
        print(f"  torch.optim.Adam(foreach=True):     {r['torch_ms']:8.2f} ms")
        print(f"  ratio: {r['ratio']:.2f}x (target: at most {args.target}x)")
        return 0 if r["ratio"] <= args.target else 1
    if args.benchmark == "dqn":
        from .rl.benchmark import bench_dqn

        print("DQN on CartPole-v1 (solved: greedy mean return >= 475 over 20 episodes):", flush=True)
        r = bench_dqn(tuple(args.seeds), keras=not args.no_keras, ablations=args.ablations,
                      report=lambda line: print(line, flush=True))
        runs = r["torch"] + r["keras"]
        return 0 if all(x["solved_at"] and x["fresh_eval_return"] >= 475 for x in runs) else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
