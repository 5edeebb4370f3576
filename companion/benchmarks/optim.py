"""``python -m companion.bench optim``: the time of one Adam ``step()`` through the course's adapter.

:class:`~companion.optim.torch_adapter.ReferenceOptimizer` running ``companion.optim.adam`` against
``torch.optim.Adam`` (foreach implementation) on a model of about 10 million parameters, in the same
process, in interleaved pairs (A, B, B, A, ...) so that both see the same machine load, reported as the
median of the per-pair ratios. Exit 1 above the target ratio (1.1 by default: the foreach kernels are
the memory-bound limit on a CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

__all__ = ["bench_optim", "main"]


def bench_optim(parameters: int = 10_000_000, repeats: int = 30, warmup: int = 5, device: str | None = None) -> dict:
    """Median seconds per Adam step of the adapter and of ``torch.optim.Adam(foreach=True)``."""
    import torch

    from ..optim import adam
    from ..optim.torch_adapter import ReferenceOptimizer
    from ..reproducibility import pick_device

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
    for i in range(repeats):  # interleaved pairs, each starting with the other optimizer in turn
        if i % 2:
            times_torch.append(seconds(theirs))
            times_ours.append(seconds(ours))
        else:
            times_ours.append(seconds(ours))
            times_torch.append(seconds(theirs))
    pair_ratios = [a / b for a, b in zip(times_ours, times_torch)]
    return {
        "device": device,
        "parameters": count,
        "threads": torch.get_num_threads(),
        "reference_ms": 1e3 * statistics.median(times_ours),
        "torch_ms": 1e3 * statistics.median(times_torch),
        # a burst of load slows both steps of a pair alike: the median of per-pair ratios ignores it
        "ratio": statistics.median(pair_ratios),
        "ratio_quartiles": tuple(statistics.quantiles(pair_ratios, n=4)[i] for i in (0, 2)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench optim", description=__doc__.splitlines()[0])
    parser.add_argument("--parameters", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--target", type=float, default=1.1, help="largest acceptable ratio (exit 1 above it)")
    args = parser.parse_args(argv)
    r = bench_optim(args.parameters, args.repeats, device=args.device)
    print(f"Adam step on {r['parameters']:,} parameters ({r['device']}, {r['threads']} threads), median of {args.repeats}:")
    print(f"  companion ReferenceOptimizer(adam): {r['reference_ms']:8.2f} ms")
    print(f"  torch.optim.Adam(foreach=True):     {r['torch_ms']:8.2f} ms")
    q1, q3 = r["ratio_quartiles"]
    print(f"  ratio, median of {args.repeats} interleaved pairs: {r['ratio']:.2f}x (quartiles {q1:.2f}-{q3:.2f}; "
          f"target: at most {args.target}x): {'PASS' if r['ratio'] <= args.target else 'FAIL'}")
    return 0 if r["ratio"] <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
